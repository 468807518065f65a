"""mg.autograd.functional: vjp, jvp, jacobian, hessian, hvp and vhp against central finite
differences in float64, and against torch.autograd.functional (values and the tuple structure)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minigrad as mg
from minigrad.autograd.functional import hessian, hvp, jacobian, jvp, vhp, vjp

# Functions written with methods minigrad and PyTorch share, so both libraries run the same code.
FUNCTIONS = {  # name: (number of inputs, func)
    "tanh_times_x": (1, lambda x: x.tanh() * x),
    "sin_times_sum": (1, lambda x: x.sin() * x.sum()),
    "two_in_two_out": (2, lambda x, y: (x * y.exp(), ((x - y) ** 2).sum())),
    "two_in_one_out": (2, lambda x, y: x.sin() * y + x * x),
}
SCALAR_FUNCTIONS = {
    "sin_x_sum": (1, lambda x: (x.sin() * x).sum()),
    "coupled": (2, lambda x, y: (x * x * y).sum() + y.exp().sum() * x.sum()),
}


def _evaluate(func, arrays):
    with mg.no_grad():
        out = func(*(mg.tensor(a) for a in arrays))
    return [o.cpu().numpy() for o in (out if isinstance(out, tuple) else (out,))]


def _numeric_jacobian(func, arrays, eps=1e-6):
    """blocks[i][j]: d output_i / d input_j by central differences, of shape out_i.shape + in_j.shape."""
    outputs = _evaluate(func, arrays)
    blocks = [[np.zeros(o.shape + a.shape) for a in arrays] for o in outputs]
    for j, a in enumerate(arrays):
        for k in np.ndindex(a.shape):
            plus, minus = [x.copy() for x in arrays], [x.copy() for x in arrays]
            plus[j][k] += eps
            minus[j][k] -= eps
            for i, (p, m) in enumerate(zip(_evaluate(func, plus), _evaluate(func, minus))):
                blocks[i][j][(...,) + k] = (p - m) / (2 * eps)
    return blocks


def _as_list(value):
    return list(value) if isinstance(value, tuple) else [value]


def _close(actual, expected, tol=1e-6):
    np.testing.assert_allclose(actual.cpu().numpy(), expected, rtol=tol, atol=tol)


cases = st.tuples(
    st.sampled_from(sorted(FUNCTIONS)),
    st.lists(st.integers(1, 3), min_size=1, max_size=2),
    st.integers(0, 2**16),
)


@settings(max_examples=15, deadline=None)
@given(cases)
def test_jacobian_vjp_jvp_match_finite_differences(case):
    name, shape, seed = case
    n_inputs, func = FUNCTIONS[name]
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(shape) for _ in range(n_inputs)]
    inputs = tuple(mg.tensor(a) for a in arrays)
    numeric = _numeric_jacobian(func, arrays)

    jac = jacobian(func, inputs)  # inputs are a tuple: a tuple over outputs (if a tuple) of tuples over inputs
    rows = jac if isinstance(func(*inputs), tuple) else (jac,)
    for i, row in enumerate(rows):
        for j, block in enumerate(row):
            _close(block, numeric[i][j])

    v_out = [rng.standard_normal(o.shape) for o in _evaluate(func, arrays)]
    out, result = vjp(func, inputs, tuple(mg.tensor(v) for v in v_out))
    for j, g in enumerate(result):
        expected = sum(np.tensordot(v, numeric[i][j], axes=v.ndim) for i, v in enumerate(v_out))
        _close(g, expected)
    for o, e in zip(_as_list(out), _evaluate(func, arrays)):
        assert not o.requires_grad
        _close(o, e)

    v_in = [rng.standard_normal(a.shape) for a in arrays]
    _, result = jvp(func, inputs, tuple(mg.tensor(v) for v in v_in))
    for i, g in enumerate(_as_list(result)):
        expected = sum(np.tensordot(numeric[i][j], v, axes=v.ndim) for j, v in enumerate(v_in))
        _close(g, expected)


@settings(max_examples=10, deadline=None)
@given(st.sampled_from(sorted(SCALAR_FUNCTIONS)), st.lists(st.integers(1, 3), min_size=1, max_size=2),
       st.integers(0, 2**16))  # fmt: skip
def test_hessian_hvp_vhp_match_finite_differences(name, shape, seed):
    n_inputs, func = SCALAR_FUNCTIONS[name]
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(shape) for _ in range(n_inputs)]
    inputs = tuple(mg.tensor(a) for a in arrays)

    numeric = _numeric_jacobian(lambda *x: jacobian(func, x), arrays)  # differences of the gradient
    hess = hessian(func, inputs)
    v = [rng.standard_normal(a.shape) for a in arrays]
    v_tensors = tuple(mg.tensor(a) for a in v)
    _, hv = hvp(func, inputs, v_tensors)
    _, vh = vhp(func, inputs, v_tensors)
    for i in range(n_inputs):
        expected = sum(np.tensordot(numeric[i][j], v[j], axes=len(shape)) for j in range(n_inputs))
        _close(hv[i], expected, 1e-5)
        _close(vh[i], expected, 1e-5)  # H is symmetric
        for j in range(n_inputs):
            _close(hess[i][j], numeric[i][j], 1e-5)


def test_single_tensors_in_and_out_give_single_tensors():
    x = mg.tensor([1.0, 2.0], dtype=mg.float64)
    assert isinstance(jacobian(lambda a: a * 2, x), mg.Tensor)
    assert tuple(hessian(lambda a: (a**3).sum(), x).shape) == (2, 2)
    out, g = vjp(lambda a: (a * a).sum(), x)  # v may be None for a single-element output
    _close(g, [2.0, 4.0])
    _, d = jvp(lambda a: a * a, mg.tensor([3.0], dtype=mg.float64))  # v may be None for a single-element input
    _close(d, [6.0])


def test_create_graph_keeps_results_differentiable():
    x = mg.tensor([0.5, -1.0], dtype=mg.float64, requires_grad=True)
    _, g = vjp(lambda a: (a**3).sum(), x, create_graph=True)  # 3 x^2
    g.sum().backward()
    _close(x.grad, 6 * x.detach().cpu().numpy())


def test_unused_input_gives_zeros_or_an_error_with_strict():
    x, y = mg.ones(2, dtype=mg.float64), mg.ones(3, dtype=mg.float64)
    jac = jacobian(lambda a, b: a * 2, (x, y))
    assert tuple(jac[1].shape) == (2, 3) and not jac[1].cpu().numpy().any()
    with pytest.raises(RuntimeError, match="vjp: the output of func is independent of input 1"):
        vjp(lambda a, b: a * 2, (x, y), mg.ones(2, dtype=mg.float64), strict=True)


def test_bad_arguments_are_named():
    x = mg.ones(2, dtype=mg.float64)
    with pytest.raises(RuntimeError, match=r"vjp: v can be None only when"):
        vjp(lambda a: a * 2, x)
    with pytest.raises(RuntimeError, match=r"jvp: v\[0\] has shape \(3,\), expected \(2,\)"):
        jvp(lambda a: a * 2, x, mg.ones(3, dtype=mg.float64))
    with pytest.raises(RuntimeError, match=r"hessian: func must return a single-element Tensor, got shape \(2,\)"):
        hessian(lambda a: a * 2, x)
    with pytest.raises(TypeError, match="jacobian: the outputs of func must be a Tensor or a tuple of Tensors"):
        jacobian(lambda a: 3.0, x)


def test_strategy_arguments_of_pytorch_are_accepted():
    x = mg.tensor([1.0, 2.0], dtype=mg.float64)
    expected = np.diag([3.0, 12.0])
    for strategy in ("reverse-mode", "forward-mode"):
        J = jacobian(lambda a: a**3, x, vectorize=True, strategy=strategy)
        np.testing.assert_allclose(J.cpu().numpy(), expected)
        H = hessian(lambda a: (a**3).sum() / 2, x, vectorize=True, outer_jacobian_strategy=strategy)
        np.testing.assert_allclose(H.cpu().numpy(), np.diag([3.0, 6.0]))
    with pytest.raises(NotImplementedError, match='jacobian: strategy="forward-mode" requires vectorize=True'):
        jacobian(lambda a: a**3, x, strategy="forward-mode")
    with pytest.raises(ValueError, match="hessian: outer_jacobian_strategy must be"):
        hessian(lambda a: a.sum(), x, outer_jacobian_strategy="reverse")


def _same(mine, theirs):
    """The same nesting of tuples, and the same values."""
    assert isinstance(mine, tuple) == isinstance(theirs, tuple)
    if isinstance(mine, tuple):
        assert len(mine) == len(theirs)
        for a, b in zip(mine, theirs):
            _same(a, b)
    else:
        np.testing.assert_allclose(mine.cpu().numpy(), theirs.detach().cpu().numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    "name, as_tuple", [(name, as_tuple) for name, (n, _) in sorted(FUNCTIONS.items()) for as_tuple in {n > 1, True}]
)
def test_matches_torch(name, as_tuple):
    torch = pytest.importorskip("torch")
    TF = torch.autograd.functional
    n_inputs, func = FUNCTIONS[name]
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((2, 3)) for _ in range(n_inputs)]
    v_out = [rng.standard_normal(o.shape) for o in _evaluate(func, arrays)]
    v_in = [rng.standard_normal((2, 3)) for _ in range(n_inputs)]

    def pack(lib, values):
        tensors = tuple(lib.tensor(a) for a in values)
        return tensors if as_tuple or len(tensors) > 1 else tensors[0]

    out_is_tuple = isinstance(func(*(mg.tensor(a) for a in arrays)), tuple)

    def pack_out(lib, values):
        tensors = tuple(lib.tensor(a) for a in values)
        return tensors if out_is_tuple else tensors[0]

    _same(jacobian(func, pack(mg, arrays)), TF.jacobian(func, pack(torch, arrays)))
    _same(vjp(func, pack(mg, arrays), pack_out(mg, v_out)), TF.vjp(func, pack(torch, arrays), pack_out(torch, v_out)))
    _same(jvp(func, pack(mg, arrays), pack(mg, v_in)), TF.jvp(func, pack(torch, arrays), pack(torch, v_in)))


@pytest.mark.parametrize("name", sorted(SCALAR_FUNCTIONS))
def test_second_order_matches_torch(name):
    torch = pytest.importorskip("torch")
    TF = torch.autograd.functional
    n_inputs, func = SCALAR_FUNCTIONS[name]
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal((3,)) for _ in range(n_inputs)]
    v = [rng.standard_normal((3,)) for _ in range(n_inputs)]

    def pack(lib, values):
        tensors = tuple(lib.tensor(a) for a in values)
        return tensors if len(tensors) > 1 else tensors[0]

    _same(hessian(func, pack(mg, arrays)), TF.hessian(func, pack(torch, arrays)))
    _same(hvp(func, pack(mg, arrays), pack(mg, v)), TF.hvp(func, pack(torch, arrays), pack(torch, v)))
    _same(vhp(func, pack(mg, arrays), pack(mg, v)), TF.vhp(func, pack(torch, arrays), pack(torch, v)))
