"""Finite-difference gradient checks: backward against central differences, in float64.

``gradcheck`` compares the Jacobian that backward computes (one row per output element)
with the one that central differences measure (one column per input element):

    J[:, j] ~ (f(x + eps * e_j) - f(x - eps * e_j)) / (2 * eps)

``fast_mode=True`` compares one random projection ``u @ J @ v`` instead: two evaluations
of ``f`` per input and one backward, for ops too big for a full Jacobian.
``gradgradcheck`` runs gradcheck on the backward pass itself (double backward).
"""

from __future__ import annotations

from minigrad import autograd, backend
from minigrad.tensor import Tensor


class GradcheckError(AssertionError):
    """Backward and finite differences disagree; the message says where and by how much."""


def _outputs(result) -> list:
    result = result if isinstance(result, (tuple, list)) else (result,)
    return [t for t in result if isinstance(t, Tensor) and t.dtype.kind == "f"]


def _flat(outputs) -> backend.numpy.ndarray:
    np = backend.numpy
    parts = [backend.to_numpy(t.data).astype(np.float64).ravel() for t in outputs]
    return np.concatenate(parts) if parts else np.zeros(0)


def _differentiable(inputs, caller) -> list:
    chosen = []
    for i, x in enumerate(inputs):
        if isinstance(x, Tensor) and x.requires_grad:
            if x.dtype != backend.float64:
                raise ValueError(f"{caller}: input {i} is {x.dtype}; finite differences need float64 inputs")
            chosen.append(i)
    if not chosen:
        raise ValueError(f"{caller}: no input requires grad")
    return chosen


def _evaluate(fn, inputs):
    # Grad mode stays as it is: fn may use autograd itself (a gradient penalty does).
    return _flat(_outputs(fn(*inputs)))


def _numerical_column(fn, inputs, x, flat_index, eps):
    """d f / d x[flat_index] by central differences (x is changed and restored in place)."""
    data = x.data.reshape(-1) if x.data.flags.c_contiguous else None
    if data is None:  # perturb a contiguous copy, restored afterwards
        x.data = x.data.copy()
        data = x.data.reshape(-1)
    original = data[flat_index].item()
    data[flat_index] = original + eps
    plus = _evaluate(fn, inputs)
    data[flat_index] = original - eps
    minus = _evaluate(fn, inputs)
    data[flat_index] = original
    return (plus - minus) / (2 * eps)


def _analytical_rows(outputs, diff_tensors, sizes):
    """The Jacobian of every output element with respect to each differentiable input."""
    np = backend.numpy
    jacobians = [np.zeros((sum(o.data.size for o in outputs), n)) for n in sizes]
    row = 0
    for out in outputs:
        for k in range(out.data.size):
            if out.requires_grad:
                seed = backend.module_for(out.device).zeros(out.shape, dtype=out.dtype)
                seed.reshape(-1)[k] = 1
                grads = autograd.grad(out, diff_tensors, Tensor._make(seed), retain_graph=True, allow_unused=True)
                for jac, g in zip(jacobians, grads):
                    if g is not None:
                        jac[row] = backend.to_numpy(g.data).astype(np.float64).ravel()
            row += 1
    return jacobians


def _name(fn, name):
    return name or getattr(fn, "__name__", None) or repr(fn)


def _compare(label, analytical, numerical, atol, rtol, input_index, shape):
    np = backend.numpy
    tolerance = atol + rtol * np.abs(numerical)
    ok = (np.abs(analytical - numerical) <= tolerance) | (analytical == numerical)
    if ok.all():
        return
    excess = np.where(ok, -np.inf, np.nan_to_num(np.abs(analytical - numerical) - tolerance, nan=np.inf))
    worst = np.unravel_index(np.argmax(excess), excess.shape)
    where = f"input {input_index}"
    if shape is not None:
        where += f", element {tuple(int(i) for i in np.unravel_index(worst[-1], shape))}, output element {worst[0]}"
    raise GradcheckError(
        f"gradcheck failed for {label}: at {where} backward gives {analytical[worst]:.8g} "
        f"but finite differences give {numerical[worst]:.8g} (atol={atol}, rtol={rtol})"
    )


def gradcheck(
    fn,
    inputs,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    fast_mode: bool = False,
    name: str | None = None,
    seed: int = 0,
) -> bool:
    """Check ``fn``'s backward against central differences; raise ``GradcheckError`` if they differ.

    ``inputs``: a tuple of Tensors (float64 where they require grad) and other arguments.
    """
    np = backend.numpy
    inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    label = _name(fn, name)
    chosen = _differentiable(inputs, "gradcheck")
    outputs = _outputs(fn(*inputs))
    diff_tensors = [inputs[i] for i in chosen]
    if fast_mode:  # compare u @ J @ v for random u (outputs) and v (each input)
        rng = np.random.default_rng(seed)
        us = [rng.standard_normal(o.shape) for o in outputs]
        live = [
            (o, Tensor._make(backend.as_array(u, o.dtype, o.device))) for o, u in zip(outputs, us) if o.requires_grad
        ]
        grads = [None] * len(diff_tensors)
        if live:
            grads = autograd.grad(
                [o for o, _ in live], diff_tensors, [u for _, u in live], retain_graph=True, allow_unused=True
            )
        u_flat = np.concatenate([u.ravel() for u in us]) if us else np.zeros(0)
        for i, x, g in zip(chosen, diff_tensors, grads):
            v = rng.standard_normal(x.shape)
            analytical = 0.0 if g is None else float((backend.to_numpy(g.data) * v).sum())
            original = x.data
            x.data = original + eps * backend.as_array(v, x.dtype, x.device)
            plus = _evaluate(fn, inputs)
            x.data = original - eps * backend.as_array(v, x.dtype, x.device)
            minus = _evaluate(fn, inputs)
            x.data = original
            numerical = float(u_flat @ ((plus - minus) / (2 * eps)))
            _compare(label, np.array([analytical]), np.array([numerical]), atol, rtol, i, None)
        return True

    sizes = [x.data.size for x in diff_tensors]
    analytical = _analytical_rows(outputs, diff_tensors, sizes)
    for i, x, jac in zip(chosen, diff_tensors, analytical):
        numerical = np.zeros_like(jac)
        for j in range(x.data.size):
            numerical[:, j] = _numerical_column(fn, inputs, x, j, eps)
        _compare(label, jac, numerical, atol, rtol, i, x.shape)
    return True


def gradgradcheck(
    fn,
    inputs,
    grad_outputs=None,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    fast_mode: bool = False,
    name: str | None = None,
    seed: int = 0,
) -> bool:
    """Check the backward of ``fn``'s backward (double backward) against central differences."""
    np = backend.numpy
    inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    chosen = _differentiable(inputs, "gradgradcheck")
    outputs = _outputs(fn(*inputs))
    if grad_outputs is None:
        rng = np.random.default_rng(seed)
        grad_outputs = [
            Tensor(rng.standard_normal(o.shape), dtype=o.dtype, device=o.device, requires_grad=True) for o in outputs
        ]
    grad_outputs = tuple(grad_outputs)
    n = len(inputs)

    def first_derivative(*args):
        xs, seeds = args[:n], args[n:]
        with autograd.enable_grad():  # finite differences call this under no_grad
            outs = _outputs(fn(*xs))
        pairs = [(o, s) for o, s in zip(outs, seeds) if o.requires_grad]
        wrt = [xs[i] for i in chosen]
        if not pairs:
            return tuple(Tensor._make(w.data * 0) for w in wrt)
        with autograd.enable_grad():
            grads = autograd.grad(
                [o for o, _ in pairs], wrt, [s for _, s in pairs], create_graph=True, allow_unused=True
            )
        return tuple(Tensor._make(w.data * 0) if g is None else g for g, w in zip(grads, wrt))

    first_derivative.__name__ = f"backward of {_name(fn, name)}"
    return gradcheck(first_derivative, inputs + grad_outputs, eps, atol, rtol, fast_mode, seed=seed)
