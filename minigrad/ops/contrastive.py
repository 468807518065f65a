"""Self-supervised losses: SimCLR's NT-Xent, CPC's InfoNCE, Sentence-Transformers' multiple
negatives ranking loss and SimSiam's negative cosine.

The contrastive losses are cross-entropies over cosine similarities divided by a temperature:
each anchor must pick its positive out of a row of candidates. They are compositions of
registered ops; the fused ``cross_entropy`` subtracts each row's maximum before the
log-sum-exp, so values and gradients stay finite for tiny temperatures (logits in the
thousands). NT-Xent drops each anchor's similarity with itself by gathering the 2N - 1 other
columns, so no -inf is ever written (no -inf * 0 = nan in the backward pass).
"""

from __future__ import annotations

from minigrad.backend import array_module
from minigrad.ops.index import gather
from minigrad.ops.linalg import matmul
from minigrad.ops.loss import _check_float, _check_reduction, cosine_similarity, cross_entropy
from minigrad.ops.norm import normalize
from minigrad.ops.shape import cat
from minigrad.tensor import Tensor


def _check_temperature(name: str, temperature: float) -> None:
    if not temperature > 0:
        raise ValueError(f"{name}: temperature must be positive, got {temperature}")


def _check_rows(name: str, what: str, x, min_rows: int) -> None:
    """``x`` is a float tensor of shape (N, D) with N >= ``min_rows``."""
    _check_float(name, what, x)
    if x.ndim != 2:
        raise RuntimeError(f"{name}: {what} must have shape (N, D), got {tuple(x.shape)}")
    if x.shape[0] < min_rows:
        raise RuntimeError(
            f"{name}: needs a batch of at least {min_rows} samples, got {what} of shape {tuple(x.shape)}"
        )


def _check_same_shape(name: str, a: str, x: Tensor, b: str, y: Tensor) -> None:
    if x.shape != y.shape:
        raise RuntimeError(f"{name}: {a} and {b} must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")


def _class_indices(values, like: Tensor) -> Tensor:
    return Tensor._make(array_module(like.data).asarray(values))


def nt_xent(z1: Tensor, z2: Tensor, temperature: float = 0.5) -> Tensor:
    """SimCLR's normalized temperature-scaled cross-entropy of two views ``z1, z2: (N, D)``.

    The 2N embeddings are l2-normalised; anchor i's logits are its cosine similarities with
    the other 2N - 1 embeddings divided by ``temperature``; its positive is the other view of
    the same sample, every other embedding a negative. Returns the mean over the 2N anchors.
    """
    _check_rows("nt_xent", "z1", z1, 2)
    _check_float("nt_xent", "z2", z2)
    _check_same_shape("nt_xent", "z1", z1, "z2", z2)
    _check_temperature("nt_xent", temperature)
    xp = array_module(z1.data)
    n = z1.shape[0]
    z = normalize(cat([z1, z2]), dim=1)  # (2N, D)
    similarity = matmul(z, z.transpose(0, 1)) / temperature  # (2N, 2N)
    # row i keeps columns j != i: column c of the (2N, 2N - 1) result is c, or c + 1 from the diagonal on
    rows, columns = xp.arange(2 * n)[:, None], xp.arange(2 * n - 1)[None, :]
    others = columns + (columns >= rows)
    positive = (xp.arange(2 * n) + n) % (2 * n)
    target = positive - (positive > xp.arange(2 * n))  # its column among the others
    return cross_entropy(gather(similarity, 1, _class_indices(others, z1)), _class_indices(target, z1))


def info_nce(
    query: Tensor,
    positive_key: Tensor,
    negative_keys: Tensor | None = None,
    temperature: float = 0.1,
    reduction: str = "mean",
) -> Tensor:
    """InfoNCE (CPC) of ``query: (N, D)`` against ``positive_key: (N, D)``, cosine similarities.

    ``negative_keys`` None: in-batch negatives, query i against every positive key (its own
    is the right answer; N >= 2). ``(M, D)``: the same M negatives for every query;
    ``(N, M, D)``: M negatives per query. Each query's loss is the cross-entropy of picking
    its positive; ``log(number of candidates) - loss`` is the InfoNCE bound on mutual information.
    """
    name = "info_nce"
    _check_reduction(name, reduction)
    _check_rows(name, "query", query, 2 if negative_keys is None else 1)
    _check_float(name, "positive_key", positive_key)
    _check_same_shape(name, "query", query, "positive_key", positive_key)
    _check_temperature(name, temperature)
    xp = array_module(query.data)
    q, positive = normalize(query, dim=1), normalize(positive_key, dim=1)
    n, d = query.shape
    if negative_keys is None:
        logits = matmul(q, positive.transpose(0, 1))  # (N, N): the positives on the diagonal
        target = xp.arange(n)
    else:
        _check_float(name, "negative_keys", negative_keys)
        if negative_keys.ndim == 2 and negative_keys.shape[1] == d:
            negative_logits = matmul(q, normalize(negative_keys, dim=1).transpose(0, 1))  # (N, M)
        elif negative_keys.ndim == 3 and negative_keys.shape[0] == n and negative_keys.shape[2] == d:
            negative = normalize(negative_keys, dim=2)  # (N, M, D)
            negative_logits = matmul(negative, q.unsqueeze(2)).squeeze(2)  # (N, M)
        else:
            raise RuntimeError(
                f"{name}: negative_keys must have shape (M, {d}) or ({n}, M, {d}) for query of shape "
                f"{tuple(query.shape)}, got {tuple(negative_keys.shape)}"
            )
        logits = cat([(q * positive).sum(1, keepdim=True), negative_logits], dim=1)  # (N, 1 + M)
        target = xp.zeros(n, dtype=xp.int64)
    return cross_entropy(logits / temperature, _class_indices(target, query), reduction=reduction)


def multiple_negatives_ranking_loss(
    anchors: Tensor,
    positives: Tensor,
    negatives: Tensor | None = None,
    scale: float = 20.0,
    reduction: str = "mean",
) -> Tensor:
    """Sentence-Transformers' ranking loss with in-batch negatives, ``anchors, positives: (N, D)``.

    Anchor i's candidates are all N positives (its own is the right answer, the others its
    negatives) and, when given, the hard ``negatives: (M, D)`` shared by every anchor; its loss
    is the cross-entropy of ``scale * cos(anchor_i, candidate)`` over the N + M candidates.
    ``info_nce`` with ``temperature = 1 / scale`` is the same loss without hard negatives.
    """
    name = "multiple_negatives_ranking_loss"
    _check_reduction(name, reduction)
    _check_rows(name, "anchors", anchors, 2 if negatives is None else 1)
    _check_float(name, "positives", positives)
    _check_same_shape(name, "anchors", anchors, "positives", positives)
    if not scale > 0:
        raise ValueError(f"{name}: scale must be positive, got {scale}")
    candidates = positives
    if negatives is not None:
        _check_rows(name, "negatives", negatives, 1)
        if negatives.shape[1] != anchors.shape[1]:
            raise RuntimeError(
                f"{name}: negatives must have shape (M, {anchors.shape[1]}) for anchors of shape "
                f"{tuple(anchors.shape)}, got {tuple(negatives.shape)}"
            )
        candidates = cat([positives, negatives])  # (N + M, D)
    scores = matmul(normalize(anchors, dim=1), normalize(candidates, dim=1).transpose(0, 1)) * scale  # (N, N + M)
    target = array_module(anchors.data).arange(anchors.shape[0])
    return cross_entropy(scores, _class_indices(target, anchors), reduction=reduction)


def negative_cosine_similarity(p: Tensor, z: Tensor) -> Tensor:
    """SimSiam's ``D(p, z) = -mean_i cos(p_i, z_i)`` of predictions and targets ``(N, D)``.

    The stop-gradient is the caller's: pass ``z.detach()`` (the symmetric SimSiam loss is
    ``0.5 * D(p1, z2.detach()) + 0.5 * D(p2, z1.detach())``); without it the gradient flows
    into both branches, which is what lets the representation collapse.
    """
    _check_rows("negative_cosine_similarity", "p", p, 1)
    _check_float("negative_cosine_similarity", "z", z)
    _check_same_shape("negative_cosine_similarity", "p", p, "z", z)
    return -cosine_similarity(p, z, dim=1).mean()
