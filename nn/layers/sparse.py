"""Embedding: a lookup table of num_embeddings vectors."""

from __future__ import annotations

import minigrad as mg
import minigrad.functional as F
from nn import init
from nn.module import Module, Parameter


class Embedding(Module):
    """indices (*) of int dtype -> (*, embedding_dim). Initialised N(0, 1), the padding row zero."""

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, max_norm=None, norm_type=2.0,
                 scale_grad_by_freq=False, sparse=False, _weight=None, device=None, dtype=None):  # fmt: skip
        super().__init__()
        if sparse:
            raise NotImplementedError(f"{type(self).__name__}: sparse gradients are not supported; use sparse=False")
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(
                    f"Embedding: padding_idx {padding_idx} must be within num_embeddings ({num_embeddings})"
                )
            padding_idx %= num_embeddings
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.padding_idx, self.max_norm = padding_idx, max_norm
        self.norm_type, self.scale_grad_by_freq = norm_type, scale_grad_by_freq
        if _weight is None:
            self.weight = Parameter(mg.empty(num_embeddings, embedding_dim, device=device, dtype=dtype))
            self.reset_parameters()
        else:
            if tuple(_weight.shape) != (num_embeddings, embedding_dim):
                raise ValueError(
                    f"Embedding: _weight has shape {tuple(_weight.shape)}, expected {(num_embeddings, embedding_dim)}"
                )
            self.weight = Parameter(_weight)

    def reset_parameters(self) -> None:
        init.normal_(self.weight)
        if self.padding_idx is not None:
            with mg.no_grad():
                self.weight[self.padding_idx] = 0

    @classmethod
    def from_pretrained(cls, embeddings: mg.Tensor, freeze: bool = True, padding_idx=None, **kwargs) -> Embedding:
        """A module on a copy of ``embeddings`` (num_embeddings, embedding_dim); ``kwargs``: the
        constructor's other options (``max_norm``, ``norm_type``, ``scale_grad_by_freq``, and for
        ``EmbeddingBag`` ``mode`` and ``include_last_offset``)."""
        if embeddings.ndim != 2:
            raise ValueError(f"{cls.__name__}.from_pretrained: embeddings must be 2-D, got {tuple(embeddings.shape)}")
        rows, cols = embeddings.shape
        module = cls(rows, cols, padding_idx=padding_idx, _weight=embeddings.detach().clone(), **kwargs)
        module.weight.requires_grad = not freeze
        return module

    def forward(self, indices: mg.Tensor) -> mg.Tensor:
        return F.embedding(
            indices, self.weight, self.padding_idx, self.max_norm, self.norm_type, self.scale_grad_by_freq
        )

    def extra_repr(self) -> str:
        text = f"{self.num_embeddings}, {self.embedding_dim}"
        return text + (f", padding_idx={self.padding_idx}" if self.padding_idx is not None else "")


class EmbeddingBag(Embedding):
    """Bags of indices -> the sum or mean of their rows: (B, embedding_dim), without the (B, L, embedding_dim) step.

    forward(input, offsets=None, per_sample_weights=None): input (B, L), each row a bag, or input (N,) with
    offsets (B,) marking where each bag starts (F.embedding_bag). Initialised N(0, 1), the padding row zero;
    entries equal to padding_idx are left out of their bag.
    """

    def __init__(self, num_embeddings, embedding_dim, max_norm=None, norm_type=2.0, scale_grad_by_freq=False,
                 mode="mean", sparse=False, _weight=None, include_last_offset=False, padding_idx=None, device=None,
                 dtype=None):  # fmt: skip
        if mode not in ("sum", "mean"):
            raise NotImplementedError(f"EmbeddingBag: mode must be 'sum' or 'mean', got {mode!r}")
        super().__init__(num_embeddings, embedding_dim, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse,
                         _weight, device, dtype)  # fmt: skip
        self.mode, self.include_last_offset = mode, include_last_offset

    def forward(self, input: mg.Tensor, offsets=None, per_sample_weights=None) -> mg.Tensor:
        return F.embedding_bag(
            input, self.weight, offsets, self.max_norm, self.norm_type, self.scale_grad_by_freq, self.mode,
            per_sample_weights=per_sample_weights, include_last_offset=self.include_last_offset,
            padding_idx=self.padding_idx,
        )  # fmt: skip

    def extra_repr(self) -> str:
        return super().extra_repr() + f", mode={self.mode!r}"
