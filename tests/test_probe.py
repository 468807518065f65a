"""nn.utils.linear_probe and knn_probe: a separable problem gives accuracy ~1, labels that the
features know nothing of give chance; the encoder is frozen and run once per set."""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg
import nn
from nn.utils import extract_features, knn_probe, linear_probe

CLASSES = 4


def _clusters(n, seed):
    """Inputs (n, 8): class c is a tight cluster around its own direction; labels (n,)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, CLASSES, n)
    centres = np.eye(CLASSES, 8) * 4.0
    inputs = centres[labels] + rng.normal(scale=0.5, size=(n, 8))
    return mg.tensor(inputs.astype(np.float32)), mg.tensor(labels)


class _CountingEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 16), nn.Dropout(0.5))
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.net(x)


def test_separable_features_give_accuracy_near_one():
    mg.manual_seed(0)
    encoder = _CountingEncoder()  # a random linear map keeps the clusters apart
    train, test = _clusters(600, 1), _clusters(400, 2)
    assert linear_probe(encoder, train, test) >= 0.98
    assert knn_probe(encoder, train, test) >= 0.98
    assert encoder.training and encoder.net[1].training  # modes put back
    assert all(p.grad is None for p in encoder.parameters())


def test_a_random_encoder_of_unrelated_labels_is_at_chance():
    mg.manual_seed(0)
    encoder = nn.Sequential(nn.Linear(8, 16), nn.ReLU())
    rng = np.random.default_rng(3)
    train = (mg.tensor(rng.normal(size=(1000, 8)).astype(np.float32)), mg.tensor(rng.integers(0, CLASSES, 1000)))
    test = (mg.tensor(rng.normal(size=(2000, 8)).astype(np.float32)), mg.tensor(rng.integers(0, CLASSES, 2000)))
    features = extract_features(encoder, train), extract_features(encoder, test)
    linear, knn = linear_probe(None, *features), knn_probe(None, *features)
    # chance is 1 / 4; 2000 test samples put the standard error near 0.01
    assert abs(linear - 1 / CLASSES) < 0.05 and abs(knn - 1 / CLASSES) < 0.05, (linear, knn)


def test_features_are_extracted_once_in_batches_without_a_graph():
    encoder = _CountingEncoder()
    inputs, labels = _clusters(70, 4)
    features, out_labels = extract_features(encoder, (inputs.requires_grad_(), labels), batch_size=32)
    assert encoder.calls == 3 and features.shape == (70, 16) and not features.requires_grad
    np.testing.assert_array_equal(out_labels.cpu().numpy(), labels.cpu().numpy())
    encoder.eval()
    np.testing.assert_allclose(features.cpu().numpy(), encoder(inputs).detach().cpu().numpy(), rtol=1e-6)


def test_dataset_input_and_generator_untouched():
    encoder = _CountingEncoder()
    dataset = mg.data.TensorDataset(*_clusters(50, 5))
    mg.manual_seed(7)
    expected = mg.rand(3).cpu().numpy()
    mg.manual_seed(7)
    features, labels = extract_features(encoder, dataset, batch_size=16)
    assert features.shape == (50, 16) and labels.shape == (50,)
    np.testing.assert_array_equal(mg.rand(3).cpu().numpy(), expected)


def test_knn_vote_is_weighted_by_similarity():
    # the test point's 3 nearest: one very close of class 1, two farther of class 0
    train = (mg.tensor([[1.0, 0.0], [0.6, 0.8], [0.6, -0.8], [-1.0, 0.0]]), mg.tensor([1, 0, 0, 0]))
    test = (mg.tensor([[1.0, 0.01]]), mg.tensor([1]))
    assert knn_probe(None, train, test, k=3) == 1.0
    assert knn_probe(None, train, test, k=3, temperature=100.0) == 0.0  # almost equal weights: the majority wins


def test_knn_vote_at_a_small_temperature_does_not_overflow_float32():
    # weights exp(s / 0.01) overflow float32; relative to the nearest, class 1's three near-ties outvote class 0
    train = (mg.tensor([[1.0, 0.0], [1.0, 0.05], [1.0, 0.06], [1.0, -0.07]]), mg.tensor([0, 1, 1, 1]))
    test = (mg.tensor([[1.0, 0.0]]), mg.tensor([1]))
    assert knn_probe(None, train, test, k=4, temperature=0.01) == 1.0
    for bad in ({"k": 0}, {"temperature": 0.0}):
        with pytest.raises(ValueError, match="knn_probe: (k|temperature) must be a? ?positive"):
            knn_probe(None, train, test, **bad)


def test_errors_for_features_without_an_encoder():
    with pytest.raises(ValueError, match=r"linear_probe: without an encoder, train must be"):
        linear_probe(None, mg.zeros(3, 2), (mg.zeros(3, 2), mg.zeros(3)))
    with pytest.raises(ValueError, match=r"knn_probe: train and test features differ in size"):
        knn_probe(None, (mg.zeros(3, 2), mg.zeros(3)), (mg.zeros(3, 4), mg.zeros(3)))
