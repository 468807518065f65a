"""Mixed precision: ``autocast`` and ``GradScaler``, as ``torch.amp``.

Inside ``autocast(device_type, dtype=float16)``, an op on the autocast lists below casts its
float16/float32 tensor inputs on that device before it runs (float64 tensors are left alone, as
PyTorch does): the ops of ``LOWER_PRECISION_OPS`` (matrix products, convolutions, the fused RNN
layers: fast and safe in half precision) to ``dtype``; the ops of ``FLOAT32_OPS`` (reductions,
softmax, norms, losses, exp/log/pow: they need float32's range or accuracy) to float32. Every other
op runs in the dtype its inputs promote to. The cast is recorded like any op, so gradients flow
back to float32 parameters as float32. The check sits at the one entry every op goes through
(``Function.apply``; a loss composed of several ops casts at its own entry with
``autograd.autocast_inputs``) and costs one ``is None`` test when autocast is off; backward runs
each op in the dtypes its forward used.

``GradScaler`` multiplies the loss by a scale so that small float16 gradients do not flush to
zero, divides the gradients by it before the optimizer step, skips a step whose gradients have
an inf or a NaN and adapts the scale: ``backoff_factor`` after an overflow, ``growth_factor``
after ``growth_interval`` clean steps in a row.
"""

from __future__ import annotations

import functools

from minigrad import autograd, backend
from minigrad.ops import loss
from minigrad.ops.activation import Softplus
from minigrad.ops.attention import ScaledDotProductAttention
from minigrad.ops.conv import Conv, ConvTranspose
from minigrad.ops.elementwise import Cast, Exp, Log, Pow, Rsqrt
from minigrad.ops.linalg import Einsum, Linear, Matmul
from minigrad.ops.loss import BinaryCrossEntropy, CrossEntropy, LogSoftmax, NllLoss, Softmax
from minigrad.ops.norm import BatchNorm, GroupNorm, LayerNorm, RmsNorm, VectorNorm
from minigrad.ops.reduce import Cumsum, Logsumexp, Mean, Prod, Std, Sum, Var
from minigrad.ops.rnn import GRUSequence, LSTMSequence
from minigrad.tensor import Tensor

# The autocast op lists (PyTorch's lower_precision_fp and fp32 lists, for minigrad's ops). An entry
# is an op (a Function) or a composite function that casts its inputs with autograd.autocast_inputs.
LOWER_PRECISION_OPS = (
    Matmul, Einsum, Linear, Conv, ConvTranspose, ScaledDotProductAttention,
    LSTMSequence, GRUSequence,
)  # fmt: skip
FLOAT32_OPS = (
    Sum, Mean, Var, Std, Prod, Cumsum, Logsumexp, VectorNorm,
    Softmax, LogSoftmax,
    BatchNorm, LayerNorm, GroupNorm, RmsNorm,
    CrossEntropy, NllLoss, BinaryCrossEntropy,
    loss.mse_loss, loss.l1_loss, loss.smooth_l1_loss, loss.huber_loss, loss.binary_cross_entropy_with_logits,
    loss.kl_div, loss.js_div, loss.cosine_similarity, loss.cosine_embedding_loss, loss.margin_ranking_loss,
    loss.triplet_margin_loss,
    Exp, Log, Pow, Rsqrt, Softplus,
)  # fmt: skip

_LOWER, _FLOAT32 = "lower", "float32"
_POLICY = {op: _LOWER for op in LOWER_PRECISION_OPS} | {op: _FLOAT32 for op in FLOAT32_OPS}
_ELIGIBLE = (backend.float16, backend.float32)  # float64 is never cast
_dtypes: dict = {}  # device type -> its autocast dtype, for the devices where autocast is on


def _cast(x, policy):
    if not isinstance(x, Tensor) or x.data.dtype not in _ELIGIBLE:
        return x
    dtype = _dtypes.get(x.device)
    if dtype is None:
        return x
    target = dtype if policy is _LOWER else backend.float32
    return x if x.data.dtype == target else Cast.apply(x, dtype=target)


def _cast_inputs(op, inputs):
    policy = _POLICY.get(op)
    if policy is None:
        return inputs
    return tuple(_cast(x, policy) for x in inputs)


def is_autocast_enabled(device_type: str = "cuda") -> bool:
    return device_type in _dtypes


class autocast:
    """``with autocast("cuda"):`` (or ``@autocast("cpu")``) runs the ops of the autocast lists in
    mixed precision on that device type; ``enabled=False`` turns autocast off inside an outer one."""

    def __init__(self, device_type: str, dtype=None, enabled: bool = True):
        if device_type not in backend.DEVICES:
            raise ValueError(f"autocast: device_type must be one of {backend.DEVICES}, got {device_type!r}")
        dtype = backend.float16 if dtype is None else backend.check_dtype(dtype, "autocast")
        if dtype != backend.float16:
            raise ValueError(f"autocast: dtype must be float16 (minigrad has no bfloat16), got {dtype}")
        self.device_type, self.dtype, self.enabled = device_type, dtype, bool(enabled)
        self._outer = []  # the states to restore, one per entry (the same object may be nested)

    def __enter__(self):
        self._outer.append(dict(_dtypes))
        if self.enabled:
            _dtypes[self.device_type] = self.dtype
        else:
            _dtypes.pop(self.device_type, None)
        autograd._set_autocast(_cast_inputs if _dtypes else None)
        return self

    def __exit__(self, *exc):
        _dtypes.clear()
        _dtypes.update(self._outer.pop())
        autograd._set_autocast(_cast_inputs if _dtypes else None)

    def __call__(self, func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with self:
                return func(*args, **kwargs)

        return wrapper


# ------------------------------------------------------------------------ GradScaler
_READY, _UNSCALED, _STEPPED = "ready", "unscaled", "stepped"
_FLOAT32_MAX = float(backend.numpy.finfo(backend.float32).max)


class GradScaler:
    """Dynamic loss scaling. One iteration::

        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)  # optional: to clip or inspect the true gradients
        scaler.step(optimizer)      # skipped when a gradient has an inf or a NaN
        scaler.update()             # back off after an overflow, grow after growth_interval clean steps

    With ``enabled=False`` every method is a pass-through (``step`` just steps).
    """

    def __init__(
        self,
        init_scale: float = 2.0**16,
        growth_factor: float = 2.0,
        backoff_factor: float = 0.5,
        growth_interval: int = 2000,
        enabled: bool = True,
    ):
        if growth_factor <= 1.0:
            raise ValueError(f"GradScaler: growth_factor must be > 1, got {growth_factor}")
        if not 0.0 < backoff_factor < 1.0:
            raise ValueError(f"GradScaler: backoff_factor must be in (0, 1), got {backoff_factor}")
        if growth_interval < 1:
            raise ValueError(f"GradScaler: growth_interval must be a positive integer, got {growth_interval}")
        self._enabled = bool(enabled)
        self._scale = float(init_scale)
        self._growth_factor, self._backoff_factor = float(growth_factor), float(backoff_factor)
        self._growth_interval = int(growth_interval)
        self._growth_tracker = 0  # clean steps in a row since the scale last changed
        self._optimizers = {}  # id(optimizer) -> {"stage": ..., "found_inf": bool}, this iteration

    def is_enabled(self) -> bool:
        return self._enabled

    def get_scale(self) -> float:
        return self._scale if self._enabled else 1.0

    def scale(self, outputs):
        """``outputs`` (a tensor, or a list/tuple of them) times the scale, in at least float32."""
        if not self._enabled:
            return outputs
        if isinstance(outputs, Tensor):
            scale = backend.as_array(self._scale, backend.float32, outputs.device)
            return outputs * Tensor._make(scale)
        if isinstance(outputs, (list, tuple)):
            return type(outputs)(self.scale(o) for o in outputs)
        raise TypeError(f"GradScaler.scale: expected a Tensor or a list/tuple of them, got {type(outputs).__name__}")

    def _state(self, optimizer) -> dict:
        return self._optimizers.setdefault(id(optimizer), {"stage": _READY, "found_inf": False})

    def unscale_(self, optimizer) -> None:
        """Divide ``optimizer``'s gradients by the scale, in place, and note whether any is inf/NaN."""
        if not self._enabled:
            return
        state = self._state(optimizer)
        if state["stage"] == _UNSCALED:
            raise RuntimeError("GradScaler.unscale_: already called on this optimizer since the last update()")
        if state["stage"] == _STEPPED:
            raise RuntimeError("GradScaler.unscale_: called after step(); call update() first")
        grads = [p.grad.data for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        if any(grad.dtype == backend.float16 for grad in grads):  # checked before any gradient is touched
            raise ValueError(
                "GradScaler.unscale_: a parameter has a float16 gradient; keep the parameters in "
                "float32 and let autocast cast them"
            )
        inv_scale = 1.0 / self._scale
        found_inf = False
        for grad in grads:
            grad *= inv_scale
            found_inf = found_inf or not bool(backend.array_module(grad).isfinite(grad).all())
        state["stage"], state["found_inf"] = _UNSCALED, found_inf

    def step(self, optimizer, *args, **kwargs):
        """Unscale the gradients (unless ``unscale_`` already did) and step, unless one is inf/NaN."""
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        if "closure" in kwargs:
            raise RuntimeError("GradScaler.step: closures are not supported")
        state = self._state(optimizer)
        if state["stage"] == _STEPPED:
            raise RuntimeError("GradScaler.step: already called on this optimizer since the last update()")
        if state["stage"] == _READY:
            self.unscale_(optimizer)
        result = None if state["found_inf"] else optimizer.step(*args, **kwargs)
        state["stage"] = _STEPPED
        return result

    def update(self, new_scale=None) -> None:
        """Set the scale for the next iteration: ``new_scale`` if given, else back off or grow."""
        if not self._enabled:
            return
        if new_scale is not None:
            self._scale = float(new_scale.item() if isinstance(new_scale, Tensor) else new_scale)
        elif not self._optimizers:
            raise RuntimeError("GradScaler.update: no optimizer was unscaled or stepped in this iteration")
        elif any(state["found_inf"] for state in self._optimizers.values()):
            self._scale *= self._backoff_factor
            self._growth_tracker = 0
        elif self._growth_tracker + 1 == self._growth_interval:
            grown = self._scale * self._growth_factor
            if grown <= _FLOAT32_MAX:  # the scale stays a finite float32
                self._scale = grown
            self._growth_tracker = 0
        else:
            self._growth_tracker += 1
        self._optimizers = {}

    def state_dict(self) -> dict:
        if not self._enabled:
            return {}
        return {
            "scale": self._scale,
            "growth_factor": self._growth_factor,
            "backoff_factor": self._backoff_factor,
            "growth_interval": self._growth_interval,
            "_growth_tracker": self._growth_tracker,
        }

    def load_state_dict(self, state_dict: dict) -> None:
        if not self._enabled:  # as PyTorch: a disabled scaler ignores the state it is given
            return
        if not state_dict:
            raise RuntimeError("GradScaler.load_state_dict: the state dict is empty (saved by a disabled GradScaler?)")
        self._scale = float(state_dict["scale"])
        self._growth_factor = float(state_dict["growth_factor"])
        self._backoff_factor = float(state_dict["backoff_factor"])
        self._growth_interval = int(state_dict["growth_interval"])
        self._growth_tracker = int(state_dict["_growth_tracker"])
