"""Normalisation layers: BatchNorm1d/2d, LayerNorm, GroupNorm, InstanceNorm2d, AdaIN, RMSNorm."""

from __future__ import annotations

import numbers

import minigrad as mg
import minigrad.functional as F
from minigrad import distributed
from minigrad.ops.norm import sync_batch_norm
from nn.layers.linear import Linear
from nn.module import Module, Parameter


class _BatchNorm(Module):
    """Batch statistics in training (updating the running ones), running statistics in eval."""

    _input_dims: tuple = ()

    def __init__(
        self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True, device=None, dtype=None
    ):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        factory = {"device": device, "dtype": dtype}
        self.weight = Parameter(mg.ones(num_features, **factory)) if affine else None
        self.bias = Parameter(mg.zeros(num_features, **factory)) if affine else None
        if track_running_stats:
            self.register_buffer("running_mean", mg.zeros(num_features, **factory))
            self.register_buffer("running_var", mg.ones(num_features, **factory))
            self.register_buffer("num_batches_tracked", mg.tensor(0, dtype=mg.int64, device=device))
        else:
            self.running_mean = self.running_var = self.num_batches_tracked = None

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            with mg.no_grad():
                self.running_mean.zero_()
                self.running_var.fill_(1)
                self.num_batches_tracked.zero_()

    def forward(self, x: mg.Tensor) -> mg.Tensor:
        self._check_input(x)
        momentum = self._step_momentum()
        # Without running statistics (track_running_stats=False) eval mode also uses the batch's.
        use_batch_stats = self.training or not self.track_running_stats
        return F.batch_norm(
            x, self.running_mean, self.running_var, self.weight, self.bias, use_batch_stats, momentum or 0.0, self.eps
        )

    def _check_input(self, x: mg.Tensor) -> None:
        if x.ndim not in self._input_dims or x.shape[1] != self.num_features:
            dims = " or ".join(f"{n}-D" for n in self._input_dims)
            raise RuntimeError(
                f"{self}: expected {dims} input with {self.num_features} features in dim 1, got {tuple(x.shape)}"
            )

    def _step_momentum(self) -> float | None:
        """Count a training batch; the momentum to fold its statistics in with."""
        momentum = self.momentum
        if self.training and self.track_running_stats:
            with mg.no_grad():
                self.num_batches_tracked.add_(1)
            if momentum is None:  # a cumulative moving average
                momentum = 1.0 / int(self.num_batches_tracked.item())
        return momentum

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
            f"track_running_stats={self.track_running_stats}"
        )


class BatchNorm1d(_BatchNorm):
    """x: (N, C) or (N, C, L)."""

    _input_dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """x: (N, C, H, W)."""

    _input_dims = (4,)


class SyncBatchNorm(_BatchNorm):
    """BatchNorm whose training statistics are those of the global batch: the inputs of every
    process of ``minigrad.distributed``'s process group (x: (N, C, *)). In eval mode, or with a
    world of one process, it is BatchNorm."""

    _input_dims = (2, 3, 4, 5)

    def forward(self, x: mg.Tensor) -> mg.Tensor:
        if not (self.training and distributed.is_initialized() and distributed.get_world_size() > 1):
            return super().forward(x)
        self._check_input(x)
        momentum = self._step_momentum()
        return sync_batch_norm(
            x, self.running_mean, self.running_var, self.weight, self.bias, momentum or 0.0, self.eps
        )

    @classmethod
    def convert_sync_batchnorm(cls, module: Module) -> Module:
        """``module`` with every BatchNorm1d/2d replaced by a SyncBatchNorm holding the same
        parameters and buffers (the module itself when it is one)."""
        if isinstance(module, _BatchNorm) and not isinstance(module, SyncBatchNorm):
            sync = cls(module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats)
            for name in ("weight", "bias"):
                setattr(sync, name, getattr(module, name))
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                if getattr(module, name) is not None:
                    sync.register_buffer(name, getattr(module, name))
            return sync.train(module.training)
        for name, child in list(module.named_children()):
            module.add_module(name, cls.convert_sync_batchnorm(child))
        return module


class LayerNorm(Module):
    """Normalises over the last len(normalized_shape) dims; x: (*, *normalized_shape)."""

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True, device=None, dtype=None):
        super().__init__()
        if isinstance(normalized_shape, numbers.Integral):
            normalized_shape = (normalized_shape,)
        self.normalized_shape, self.eps = tuple(normalized_shape), eps
        self.elementwise_affine = elementwise_affine
        factory = {"device": device, "dtype": dtype}
        self.weight = Parameter(mg.ones(*self.normalized_shape, **factory)) if elementwise_affine else None
        self.bias = Parameter(mg.zeros(*self.normalized_shape, **factory)) if elementwise_affine and bias else None

    def forward(self, x: mg.Tensor) -> mg.Tensor:
        n = len(self.normalized_shape)
        if tuple(x.shape[x.ndim - n :]) != self.normalized_shape or x.ndim < n:
            raise RuntimeError(
                f"{self}: expected input of shape (*, {', '.join(map(str, self.normalized_shape))}), "
                f"got {tuple(x.shape)}"
            )
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


class GroupNorm(Module):
    """x: (N, C, *): statistics over each group of C/num_groups channels and the spatial dims."""

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, device=None, dtype=None):
        super().__init__()
        if num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_channels ({num_channels}) must be divisible by num_groups ({num_groups})")
        self.num_groups, self.num_channels, self.eps, self.affine = num_groups, num_channels, eps, affine
        factory = {"device": device, "dtype": dtype}
        self.weight = Parameter(mg.ones(num_channels, **factory)) if affine else None
        self.bias = Parameter(mg.zeros(num_channels, **factory)) if affine else None

    def forward(self, x: mg.Tensor) -> mg.Tensor:
        if x.ndim < 2 or x.shape[1] != self.num_channels:
            raise RuntimeError(f"{self}: expected input (N, {self.num_channels}, *), got {tuple(x.shape)}")
        return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"


class InstanceNorm2d(Module):
    """x: (N, C, H, W) or (C, H, W): statistics over the spatial dims of each sample's channel (no running
    statistics)."""

    def __init__(
        self, num_features, eps=1e-5, momentum=0.1, affine=False, track_running_stats=False, device=None, dtype=None
    ):
        super().__init__()
        if track_running_stats:
            raise NotImplementedError("InstanceNorm2d: track_running_stats=True is not supported")
        self.num_features, self.eps, self.momentum, self.affine = num_features, eps, momentum, affine
        factory = {"device": device, "dtype": dtype}
        self.weight = Parameter(mg.ones(num_features, **factory)) if affine else None
        self.bias = Parameter(mg.zeros(num_features, **factory)) if affine else None

    def forward(self, x: mg.Tensor) -> mg.Tensor:
        if x.ndim not in (3, 4) or x.shape[-3] != self.num_features:
            raise RuntimeError(
                f"{self}: expected input (N, {self.num_features}, H, W) or ({self.num_features}, H, W), "
                f"got {tuple(x.shape)}"
            )
        if x.ndim == 3:
            return F.instance_norm(x[None], weight=self.weight, bias=self.bias, eps=self.eps)[0]
        return F.instance_norm(x, weight=self.weight, bias=self.bias, eps=self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}"


class AdaIN(Module):
    """Adaptive instance norm (Huang & Belongie, 2017): a style sets each channel's scale and shift.

    x: (N, num_features, H, W), style: (N, style_dim) -> ``(1 + gamma) * instance_norm(x) + beta``,
    where ``(gamma, beta) = Linear(style)``; the ``1 +`` starts the scale near one (StarGAN v2).
    """

    def __init__(self, style_dim: int, num_features: int):
        super().__init__()
        self.norm = InstanceNorm2d(num_features)
        self.fc = Linear(style_dim, 2 * num_features)

    def forward(self, x: mg.Tensor, style: mg.Tensor) -> mg.Tensor:
        if style.ndim != 2 or style.shape[0] != x.shape[0]:
            expected = f"expected style (N={x.shape[0]}, style_dim), got {tuple(style.shape)}"
            raise RuntimeError(f"AdaIN: for input {tuple(x.shape)}, {expected}")
        gamma, beta = self.fc(style)[:, :, None, None].chunk(2, dim=1)
        return (1 + gamma) * self.norm(x) + beta


class RMSNorm(Module):
    """x / rms(x) * weight over the last len(normalized_shape) dims."""

    def __init__(self, normalized_shape, eps=None, elementwise_affine=True, device=None, dtype=None):
        super().__init__()
        if isinstance(normalized_shape, numbers.Integral):
            normalized_shape = (normalized_shape,)
        self.normalized_shape, self.eps, self.elementwise_affine = tuple(normalized_shape), eps, elementwise_affine
        factory = {"device": device, "dtype": dtype}
        self.weight = Parameter(mg.ones(*self.normalized_shape, **factory)) if elementwise_affine else None

    def forward(self, x: mg.Tensor) -> mg.Tensor:
        return F.rms_norm(x, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"
