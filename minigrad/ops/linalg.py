"""Matrix products: matmul (with batch broadcasting) and einsum."""

from __future__ import annotations

import string

from minigrad.autograd import Function
from minigrad.backend import array_module
from minigrad.tensor import Tensor


class Matmul(Function):
    """``a @ b`` for ``a: (..., n, k)``, ``b: (..., k, m)``; batch dims broadcast."""

    array_backward = True  # its backward (@, reshape, mT) reads the same on arrays and Tensors

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
        return (_matmul(grad, b.mT) if need_a else None), grad_b


def _matmul(a, b):
    """``a @ b``, with a stack of matrices times one matrix done as one GEMM: NumPy would run one
    small GEMM per matrix of the stack (or no BLAS at all), many times slower."""
    if b.ndim == 2 and a.ndim > 2:
        return (a.reshape(-1, a.shape[-1]) @ b).reshape(*a.shape[:-1], b.shape[-1])
    return a @ b


class Einsum(Function):
    """Einstein summation with explicit subscripts (``inputs`` -> ``output``); a letter may
    repeat within an operand (its diagonal), never within the output."""

    def forward(self, *operands, inputs, output):
        self.inputs, self.output = inputs, output
        self.shapes = [op.shape for op in operands]
        self.save_for_backward(*operands)
        equation = ",".join(inputs) + "->" + output
        xp = array_module(operands[0])
        out = xp.einsum(equation, *operands, optimize=len(operands) > 2)
        # NumPy returns a view of a lone operand ("ij->ji", "ii->i"); a write to it would change
        # the operand behind autograd's back (no shared version counter), so it gets its own memory
        return out.copy() if len(operands) == 1 and xp.may_share_memory(out, operands[0]) else out

    def backward(self, grad):
        operands = self.saved_tensors
        return tuple(
            self._operand_grad(grad, operands, i) if need else None for i, need in enumerate(self.needs_input_grad)
        )

    def _operand_grad(self, grad, operands, i):
        """The output gradient contracted with the other operands, laid out as operand i.

        Letters of operand i that appear nowhere else were summed away: the gradient is constant
        along them (broadcast back). A letter repeated in operand i read its diagonal: the
        gradient lands on that diagonal, which is an einsum with identity matrices
        (``"ii->"``: grad_ab = g_a delta_ab)."""
        others = [k for k in range(len(operands)) if k != i]
        target, shape = self.inputs[i], self.shapes[i]
        sizes = dict(zip(target, shape))
        available = set(self.output).union(*(self.inputs[k] for k in others))
        letters = "".join(dict.fromkeys(target))  # each letter once, in order of appearance
        reached = "".join(c for c in letters if c in available)
        g = Einsum.apply(
            grad,
            *(operands[k] for k in others),
            inputs=(self.output, *(self.inputs[k] for k in others)),
            output=reached,
        )
        if reached != letters:
            kept = [sizes[c] if c in available else 1 for c in letters]
            g = g.reshape(kept).expand([sizes[c] for c in letters])
        if letters == target:
            return g
        spare = iter(c for c in string.ascii_letters if c not in target)
        layout, deltas = "", []  # operand i's subscripts with each repeat renamed, and c -> c' deltas
        for position, c in enumerate(target):
            if c in target[:position]:
                renamed = next(spare)
                layout += renamed
                deltas.append(c + renamed)
            else:
                layout += c
        eyes = [Tensor._make(array_module(g.data).eye(sizes[d[0]], dtype=g.dtype)) for d in deltas]
        return Einsum.apply(g, *eyes, inputs=(letters, *deltas), output=layout)


class Linear(Function):
    """``x @ weight.T + bias`` for ``x: (..., in)``, ``weight: (out, in)``, ``bias: (out,)``: one GEMM."""

    array_backward = True  # its backward (@, reshape, mT, sum) reads the same on arrays and Tensors

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
        grad_x = _matmul(grad, weight) if need_x else None
        grad_weight = grad_bias = None
        if need_weight:  # sum over every leading dim: flatten them into one
            grad_weight = grad.reshape(-1, grad.shape[-1]).mT @ x.reshape(-1, x.shape[-1])
        if need_bias:
            grad_bias = _column_sums(grad.reshape(-1, grad.shape[-1])) if grad.ndim > 1 else grad
        return grad_x, grad_weight, grad_bias


def _column_sums(rows):
    """rows: (M, n) -> (n,), the sum over rows. On arrays a GEMV, ones @ rows (3x faster than NumPy's
    column sum, which also adds row after row); recorded (Tensors) as a sum."""
    if isinstance(rows, Tensor):
        return rows.sum(0)
    return array_module(rows).ones(rows.shape[0], dtype=rows.dtype) @ rows


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


def einsum(*args) -> Tensor:
    """Einstein summation, with every form PyTorch's einsum takes:

    - ``einsum("ij,jk->ik", a, b)``, or the operands as one list: ``einsum("ij,jk", [a, b])``;
    - implicit output (no ``->``): the letters used once, in alphabetical order;
    - ``...`` for broadcast dims; a letter repeated within an operand takes its diagonal
      (``"ii->i"``, the trace ``"ii"``, ``"bii->bi"``);
    - the sublist form ``einsum(a, [0, 1], b, [1, 2], [0, 2])`` (``Ellipsis`` allowed).
    """
    if not args:
        raise TypeError("einsum: expected an equation and operands, got nothing")
    if isinstance(args[0], str):
        equation, operands = args[0], args[1:]
        if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
            operands = tuple(operands[0])
    else:
        equation, operands = _sublist_equation(args)
    equation = equation.replace(" ", "")
    lhs, arrow, rhs = equation.partition("->")
    inputs = lhs.split(",")
    if len(inputs) != len(operands):
        raise RuntimeError(f"einsum: the equation names {len(inputs)} operands but {len(operands)} were given")
    for op in operands:
        if not isinstance(op, Tensor):
            raise TypeError(f"einsum: operands must be Tensors, got {type(op).__name__}")
    for subs in inputs + ([rhs] if arrow else []):
        bad = set(subs.replace("...", "")) - set(string.ascii_letters)
        if bad or subs.replace("...", "").count(".") or subs.count("...") > 1:
            raise RuntimeError(f"einsum: invalid subscripts {subs!r} (letters a-z, A-Z and at most one '...')")
    for subs, op in zip(inputs, operands):
        named = len(subs.replace("...", ""))
        if (op.ndim != named) if "..." not in subs else (op.ndim < named):
            raise RuntimeError(
                f"einsum: subscripts {subs!r} name {named} dims{' (plus ...)' if '...' in subs else ''} "
                f"but the operand has shape {tuple(op.shape)}"
            )
    spare = [c for c in string.ascii_letters if c not in equation]
    inputs, operands, batch = _expand_ellipsis(inputs, list(operands), spare)
    _check_sizes(inputs, operands)
    if not arrow:  # implicit output: the batch letters, then letters used once, sorted
        counts = "".join(inputs)
        rhs = batch + "".join(sorted(c for c in set(counts) if counts.count(c) == 1 and c not in batch))
    rhs = rhs.replace("...", batch)
    if len(set(rhs)) != len(rhs):
        raise RuntimeError(f"einsum: output subscripts {rhs!r} repeat a letter")
    if set(rhs) - set("".join(inputs)):
        raise RuntimeError(f"einsum: output subscript {sorted(set(rhs) - set(''.join(inputs)))[0]!r} is in no operand")
    return Einsum.apply(*operands, inputs=tuple(inputs), output=rhs)


def _sublist_equation(args):
    """``(a, [0, 1], b, [1, 2], [0, 2])`` -> ``("ab,bc->ac", (a, b))``."""
    pairs = len(args) // 2
    operands, sublists = args[0 : 2 * pairs : 2], args[1 : 2 * pairs : 2]
    output = args[-1] if len(args) % 2 else None  # an odd count ends with the output sublist

    def letters(sublist):
        out = ""
        for item in sublist:
            if item is Ellipsis:
                out += "..."
            elif isinstance(item, int) and 0 <= item < 52:
                out += string.ascii_letters[item]
            else:
                raise ValueError(f"einsum: sublist entries must be ints in [0, 52) or Ellipsis, got {item!r}")
        return out

    equation = ",".join(letters(s) for s in sublists)
    if output is not None:
        equation += "->" + letters(output)
    return equation, operands


def _check_sizes(inputs, operands):
    """A letter repeated within an operand names dims of one size; across operands a size-1 dim
    broadcasts, as in PyTorch."""
    sizes = {}
    for subs, op in zip(inputs, operands):
        own = {}
        for c, size in zip(subs, op.shape):
            if own.setdefault(c, size) != size:
                raise RuntimeError(
                    f"einsum: subscript {c!r} is repeated in {subs!r} for dims of sizes {own[c]} and {size}"
                )
            if size != 1 and sizes.get(c, size) not in (1, size):
                raise RuntimeError(f"einsum: subscript {c!r} names dims of sizes {sizes[c]} and {size}")
            if sizes.get(c, 1) == 1:
                sizes[c] = size


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
