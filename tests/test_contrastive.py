"""NT-Xent, InfoNCE, the multiple negatives ranking loss, SimSiam's negative cosine and the
metric-learning loss modules (TripletMarginLoss, CosineEmbeddingLoss): values, stability at tiny
temperatures, errors, the modules, and PyTorch's modules or formulations of the same losses. The property tests
(forward against NumPy, gradients, double backward) come from their op_db entries."""

from __future__ import annotations

import math

import numpy as np
import pytest

import minigrad as mg
import minigrad.functional as F
import nn


def _leaf(array, dtype=np.float64):
    return mg.tensor(np.asarray(array, dtype=dtype), requires_grad=True)


def test_nt_xent_of_orthogonal_identical_views_has_its_closed_form():
    n, tau = 3, 0.5
    z = np.eye(n) * 2.0
    loss = F.nt_xent(mg.tensor(z), mg.tensor(z), temperature=tau)
    # each anchor: positive similarity 1, 2N - 2 negatives at similarity 0
    expected = -math.log(math.exp(1 / tau) / (math.exp(1 / tau) + 2 * n - 2))
    assert float(loss.data) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("temperature", [0.01, 0.001])
def test_tiny_temperatures_give_finite_values_and_gradients(dtype, temperature):
    rng = np.random.default_rng(0)
    z1 = rng.normal(size=(8, 16)) * 1e3
    z2 = z1 + rng.normal(size=(8, 16))  # nearly identical views: logits near 1 / temperature, up to 1000
    negatives = rng.normal(size=(8, 5, 16))
    for loss_of in (
        lambda a, b: F.nt_xent(a, b, temperature),
        lambda a, b: F.info_nce(a, b, temperature=temperature),
        lambda a, b: F.info_nce(a, b, mg.tensor(negatives.astype(dtype)), temperature=temperature),
    ):
        a, b = _leaf(z1, dtype), _leaf(z2, dtype)
        loss = loss_of(a, b)
        loss.backward()
        assert np.isfinite(float(loss.detach().cpu().numpy()))
        assert np.isfinite(a.grad.detach().cpu().numpy()).all() and np.isfinite(b.grad.detach().cpu().numpy()).all()


def test_nt_xent_gradients_are_finite_in_float64_double_backward_at_small_temperature():
    rng = np.random.default_rng(1)
    a, b = _leaf(rng.normal(size=(4, 3))), _leaf(rng.normal(size=(4, 3)))
    (grad_a,) = mg.grad(F.nt_xent(a, b, 0.01), [a], create_graph=True)
    (grad_aa,) = mg.grad((grad_a * grad_a).sum(), [a])
    assert np.isfinite(grad_aa.detach().cpu().numpy()).all()


def test_module_gradchecks():
    rng = np.random.default_rng(2)
    z1, z2 = _leaf(rng.normal(size=(3, 4))), _leaf(rng.normal(size=(3, 4)))
    negatives = _leaf(rng.normal(size=(3, 2, 4)))
    assert mg.gradcheck(nn.NTXentLoss(temperature=0.2), (z1, z2))
    assert mg.gradcheck(nn.InfoNCELoss(temperature=0.2, reduction="sum"), (z1, z2, negatives))
    assert mg.gradgradcheck(nn.NTXentLoss(temperature=0.2), (z1, z2))


def test_negative_cosine_similarity_stop_gradient_is_the_callers_detach():
    rng = np.random.default_rng(3)
    p, z = _leaf(rng.normal(size=(4, 5))), _leaf(rng.normal(size=(4, 5)))
    F.negative_cosine_similarity(p, z.detach()).backward()
    assert p.grad is not None and z.grad is None
    F.negative_cosine_similarity(p, z).backward()
    assert z.grad is not None
    aligned = F.negative_cosine_similarity(p.detach(), 3 * p.detach())
    assert float(aligned.data) == pytest.approx(-1.0)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: F.nt_xent(mg.ones(1, 3), mg.ones(1, 3)), r"nt_xent: needs a batch of at least 2.*\(1, 3\)"),
        (lambda: F.nt_xent(mg.ones(2, 3), mg.ones(2, 4)), r"nt_xent: z1 and z2 .*\(2, 3\) and \(2, 4\)"),
        (lambda: F.nt_xent(mg.ones(2, 3, 1), mg.ones(2, 3, 1)), r"nt_xent: z1 must have shape \(N, D\)"),
        (lambda: F.info_nce(mg.ones(1, 3), mg.ones(1, 3)), r"info_nce: needs a batch of at least 2.*\(1, 3\)"),
        (lambda: F.info_nce(mg.ones(2, 3), mg.ones(3, 3)), r"info_nce: query and positive_key"),
        (
            lambda: F.info_nce(mg.ones(2, 3), mg.ones(2, 3), mg.ones(3, 4, 3)),
            r"info_nce: negative_keys must have shape \(M, 3\) or \(2, M, 3\).*\(3, 4, 3\)",
        ),
        (lambda: F.negative_cosine_similarity(mg.ones(2, 3), mg.ones(2)), r"negative_cosine_similarity: p and z"),
    ],
)
def test_bad_shapes_raise_naming_the_function(call, message):
    with pytest.raises(RuntimeError, match=message):
        call()


def test_bad_temperature_and_reduction():
    with pytest.raises(ValueError, match="nt_xent: temperature must be positive, got 0"):
        F.nt_xent(mg.ones(2, 3), mg.ones(2, 3), temperature=0)
    with pytest.raises(ValueError, match="info_nce: 'avg' is not a valid value for reduction"):
        F.info_nce(mg.ones(2, 3), mg.ones(2, 3), reduction="avg")


def test_info_nce_with_one_query_and_explicit_negatives():
    loss = F.info_nce(mg.tensor([[1.0, 0.0]]), mg.tensor([[1.0, 0.0]]), mg.tensor([[0.0, 1.0]]), temperature=1.0)
    assert float(loss.data) == pytest.approx(-math.log(math.e / (math.e + 1)))


# ------------------------------------------------------------------- against PyTorch
def _torch_nt_xent(torch, z1, z2, temperature):
    tf = torch.nn.functional
    n = z1.shape[0]
    z = tf.normalize(torch.cat([z1, z2]), dim=1)
    logits = (z @ z.T / temperature).masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
    return tf.cross_entropy(logits, torch.cat([torch.arange(n, 2 * n), torch.arange(n)]))


def _torch_info_nce(torch, query, positive, negatives, temperature, reduction):
    tf = torch.nn.functional
    q, p = tf.normalize(query, dim=1), tf.normalize(positive, dim=1)
    if negatives is None:
        logits, target = q @ p.T, torch.arange(len(q))
    else:
        k = tf.normalize(negatives, dim=-1)
        negative_logits = q @ k.T if k.ndim == 2 else torch.einsum("nd,nmd->nm", q, k)
        logits = torch.cat([(q * p).sum(1, keepdim=True), negative_logits], 1)
        target = torch.zeros(len(q), dtype=torch.long)
    return tf.cross_entropy(logits / temperature, target, reduction=reduction)


def _compare(torch, ours, theirs, arrays):
    leaves = [_leaf(a) for a in arrays]
    torch_leaves = [torch.tensor(a, requires_grad=True) for a in arrays]
    loss, expected = ours(*leaves), theirs(*torch_leaves)
    loss.sum().backward()
    expected.sum().backward()
    np.testing.assert_allclose(loss.detach().cpu().numpy(), expected.detach().cpu().numpy(), rtol=1e-10, atol=1e-12)
    for mine, reference in zip(leaves, torch_leaves):
        np.testing.assert_allclose(
            mine.grad.detach().cpu().numpy(), reference.grad.cpu().numpy(), rtol=1e-8, atol=1e-10
        )


@pytest.mark.parametrize("temperature", [0.5, 0.07, 0.01])
def test_nt_xent_matches_torch(temperature):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    arrays = [rng.normal(size=(6, 5)), rng.normal(size=(6, 5))]
    _compare(
        torch,
        lambda a, b: F.nt_xent(a, b, temperature),
        lambda a, b: _torch_nt_xent(torch, a, b, temperature),
        arrays,
    )


@pytest.mark.parametrize("negatives_shape", [None, (4, 5), (6, 4, 5)])
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_info_nce_matches_torch(negatives_shape, reduction):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    arrays = [rng.normal(size=(6, 5)), rng.normal(size=(6, 5))]
    if negatives_shape is not None:
        arrays.append(rng.normal(size=negatives_shape))
    _compare(
        torch,
        lambda q, p, *k: F.info_nce(q, p, *k, temperature=0.1, reduction=reduction),
        lambda q, p, *k: _torch_info_nce(torch, q, p, k[0] if k else None, 0.1, reduction),
        arrays,
    )


def _torch_multiple_negatives_ranking(torch, anchors, positives, negatives, scale):
    tf = torch.nn.functional
    candidates = positives if negatives is None else torch.cat([positives, negatives])
    scores = scale * tf.normalize(anchors, dim=1) @ tf.normalize(candidates, dim=1).T
    return tf.cross_entropy(scores, torch.arange(len(anchors)))


@pytest.mark.parametrize("hard_negatives", [False, True])
def test_multiple_negatives_ranking_loss_matches_torch(hard_negatives):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(6)
    arrays = [rng.normal(size=(6, 5)), rng.normal(size=(6, 5))] + ([rng.normal(size=(3, 5))] if hard_negatives else [])
    _compare(
        torch,
        lambda a, p, *n: nn.MultipleNegativesRankingLoss(scale=20.0)(a, p, *n),
        lambda a, p, *n: _torch_multiple_negatives_ranking(torch, a, p, n[0] if n else None, 20.0),
        arrays,
    )


def test_multiple_negatives_ranking_loss_is_info_nce_at_temperature_one_over_scale():
    rng = np.random.default_rng(7)
    a, p = mg.tensor(rng.normal(size=(5, 4))), mg.tensor(rng.normal(size=(5, 4)))
    ranking = F.multiple_negatives_ranking_loss(a, p, scale=20.0, reduction="none")
    np.testing.assert_allclose(
        ranking.detach().cpu().numpy(),
        F.info_nce(a, p, temperature=1 / 20, reduction="none").detach().cpu().numpy(),
        rtol=1e-12,
    )


def test_multiple_negatives_ranking_loss_errors():
    with pytest.raises(RuntimeError, match=r"multiple_negatives_ranking_loss: needs a batch of at least 2.*\(1, 3\)"):
        F.multiple_negatives_ranking_loss(mg.ones(1, 3), mg.ones(1, 3))
    with pytest.raises(RuntimeError, match=r"negatives must have shape \(M, 3\).*\(2, 4\)"):
        F.multiple_negatives_ranking_loss(mg.ones(2, 3), mg.ones(2, 3), mg.ones(2, 4))
    with pytest.raises(ValueError, match="multiple_negatives_ranking_loss: scale must be positive, got -1"):
        F.multiple_negatives_ranking_loss(mg.ones(2, 3), mg.ones(2, 3), scale=-1)


def test_metric_learning_modules_gradcheck():
    rng = np.random.default_rng(8)
    a, p, n = (_leaf(rng.normal(size=(4, 3))) for _ in range(3))
    target = mg.tensor(np.array([1, -1, 1, -1]))
    assert mg.gradcheck(nn.TripletMarginLoss(margin=0.5, swap=True), (a, p, n))
    assert mg.gradcheck(lambda x, y: nn.CosineEmbeddingLoss(margin=-0.9, reduction="sum")(x, y, target), (a, p))
    assert mg.gradcheck(nn.MultipleNegativesRankingLoss(scale=5.0), (a, p, n))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_metric_learning_modules_match_torch(reduction):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(9)
    arrays = [rng.normal(size=(6, 5)) for _ in range(3)]
    target = np.array([1, -1, 1, -1, -1, 1])
    _compare(
        torch,
        nn.TripletMarginLoss(margin=2.0, p=1.5, swap=True, reduction=reduction),
        torch.nn.TripletMarginLoss(margin=2.0, p=1.5, swap=True, reduction=reduction),
        arrays,
    )
    _compare(
        torch,
        lambda x, y: nn.CosineEmbeddingLoss(margin=-0.2, reduction=reduction)(x, y, mg.tensor(target)),
        lambda x, y: torch.nn.CosineEmbeddingLoss(margin=-0.2, reduction=reduction)(x, y, torch.tensor(target)),
        arrays[:2],
    )
