"""The attention scoring modules: float64 gradchecks (inputs and parameters), masks, bad input."""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg
import nn

B, Q, K, D, V = 2, 3, 4, 5, 2


def _modules():
    return {
        "nadaraya_watson": nn.NadarayaWatson(bandwidth=0.8),
        "nadaraya_watson_learned": nn.NadarayaWatson(bandwidth=0.8, learnable=True),
        "additive": nn.AdditiveAttention(key_size=D, query_size=D, num_hiddens=6),
        "dot_product": nn.DotProductAttention(),
    }


def _inputs(seed=0):
    rng = np.random.default_rng(seed)
    return tuple(
        mg.tensor(rng.standard_normal(shape), requires_grad=True) for shape in ((B, Q, D), (B, K, D), (B, K, V))
    )


MASK = mg.tensor([[True, True, False, False], [True, True, True, False]])  # (B, K): True may be attended


@pytest.mark.parametrize("name", list(_modules()))
@pytest.mark.parametrize("masked", [False, True])
def test_gradcheck_float64(name, masked):
    module = _modules()[name].to(mg.float64)
    params = list(module.parameters())
    mask = MASK if masked else None
    assert mg.gradcheck(lambda q, k, v, *_: module(q, k, v, mask), _inputs() + tuple(params), name=name)


@pytest.mark.parametrize("name", list(_modules()))
def test_masked_keys_get_weight_exactly_zero(name):
    module = _modules()[name].to(mg.float64)
    q, k, v = _inputs()
    out = module(q, k, v, MASK)
    weights = module.attention_weights.detach().cpu().numpy()
    assert weights.shape == (B, Q, K)
    assert (weights[0, :, 2:] == 0).all() and (weights[1, :, 3] == 0).all()
    np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-12)
    # The masked keys' values do not matter: change them and the output stays.
    v2 = v.detach().cpu().numpy().copy()
    v2[0, 2:] = 1e6
    np.testing.assert_allclose(module(q, k, mg.tensor(v2), MASK).detach().cpu().numpy(), out.detach().cpu().numpy())


@pytest.mark.parametrize("name", list(_modules()))
def test_per_query_mask(name):
    module = _modules()[name]
    q, k, v = _inputs()
    mask = mg.tensor(np.tril(np.ones((Q, K), dtype=bool)))[None].expand((B, Q, K))  # query i sees keys 0..i
    module(q, k, v, mask)
    hidden = ~np.tril(np.ones((Q, K), dtype=bool))
    assert (module.attention_weights.detach().cpu().numpy()[:, hidden] == 0).all()


@pytest.mark.parametrize("name", list(_modules()))
def test_bad_mask_names_module_and_shapes(name):
    module = _modules()[name]
    q, k, v = _inputs()
    with pytest.raises(RuntimeError, match=rf"{type(module).__name__}.*\(2, 4\).*\(2, 3, 4\).*\(4, 2\)"):
        module(q, k, v, mg.ones(K, B, dtype=mg.bool))
    with pytest.raises(RuntimeError, match=rf"{type(module).__name__}.*float"):
        module(q, k, v, mg.ones(B, K))


def test_nadaraya_watson_is_a_gaussian_kernel_average():
    x_train, y_train = np.array([0.0, 1.0, 3.0]), np.array([1.0, 2.0, 5.0])
    x_query, h = 0.7, 0.5
    kernel = np.exp(-((x_query - x_train) ** 2) / (2 * h**2))
    expected = (kernel * y_train).sum() / kernel.sum()
    module = nn.NadarayaWatson(bandwidth=h).to(mg.float64)
    out = module(
        mg.tensor(np.full((1, 1, 1), x_query)), mg.tensor(x_train.reshape(1, 3, 1)), mg.tensor(y_train.reshape(1, 3, 1))
    )
    assert out.item() == pytest.approx(expected, rel=1e-12)
    assert list(module.parameters()) == []
    assert [name for name, _ in nn.NadarayaWatson(learnable=True).named_parameters()] == ["bandwidth"]
    with pytest.raises(ValueError, match="NadarayaWatson: bandwidth must be positive"):
        nn.NadarayaWatson(bandwidth=0.0)


def test_dot_product_attention_matches_the_fused_op():
    q, k, v = _inputs()
    mask = MASK.unsqueeze(1)
    ours = nn.DotProductAttention()(q, k, v, MASK)
    fused = mg.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    np.testing.assert_allclose(ours.detach().cpu().numpy(), fused.detach().cpu().numpy(), rtol=1e-12)


def test_additive_attention_dropout_only_in_training():
    module = nn.AdditiveAttention(D, D, 6, dropout=0.5)
    q, k, v = _inputs()
    module.eval()
    first, second = module(q, k, v), module(q, k, v)
    np.testing.assert_array_equal(first.detach().cpu().numpy(), second.detach().cpu().numpy())
    module.train()
    mg.manual_seed(0)
    assert not np.allclose(module(q, k, v).detach().cpu().numpy(), first.detach().cpu().numpy())


@pytest.mark.parametrize("queries, keys", [(0, 0), (0, 3), (3, 0)])
@pytest.mark.parametrize("masked", [False, True])
def test_scaled_dot_product_attention_with_no_query_or_no_key(queries, keys, masked):
    """PyTorch's shapes: an empty output without queries, zeros without keys; zero gradients."""
    q, k, v = (mg.randn(2, 2, n, e, requires_grad=True) for n, e in ((queries, 4), (keys, 4), (keys, 5)))
    mask = mg.ones(queries, keys, dtype=mg.bool) if masked else None
    out = mg.functional.scaled_dot_product_attention(q, k, v, mask)
    assert out.shape == (2, 2, queries, 5) and not out.detach().cpu().numpy().any()
    out.sum().backward()
    assert all(x.grad.shape == x.shape and not x.grad.cpu().numpy().any() for x in (q, k, v))
