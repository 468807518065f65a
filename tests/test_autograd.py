"""The engine: recording, the backward walk, grad modes, hooks, mg.grad, double backward,
version counters and in-place ops."""

from __future__ import annotations

import gc

import numpy as np
import pytest

import minigrad as mg


def leaf(values, dtype=mg.float64):
    return mg.tensor(values, dtype=dtype, requires_grad=True)


# ----------------------------------------------------------------- the backward walk
def test_backward_accumulates_into_leaves_across_calls():
    x = leaf([1.0, 2.0])
    (x * x).sum().backward()
    (3 * x).sum().backward()
    np.testing.assert_allclose(x.grad.cpu().numpy(), [2 * 1 + 3, 2 * 2 + 3])


def test_gradient_of_a_shared_subexpression_sums_every_path():
    x = leaf(3.0)
    y = x * x
    z = y * y + y  # x^4 + x^2
    z.backward()
    assert x.grad.item() == pytest.approx(4 * 27 + 2 * 3)


def test_a_chain_of_100000_ops_backpropagates_without_recursion():
    x = leaf(1.0)
    y = x
    for _ in range(100_000):
        y = y * 1.0
    y.backward()
    assert x.grad.item() == 1.0
    del y  # freeing the chain must not recurse either
    gc.collect()


def test_backward_frees_saved_arrays_and_a_second_backward_raises():
    x = leaf([1.0, 2.0])
    y = (x.exp() * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_retain_graph_allows_a_second_backward():
    x = leaf([1.0, 2.0])
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    first = x.grad.cpu().numpy().copy()
    y.backward()
    np.testing.assert_allclose(x.grad.cpu().numpy(), 2 * first)


def test_non_scalar_backward_needs_a_gradient():
    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match="only for a scalar output.*shape \\(2,\\)"):
        (x * 2).backward()
    (x * 2).backward(mg.tensor([1.0, 10.0], dtype=mg.float64))
    np.testing.assert_allclose(x.grad.cpu().numpy(), [2.0, 20.0])


def test_backward_gradient_of_the_wrong_shape_is_refused():
    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match="gradient 0 has shape \\(3,\\), expected \\(2,\\)"):
        (x * 2).backward(mg.ones(3, dtype=mg.float64))


def test_backward_of_a_tensor_without_grad_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        mg.tensor([1.0]).sum().backward()


def test_broadcasting_is_undone_in_the_gradient():
    a = leaf(np.ones((3, 1)))
    b = leaf(np.ones(4))
    (a * b).sum().backward()
    np.testing.assert_allclose(a.grad.cpu().numpy(), np.full((3, 1), 4.0))
    np.testing.assert_allclose(b.grad.cpu().numpy(), np.full(4, 3.0))


def test_mixed_float_dtypes_give_each_leaf_a_gradient_of_its_own_dtype():
    a = mg.tensor([1.0, 2.0], dtype=mg.float32, requires_grad=True)
    b = mg.tensor([3.0, 4.0], dtype=mg.float64, requires_grad=True)
    out = a * b
    assert out.dtype == mg.float64
    out.sum().backward()
    assert a.grad.dtype == mg.float32 and b.grad.dtype == mg.float64


def test_gradients_never_share_memory():
    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    (a + b).sum().backward()  # add hands the same gradient to both inputs
    assert not np.shares_memory(a.grad.cpu().numpy(), b.grad.cpu().numpy())
    seed = mg.tensor([1.0, 1.0], dtype=mg.float64)
    c = leaf([0.0, 0.0])
    c.backward(seed)  # a leaf's gradient is a copy of the seed, not the seed
    assert not np.shares_memory(c.grad.cpu().numpy(), seed.cpu().numpy())


# ---------------------------------------------------------------------- grad modes
def test_no_grad_records_nothing_and_restores_the_mode():
    x = leaf([1.0])
    with mg.no_grad():
        y = x * 2
        assert not mg.is_grad_enabled()
    assert mg.is_grad_enabled()
    assert y.grad_fn is None and not y.requires_grad


def test_no_grad_as_a_decorator_with_and_without_parentheses():
    x = leaf([1.0])

    @mg.no_grad()
    def double(t):
        return t * 2

    @mg.no_grad
    def triple(t):
        return t * 3

    assert not double(x).requires_grad and not triple(x).requires_grad
    assert mg.is_grad_enabled()


def test_enable_grad_inside_no_grad_and_set_grad_enabled():
    x = leaf([1.0])
    with mg.no_grad():
        with mg.enable_grad():
            assert (x * 2).requires_grad
        assert not (x * 2).requires_grad
    mg.set_grad_enabled(False)
    assert not (x * 2).requires_grad
    mg.set_grad_enabled(True)
    with mg.set_grad_enabled(False):
        assert not mg.is_grad_enabled()
    assert mg.is_grad_enabled()


def test_detach_cuts_the_graph_and_shares_memory():
    x = leaf([1.0, 2.0])
    d = (x * 2).detach()
    assert d.grad_fn is None and not d.requires_grad
    y = (x * d).sum()
    y.backward()
    np.testing.assert_allclose(x.grad.cpu().numpy(), d.cpu().numpy())
    base = mg.tensor([1.0, 2.0])
    view = base.detach()
    with mg.no_grad():
        view.add_(1.0)
    np.testing.assert_allclose(base.cpu().numpy(), [2.0, 3.0])


# --------------------------------------------------------------------------- hooks
def test_leaf_hook_sees_and_can_replace_the_gradient():
    x = leaf([1.0, 2.0])
    seen = []
    handle = x.register_hook(lambda g: seen.append(g.cpu().numpy().copy()) or g * 10)
    (x * 3).sum().backward()
    np.testing.assert_allclose(seen[0], [3.0, 3.0])
    np.testing.assert_allclose(x.grad.cpu().numpy(), [30.0, 30.0])
    handle.remove()
    x.grad = None
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad.cpu().numpy(), [3.0, 3.0])


def test_non_leaf_hook_and_retain_grad():
    x = leaf([1.0, 2.0])
    y = x * 2
    y.retain_grad()
    y.register_hook(lambda g: g * 0.5)
    (y * y).sum().backward()
    np.testing.assert_allclose(y.grad.cpu().numpy(), 2 * y.detach().cpu().numpy() * 0.5)
    np.testing.assert_allclose(x.grad.cpu().numpy(), 2 * 2 * y.detach().cpu().numpy() * 0.5)


def test_a_hook_that_returns_a_non_tensor_is_named():
    x = leaf([1.0, 2.0])
    y = x * 2
    y.register_hook(lambda g: g.cpu().numpy())
    with pytest.raises(TypeError, match="hook on Mul returned a ndarray, expected a Tensor"):
        (y * y).sum().backward()


class _HalfSquare(mg.Function):
    """x^2 / 2 of a 0-d input, whose array backward returns a plain number where the gradient is 0."""

    array_backward = True

    def forward(self, x):
        self.save_for_backward(x)
        return x * x / 2

    def backward(self, grad):
        (x,) = self.saved_tensors
        return 0.0 if float(x) == 0 else grad * x


def test_an_array_backward_may_return_a_number():
    """Without create_graph, gradients travel as raw arrays: a number from an op's backward still
    reaches the leaf as a 0-d array of the leaf's dtype and device; with create_graph as a Tensor."""
    for value, expected in ((3.0, 3.0), (0.0, 0.0)):
        x = leaf(value)
        _HalfSquare.apply(x).backward()
        assert x.grad.shape == () and x.grad.dtype == x.dtype and x.grad.device == x.device
        assert float(x.grad) == expected
    x = leaf(3.0)
    (g,) = mg.grad(_HalfSquare.apply(x) * 2, [x], create_graph=True)
    assert float(g) == 6.0
    with mg.autograd.detect_anomaly():  # which checks the number too
        x = leaf(0.0)
        _HalfSquare.apply(x).backward()
    assert float(x.grad) == 0.0


# ----------------------------------------------------------------- mg.grad, double backward
def test_grad_returns_gradients_without_touching_dot_grad():
    x, w = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    (gx,) = mg.grad((x * w).sum(), x)
    np.testing.assert_allclose(gx.cpu().numpy(), [3.0, 4.0])
    assert x.grad is None and w.grad is None


def test_grad_with_respect_to_a_non_leaf():
    x = leaf([1.0, 2.0])
    h = x * 3
    (gh,) = mg.grad((h * h).sum(), h)
    np.testing.assert_allclose(gh.cpu().numpy(), 2 * h.detach().cpu().numpy())


def test_grad_of_an_unused_input():
    x, unused = leaf([1.0]), leaf([2.0])
    with pytest.raises(RuntimeError, match="input 1 was not used"):
        mg.grad((x * 2).sum(), [x, unused], retain_graph=True)
    gx, gu = mg.grad((x * 2).sum(), [x, unused], allow_unused=True)
    assert gu is None and gx.item() == 2.0


def test_double_backward_of_a_cubic():
    x = leaf(2.0)
    (dy,) = mg.grad(x**3, x, create_graph=True)  # 3x^2
    (d2y,) = mg.grad(dy, x, create_graph=True)  # 6x
    d2y.backward()  # d3y = 6
    assert dy.item() == 12.0 and d2y.item() == 12.0 and x.grad.item() == 6.0


def test_create_graph_backward_makes_dot_grad_differentiable():
    x = leaf([1.0, 2.0])
    (x.sin() * x).sum().backward(create_graph=True)
    assert x.grad.requires_grad
    gx = x.grad
    x.grad = None
    gx.sum().backward()  # d/dx (sin x + x cos x) = 2 cos x - x sin x
    xs = np.array([1.0, 2.0])
    np.testing.assert_allclose(x.grad.cpu().numpy(), 2 * np.cos(xs) - xs * np.sin(xs))


def test_gradient_penalty_through_a_two_layer_net():
    """An R1-style penalty: the gradient norm of a net's output w.r.t. its input, trained."""
    mg.manual_seed(0)
    w1 = mg.randn(4, 3, dtype=mg.float64, requires_grad=True)
    w2 = mg.randn(1, 4, dtype=mg.float64, requires_grad=True)
    x = mg.randn(5, 3, dtype=mg.float64, requires_grad=True)

    def penalty(w1, w2):
        out = ((x @ w1.mT).tanh() @ w2.mT).sum()
        (gx,) = mg.grad(out, x, create_graph=True)
        return (gx * gx).sum()

    assert mg.gradcheck(penalty, (w1, w2))


# --------------------------------------------------------------- version counters
def test_changing_a_saved_tensor_in_place_raises_at_backward_naming_the_op():
    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    h = a * 1.0
    y = (h * b).sum()  # Mul saves h
    with mg.no_grad():
        h.add_(1.0)
    with pytest.raises(RuntimeError, match="Mul: a tensor of shape \\(2,\\) that backward needs was modified in place"):
        y.backward()


def test_in_place_through_a_view_is_seen_by_the_base():
    a = leaf([[1.0, 2.0], [3.0, 4.0]])
    h = a * 1.0
    y = (h.exp()).sum()  # Exp saves its output, not h: h may change
    z = h.sin().sum()  # Sin saves h
    with mg.no_grad():
        h[0].add_(1.0)  # through a view of h
    y.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="modified in place"):
        z.backward()


def test_in_place_op_on_a_non_leaf_is_recorded():
    x = leaf([1.0, 2.0])
    h = x * 2
    h.add_(x)  # h = 2x + x
    h.mul_(3.0)
    h.sum().backward()
    np.testing.assert_allclose(x.grad.cpu().numpy(), [9.0, 9.0])
    assert h._version_value() == 2


def test_in_place_op_on_a_leaf_that_requires_grad_raises():
    x = leaf([1.0])
    with pytest.raises(RuntimeError, match="add_: a leaf tensor that requires grad"):
        x.add_(1.0)
    with mg.no_grad():
        x.add_(1.0)  # an optimizer step does this
    assert x.item() == 2.0 and x._version_value() == 1


def test_setitem_with_autograd():
    x = leaf([1.0, 2.0, 3.0])
    v = leaf(10.0)
    h = x * 1.0
    h[1] = v * 2
    h.sum().backward()
    np.testing.assert_allclose(x.grad.cpu().numpy(), [1.0, 0.0, 1.0])
    assert v.grad.item() == 2.0


def test_in_place_on_a_view_of_a_recorded_tensor_is_refused():
    x = leaf([1.0, 2.0])
    h = x * 1.0
    with pytest.raises(RuntimeError, match="in-place changes to a view"):
        h[0].mul_(2.0)


def test_in_place_into_an_expanded_tensor_is_refused():
    e = mg.tensor([1.0]).expand(3)
    with pytest.raises(RuntimeError, match="read-only"):
        e.add_(1.0)


# ------------------------------------------------------------------ dtypes and ints
def test_dtype_rules_follow_pytorch():
    assert mg.tensor(1.5).dtype == mg.float32
    assert mg.tensor([1, 2]).dtype == mg.int64
    assert mg.tensor(np.zeros(2, np.float64)).dtype == mg.float64
    assert mg.tensor(np.zeros(2, np.int32)).dtype == mg.int32
    assert (mg.tensor([1, 2]) * 2.5).dtype == mg.float32
    assert (mg.tensor([1, 2]) / mg.tensor([2, 2])).dtype == mg.float32
    assert mg.tensor([1, 2]).exp().dtype == mg.float32
    assert mg.tensor([1, 2]).sum().dtype == mg.int64
    assert mg.arange(3).dtype == mg.int64 and mg.arange(0.0, 1.0, 0.5).dtype == mg.float32
    assert (mg.tensor([1.0], dtype=mg.float32) * np.float64(2.0)).dtype == mg.float32
    mg.set_default_dtype(mg.float64)
    assert mg.tensor(1.5).dtype == mg.float64 and mg.zeros(2).dtype == mg.float64


def test_integer_tensors_never_require_grad():
    with pytest.raises(RuntimeError, match="only floating-point tensors can require gradients"):
        mg.tensor([1, 2], requires_grad=True)
    with pytest.raises(RuntimeError, match="int64"):
        mg.tensor([1, 2]).requires_grad_()
    with pytest.raises(RuntimeError):
        mg.tensor([1, 2]).requires_grad = True
    x = leaf([1.5, 2.5])
    assert not x.argmax().requires_grad
    assert not x.to(mg.int64).requires_grad
    assert not (x > 2).requires_grad
    assert x.max(0).values.requires_grad and not x.max(0).indices.requires_grad


def test_tensor_conversions():
    x = mg.tensor([[1.0, 2.0]])
    assert x.item if x.numel() > 1 else True
    assert x.tolist() == [[1.0, 2.0]] and x.sum().item() == 3.0 and float(x.sum()) == 3.0
    with pytest.raises(RuntimeError, match="item\\(\\): the tensor has 2 elements"):
        x.item()
    with pytest.raises(RuntimeError, match="detach"):
        leaf([1.0]).cpu().numpy()
    assert x.to(mg.float64).dtype == mg.float64 and x.double().dtype == mg.float64
    assert x.to(x.device) is x
    assert len(x) == 1 and [t.shape for t in x] == [(2,)]
    device = "" if x.device == "cpu" else f", device='{x.device}'"
    assert repr(leaf([1.0])) == f"tensor([1.], dtype=float64{device}, requires_grad=True)"


# --------------------------------------------------------------------- subgradients
@pytest.mark.parametrize(
    "fn, expected",
    [
        (lambda x: x.relu(), [0.0, 1.0, 1.0]),
        (lambda x: x.abs(), [0.0, 1.0, 1.0]),
        (lambda x: x.clamp(0.0, 2.0), [1.0, 1.0, 1.0]),  # bounds included
        (lambda x: x.clamp(min=1.0), [0.0, 1.0, 1.0]),
        (lambda x: x.sign(), [0.0, 0.0, 0.0]),
    ],
)
def test_subgradient_conventions_at_kinks(fn, expected):
    x = leaf([0.0, 1.0, 2.0])
    fn(x).sum().backward()
    np.testing.assert_array_equal(x.grad.cpu().numpy(), expected)


def test_ties_share_or_pick_as_pytorch_does():
    a, b = leaf([0.0, 1.0, 2.0]), leaf([0.0, 0.0, 3.0])
    mg.maximum(a, b).sum().backward()
    np.testing.assert_array_equal(a.grad.cpu().numpy(), [0.5, 1.0, 0.0])
    np.testing.assert_array_equal(b.grad.cpu().numpy(), [0.5, 0.0, 1.0])
    z = leaf([1.0, 3.0, 3.0])
    z.max().backward()  # a full max shares the gradient among ties
    np.testing.assert_array_equal(z.grad.cpu().numpy(), [0.0, 0.5, 0.5])
    z.grad = None
    z.amax(0).backward()
    np.testing.assert_array_equal(z.grad.cpu().numpy(), [0.0, 0.5, 0.5])
    z.grad = None
    values, index = z.max(0)  # max(dim) gives it to the returned (first) index
    values.backward()
    assert index.item() == 1
    np.testing.assert_array_equal(z.grad.cpu().numpy(), [0.0, 1.0, 0.0])


def test_pow_conventions_at_zero():
    x = leaf([0.0, 2.0])
    (x**0).sum().backward()
    np.testing.assert_array_equal(x.grad.cpu().numpy(), [0.0, 0.0])
    a, b = leaf([0.0, 2.0]), leaf([2.0, 0.0])
    (a**b).sum().backward()
    np.testing.assert_array_equal(a.grad.cpu().numpy(), [0.0, 0.0])
    np.testing.assert_allclose(b.grad.cpu().numpy(), [0.0, np.log(2.0)])


def test_prod_gradient_with_zeros_is_exact():
    x = leaf([0.0, 2.0, 1.0, 3.0])
    x.prod().backward()
    np.testing.assert_array_equal(x.grad.cpu().numpy(), [6.0, 0.0, 0.0, 0.0])
    y = leaf([0.0, 2.0, 0.0, 3.0])
    y.prod().backward()
    np.testing.assert_array_equal(y.grad.cpu().numpy(), [0.0, 0.0, 0.0, 0.0])


def test_advanced_indexing_with_repeats_accumulates():
    x = leaf([1.0, 2.0, 3.0])
    x[mg.tensor([0, 0, 2, 0])].sum().backward()
    np.testing.assert_array_equal(x.grad.cpu().numpy(), [3.0, 0.0, 1.0])


# -------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: mg.ones(2, 3) + mg.ones(4), r"Add: .*\(2,3\).*\(4,\).*inputs: Tensor\(2, 3\) float32, Tensor\(4,\)"),
        (lambda: mg.ones(2, 3) @ mg.ones(4, 5), r"matmul: shapes \(2, 3\) and \(4, 5\) cannot be multiplied"),
        (lambda: mg.ones(2, 3).reshape(4, 2), r"Reshape: .*size 6 into shape \(4,2\)"),
        (lambda: mg.ones(2, 3).sum(2), r"sum: dim 2 is out of range for a tensor of 2 dims"),
        (lambda: mg.cat([mg.ones(2, 3), mg.ones(2, 4)]), r"cat: tensor 1 has shape \(2, 4\) but tensor 0 has \(2, 3\)"),
        (lambda: mg.ones(2, 3).expand(4, 3), r"expand: cannot expand shape \(2, 3\) to \(4, 3\)"),
        (lambda: mg.ones(3)[mg.tensor([5])], r"Index: index 5 is out of bounds"),
        (lambda: mg.ones(3)[mg.tensor([0.5])], r"indices must be integer or bool, got float32"),
        (lambda: mg.ones(2, 3).mT.view(6), r"view: shape \(3, 2\) cannot be viewed as \(6,\)"),
        (lambda: mg.tensor([1, 2]).mean(), r"mean: expected a floating-point tensor, got int64"),
        (lambda: mg.ones(3).gather(0, mg.tensor([[0]])), r"gather: index has 2 dims but the input has 1"),
    ],
)
def test_bad_input_gives_a_clear_error(make, message):
    with pytest.raises((RuntimeError, IndexError, TypeError), match=message):
        make()


def test_cuda_without_cupy_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(mg.backend, "cupy", None)
    with pytest.raises(RuntimeError, match="pip install 'minigrad\\[gpu\\]'"):
        mg.zeros(2, device="cuda")
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        mg.zeros(2, device="tpu")
    assert not mg.cuda.is_available()


# ---------------------------------------------------------------------- memory
def _live_tensors():
    return sum(isinstance(o, mg.Tensor) for o in gc.get_objects())


def test_a_training_step_leaves_no_tensors_alive():
    """After warm-up, a step of a small MLP leaves exactly the parameters and their grads."""
    mg.manual_seed(0)
    params = [mg.randn(8, 4, requires_grad=True), mg.zeros(8, requires_grad=True), mg.randn(3, 8, requires_grad=True)]
    x, target = mg.randn(16, 4), mg.randn(16, 3)

    def step():
        hidden = (x @ params[0].mT + params[1]).relu()
        loss = ((hidden @ params[2].mT - target) ** 2).mean()
        loss.backward()
        with mg.no_grad():
            for p in params:
                p.sub_(0.1 * p.grad)

    step()
    gc.collect()
    gc.disable()
    try:
        before = _live_tensors()
        for _ in range(3):
            step()
        after = _live_tensors()
    finally:
        gc.enable()
    assert after == before, f"{after - before} tensors left alive by 3 steps"


def test_clamp_with_tensor_bounds_routes_the_gradient_as_pytorch_does():
    # ties with a bound give the whole gradient to the input; where min > max, max wins
    x, low, high = leaf([0.0, 1.0, 2.0, 3.0, 0.5]), leaf([1.0] * 5), leaf([2.0, 2.0, 2.0, 0.0, 0.0])
    out = x.clamp(low, high)
    out.backward(mg.tensor([1.0, 2.0, 3.0, 4.0, 5.0], dtype=mg.float64))
    np.testing.assert_array_equal(out.detach().cpu().numpy(), [1.0, 1.0, 2.0, 0.0, 0.0])
    np.testing.assert_array_equal(x.grad.cpu().numpy(), [0.0, 2.0, 3.0, 0.0, 0.0])
    np.testing.assert_array_equal(low.grad.cpu().numpy(), [1.0, 0.0, 0.0, 0.0, 0.0])
    np.testing.assert_array_equal(high.grad.cpu().numpy(), [0.0, 0.0, 0.0, 4.0, 5.0])
