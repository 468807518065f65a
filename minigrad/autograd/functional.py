"""Derivatives of whole functions: vjp, jvp, jacobian, hessian, hvp and vhp.

Each takes ``func`` (Tensors in, a Tensor or a tuple of Tensors out) and ``inputs`` (a Tensor or
a tuple of Tensors) and returns what ``torch.autograd.functional`` returns: a result shaped like
``inputs`` is a tuple exactly when ``inputs`` is one, a result shaped like the outputs is a tuple
exactly when ``func`` returns one. Results are detached unless ``create_graph=True``, which keeps
them differentiable (with respect to ``inputs`` that require grad). An input the outputs do not
depend on gets a zero gradient, or an error with ``strict=True``.

Everything is built on reverse mode (``grad``): a vjp is one backward pass, a Jacobian one
backward pass per output element, and a jvp two backward passes (see ``_jvp``).
"""

from __future__ import annotations

import minigrad as mg
from minigrad.autograd import enable_grad, grad
from minigrad.tensor import Tensor


def vjp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """``(func(inputs), v^T J)``: the vector-Jacobian product, shaped like ``inputs``.

    ``v`` is shaped like the outputs; it may be None when ``func`` returns one single-element Tensor.
    """
    with enable_grad():
        inputs_tuple, inputs = _as_tuple(inputs, "inputs", "vjp")
        inputs = _prepare(inputs, create_graph)
        outputs_tuple, outputs = _as_tuple(func(*inputs), "the outputs of func", "vjp")
        v = _vector(v, outputs, "vjp", "func returns a single Tensor with a single element")
        result = _grad(outputs, inputs, v, create_graph, strict, "vjp")
    return _finish(outputs, outputs_tuple, create_graph), _finish(result, inputs_tuple, create_graph)


def jvp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """``(func(inputs), J v)``: the Jacobian-vector product, shaped like the outputs.

    ``v`` is shaped like ``inputs``; it may be None when the input is one single-element Tensor.
    """
    with enable_grad():
        inputs_tuple, inputs = _as_tuple(inputs, "inputs", "jvp")
        inputs = _prepare(inputs, create_graph)
        v = _vector(v, inputs, "jvp", "the input is a single Tensor with a single element")
        outputs_tuple, outputs = _as_tuple(func(*inputs), "the outputs of func", "jvp")
        result = _jvp(outputs, inputs, v, create_graph, strict, "jvp")
    return _finish(outputs, outputs_tuple, create_graph), _finish(result, outputs_tuple, create_graph)


def jacobian(
    func, inputs, create_graph: bool = False, strict: bool = False, vectorize: bool = False,
    strategy: str = "reverse-mode",
):  # fmt: skip
    """d(output)/d(input), of shape ``output.shape + input.shape`` for each pair.

    A Tensor for one input and one output; a tuple over the inputs (or over the outputs) when
    only they are a tuple; a tuple over the outputs of tuples over the inputs when both are.
    One backward pass per output element. ``vectorize`` and ``strategy`` ("reverse-mode" or
    "forward-mode", which PyTorch allows only with ``vectorize``) are accepted for PyTorch's
    signature; the result is the same (minigrad has no vmap to batch the passes, and no forward mode).
    """
    _check_strategy(strategy, vectorize, "jacobian", "strategy")
    with enable_grad():
        inputs_tuple, inputs = _as_tuple(inputs, "inputs", "jacobian")
        inputs = _prepare(inputs, create_graph)
        outputs_tuple, outputs = _as_tuple(func(*inputs), "the outputs of func", "jacobian")
        blocks = []
        for out in outputs:
            n = out.numel()
            basis = mg.eye(n, dtype=out.dtype, device=out.device)
            rows = [_grad((out,), inputs, (basis[k].reshape(out.shape),), create_graph, strict, "jacobian")
                    for k in range(n)]  # fmt: skip
            blocks.append(tuple(
                mg.stack([row[j] for row in rows]).reshape(*out.shape, *x.shape) if n else
                mg.zeros(*out.shape, *x.shape, dtype=x.dtype, device=x.device)
                for j, x in enumerate(inputs)
            ))  # fmt: skip
    blocks = tuple(_finish(block, True, create_graph) for block in blocks)
    if not outputs_tuple:
        return blocks[0] if inputs_tuple else blocks[0][0]
    return blocks if inputs_tuple else tuple(block[0] for block in blocks)


def hessian(
    func, inputs, create_graph: bool = False, strict: bool = False, vectorize: bool = False,
    outer_jacobian_strategy: str = "reverse-mode",
):  # fmt: skip
    """The second derivatives of a function with one single-element output.

    A Tensor of shape ``input.shape + input.shape`` for one input; for a tuple of inputs, a tuple
    of tuples: ``[i][j]`` is d2f/(d input_i d input_j), of shape ``inputs[i].shape + inputs[j].shape``.
    ``outer_jacobian_strategy`` is ``jacobian``'s ``strategy`` for PyTorch's signature.
    """
    _check_strategy(outer_jacobian_strategy, vectorize, "hessian", "outer_jacobian_strategy")
    inputs_tuple, inputs = _as_tuple(inputs, "inputs", "hessian")

    def scalar(*x):
        return _scalar(func, "hessian")(*x).reshape(())

    def gradient(*x):
        return jacobian(scalar, x, create_graph=True, strict=strict)

    result = jacobian(gradient, inputs, create_graph=create_graph, strict=strict, vectorize=vectorize)
    return result if inputs_tuple else result[0][0]


def vhp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """``(func(inputs), v^T H)`` for a function with one single-element output; shaped like ``inputs``."""
    return _gradient_product(func, inputs, v, create_graph, strict, "vhp", _grad)


def hvp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """``(func(inputs), H v)`` for a function with one single-element output; shaped like ``inputs``.

    The jvp of the gradient, so it does not rely on H being symmetric (it is equal to ``vhp``
    for a function twice continuously differentiable).
    """
    return _gradient_product(func, inputs, v, create_graph, strict, "hvp", _jvp)


# ------------------------------------------------------------------------ helpers
def _gradient_product(func, inputs, v, create_graph, strict, name, product):
    """``(func(inputs), product(gradient, inputs, v))``: the vjp (``_grad``) or jvp (``_jvp``) of the gradient."""
    with enable_grad():
        inputs_tuple, inputs = _as_tuple(inputs, "inputs", name)
        inputs = _prepare(inputs, create_graph)
        v = _vector(v, inputs, name, "the input is a single Tensor with a single element")
        out = _scalar(func, name)(*inputs)
        gradient = _grad((out,), inputs, None, True, strict, name)
        result = product(gradient, inputs, v, create_graph, strict, name)
    return _finish((out,), False, create_graph), _finish(result, inputs_tuple, create_graph)


def _jvp(outputs, inputs, v, create_graph, strict, name):
    """J v with reverse mode only, by the double-vjp trick.

    minigrad has no forward mode; rather than a second derivative rule per op, use that every
    backward is itself differentiable. For a dummy ``u`` shaped like the outputs, g(u) = J^T u
    (one backward with create_graph) is linear in u, so the vjp of g with v, d<g(u), v>/du,
    is J v. It costs two backward passes, and the value of u does not matter (zeros).
    """
    u = tuple(mg.zeros_like(out).requires_grad_() for out in outputs)
    transposed = _grad(outputs, inputs, u, True, strict, name)
    return _grad(transposed, u, v, create_graph, False, name)


def _grad(outputs, inputs, grad_outputs, create_graph, strict, name):
    """The gradients of ``outputs`` (seeded with ``grad_outputs``, or ones) for every input,
    zeros where an input is unused (an error with ``strict``)."""
    seeds = grad_outputs if grad_outputs is not None else tuple(mg.ones_like(out) for out in outputs)
    pairs = [(out, seed) for out, seed in zip(outputs, seeds) if out.requires_grad]
    found = (None,) * len(inputs)
    if pairs:
        found = grad([out for out, _ in pairs], inputs, [seed for _, seed in pairs],
                     retain_graph=True, create_graph=create_graph, allow_unused=True)  # fmt: skip
    result = []
    for i, (g, x) in enumerate(zip(found, inputs)):
        if g is None:
            if strict:
                raise RuntimeError(f"{name}: the output of func is independent of input {i}, which strict=True forbids")
            g = mg.zeros_like(x)
        result.append(g)
    return tuple(result)


def _check_strategy(strategy, vectorize, name, argument):
    if strategy not in ("reverse-mode", "forward-mode"):
        raise ValueError(f'{name}: {argument} must be "reverse-mode" or "forward-mode", got {strategy!r}')
    if strategy == "forward-mode" and not vectorize:
        raise NotImplementedError(f'{name}: {argument}="forward-mode" requires vectorize=True, as in PyTorch')


def _as_tuple(value, what, name):
    """(whether ``value`` was a tuple, ``value`` as a tuple of Tensors)."""
    if isinstance(value, Tensor):
        return False, (value,)
    if isinstance(value, (tuple, list)) and all(isinstance(t, Tensor) for t in value):
        return True, tuple(value)
    raise TypeError(f"{name}: {what} must be a Tensor or a tuple of Tensors, got {type(value).__name__}")


def _prepare(inputs, create_graph):
    """The tensors to differentiate with respect to: the inputs themselves where the result must
    stay differentiable with respect to them, otherwise detached copies that require grad."""
    return tuple(x if create_graph and x.requires_grad else x.detach().requires_grad_() for x in inputs)


def _vector(v, like, name, when_none):
    """``v`` as a tuple shaped like ``like`` (ones when None is allowed)."""
    if v is None:
        if len(like) != 1 or like[0].numel() != 1:
            raise RuntimeError(f"{name}: v can be None only when {when_none}")
        return (mg.ones_like(like[0]),)
    _, v = _as_tuple(v, "v", name)
    if len(v) != len(like):
        raise RuntimeError(f"{name}: v has {len(v)} tensors, expected {len(like)}")
    for i, (a, b) in enumerate(zip(v, like)):
        if tuple(a.shape) != tuple(b.shape):
            raise RuntimeError(f"{name}: v[{i}] has shape {tuple(a.shape)}, expected {tuple(b.shape)}")
    return v


def _scalar(func, name):
    """``func``, checked to return one single-element Tensor."""

    def scalar(*inputs):
        out = func(*inputs)
        if not isinstance(out, Tensor) or out.numel() != 1:
            got = f"shape {tuple(out.shape)}" if isinstance(out, Tensor) else type(out).__name__
            raise RuntimeError(f"{name}: func must return a single-element Tensor, got {got}")
        return out

    return scalar


def _finish(tensors, as_tuple, create_graph):
    """Detach unless the graph is kept, and unwrap a lone Tensor."""
    tensors = tuple(t if create_graph else t.detach() for t in tensors)
    return tensors if as_tuple else tensors[0]
