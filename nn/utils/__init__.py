"""Gradient clipping, parameters as one vector, the model inspection tools, ``nn.utils.rnn``
(padded and packed variable-length sequences) and the probes of frozen encoders (probe.py)."""

from __future__ import annotations

import math

import minigrad as mg
from minigrad import backend
from minigrad.tensor import Tensor
from nn.utils import rnn
from nn.utils.probe import extract_features, knn_probe, linear_probe
from nn.summary import (
    Summary,
    conv_layers,
    empirical_receptive_field,
    measured_step_peak,
    receptive_field,
    summary,
)


def _grads(parameters) -> list:
    parameters = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    return [p.grad for p in parameters if p.grad is not None]


@mg.no_grad()
def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False,
                    foreach: bool | None = None) -> Tensor:  # fmt: skip
    """Scale all gradients together so that their joint norm is at most max_norm; returns the norm
    before. A nan norm (without ``error_if_nonfinite``) makes every gradient nan, as in PyTorch.
    ``foreach``: PyTorch's switch to fused kernels, accepted; the norms are one reduction per
    gradient either way."""
    grads = _grads(parameters)
    if not grads:
        return mg.tensor(0.0)
    xp = backend.array_module(grads[0].data)
    if math.isinf(norm_type):
        total = max(float(xp.abs(g.data).max()) if g.data.size else 0.0 for g in grads)
    else:
        total = sum(float((xp.abs(g.data) ** norm_type).sum()) for g in grads) ** (1.0 / norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(
            f"clip_grad_norm_: the total norm of order {norm_type} for gradients from `parameters` is non-finite "
            f"({total}), so it cannot be clipped"
        )
    scale = max_norm / (total + 1e-6)
    if not scale >= 1.0:  # nan too
        for g in grads:
            g.data *= scale
            g._bump_version()
    return mg.tensor(total, dtype=grads[0].dtype)


@mg.no_grad()
def clip_grad_value_(parameters, clip_value: float) -> None:
    for g in _grads(parameters):
        g.data.clip(-clip_value, clip_value, out=g.data)
        g._bump_version()


def parameters_to_vector(parameters) -> Tensor:
    """All parameters flattened and concatenated (differentiable)."""
    return mg.cat([p.reshape(-1) for p in parameters])


@mg.no_grad()
def vector_to_parameters(vector: Tensor, parameters) -> None:
    """Copy consecutive slices of ``vector`` into the parameters, in place."""
    if not isinstance(vector, Tensor):
        raise TypeError(f"vector_to_parameters: expected a Tensor, got {type(vector).__name__}")
    parameters = list(parameters)
    total = sum(p.numel() for p in parameters)
    if vector.ndim != 1 or vector.numel() != total:
        raise RuntimeError(
            f"vector_to_parameters: the parameters need ({total},), got a vector of shape {tuple(vector.shape)}"
        )
    start = 0
    for p in parameters:
        p.copy_(vector[start : start + p.numel()].reshape(p.shape))
        start += p.numel()


__all__ = [
    "Summary",
    "clip_grad_norm_",
    "clip_grad_value_",
    "conv_layers",
    "empirical_receptive_field",
    "extract_features",
    "knn_probe",
    "linear_probe",
    "measured_step_peak",
    "parameters_to_vector",
    "rnn",
    "receptive_field",
    "summary",
    "vector_to_parameters",
]
