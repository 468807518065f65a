"""Loss modules: each holds its options and calls one functional loss."""

from __future__ import annotations

import minigrad as mg
import minigrad.functional as F
from nn.module import Module

_REDUCTIONS = ("none", "mean", "sum")


class _Loss(Module):
    def __init__(self, reduction: str = "mean", reductions=_REDUCTIONS):
        super().__init__()
        if reduction not in reductions:
            raise ValueError(f"{type(self).__name__}: reduction must be one of {reductions}, got {reduction!r}")
        self.reduction = reduction

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}" if self.reduction != "mean" else ""


class _WeightedLoss(_Loss):
    """A loss with an optional per-class (or per-element) weight, kept as a buffer as PyTorch does."""

    def __init__(self, weight: mg.Tensor | None = None, reduction: str = "mean"):
        super().__init__(reduction)
        self.register_buffer("weight", weight)


class CrossEntropyLoss(_WeightedLoss):
    """input: (N, C) or (N, C, d1, ...) logits; target: class indices (N, d1, ...) or probabilities."""

    def __init__(self, weight=None, ignore_index: int = -100, reduction: str = "mean", label_smoothing: float = 0.0):
        super().__init__(weight, reduction)
        self.ignore_index, self.label_smoothing = ignore_index, label_smoothing

    def forward(self, input: mg.Tensor, target: mg.Tensor) -> mg.Tensor:
        return F.cross_entropy(
            input,
            target,
            self.weight,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
            label_smoothing=self.label_smoothing,
        )


class NLLLoss(_WeightedLoss):
    def __init__(self, weight=None, ignore_index: int = -100, reduction: str = "mean"):
        super().__init__(weight, reduction)
        self.ignore_index = ignore_index

    def forward(self, input: mg.Tensor, target: mg.Tensor) -> mg.Tensor:
        return F.nll_loss(input, target, self.weight, ignore_index=self.ignore_index, reduction=self.reduction)


class BCELoss(_WeightedLoss):
    def forward(self, input: mg.Tensor, target: mg.Tensor) -> mg.Tensor:
        return F.binary_cross_entropy(input, target, self.weight, reduction=self.reduction)


class BCEWithLogitsLoss(_WeightedLoss):
    def __init__(self, weight=None, reduction: str = "mean", pos_weight=None):
        super().__init__(weight, reduction)
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, input: mg.Tensor, target: mg.Tensor) -> mg.Tensor:
        return F.binary_cross_entropy_with_logits(
            input, target, self.weight, reduction=self.reduction, pos_weight=self.pos_weight
        )


class MSELoss(_Loss):
    def forward(self, input: mg.Tensor, target: mg.Tensor) -> mg.Tensor:
        return F.mse_loss(input, target, reduction=self.reduction)


class L1Loss(_Loss):
    def forward(self, input: mg.Tensor, target: mg.Tensor) -> mg.Tensor:
        return F.l1_loss(input, target, reduction=self.reduction)


class SmoothL1Loss(_Loss):
    def __init__(self, reduction: str = "mean", beta: float = 1.0):
        super().__init__(reduction)
        self.beta = beta

    def forward(self, input: mg.Tensor, target: mg.Tensor) -> mg.Tensor:
        return F.smooth_l1_loss(input, target, reduction=self.reduction, beta=self.beta)


class HuberLoss(_Loss):
    def __init__(self, reduction: str = "mean", delta: float = 1.0):
        super().__init__(reduction)
        self.delta = delta

    def forward(self, input: mg.Tensor, target: mg.Tensor) -> mg.Tensor:
        return F.huber_loss(input, target, reduction=self.reduction, delta=self.delta)


class KLDivLoss(_Loss):
    """input: log-probabilities; target: probabilities (or log-probabilities with log_target=True)."""

    def __init__(self, reduction: str = "mean", log_target: bool = False):
        super().__init__(reduction, _REDUCTIONS + ("batchmean",))
        self.log_target = log_target

    def forward(self, input: mg.Tensor, target: mg.Tensor) -> mg.Tensor:
        return F.kl_div(input, target, reduction=self.reduction, log_target=self.log_target)


class NTXentLoss(Module):
    """SimCLR's NT-Xent of two views ``z1, z2: (N, D)`` (see ``F.nt_xent``)."""

    def __init__(self, temperature: float = 0.5):
        super().__init__()
        self.temperature = temperature

    def forward(self, z1: mg.Tensor, z2: mg.Tensor) -> mg.Tensor:
        return F.nt_xent(z1, z2, temperature=self.temperature)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}"


class InfoNCELoss(_Loss):
    """InfoNCE of queries ``(N, D)`` against their positive keys ``(N, D)`` and, optionally,
    negative keys ``(M, D)`` or ``(N, M, D)`` (in-batch negatives without; see ``F.info_nce``)."""

    def __init__(self, temperature: float = 0.1, reduction: str = "mean"):
        super().__init__(reduction)
        self.temperature = temperature

    def forward(self, query: mg.Tensor, positive_key: mg.Tensor, negative_keys: mg.Tensor | None = None) -> mg.Tensor:
        return F.info_nce(query, positive_key, negative_keys, temperature=self.temperature, reduction=self.reduction)

    def extra_repr(self) -> str:
        reduction = super().extra_repr()
        return f"temperature={self.temperature}" + (f", {reduction}" if reduction else "")


class TripletMarginLoss(_Loss):
    """``max(d(a, p) - d(a, n) + margin, 0)`` of anchors, positives and negatives ``(N, D)``,
    ``d`` the p-norm distance (see ``F.triplet_margin_loss``)."""

    def __init__(
        self, margin: float = 1.0, p: float = 2.0, eps: float = 1e-6, swap: bool = False, reduction: str = "mean"
    ):
        super().__init__(reduction)
        if margin <= 0:
            raise ValueError(f"TripletMarginLoss: margin must be greater than 0, got {margin}")
        self.margin, self.p, self.eps, self.swap = margin, p, eps, swap

    def forward(self, anchor: mg.Tensor, positive: mg.Tensor, negative: mg.Tensor) -> mg.Tensor:
        return F.triplet_margin_loss(
            anchor, positive, negative, self.margin, self.p, self.eps, self.swap, reduction=self.reduction
        )


class CosineEmbeddingLoss(_Loss):
    """``1 - cos(x1, x2)`` for pairs with target 1, ``max(cos(x1, x2) - margin, 0)`` for target -1
    (see ``F.cosine_embedding_loss``)."""

    def __init__(self, margin: float = 0.0, reduction: str = "mean"):
        super().__init__(reduction)
        self.margin = margin

    def forward(self, input1: mg.Tensor, input2: mg.Tensor, target: mg.Tensor) -> mg.Tensor:
        return F.cosine_embedding_loss(input1, input2, target, self.margin, self.reduction)


class MultipleNegativesRankingLoss(_Loss):
    """Cross-entropy of each anchor ``(N, D)`` picking its positive among all positives (in-batch
    negatives) and optional hard negatives ``(M, D)``, over scaled cosine similarities
    (Sentence-Transformers' loss; see ``F.multiple_negatives_ranking_loss``)."""

    def __init__(self, scale: float = 20.0, reduction: str = "mean"):
        super().__init__(reduction)
        self.scale = scale

    def forward(self, anchors: mg.Tensor, positives: mg.Tensor, negatives: mg.Tensor | None = None) -> mg.Tensor:
        return F.multiple_negatives_ranking_loss(anchors, positives, negatives, self.scale, self.reduction)
