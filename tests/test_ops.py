"""Property tests derived from the op database (tests/op_db): for every op, over drawn
shapes, dtypes and arguments:

- the forward matches its NumPy reference;
- backward matches central finite differences in float64 (gradcheck);
- the backward of backward does too (gradgradcheck);
- backward leaves its inputs and incoming gradient unchanged, gives every leaf a gradient
  that shares memory with no other, and frees the graph.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
from tests.op_db import OPS, OpInfo, Sample

_cuda = pytest.mark.cuda


def _params(predicate=lambda info: True):
    return [
        pytest.param(info, id=info.name, marks=[_cuda] if info.requires_cuda else []) for info in OPS if predicate(info)
    ]


class _Slot:
    def __init__(self, index):
        self.index = index


def differentiable_call(info: OpInfo, sample: Sample):
    """The sample's tensors that require grad (also inside lists), and a function of them."""
    tensors = []

    def mark(arg):
        if isinstance(arg, mg.Tensor) and arg.requires_grad:
            tensors.append(arg)
            return _Slot(len(tensors) - 1)
        if isinstance(arg, list):
            return [mark(a) for a in arg]
        return arg

    template = [mark(a) for a in sample.args]

    def call(*values):
        def fill(arg):
            if isinstance(arg, _Slot):
                return values[arg.index]
            if isinstance(arg, list):
                return [fill(a) for a in arg]
            return arg

        return info.op(*[fill(a) for a in template], **sample.kwargs)

    call.__name__ = info.name
    return tensors, call


def _to_numpy(arg):
    if isinstance(arg, mg.Tensor):
        return arg.detach().cpu().numpy()
    if isinstance(arg, list):
        return [_to_numpy(a) for a in arg]
    return arg


def _outputs(result):
    return list(result) if isinstance(result, (tuple, list)) else [result]


def _forward_and_reference(info: OpInfo, sample: Sample) -> tuple:
    """The op's outputs on the sample, and its reference's on the same values as arrays."""
    result = _outputs(info.op(*sample.args, **sample.kwargs))
    expected = info.ref(*[_to_numpy(a) for a in sample.args], **{k: _to_numpy(v) for k, v in sample.kwargs.items()})
    return result, list(expected) if isinstance(expected, (tuple, list)) else [expected]


@pytest.mark.parametrize("info", _params(lambda info: info.ref is not None))
@given(data=st.data())
def test_forward_matches_numpy(info, data):
    result, expected = _forward_and_reference(info, data.draw(info.samples, label="sample"))
    assert len(result) == len(expected)
    for got, want in zip(result, expected):
        want = np.asarray(want)
        assert tuple(got.shape) == want.shape, f"{info.name}: shape {tuple(got.shape)} != {want.shape}"
        np.testing.assert_allclose(got.detach().cpu().numpy(), want, rtol=info.ref_rtol, atol=info.ref_atol)


@pytest.mark.parametrize("info", _params(lambda info: info.grad))
@given(data=st.data())
def test_gradcheck(info, data):
    sample = data.draw(info.samples, label="sample")
    tensors, call = differentiable_call(info, sample)
    if tensors:
        assert mg.gradcheck(call, tensors, eps=info.eps, atol=info.atol, rtol=info.rtol, fast_mode=info.fast)


@pytest.mark.parametrize("info", _params(lambda info: info.grad and info.gradgrad))
@given(data=st.data())
def test_gradgradcheck(info, data):
    sample = data.draw(info.samples, label="sample")
    tensors, call = differentiable_call(info, sample)
    if tensors:
        assert mg.gradgradcheck(call, tensors, eps=info.eps, atol=info.atol, rtol=info.rtol, fast_mode=info.fast)


def _graph_nodes(outputs):
    """Every node reachable from the outputs (collected before backward frees them)."""
    seen, stack = [], [o.grad_fn for o in outputs if o.grad_fn is not None]
    while stack:
        node = stack.pop()
        if any(node is s for s in seen):
            continue
        seen.append(node)
        stack.extend(e[0] for e in node.next_edges if e is not None and isinstance(e[0], mg.Function))
    return seen


@pytest.mark.parametrize("info", _params(lambda info: info.grad))
@given(data=st.data())
def test_backward_invariants(info, data):
    sample = data.draw(info.samples, label="sample")
    tensors, call = differentiable_call(info, sample)
    outputs = [o for o in _outputs(call(*tensors)) if isinstance(o, mg.Tensor) and o.requires_grad]
    if not outputs:
        return
    inputs_before = [t.data.copy() for t in tensors]
    seeds = [mg.randn_like(o) for o in outputs]
    seeds_before = [s.data.copy() for s in seeds]
    nodes = _graph_nodes(outputs)

    mg.autograd.backward(outputs, seeds)

    for t, before in zip(tensors, inputs_before):
        np.testing.assert_array_equal(mg.backend.to_numpy(t.data), mg.backend.to_numpy(before), "an input changed")
    for s, before in zip(seeds, seeds_before):
        np.testing.assert_array_equal(mg.backend.to_numpy(s.data), mg.backend.to_numpy(before), "a seed changed")
    grads = [t.grad.data for t in tensors if t.grad is not None]
    for t in tensors:
        if t.grad is not None:
            assert t.grad.dtype == t.dtype and t.grad.shape == t.shape
    xp = mg.backend.array_module(grads[0]) if grads else np
    for i, g in enumerate(grads):
        for other in grads[i + 1 :] + [t.data for t in tensors] + [s.data for s in seeds]:
            if mg.backend.device_of(other) != mg.backend.device_of(g):
                continue  # arrays on two devices share no memory (to_device's seed is on the other one)
            assert not (g.size and xp.shares_memory(g, other)), f"{info.name}: a gradient shares memory"
    for node in nodes:
        kept = sorted(k for k in vars(node) if k != "_freed")
        assert not kept, f"{info.name}: {node.name} kept {kept} after backward"
    if nodes:  # a graph was recorded: it is spent
        with pytest.raises(RuntimeError, match="second time"):
            mg.autograd.backward(outputs, seeds)


@pytest.mark.parametrize("info", _params(lambda info: info.exact))
@given(data=st.data())
def test_forward_exact_in_float64(info, data):
    """Where the reference is float64-exact, so is the op: rtol 1e-12, not ref_rtol."""
    result, expected = _forward_and_reference(info, data.draw(info.samples, label="sample"))
    for got, want in zip(result, expected):
        assert got.dtype == mg.float64
        np.testing.assert_allclose(got.detach().cpu().numpy(), want, rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("info", _params(lambda info: info.singular is not None))
@given(data=st.data())
def test_removable_singularity_gives_finite_gradient(info, data):
    """At a removable 0/0 of the derivative (std of equal values, 0**0, a norm of zeros) the
    gradient is its finite limit, as in PyTorch, never nan or inf."""
    sample = data.draw(info.singular, label="sample")
    tensors, call = differentiable_call(info, sample)
    outputs = [o for o in _outputs(call(*tensors)) if isinstance(o, mg.Tensor) and o.requires_grad]
    grads = mg.grad(outputs, tensors, [mg.randn_like(o) for o in outputs], allow_unused=True)
    for g in grads:
        assert g is None or np.isfinite(mg.backend.to_numpy(g.data)).all(), f"{info.name}: gradient {g}"
