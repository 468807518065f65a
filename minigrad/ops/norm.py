"""Normalisation: batch_norm, layer_norm, group_norm, instance_norm, rms_norm (one fused op family)
and normalize.

The four norms are one computation: view the input so that the statistics run over some
``axes``, standardise, then scale and shift per feature::

    out = (x - mean) * rstd * weight + bias,   rstd = 1 / sqrt(var + eps)

They differ only in the view, the axes and the shape of ``weight``/``bias`` (and rms_norm
skips the centring). Forward takes the statistics in one pass; backward uses the
closed-form input gradient ``rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))``.
When backward is recorded (double backward), it goes through ``normalization_reference``,
the same math written with primitive ops, which the tests also compare the fused op to.
"""

from __future__ import annotations

import math

from minigrad import backend, distributed
from minigrad.autograd import Function, backward_through, is_grad_enabled
from minigrad.backend import array_module
from minigrad.ops._dims import normalize_dim
from minigrad.ops.elementwise import clamp, where
from minigrad.tensor import Tensor


def normalization_reference(x, weight, bias, view, axes, param_shape, eps, centered=True, stats=None):
    """The norms as primitive ops: x ``(*)``, viewed as ``view``, standardised over ``axes``;
    ``weight``/``bias`` reshaped to ``param_shape``; ``stats``: fixed ``(mean, var)`` arrays, or None."""
    xv = x.reshape(view)
    if stats is not None:
        mean, var = (Tensor._make(s) for s in stats)
    elif centered:
        mean = xv.mean(axes, keepdim=True)
        var = xv.var(axes, correction=0, keepdim=True)
    else:
        mean, var = 0.0, (xv * xv).mean(axes, keepdim=True)
    out = ((xv - mean) * (var + eps).rsqrt()).reshape(x.shape)
    if weight is not None:
        out = out * weight.reshape(param_shape)
    if bias is not None:
        out = out + bias.reshape(param_shape)
    return out


class _Normalization(Function):
    """x ``(*)``, weight and bias (or None) reshaped to ``param_shape``; see the module docstring."""

    centered = True

    def forward(self, x, weight, bias, view, axes, param_shape, eps, stats=None):
        xp = array_module(x)
        self.view, self.axes, self.param_shape, self.eps, self.stats = view, axes, param_shape, eps, stats
        xv = x.reshape(view)
        if stats is not None:
            mean, var = stats
        else:
            mean = xv.mean(axis=axes, keepdims=True) if self.centered else None
        out = xv - mean if mean is not None else xv.copy()
        if stats is None:
            var = xp.square(out).mean(axis=axes, keepdims=True)
        rstd = var + eps
        xp.sqrt(rstd, out=rstd)
        xp.reciprocal(rstd, out=rstd)
        self.mean, self.var, self.rstd = mean, var, rstd
        out *= rstd
        out = out.reshape(x.shape)
        if weight is not None:
            out *= weight.reshape(param_shape)
        if bias is not None:
            out += bias.reshape(param_shape)
        self.save_for_backward(x, weight, bias)
        return out

    def reference(self, x, weight, bias):
        return normalization_reference(
            x, weight, bias, self.view, self.axes, self.param_shape, self.eps, self.centered, self.stats
        )

    def backward(self, grad):
        x, weight, bias = self.saved_tensors
        if is_grad_enabled():
            return backward_through(self.reference, (x, weight, bias), (grad,), self.needs_input_grad)
        need_x, need_weight, need_bias = self.needs_input_grad
        g = grad.data
        xhat = x.data.reshape(self.view) - self.mean if self.centered else x.data.reshape(self.view).copy()
        xhat *= self.rstd
        # weight/bias gradients: sum over every dim that param_shape broadcasts
        lead = x.ndim - len(self.param_shape)
        reduce = tuple(range(lead)) + tuple(lead + i for i, s in enumerate(self.param_shape) if s == 1)
        grad_weight = grad_bias = grad_x = None
        if need_weight:
            grad_weight = (g * xhat.reshape(x.shape)).sum(axis=reduce).reshape(weight.shape)
        if need_bias:
            grad_bias = g.sum(axis=reduce).reshape(bias.shape)
        if need_x:
            dxhat = g * weight.data.reshape(self.param_shape) if weight is not None else g.copy()
            dxhat = dxhat.reshape(self.view)
            if self.stats is None:  # the statistics depend on x too
                projection = (dxhat * xhat).mean(axis=self.axes, keepdims=True)
                xhat *= projection
                dxhat -= xhat
                if self.centered:
                    dxhat -= dxhat.mean(axis=self.axes, keepdims=True)
            dxhat *= self.rstd
            grad_x = dxhat.reshape(x.shape)
        wrap = Tensor._make
        return (
            None if grad_x is None else wrap(grad_x),
            None if grad_weight is None else wrap(grad_weight),
            None if grad_bias is None else wrap(grad_bias),
        )


class BatchNorm(_Normalization):
    """Statistics per channel over (N, *); in training, also updates the running statistics in place.

    Its weight is constant over each channel's statistics, so both directions fold into
    per-channel affine maps over an (N, C, L) view, a few passes each::

        out = (x - mean) * (rstd * w) + b
        dx  = g * (rstd * w) - (x - mean) * (rstd^2 * w * sum(g xhat) / m) - rstd * w * sum(g) / m

    (m values per channel; sum(g) and sum(g xhat) are also the bias and weight gradients).
    Channels are independent, so the threads each take a range of them (``backend.parallel``).
    """

    def forward(self, x, weight, bias, running_mean, running_var, momentum, view, axes, param_shape, eps, stats=None):
        xp = array_module(x)
        self.view, self.axes, self.param_shape, self.eps, self.stats = view, axes, param_shape, eps, stats
        xv = x.reshape(x.shape[0], x.shape[1], -1)
        count = xv.shape[0] * xv.shape[2]
        out = xp.empty_like(xv)
        if stats is None:
            mean, var = xp.empty(x.shape[1], dtype=x.dtype), xp.empty(x.shape[1], dtype=x.dtype)
        else:
            mean, var = (s.reshape(-1) for s in stats)
        rstd = xp.empty(x.shape[1], dtype=x.dtype)

        def normalize(start, stop):
            part, o = xv[:, start:stop], out[:, start:stop]
            if stats is None:
                mean[start:stop] = xp.einsum("ncl->c", part) / count
                xp.subtract(part, mean[start:stop, None], out=o)
                var[start:stop] = xp.einsum("ncl,ncl->c", o, o) / count
            rstd[start:stop] = 1 / xp.sqrt(var[start:stop] + eps)
            scale = rstd[start:stop] if weight is None else rstd[start:stop] * weight[start:stop]
            shift = 0 if bias is None else bias[start:stop]
            if stats is None:  # o holds x - mean
                o *= scale[:, None]
            else:  # x * scale + (bias - mean * scale)
                xp.multiply(part, scale[:, None], out=o)
                shift = shift - mean[start:stop] * scale
            o += shift if xp.ndim(shift) == 0 else shift[:, None]

        backend.parallel(normalize, x.shape[1], x)
        self.mean, self.var, self.rstd = mean, var, rstd
        if running_mean is not None:  # training: fold the batch statistics in
            running_mean *= 1 - momentum
            running_mean += momentum * mean.reshape(running_mean.shape)
            running_var *= 1 - momentum
            running_var += (momentum * count / (count - 1)) * var.reshape(running_var.shape)
        self.save_for_backward(x, weight, bias)
        return out.reshape(x.shape)

    def backward(self, grad):
        x, weight, bias = self.saved_tensors
        if is_grad_enabled():
            return backward_through(self.reference, (x, weight, bias), (grad,), self.needs_input_grad)
        xp = array_module(x.data)
        need_x, need_weight, need_bias = self.needs_input_grad
        g = grad.data.reshape(x.shape[0], x.shape[1], -1)
        xv = x.data.reshape(g.shape)
        count, training = g.shape[0] * g.shape[2], self.stats is None
        sum_g, sum_g_xhat = xp.empty_like(self.rstd), xp.empty_like(self.rstd)
        grad_x = xp.empty_like(g) if need_x else None

        def gradients(start, stop):
            gs, rstd = g[:, start:stop], self.rstd[start:stop]
            sum_g[start:stop] = xp.einsum("ncl->c", gs)
            centred = xv[:, start:stop] - self.mean[start:stop, None]
            sum_g_xhat[start:stop] = xp.einsum("ncl,ncl->c", gs, centred) * rstd
            if not need_x:
                return
            scale = rstd if weight is None else rstd * weight.data[start:stop]
            gx = grad_x[:, start:stop]
            xp.multiply(gs, scale[:, None], out=gx)
            if training:  # the statistics depend on x too
                centred *= (-scale * rstd * sum_g_xhat[start:stop] / count)[:, None]
                centred += (-scale * sum_g[start:stop] / count)[:, None]
                gx += centred

        backend.parallel(gradients, g.shape[1], g)
        wrap = Tensor._make
        return (
            wrap(grad_x.reshape(x.shape)) if need_x else None,
            wrap(sum_g_xhat) if need_weight else None,
            wrap(sum_g) if need_bias else None,
        )


def _channel_sums(a, b=None):
    """Per-channel sums over (N, L) of ``a`` (N, C, L), or of ``a * b``, accumulated in float64."""
    xp = array_module(a)
    a = a.astype(xp.float64, copy=False)
    return xp.einsum("ncl->c", a) if b is None else xp.einsum("ncl,ncl->c", a, b.astype(xp.float64, copy=False))


class SyncBatchNorm(Function):
    """Batch norm in training with the statistics of the global batch: every process's ``x``.

    Forward all-reduces the per-channel sum and count (the mean), then the sum of squared
    deviations (the variance, two-pass as BatchNorm's). Backward all-reduces the two sums its
    input gradient needs, ``sum(g)`` and ``sum(g xhat)``, so each process gets the gradient of
    every process's loss with respect to its own ``x``; the weight and bias gradients stay local
    (DDP averages them). With no process group this is BatchNorm in training.

    The per-channel sums accumulate, and travel, in float64: NumPy's float32 sums over N*H*W
    values lose digits that the gradients of the layers below then amplify (1e-3 relative
    error in float32 after one layer, against 1e-7 with float64 sums).
    """

    def forward(self, x, weight, bias, running_mean, running_var, momentum, eps):
        xp = array_module(x)
        self.eps = eps
        xv = x.reshape(x.shape[0], x.shape[1], -1)
        c = x.shape[1]
        local = xp.concatenate([_channel_sums(xv), xp.asarray([xv.shape[0] * xv.shape[2]], dtype=xp.float64)])
        total = distributed.all_reduce_array(local)
        self.count = float(total[c])
        self.mean = (total[:c] / self.count).astype(x.dtype)
        centred = xv - self.mean[:, None]
        var = (distributed.all_reduce_array(_channel_sums(centred, centred)) / self.count).astype(x.dtype)
        self.rstd = 1 / xp.sqrt(var + eps)
        scale = self.rstd if weight is None else self.rstd * weight
        out = centred * scale[:, None]
        if bias is not None:
            out += bias[:, None]
        if running_mean is not None:
            running_mean *= 1 - momentum
            running_mean += momentum * self.mean
            running_var *= 1 - momentum
            running_var += (momentum * self.count / (self.count - 1)) * var
        self.save_for_backward(x, weight, bias)
        return out.reshape(x.shape)

    def reference(self, x, weight, bias):
        """The single-process composition (double backward is not synchronised)."""
        param_shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
        axes = (0,) + tuple(range(2, x.ndim))
        return normalization_reference(x, weight, bias, x.shape, axes, param_shape, self.eps)

    def backward(self, grad):
        x, weight, bias = self.saved_tensors
        if is_grad_enabled():
            if distributed.is_initialized() and distributed.get_world_size() > 1:
                raise RuntimeError("SyncBatchNorm: double backward across processes is not supported")
            return backward_through(self.reference, (x, weight, bias), (grad,), self.needs_input_grad)
        xp = array_module(x.data)
        need_x, need_weight, need_bias = self.needs_input_grad
        g = grad.data.reshape(x.shape[0], x.shape[1], -1)
        c = g.shape[1]
        xhat = (x.data.reshape(g.shape) - self.mean[:, None]) * self.rstd[:, None]
        local = xp.concatenate([_channel_sums(g), _channel_sums(g, xhat)])
        wrap = Tensor._make
        grad_x = None
        if need_x:
            total = distributed.all_reduce_array(local)
            scale = self.rstd if weight is None else self.rstd * weight.data
            total = (total / self.count).astype(g.dtype)
            grad_x = g - (total[:c, None] + xhat * total[c:, None])
            grad_x *= scale[:, None]
            grad_x = wrap(grad_x.reshape(x.shape))
        return (
            grad_x,
            wrap(local[c:].astype(g.dtype)) if need_weight else None,
            wrap(local[:c].astype(g.dtype)) if need_bias else None,
        )


class LayerNorm(_Normalization):
    pass


class GroupNorm(_Normalization):
    pass


class RmsNorm(_Normalization):
    centered = False


class VectorNorm(Function):
    """``(sum |x|^p)^(1/p)`` over ``dim``, kept as a size-1 dim; its gradient is 0 where the norm is 0."""

    def forward(self, x, p, dim):
        xp = array_module(x)
        self.p = p
        if p == 2:
            out = xp.sqrt(xp.square(x).sum(axis=dim, keepdims=True))
        else:
            out = (xp.abs(x) ** p).sum(axis=dim, keepdims=True) ** (1 / p)
        self.save_for_backward(x, out)
        return out

    def backward(self, grad):
        x, out = self.saved_tensors
        norm = where(Tensor._make(out.data == 0), 1.0, out)  # x is all zero there: the gradient is 0
        if self.p == 2:
            return grad * x / norm
        return grad * x.sign() * x.abs() ** (self.p - 1) / norm ** (self.p - 1)


def vector_norm(input: Tensor, p: float = 2.0, dim: int = -1, keepdim: bool = False) -> Tensor:
    """The ``p``-norm (finite ``p > 0``) of ``input`` along ``dim``."""
    if not (0 < p < math.inf):
        raise ValueError(f"vector_norm: p must be a finite positive number, got {p}")
    d = normalize_dim(dim, input.ndim, "vector_norm")
    out = VectorNorm.apply(input, p=p, dim=d)
    return out if keepdim or input.ndim == 0 else out.squeeze(d)


# -------------------------------------------------------------------- public functions
def _check_input(name, input, min_dims=0):
    if not isinstance(input, Tensor):
        raise TypeError(f"{name}: expected a Tensor, got {type(input).__name__}")
    if input.dtype.kind != "f":
        raise RuntimeError(f"{name}: expected a floating-point tensor, got {input.dtype}")
    if input.ndim < min_dims:
        raise RuntimeError(f"{name}: expected an input of at least {min_dims} dims, got shape {tuple(input.shape)}")


def _check_param(name, what, param, shape):
    if param is not None and tuple(param.shape) != tuple(shape):
        raise RuntimeError(f"{name}: {what} should have shape {tuple(shape)}, got {tuple(param.shape)}")


def batch_norm(
    input: Tensor,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Normalise each channel of input ``(N, C)``, ``(N, C, L)`` or ``(N, C, H, W)``.

    In training, with the batch's statistics (and ``running_* = (1 - momentum) * running_* +
    momentum * batch_stat``, in place, with the unbiased batch variance); otherwise with the
    running statistics. ``momentum`` is a number (the cumulative average of ``momentum=None``
    belongs to the BatchNorm modules).
    """
    _check_input("batch_norm", input, min_dims=2)
    c = input.shape[1]
    for what, param in (("running_mean", running_mean), ("running_var", running_var)):
        _check_param("batch_norm", what, param, (c,))
    _check_param("batch_norm", "weight", weight, (c,))
    _check_param("batch_norm", "bias", bias, (c,))
    if (running_mean is None) != (running_var is None):
        raise RuntimeError("batch_norm: running_mean and running_var must be given together")
    param_shape = (1, c) + (1,) * (input.ndim - 2)
    stats = None
    if training:
        if input.numel() // c <= 1:
            raise ValueError(
                f"Expected more than 1 value per channel when training, got input size {list(input.shape)}"
            )
        if momentum is None:
            raise ValueError("batch_norm: momentum must be a number (cumulative averaging is the module's job)")
    else:
        if running_mean is None:
            raise RuntimeError("batch_norm: running_mean and running_var must be given when training=False")
        stats = (running_mean.data.reshape(param_shape), running_var.data.reshape(param_shape))
    updating = training and running_mean is not None
    out = BatchNorm.apply(
        input,
        weight,
        bias,
        running_mean=running_mean.data if updating else None,
        running_var=running_var.data if updating else None,
        momentum=momentum,
        view=input.shape,
        axes=(0,) + tuple(range(2, input.ndim)),
        param_shape=param_shape,
        eps=eps,
        stats=stats,
    )
    if updating:
        running_mean._bump_version()
        running_var._bump_version()
    return out


def sync_batch_norm(
    input: Tensor,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """batch_norm in training over the global batch: input ``(N, C, *)`` on every process of the
    process group (``minigrad.distributed``); the running statistics get the global ones."""
    _check_input("sync_batch_norm", input, min_dims=2)
    c = input.shape[1]
    for what, param in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight),
                        ("bias", bias)):  # fmt: skip
        _check_param("sync_batch_norm", what, param, (c,))
    out = SyncBatchNorm.apply(
        input,
        weight,
        bias,
        running_mean=None if running_mean is None else running_mean.data,
        running_var=None if running_var is None else running_var.data,
        momentum=momentum,
        eps=eps,
    )
    if running_mean is not None:
        running_mean._bump_version()
        running_var._bump_version()
    return out


def _normalized_shape(name, input, normalized_shape):
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(int(s) for s in normalized_shape)
    k = len(shape)
    if k == 0 or input.ndim < k or tuple(input.shape[input.ndim - k :]) != shape:
        raise RuntimeError(
            f"{name}: given normalized_shape={list(shape)}, expected input with shape [*, "
            f"{', '.join(map(str, shape))}], but got input of size {list(input.shape)}"
        )
    return shape


def layer_norm(
    input: Tensor, normalized_shape, weight: Tensor | None = None, bias: Tensor | None = None, eps: float = 1e-5
) -> Tensor:
    """Normalise over the last ``len(normalized_shape)`` dims; weight and bias have ``normalized_shape``."""
    _check_input("layer_norm", input)
    shape = _normalized_shape("layer_norm", input, normalized_shape)
    _check_param("layer_norm", "weight", weight, shape)
    _check_param("layer_norm", "bias", bias, shape)
    axes = tuple(range(input.ndim - len(shape), input.ndim))
    return LayerNorm.apply(input, weight, bias, view=input.shape, axes=axes, param_shape=shape, eps=eps)


def group_norm(
    input: Tensor, num_groups: int, weight: Tensor | None = None, bias: Tensor | None = None, eps: float = 1e-5
) -> Tensor:
    """Normalise input ``(N, C, *)`` over each group of ``C // num_groups`` channels (and all of ``*``)."""
    _check_input("group_norm", input, min_dims=2)
    n, c = input.shape[:2]
    if num_groups <= 0 or c % num_groups:
        raise RuntimeError(
            f"group_norm: expected number of channels in input to be divisible by num_groups, "
            f"but got input of shape {list(input.shape)} and num_groups={num_groups}"
        )
    _check_param("group_norm", "weight", weight, (c,))
    _check_param("group_norm", "bias", bias, (c,))
    view = (n, num_groups, input.numel() // max(n * num_groups, 1))
    param_shape = (1, c) + (1,) * (input.ndim - 2)
    return GroupNorm.apply(input, weight, bias, view=view, axes=(2,), param_shape=param_shape, eps=eps)


def instance_norm(
    input: Tensor,
    running_mean: Tensor | None = None,
    running_var: Tensor | None = None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    use_input_stats: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Normalise each channel of each sample of input ``(N, C, *)`` over its spatial dims ``*``.

    Group norm with one channel per group; only the input's own statistics are supported
    (``use_input_stats=True`` and no running statistics, PyTorch's default).
    """
    _check_input("instance_norm", input, min_dims=3)
    if running_mean is not None or running_var is not None or not use_input_stats:
        raise NotImplementedError("instance_norm: running statistics are not supported; use the input's own")
    return group_norm(input, input.shape[1], weight, bias, eps)


def rms_norm(input: Tensor, normalized_shape, weight: Tensor | None = None, eps: float | None = None) -> Tensor:
    """``x / sqrt(mean(x^2) + eps) * weight`` over the last dims (``eps=None``: the dtype's machine epsilon)."""
    _check_input("rms_norm", input)
    shape = _normalized_shape("rms_norm", input, normalized_shape)
    _check_param("rms_norm", "weight", weight, shape)
    if eps is None:
        eps = float(backend.numpy.finfo(input.dtype).eps)
    axes = tuple(range(input.ndim - len(shape), input.ndim))
    return RmsNorm.apply(input, weight, None, view=input.shape, axes=axes, param_shape=shape, eps=eps)


def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12) -> Tensor:
    """``x / max(||x||_p, eps)`` along ``dim``."""
    _check_input("normalize", input)
    return input / clamp(vector_norm(input, p, dim, keepdim=True), min=eps)
