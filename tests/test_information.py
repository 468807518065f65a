"""Entropy, Jensen-Shannon divergence, multi-class focal loss and the soft-F1 loss: compositions of
differentiable ops, checked against their NumPy formulas, with gradients by finite differences."""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg
import minigrad.functional as F

rng = np.random.default_rng(0)


def distributions(n=5, c=4, zeros=False):
    p = rng.random((n, c)) + 0.05
    if zeros:
        p[0, 1] = p[2, 0] = 0.0
    return p / p.sum(1, keepdims=True)


def entropy_np(p):
    return -np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1)), 0), axis=-1)


def kl_np(p, q):
    return np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1) / q), 0), axis=-1)


def test_entropy_matches_numpy_and_log_input():
    p = distributions(zeros=True)
    np.testing.assert_allclose(F.entropy(mg.tensor(p)).cpu().numpy(), entropy_np(p), rtol=1e-12)
    q = distributions()
    np.testing.assert_allclose(F.entropy(mg.tensor(np.log(q)), log_input=True).cpu().numpy(), entropy_np(q), rtol=1e-12)
    np.testing.assert_allclose(F.entropy(mg.tensor(q.T), dim=0).cpu().numpy(), entropy_np(q), rtol=1e-12)
    assert F.entropy(mg.full((4,), 0.25, dtype=mg.float64)).item() == pytest.approx(np.log(4))


def test_entropy_gradient():
    logits = mg.tensor(rng.standard_normal((3, 5)), requires_grad=True)
    assert mg.gradcheck(lambda x: F.entropy(F.log_softmax(x, 1), log_input=True), [logits])
    assert mg.gradcheck(lambda x: F.entropy(F.softmax(x, 1)), [logits])


@pytest.mark.parametrize("log_target", [False, True])
def test_js_div_matches_numpy(log_target):
    p, q = distributions(zeros=True), distributions()
    m = (p + q) / 2
    expected = 0.5 * kl_np(p, m) + 0.5 * kl_np(q, m)
    target = mg.tensor(np.log(p + 1e-300) if log_target else p)  # log 0 would be -inf
    js = F.js_div(mg.tensor(np.log(q)), target, reduction="none", log_target=log_target)
    np.testing.assert_allclose(js.cpu().numpy().sum(1), expected, rtol=1e-9, atol=1e-12)
    batchmean = F.js_div(mg.tensor(np.log(q)), target, reduction="batchmean", log_target=log_target)
    assert batchmean.item() == pytest.approx(expected.mean(), rel=1e-9)


def test_js_div_is_symmetric_bounded_and_differentiable():
    p, q = distributions(), distributions()
    forward = F.js_div(mg.tensor(np.log(q)), mg.tensor(p), reduction="batchmean").item()
    backward = F.js_div(mg.tensor(np.log(p)), mg.tensor(q), reduction="batchmean").item()
    assert forward == pytest.approx(backward, rel=1e-12)
    disjoint = F.js_div(mg.tensor(np.log([[1e-300, 1.0]])), mg.tensor([[1.0, 0.0]]), reduction="batchmean").item()
    assert disjoint == pytest.approx(np.log(2))
    logits = mg.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    target = mg.tensor(distributions(3, 4), requires_grad=True)
    assert mg.gradcheck(lambda x, t: F.js_div(F.log_softmax(x, 1), t, reduction="sum"), [logits, target])


def test_focal_loss_matches_formula_and_cross_entropy():
    logits, target = rng.standard_normal((6, 4)), np.array([0, 3, 1, 1, 2, 0])
    alpha = np.array([0.1, 0.2, 0.3, 0.4])
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    p_t = p[np.arange(6), target]
    expected = -alpha[target] * (1 - p_t) ** 2 * np.log(p_t)
    x, t = mg.tensor(logits), mg.tensor(target)
    got = F.focal_loss(x, t, gamma=2.0, weight=mg.tensor(alpha), reduction="none")
    np.testing.assert_allclose(got.cpu().numpy(), expected, rtol=1e-12)
    assert F.focal_loss(x, t, gamma=2.0, weight=mg.tensor(alpha)).item() == pytest.approx(expected.mean())
    assert F.focal_loss(x, t, gamma=0.0).item() == pytest.approx(F.cross_entropy(x, t).item(), rel=1e-12)
    spatial = mg.tensor(rng.standard_normal((2, 4, 3, 3)))
    labels = mg.tensor(rng.integers(0, 4, (2, 3, 3)))
    assert F.focal_loss(spatial, labels, gamma=0.0).item() == pytest.approx(F.cross_entropy(spatial, labels).item())


def test_focal_loss_gradient_and_errors():
    logits = mg.tensor(rng.standard_normal((5, 3)), requires_grad=True)
    target = mg.tensor(np.array([0, 2, 1, 1, 0]))
    assert mg.gradcheck(lambda x: F.focal_loss(x, target, gamma=1.5), [logits])
    with pytest.raises(IndexError, match="focal_loss"):
        F.focal_loss(logits, mg.tensor(np.array([0, 5, 1, 1, 0])))
    with pytest.raises(ValueError, match="gamma"):
        F.focal_loss(logits, target, gamma=-1.0)


def f1_np(p, y):
    return 2 * (p * y).sum(0) / (p.sum(0) + y.sum(0) + 1e-7)


def test_soft_f1_binary_and_multiclass():
    logits, y = rng.standard_normal(8), (rng.random(8) > 0.5).astype(float)
    p = 1 / (1 + np.exp(-logits))
    got = F.soft_f1_loss(mg.tensor(logits), mg.tensor(y)).item()
    assert got == pytest.approx(1 - f1_np(p, y))
    logits, labels = rng.standard_normal((8, 3)), np.array([0, 1, 2, 2, 1, 0, 0, 2])
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    got = F.soft_f1_loss(mg.tensor(logits), mg.tensor(labels)).item()
    assert got == pytest.approx(1 - f1_np(p, np.eye(3)[labels]).mean())
    # With saturated (hard) predictions the soft F1 is the F1 score.
    hard = F.soft_f1_loss(mg.tensor([50.0, 50.0, -50.0, -50.0]), mg.tensor([1.0, 0.0, 1.0, 0.0])).item()
    assert hard == pytest.approx(1 - 0.5)


def test_soft_f1_gradient_and_errors():
    logits = mg.tensor(rng.standard_normal((6, 3)), requires_grad=True)
    labels = mg.tensor(np.array([0, 1, 2, 2, 1, 0]))
    assert mg.gradcheck(lambda x: F.soft_f1_loss(x, labels), [logits])
    with pytest.raises(RuntimeError, match="soft_f1_loss"):
        F.soft_f1_loss(logits, mg.tensor(np.zeros(5, dtype=np.int64)))


def test_against_torch():
    torch = pytest.importorskip("torch")
    logits, target = rng.standard_normal((6, 4)), rng.integers(0, 4, 6)
    entropy = torch.distributions.Categorical(logits=torch.tensor(logits)).entropy().cpu().numpy()
    np.testing.assert_allclose(F.entropy(F.log_softmax(mg.tensor(logits), 1), log_input=True).cpu().numpy(), entropy)
    ce = torch.nn.functional.cross_entropy(torch.tensor(logits), torch.tensor(target)).item()
    assert F.focal_loss(mg.tensor(logits), mg.tensor(target), gamma=0.0).item() == pytest.approx(ce)
