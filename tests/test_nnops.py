"""Tests for the nn ops beyond the op database: fused kernels against the primitive
compositions they replace, PyTorch's conventions pinned exactly (subgradients at kinks,
reductions, running statistics, masked attention rows), comparisons with torch, dropout's
randomness, and the errors users see."""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg
import minigrad.functional as F
import nn
from minigrad.autograd import SavedTensor
from minigrad.ops.attention import attention_reference
from minigrad.ops.norm import normalization_reference

rng = np.random.default_rng(0)


def leaf(array):
    return mg.tensor(np.asarray(array, dtype=np.float64), requires_grad=True)


def grads_of(fn, inputs, seed):
    """The output of ``fn(*inputs)`` and the gradients of ``sum(output * seed)``."""
    out = fn(*inputs)
    wrt = [x for x in inputs if isinstance(x, mg.Tensor) and x.requires_grad]
    return out.detach().cpu().numpy(), [g.cpu().numpy() for g in mg.grad(out, wrt, mg.tensor(seed))]


def assert_same(fn_a, fn_b, inputs, atol=1e-10):
    """Same output and same gradients (for one random output seed)."""
    seed = rng.standard_normal(fn_a(*inputs).shape)
    out_a, grads_a = grads_of(fn_a, inputs, seed)
    out_b, grads_b = grads_of(fn_b, inputs, seed)
    np.testing.assert_allclose(out_a, out_b, atol=atol, rtol=1e-9)
    for a, b in zip(grads_a, grads_b):
        np.testing.assert_allclose(a, b, atol=atol, rtol=1e-9)


# ------------------------------------------------------- fused kernels vs compositions
def _log_softmax_composed(x, dim):
    return x - x.logsumexp(dim, keepdim=True)


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax_and_log_softmax_match_their_composition(dim):
    x = leaf(rng.standard_normal((3, 4, 5)) * 3)
    assert_same(lambda x: F.log_softmax(x, dim), lambda x: _log_softmax_composed(x, dim), [x])
    assert_same(lambda x: F.softmax(x, dim), lambda x: _log_softmax_composed(x, dim).exp(), [x])


def _cross_entropy_composed(x, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """PyTorch's definition in primitive ops, class dim 1 (or 0 for one sample)."""
    class_dim = 0 if x.ndim == 1 else 1
    logp = _log_softmax_composed(x, class_dim)
    c = x.shape[class_dim]
    w_shape = [1] * x.ndim
    w_shape[class_dim] = c
    w = mg.ones(c, dtype=x.dtype) if weight is None else weight
    if target.dtype.kind == "f":
        soft = target * (1 - label_smoothing) + label_smoothing / c
        loss = -(soft * logp * w.reshape(w_shape)).sum(class_dim)
        return loss.mean() if reduction == "mean" else (loss.sum() if reduction == "sum" else loss)
    valid = target != ignore_index
    safe = mg.where(valid, target, mg.zeros_like(target))
    row_weight = w[safe] * valid.to(x.dtype)
    picked = logp.gather(class_dim, safe.unsqueeze(class_dim)).squeeze(class_dim)
    smooth = -(logp * w.reshape(w_shape)).sum(class_dim) * valid.to(x.dtype)
    loss = (1 - label_smoothing) * (-picked * row_weight) + label_smoothing / c * smooth
    if reduction == "mean":
        return loss.sum() / row_weight.sum()
    return loss.sum() if reduction == "sum" else loss


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("layout", [(5, 4), (3, 4, 2), (4,)])
def test_cross_entropy_matches_its_composition(reduction, smoothing, weighted, layout):
    x = leaf(rng.standard_normal(layout) * 2)
    c = layout[0] if len(layout) == 1 else layout[1]
    target_shape = layout[1:] if len(layout) == 1 else layout[:1] + layout[2:]
    target = mg.tensor(rng.integers(0, c, target_shape))
    ignore_index = 2 if target.ndim else -100  # (one sample ignored would make the mean 0/0)
    if target.ndim:
        target.data.reshape(-1)[-1] = 2
    weight = mg.tensor(rng.random(c) + 0.5, dtype=mg.float64) if weighted else None
    kwargs = dict(weight=weight, ignore_index=ignore_index, reduction=reduction, label_smoothing=smoothing)
    assert_same(
        lambda x: F.cross_entropy(x, target, **kwargs), lambda x: _cross_entropy_composed(x, target, **kwargs), [x]
    )
    probabilities = leaf(rng.random(layout))
    kwargs.pop("ignore_index")
    assert_same(
        lambda x, p: F.cross_entropy(x, p, **kwargs),
        lambda x, p: _cross_entropy_composed(x, p, **kwargs),
        [x, probabilities],
    )


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(4, 3), (4, 3, 5), (2, 3, 2, 3)])
def test_batch_norm_matches_its_composition(training, shape):
    x, weight, bias = leaf(rng.standard_normal(shape)), leaf(rng.random(3) + 0.5), leaf(rng.standard_normal(3))
    param_shape = (1, 3) + (1,) * (len(shape) - 2)
    mean, var = rng.standard_normal(3), rng.random(3) + 0.5
    stats = None if training else (mg.tensor(mean.reshape(param_shape)).data, mg.tensor(var.reshape(param_shape)).data)
    axes = (0,) + tuple(range(2, len(shape)))
    assert_same(
        lambda x, w, b: F.batch_norm(x, mg.tensor(mean), mg.tensor(var), w, b, training=training),
        lambda x, w, b: normalization_reference(x, w, b, shape, axes, param_shape, 1e-5, stats=stats),
        [x, weight, bias],
    )


def test_layer_group_and_rms_norm_match_their_composition():
    x = leaf(rng.standard_normal((2, 6, 3, 2)))
    w, b = leaf(rng.random((3, 2)) + 0.5), leaf(rng.standard_normal((3, 2)))
    assert_same(
        lambda x, w, b: F.layer_norm(x, (3, 2), w, b, eps=1e-3),
        lambda x, w, b: normalization_reference(x, w, b, x.shape, (2, 3), (3, 2), 1e-3),
        [x, w, b],
    )
    assert_same(
        lambda x, w: F.rms_norm(x, (3, 2), w, eps=1e-3),
        lambda x, w: normalization_reference(x, w, None, x.shape, (2, 3), (3, 2), 1e-3, centered=False),
        [x, w],
    )
    wc, bc = leaf(rng.random(6) + 0.5), leaf(rng.standard_normal(6))
    assert_same(
        lambda x, w, b: F.group_norm(x, 3, w, b),
        lambda x, w, b: normalization_reference(x, w, b, (2, 3, 12), (2,), (1, 6, 1, 1), 1e-5),
        [x, wc, bc],
    )


@pytest.mark.parametrize("kind", ["none", "causal", "bool", "float", "dropout"])
def test_attention_matches_its_composition(kind):
    q, k, v = (
        leaf(rng.standard_normal((2, 3, 4))),
        leaf(rng.standard_normal((2, 5, 4))),
        leaf(rng.standard_normal((2, 5, 3))),
    )
    inputs, kwargs, mask, dropout_mask = [q, k, v], {}, None, None
    if kind == "causal":
        kwargs["is_causal"] = True
        mask = mg.tensor(np.where(np.tril(np.ones((3, 5), dtype=bool)), 0.0, -np.inf))
    elif kind == "bool":
        allowed = rng.random((3, 5)) > 0.4
        allowed[1] = False  # a fully masked row
        kwargs["attn_mask"] = mg.tensor(allowed)
        mask = mg.tensor(np.where(allowed, 0.0, -np.inf))
    elif kind == "float":
        mask = leaf(rng.standard_normal((1, 5)))
        inputs.append(mask)
    elif kind == "dropout":
        mg.manual_seed(3)
        draw = mg.backend.generator(mg.backend.get_default_device()).random((2, 3, 5))  # as the fused op draws
        dropout_mask = mg.Tensor._make((draw >= 0.4) * (1 / 0.6))
        kwargs["dropout_p"] = 0.4

    def fused(q, k, v, *m):
        mg.manual_seed(3)
        return F.scaled_dot_product_attention(q, k, v, *m, **kwargs)

    def composed(q, k, v, *m):
        return attention_reference(q, k, v, m[0] if m else mask, 0.5, dropout_mask)

    assert_same(fused, composed, inputs)


def test_fused_ops_double_backward_through_their_composition():
    x = leaf(rng.standard_normal((4, 3)))
    target = mg.tensor([0, 2, 1, 2])
    for fn in (
        lambda x: F.cross_entropy(x, target, label_smoothing=0.1),
        lambda x: F.batch_norm(x, None, None, training=True),
        lambda x: F.layer_norm(x, (3,)),
        lambda x: F.softmax(x, 1),
        lambda x: F.log_softmax(x, 0),
    ):
        assert mg.gradgradcheck(fn, (x,))


# ---------------------------------------------------------------- conventions, exact
def test_subgradients_at_kinks_are_pytorchs():
    x = mg.tensor([-1.0, 0.0, 1.0, 6.0], requires_grad=True)
    cases = [
        (lambda x: F.leaky_relu(x, 0.1), [0.1, 0.1, 1.0, 1.0]),
        (F.relu6, [0.0, 0.0, 1.0, 0.0]),
        (lambda x: F.hardtanh(x), [0.0, 1.0, 0.0, 0.0]),
        (lambda x: F.elu(x, 2.0), [2 * np.exp(-1.0), 2.0, 1.0, 1.0]),
    ]
    for fn, expected in cases:
        x.grad = None
        fn(x).sum().backward()
        np.testing.assert_allclose(x.grad.cpu().numpy(), expected, rtol=1e-7)


def test_cross_entropy_is_finite_for_huge_logits():
    x = mg.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 3.0]], requires_grad=True)
    loss = F.cross_entropy(x, mg.tensor([1, 1]))
    loss.backward()
    assert loss.item() == pytest.approx(1e4)
    np.testing.assert_allclose(x.grad.cpu().numpy(), [[0.5, -0.5, 0.0], [0.0, 0.0, 0.0]], atol=1e-7)
    soft = F.cross_entropy(x.detach().float(), mg.tensor([[0.0, 1.0, 0.0], [0.5, 0.5, 0.0]]), reduction="none")
    assert np.isfinite(soft.cpu().numpy()).all()


def test_cross_entropy_mean_of_all_ignored_is_nan_and_sum_is_zero():
    x = mg.tensor(rng.standard_normal((2, 3)))
    target = mg.tensor([-100, -100])
    assert np.isnan(F.cross_entropy(x, target).item())
    assert F.cross_entropy(x, target, reduction="sum").item() == 0.0


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("create_graph", [False, True])
def test_all_ignored_mean_losses_give_zero_gradients_as_pytorch(smoothing, create_graph):
    # PyTorch: the loss is 0/0 = nan, but no row contributes, so every gradient is 0 (not nan).
    x = mg.tensor(rng.standard_normal((2, 3, 4)), requires_grad=True)
    target = mg.tensor(np.full((2, 4), -100))
    (grad,) = mg.autograd.grad(F.cross_entropy(x, target, label_smoothing=smoothing), [x], create_graph=create_graph)
    assert np.array_equal(grad.detach().cpu().numpy(), np.zeros((2, 3, 4)))
    (grad,) = mg.autograd.grad(F.nll_loss(x, target), [x])
    assert np.array_equal(grad.cpu().numpy(), np.zeros((2, 3, 4)))


def test_cross_entropy_saves_probabilities_not_logits():
    x = mg.randn(4, 5, requires_grad=True)
    loss = F.cross_entropy(x, mg.tensor([0, 1, 2, 3]))
    saved = [s for s in loss.grad_fn._saved if isinstance(s, SavedTensor)]
    assert [s.output_nr for s in saved] == [1]  # the hidden probabilities output, nothing else
    np.testing.assert_allclose(mg.backend.to_numpy(saved[0].data).sum(-1), 1, rtol=1e-6)


def test_fully_masked_attention_rows_give_zeros_and_zero_gradients():
    q, k, v = leaf(rng.standard_normal((3, 2))), leaf(rng.standard_normal((4, 2))), leaf(rng.standard_normal((4, 2)))
    allowed = np.ones((3, 4), dtype=bool)
    allowed[1] = False
    out = F.scaled_dot_product_attention(q, k, v, mg.tensor(allowed))
    out.sum().backward()
    np.testing.assert_array_equal(out.detach().cpu().numpy()[1], 0)
    np.testing.assert_array_equal(q.grad.cpu().numpy()[1], 0)
    assert np.isfinite(k.grad.cpu().numpy()).all() and np.isfinite(v.grad.cpu().numpy()).all()


def test_embedding_padding_row_gets_no_gradient_and_repeats_accumulate():
    weight = leaf(rng.standard_normal((4, 2)))
    out = F.embedding(mg.tensor([[1, 0, 1], [3, 1, 0]]), weight, padding_idx=0)
    out.sum().backward()
    np.testing.assert_array_equal(weight.grad.cpu().numpy(), [[0, 0], [3, 3], [0, 0], [1, 1]])


def test_one_hot():
    out = F.one_hot(mg.tensor([[0, 2], [1, 2]]))
    assert out.dtype == mg.int64 and out.shape == (2, 2, 3)
    np.testing.assert_array_equal(out.cpu().numpy(), np.eye(3, dtype=np.int64)[[[0, 2], [1, 2]]])
    assert F.one_hot(mg.tensor([1]), num_classes=4).tolist() == [[0, 1, 0, 0]]


# -------------------------------------------------------------------------- dropout
def test_dropout_is_reproducible_from_the_seed():
    x = mg.ones(100, 10)
    mg.manual_seed(7)
    a = F.dropout(x, 0.3)
    mg.manual_seed(7)
    b = F.dropout(x, 0.3)
    np.testing.assert_array_equal(a.cpu().numpy(), b.cpu().numpy())
    assert not np.array_equal(a.cpu().numpy(), F.dropout(x, 0.3).cpu().numpy())


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_statistics(p):
    x = mg.ones(400, 500)
    out = F.dropout(x, p).cpu().numpy()
    kept = out != 0
    np.testing.assert_allclose(out[kept], 1 / (1 - p), rtol=1e-6)
    assert abs(kept.mean() - (1 - p)) < 4 * np.sqrt(p * (1 - p) / kept.size)  # within 4 sigma
    assert abs(out.mean() - 1) < 0.02


def test_dropout_extremes_and_eval():
    x = mg.randn(3, 4, requires_grad=True)
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x
    zeros = F.dropout(x, 1.0)
    zeros.sum().backward()
    assert not zeros.detach().cpu().numpy().any() and not x.grad.cpu().numpy().any()


def test_dropout2d_and_drop_path_drop_whole_channels_and_samples():
    x = mg.ones(50, 8, 3, 3)
    channels = F.dropout2d(x, 0.5).cpu().numpy()
    assert set(np.unique(channels.std(axis=(2, 3)))) == {0.0}  # a channel is all kept or all dropped
    assert 0.3 < (channels[:, :, 0, 0] != 0).mean() < 0.7
    samples = F.drop_path(x, 0.5, training=True).cpu().numpy()
    assert set(np.unique(samples.reshape(50, -1).std(axis=1))) == {0.0}
    assert set(np.unique(samples)) <= {0.0, 2.0}
    assert F.drop_path(x, 0.5) is x  # training defaults to False, as in timm


# ------------------------------------------------------------------------ batch norm
def test_batch_norm_running_statistics_follow_torch_step_for_step():
    torch = pytest.importorskip("torch")
    mean, var = mg.zeros(3), mg.ones(3)
    torch_mean, torch_var = torch.zeros(3), torch.ones(3)
    for step in range(4):
        x = rng.standard_normal((5, 3, 2)).astype(np.float32) * (step + 1) + step
        out = F.batch_norm(mg.tensor(x), mean, var, training=True, momentum=0.2)
        expected = torch.nn.functional.batch_norm(torch.tensor(x), torch_mean, torch_var, training=True, momentum=0.2)
        np.testing.assert_allclose(out.cpu().numpy(), expected.cpu().numpy(), atol=1e-5)
        np.testing.assert_allclose(mean.cpu().numpy(), torch_mean.cpu().numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(var.cpu().numpy(), torch_var.cpu().numpy(), rtol=1e-5)
    evaluated = F.batch_norm(mg.tensor(x), mean, var)
    expected = torch.nn.functional.batch_norm(torch.tensor(x), torch_mean, torch_var)
    np.testing.assert_allclose(evaluated.cpu().numpy(), expected.cpu().numpy(), atol=1e-5)


def test_batch_norm_update_bumps_the_buffers_version():
    mean, var = mg.zeros(2), mg.ones(2)
    before = mean._version_value()
    F.batch_norm(mg.randn(4, 2), mean, var, training=True)
    assert mean._version_value() == before + 1


# ------------------------------------------------------------------ against PyTorch
def _torch_cases():
    x = rng.standard_normal((4, 6))
    x4 = rng.standard_normal((2, 6, 3, 2))
    probs = rng.random((4, 6))
    target = rng.integers(0, 6, 4)
    w6 = rng.random(6) + 0.5
    cases = {
        "leaky_relu": (lambda f, x: f.leaky_relu(x, 0.2), [x]),
        "gelu": (lambda f, x: f.gelu(x), [x * 3]),
        "gelu_tanh": (lambda f, x: f.gelu(x, approximate="tanh"), [x * 3]),
        "silu": (lambda f, x: f.silu(x), [x * 5]),
        "softplus": (lambda f, x: f.softplus(x, 2.0, 3.0), [x * 3]),
        "elu": (lambda f, x: f.elu(x, 0.7), [x]),
        "glu": (lambda f, x: f.glu(x, 0), [x]),
        "logsigmoid": (lambda f, x: f.logsigmoid(x), [x * 10]),
        "hardtanh": (lambda f, x: f.hardtanh(x, -0.5, 0.8), [x]),
        "relu6": (lambda f, x: f.relu6(x), [x * 5]),
        "mish": (lambda f, x: f.mish(x), [x * 5]),
        "batch_norm": (lambda f, x, w, b: f.batch_norm(x, None, None, w, b, training=True), [x4, w6, w6 - 1]),
        "layer_norm": (lambda f, x, w: f.layer_norm(x, (3, 2), w), [x4, probs[:3, :2]]),
        "group_norm": (lambda f, x, w, b: f.group_norm(x, 2, w, b, eps=0.01), [x4, w6, w6 - 1]),
        "rms_norm": (lambda f, x, w: f.rms_norm(x, (2,), w), [x4, w6[:2]]),
        "normalize": (lambda f, x: f.normalize(x, p=3.0, dim=0), [x]),
        "softmax": (lambda f, x: f.softmax(x, 0), [x]),
        "log_softmax": (lambda f, x: f.log_softmax(x, -1), [x]),
        "cross_entropy": (
            lambda f, x: f.cross_entropy(x, _long(f, target), _float(f, w6), label_smoothing=0.3),
            [x],
        ),
        "cross_entropy_probs": (lambda f, x, p: f.cross_entropy(x, p, reduction="sum"), [x, probs]),
        "nll_loss": (lambda f, x: f.nll_loss(x, _long(f, target), reduction="none"), [x]),
        "mse_loss": (lambda f, x, y: f.mse_loss(x, y), [x, probs]),
        "l1_loss": (lambda f, x, y: f.l1_loss(x, y, reduction="sum"), [x, probs]),
        "smooth_l1_loss": (lambda f, x, y: f.smooth_l1_loss(x, y, beta=0.5), [x, probs]),
        "huber_loss": (lambda f, x, y: f.huber_loss(x, y, delta=0.5), [x, probs]),
        "binary_cross_entropy": (lambda f, p, y: f.binary_cross_entropy(p, y, _float(f, w6)), [probs, probs[::-1]]),
        "bce_with_logits": (
            lambda f, x, y: f.binary_cross_entropy_with_logits(x, y, pos_weight=_float(f, w6)),
            [x * 20, probs],
        ),
        "kl_div": (lambda f, x, y: f.kl_div(x, y, reduction="batchmean"), [x, probs]),
        "cosine_similarity": (lambda f, x, y: f.cosine_similarity(x, y), [x, probs]),
        "pairwise_distance": (lambda f, x, y: f.pairwise_distance(x, y, 3.0), [x, probs]),
        "triplet_margin_loss": (lambda f, a, b, c: f.triplet_margin_loss(a, b, c, swap=True), [x, probs, x[::-1]]),
        "margin_ranking_loss": (
            lambda f, a, b: f.margin_ranking_loss(a, b, _float(f, np.sign(x[:, 1])), 0.2),
            [x[:, 0], probs[:, 0]],
        ),
        "cosine_embedding_loss": (
            lambda f, a, b: f.cosine_embedding_loss(a, b, _long(f, np.array([1, -1, -1, 1])), 0.1),
            [x, probs],
        ),
        "embedding": (
            lambda f, w: f.embedding(
                _long(f, np.array([[0, 2, 2], [4, 0, 1]])), w, padding_idx=2, scale_grad_by_freq=True
            ),
            [x4.reshape(-1, 3)[:5]],
        ),
        "attention": (
            lambda f, q, k, v: f.scaled_dot_product_attention(q, k, v, is_causal=True, scale=0.4),
            [x4[:, :3], x4[:, 3:], x4[:, :3] * 2],
        ),
    }
    return cases


def _long(f, array):
    return _module_tensor(f, np.asarray(array, dtype=np.int64))


def _float(f, array):
    return _module_tensor(f, np.asarray(array, dtype=np.float64))


def _module_tensor(f, array):
    if f is F:
        return mg.tensor(array)
    import torch

    return torch.tensor(array)


_CASES = (
    "leaky_relu gelu gelu_tanh silu softplus elu glu logsigmoid hardtanh relu6 mish batch_norm layer_norm group_norm "
    "rms_norm normalize softmax log_softmax cross_entropy cross_entropy_probs nll_loss mse_loss l1_loss smooth_l1_loss "
    "huber_loss binary_cross_entropy bce_with_logits kl_div cosine_similarity pairwise_distance triplet_margin_loss "
    "margin_ranking_loss cosine_embedding_loss embedding attention"
).split()


@pytest.mark.parametrize("name", _CASES)
def test_matches_torch(name):
    torch = pytest.importorskip("torch")
    fn, arrays = _torch_cases()[name]
    ours = [leaf(a.copy()) for a in arrays]
    theirs = [torch.tensor(a.copy(), requires_grad=True) for a in arrays]
    out, expected = fn(F, *ours), fn(torch.nn.functional, *theirs)
    seed = rng.standard_normal(tuple(expected.shape))
    out.backward(mg.tensor(seed))
    expected.backward(torch.tensor(seed))
    tolerance = 2e-7 if name == "gelu" else 1e-10  # gelu's Phi is a 1.2e-7 fit
    np.testing.assert_allclose(
        out.detach().cpu().numpy(), expected.detach().cpu().numpy(), rtol=tolerance, atol=tolerance
    )
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.grad.cpu().numpy(), b.grad.cpu().numpy(), rtol=10 * tolerance, atol=10 * tolerance)


def test_embedding_max_norm_renormalizes_looked_up_rows_in_place():
    torch = pytest.importorskip("torch")
    weight = rng.standard_normal((5, 3)) * 3
    ours, theirs = mg.tensor(weight.copy()), torch.tensor(weight.copy())
    index = np.array([0, 3, 3])
    out = F.embedding(mg.tensor(index), ours, max_norm=1.5)
    expected = torch.nn.functional.embedding(torch.tensor(index), theirs, max_norm=1.5)
    np.testing.assert_allclose(out.cpu().numpy(), expected.cpu().numpy(), rtol=1e-7)
    np.testing.assert_allclose(ours.cpu().numpy(), theirs.cpu().numpy(), rtol=1e-7)


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "call, error, words",
    [
        (lambda: F.cross_entropy(mg.randn(3, 4), mg.tensor([0.0, 1.0, 2.0])), RuntimeError, "expected target"),
        (lambda: F.cross_entropy(mg.randn(3, 4), mg.tensor([0, 1])), RuntimeError, "(2,)"),
        (lambda: F.cross_entropy(mg.randn(3, 4), mg.tensor([0, 1, 4])), IndexError, "Target 4 is out of bounds"),
        (lambda: F.nll_loss(mg.randn(3, 4), mg.tensor([0, -1, 2])), IndexError, "out of bounds"),
        (lambda: F.cross_entropy(mg.randn(3, 4), mg.tensor([0, 1, 2]), reduction="avg"), ValueError, "reduction"),
        (lambda: F.mse_loss(mg.randn(3), mg.randn(3), reduction="batchmean"), ValueError, "reduction"),
        (lambda: F.cross_entropy(mg.randn(3, 4), mg.tensor([0, 1, 2]), weight=mg.ones(3)), RuntimeError, "(4,)"),
        (lambda: F.layer_norm(mg.randn(2, 3), (4,)), RuntimeError, "normalized_shape"),
        (lambda: F.layer_norm(mg.randn(2, 3), (3,), weight=mg.ones(4)), RuntimeError, "weight"),
        (lambda: F.group_norm(mg.randn(2, 6, 3), 4), RuntimeError, "divisible by num_groups"),
        (lambda: F.batch_norm(mg.randn(1, 3), None, None, training=True), ValueError, "more than 1 value per channel"),
        (lambda: F.batch_norm(mg.randn(4, 3), None, None), RuntimeError, "running_mean"),
        (lambda: F.gelu(mg.randn(3), approximate="fast"), ValueError, "approximate"),
        (lambda: F.glu(mg.randn(3)), RuntimeError, "even"),
        (lambda: F.dropout(mg.randn(3), 1.5), ValueError, "between 0 and 1"),
        (lambda: F.triplet_margin_loss(*mg.randn(3, 2, 4), margin=0.0), ValueError, "margin must be greater than 0"),
        (lambda: nn.TripletMarginLoss(margin=-1.0), ValueError, "margin must be greater than 0"),
        (lambda: F.cosine_embedding_loss(mg.randn(4, 3), mg.randn(4, 3), mg.tensor([1, -1])), RuntimeError, "(2,)"),
        (lambda: F.cosine_embedding_loss(mg.randn(4, 3), mg.randn(4, 2), mg.ones(4)), RuntimeError, "(4, 2)"),
        (lambda: F.cosine_embedding_loss(mg.randn(1, 4, 3), mg.randn(1, 4, 3), mg.ones(1, 4)), RuntimeError, "(N, D)"),
        (lambda: F.embedding(mg.tensor([5]), mg.randn(4, 2)), IndexError, "out of range"),
        (lambda: F.embedding(mg.tensor([0.0]), mg.randn(4, 2)), RuntimeError, "integer"),
        (lambda: F.binary_cross_entropy(mg.tensor([1.5]), mg.tensor([1.0])), RuntimeError, "between 0 and 1"),
        (lambda: F.binary_cross_entropy_with_logits(mg.randn(3), mg.randn(2)), ValueError, "same as input size"),
        (lambda: F.scaled_dot_product_attention(mg.randn(2, 3), mg.randn(4, 2), mg.randn(4, 2)), RuntimeError, "key"),
        (
            lambda: F.scaled_dot_product_attention(
                mg.randn(2, 3), mg.randn(4, 3), mg.randn(4, 2), mg.ones(2, 4, dtype=mg.bool), is_causal=True
            ),
            RuntimeError,
            "is_causal",
        ),
    ],
)
def test_errors_name_the_problem(call, error, words):
    with pytest.raises(error, match=words.replace("(", r"\(").replace(")", r"\)")):
        call()
