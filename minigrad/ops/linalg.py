"""Matrix products: matmul (with batch broadcasting) and einsum."""

from __future__ import annotations

import string

from minigrad.autograd import Function
from minigrad.backend import array_module
from minigrad.tensor import Tensor


class Matmul(Function):
    """``a @ b`` for ``a: (..., n, k)``, ``b: (..., k, m)``; batch dims broadcast."""

    def forward(self, a, b):
        if a.shape[-1] != b.shape[-2]:
            raise RuntimeError(
                f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} cannot be multiplied "
                f"({a.shape[-1]} != {b.shape[-2]})"
            )
        need_a, need_b = self.needs_input_grad
        self.save_for_backward(a if need_b else None, b if need_a else None)
        self.shared_b = b.ndim == 2 and a.ndim > 2  # one matrix b for a whole stack a
        return _matmul(a, b)

    def backward(self, grad):
        a, b = self.saved_tensors
        need_a, need_b = self.needs_input_grad
        grad_b = None
        if need_b:
            if self.shared_b:  # its gradient sums over the stack: one GEMM over all of it
                grad_b = a.reshape(-1, a.shape[-1]).mT @ grad.reshape(-1, grad.shape[-1])
            else:
                grad_b = a.mT @ grad
        return (grad @ b.mT if need_a else None), grad_b


def _matmul(a, b):
    """``a @ b``, with a stack of matrices times one matrix done as one GEMM: NumPy would run one
    small GEMM per matrix of the stack (or no BLAS at all), many times slower."""
    if b.ndim == 2 and a.ndim > 2:
        return (a.reshape(-1, a.shape[-1]) @ b).reshape(*a.shape[:-1], b.shape[-1])
    return a @ b


class Einsum(Function):
    """Einstein summation with explicit subscripts (``inputs`` -> ``output``)."""

    def forward(self, *operands, inputs, output):
        self.inputs, self.output = inputs, output
        self.shapes = [op.shape for op in operands]
        self.save_for_backward(*operands)
        equation = ",".join(inputs) + "->" + output
        return array_module(operands[0]).einsum(equation, *operands, optimize=len(operands) > 2)

    def backward(self, grad):
        operands = self.saved_tensors
        grads = []
        for i, need in enumerate(self.needs_input_grad):
            if not need:
                grads.append(None)
                continue
            others = [k for k in range(len(operands)) if k != i]
            target = self.inputs[i]
            # The gradient for operand i contracts the output gradient with the other operands.
            available = set(self.output).union(*(self.inputs[k] for k in others))
            reached = "".join(c for c in target if c in available)
            g = Einsum.apply(
                grad,
                *(operands[k] for k in others),
                inputs=(self.output, *(self.inputs[k] for k in others)),
                output=reached,
            )
            if reached != target:  # letters summed away in operand i alone: broadcast back
                kept = [s if c in available else 1 for c, s in zip(target, self.shapes[i])]
                g = g.reshape(kept).expand(self.shapes[i])
            grads.append(g)
        return tuple(grads)


class Linear(Function):
    """``x @ weight.T + bias`` for ``x: (..., in)``, ``weight: (out, in)``, ``bias: (out,)``: one GEMM."""

    def forward(self, x, weight, bias=None):
        if x.shape[-1:] != weight.shape[1:]:
            raise RuntimeError(
                f"linear: input has {x.shape[-1] if x.ndim else 'no'} features (shape {tuple(x.shape)}) "
                f"but the weight expects {weight.shape[1]} (weight shape {tuple(weight.shape)})"
            )
        need_x, need_weight, _ = self.needs_input_grad
        self.save_for_backward(x if need_weight else None, weight if need_x else None)
        out = _matmul(x, weight.T)
        if bias is not None:
            out += bias
        return out

    def backward(self, grad):
        x, weight = self.saved_tensors
        need_x, need_weight, need_bias = self.needs_input_grad
        grad_x = grad @ weight if need_x else None
        grad_weight = grad_bias = None
        if need_weight:  # sum over every leading dim: flatten them into one
            grad_weight = grad.reshape(-1, grad.shape[-1]).mT @ x.reshape(-1, x.shape[-1])
        if need_bias:
            grad_bias = grad.sum(tuple(range(grad.ndim - 1)))
        return grad_x, grad_weight, grad_bias


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``input @ weight.T + bias``: input ``(..., in_features)``, weight ``(out_features, in_features)``."""
    if weight.ndim != 2:
        raise RuntimeError(f"linear: weight must be 2-D (out_features, in_features), got shape {tuple(weight.shape)}")
    if bias is not None and tuple(bias.shape) != weight.shape[:1]:
        raise RuntimeError(f"linear: bias has shape {tuple(bias.shape)}, expected ({weight.shape[0]},)")
    return Linear.apply(input, weight, bias)


def matmul(input: Tensor, other: Tensor) -> Tensor:
    """Matrix product with PyTorch's rules for 1-D arguments and batch broadcasting."""
    if input.ndim == 0 or other.ndim == 0:
        raise RuntimeError(
            f"matmul: both arguments need at least 1 dim, got shapes {tuple(input.shape)} and {tuple(other.shape)}"
        )
    a = input.reshape(1, -1) if input.ndim == 1 else input
    b = other.reshape(-1, 1) if other.ndim == 1 else other
    out = Matmul.apply(a, b)
    if input.ndim == 1 or other.ndim == 1:
        shape = (
            out.shape[:-2] + (() if input.ndim == 1 else out.shape[-2:-1]) + (() if other.ndim == 1 else out.shape[-1:])
        )
        out = out.reshape(shape)
    return out


mm = bmm = matmul


def einsum(equation: str, *operands) -> Tensor:
    """``einsum("ij,jk->ik", a, b)``; ``...`` broadcasts; repeated letters within one operand are not supported."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    equation = equation.replace(" ", "")
    lhs, arrow, rhs = equation.partition("->")
    inputs = lhs.split(",")
    if len(inputs) != len(operands):
        raise RuntimeError(f"einsum: the equation names {len(inputs)} operands but {len(operands)} were given")
    for subs in inputs:
        letters = subs.replace("...", "")
        if len(set(letters)) != len(letters):
            raise NotImplementedError(f"einsum: repeated subscripts within one operand ({subs!r}) are not supported")
    spare = [c for c in string.ascii_letters if c not in equation]
    inputs, operands, batch = _expand_ellipsis(inputs, list(operands), spare)
    if not arrow:  # implicit output: the batch letters, then letters used once, sorted
        counts = "".join(inputs)
        rhs = batch + "".join(sorted(c for c in set(counts) if counts.count(c) == 1 and c not in batch))
    rhs = rhs.replace("...", batch)
    return Einsum.apply(*operands, inputs=tuple(inputs), output=rhs)


def _expand_ellipsis(inputs, operands, spare):
    """Name the dims under ``...`` with spare letters and broadcast them to one shape."""
    counts = [op.ndim - len(s.replace("...", "")) if "..." in s else 0 for s, op in zip(inputs, operands)]
    width = max(counts, default=0)
    batch = "".join(spare[:width])
    if not width:
        return inputs, operands, ""
    sizes = [1] * width
    for i, (count, op) in enumerate(zip(counts, operands)):
        start = inputs[i].index("...") if count else 0
        for j in range(count):
            size, slot = op.shape[start + j], width - count + j
            if sizes[slot] not in (1, size) and size != 1:
                raise RuntimeError(f"einsum: the dims under '...' do not broadcast ({sizes[slot]} vs {size})")
            sizes[slot] = max(sizes[slot], size)
    for i, (subs, count) in enumerate(zip(inputs, counts)):
        if "..." in subs:
            start = subs.index("...")
            shape = list(operands[i].shape)
            shape[start : start + count] = sizes[width - count :]
            operands[i] = operands[i].expand(shape)
            inputs[i] = subs.replace("...", batch[width - count :])
    return inputs, operands, batch
