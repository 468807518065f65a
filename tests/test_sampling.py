"""nn.decoding.sample_next: temperature and top-k sampling of the next token."""

import numpy as np
import pytest

import minigrad as mg
from nn.decoding import sample_next


def test_sample_next_follows_the_softmax():
    logits = mg.tensor(np.log([[0.1, 0.2, 0.7]] * 20_000))
    tokens = sample_next(logits, generator=np.random.default_rng(0)).cpu().numpy()
    assert tokens.dtype == np.int64 and tokens.shape == (20_000,)
    np.testing.assert_allclose(np.bincount(tokens, minlength=3) / 20_000, [0.1, 0.2, 0.7], atol=0.015)
    hot = sample_next(logits, temperature=0.5, generator=np.random.default_rng(0)).cpu().numpy()
    sharpened = np.array([0.1, 0.2, 0.7]) ** 2 / (np.array([0.1, 0.2, 0.7]) ** 2).sum()
    np.testing.assert_allclose(np.bincount(hot, minlength=3) / 20_000, sharpened, atol=0.015)


def test_sample_next_top_k_greedy_and_seeding():
    logits = mg.tensor([[0.0, 3.0, 1.0, 2.0], [5.0, 0.0, 0.0, 4.0]])
    assert sample_next(logits, temperature=0).tolist() == [1, 0]
    assert sample_next(logits, top_k=1).tolist() == [1, 0]
    many = mg.tensor(np.repeat(logits.cpu().numpy(), 500, axis=0))
    drawn = sample_next(many, top_k=2).cpu().numpy().reshape(2, 500)
    assert set(drawn[0]) == {1, 3} and set(drawn[1]) == {0, 3}
    mg.manual_seed(3)
    first = sample_next(many).tolist()
    mg.manual_seed(3)
    assert sample_next(many).tolist() == first


def test_sample_next_bad_input():
    with pytest.raises(ValueError, match=r"sample_next: top_k must be in 1\.\.4 .*got 5"):
        sample_next(mg.zeros(2, 4), top_k=5)
    with pytest.raises(ValueError, match="temperature must be >= 0, got -1"):
        sample_next(mg.zeros(2, 4), temperature=-1)
    with pytest.raises(ValueError, match=r"expected logits \(B, V\), got shape \(4,\)"):
        sample_next(mg.zeros(4))
