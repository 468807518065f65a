"""Probes of a frozen encoder, the way self-supervised representations are judged.

``extract_features`` runs the encoder once over a data set (eval mode, no graph, in batches).
``linear_probe`` fits a multinomial logistic regression on the standardised train features
and reports test accuracy; ``knn_probe`` classifies each test feature by a weighted vote of
its k most cosine-similar train features, weights ``exp(similarity / temperature)`` (Wu et
al.'s InstDisc, used by SimCLR and its successors). Both take an encoder and two data sets,
or ``encoder=None`` and features already extracted, so that both probes see the same features:

    train, test = extract_features(encoder, train_set), extract_features(encoder, test_set)
    linear_probe(None, train, test), knn_probe(None, train, test)
"""

from __future__ import annotations

import numbers

import minigrad as mg
import minigrad.functional as F
from minigrad import backend
from minigrad.data import DataLoader
from minigrad.tensor import Tensor
from nn.module import Module
from nn.optim import Adam


@mg.no_grad()
def extract_features(encoder: Module, data, batch_size: int = 256) -> tuple[Tensor, Tensor]:
    """Features ``(N, D)`` and labels ``(N,)`` of ``data``: a pair of tensors ``(inputs, labels)``
    or a dataset of ``(input, label)`` samples. The encoder runs in eval mode and is put back
    in the modes it was in; its outputs are flattened to one vector per sample."""
    dataset = mg.data.TensorDataset(*data) if isinstance(data, tuple) else data
    loader = DataLoader(dataset, batch_size=batch_size, seed=0)  # its own seed: the global generator is left alone
    modes = {module: module.training for module in encoder.modules()}
    encoder.eval()
    try:
        features, labels = zip(*((encoder(x).flatten(1), y) for x, y in loader))
    finally:
        for module, training in modes.items():
            object.__setattr__(module, "training", training)
    return mg.cat(list(features)), mg.cat(list(labels))


def _features(name: str, encoder, train, test, batch_size: int) -> tuple:
    if encoder is not None:
        return extract_features(encoder, train, batch_size), extract_features(encoder, test, batch_size)
    for what, pair in (("train", train), ("test", test)):
        if not (isinstance(pair, tuple) and len(pair) == 2 and pair[0].ndim == 2 and pair[1].ndim == 1):
            raise ValueError(f"{name}: without an encoder, {what} must be (features (N, D), labels (N,))")
    if train[0].shape[1] != test[0].shape[1]:
        raise ValueError(
            f"{name}: train and test features differ in size, {tuple(train[0].shape)} and {tuple(test[0].shape)}"
        )
    return train, test


def _accuracy(predicted: Tensor, labels: Tensor) -> float:
    return float((predicted.data == labels.data).mean())


def linear_probe(
    encoder: Module | None,
    train,
    test,
    steps: int = 300,
    lr: float = 0.1,
    weight_decay: float = 0.0,
    batch_size: int = 256,
) -> float:
    """Test accuracy of a multinomial logistic regression on frozen features.

    The features are standardised with the train set's mean and standard deviation; the
    classifier starts from zero (the problem is convex: no random draw) and takes ``steps``
    full-batch Adam steps on the cross-entropy (``weight_decay``: L2 on the weights and bias).
    """
    (x_train, y_train), (x_test, y_test) = _features("linear_probe", encoder, train, test, batch_size)
    mean, std = x_train.mean(0), x_train.std(0, correction=0) + 1e-6
    x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
    classes = int(max(y_train.data.max(), y_test.data.max())) + 1
    weight = mg.zeros(x_train.shape[1], classes, dtype=x_train.dtype, requires_grad=True)
    bias = mg.zeros(classes, dtype=x_train.dtype, requires_grad=True)
    optimizer = Adam([weight, bias], lr=lr, weight_decay=weight_decay)
    for _ in range(steps):
        optimizer.zero_grad()
        F.cross_entropy(x_train @ weight + bias, y_train).backward()
        optimizer.step()
    with mg.no_grad():
        return _accuracy((x_test @ weight + bias).argmax(1), y_test)


@mg.no_grad()
def knn_probe(
    encoder: Module | None, train, test, k: int = 20, temperature: float = 0.07, batch_size: int = 256
) -> float:
    """Test accuracy of a weighted k-nearest-neighbour vote on frozen features.

    Similarity is cosine; each of a test feature's ``k`` nearest train features votes for its
    class with weight ``exp(similarity / temperature)``; the class with the most weight wins.
    """
    if not (isinstance(k, numbers.Integral) and k >= 1):
        raise ValueError(f"knn_probe: k must be a positive integer, got {k!r}")
    if not temperature > 0:
        raise ValueError(f"knn_probe: temperature must be positive, got {temperature}")
    (x_train, y_train), (x_test, y_test) = _features("knn_probe", encoder, train, test, batch_size)
    xp = backend.array_module(x_train.data)
    k = min(k, x_train.shape[0])
    bank, labels = F.normalize(x_train, dim=1).data.T, y_train.data  # (D, N_train), (N_train,)
    classes = int(max(labels.max(), y_test.data.max())) + 1
    predicted = []
    for start in range(0, x_test.shape[0], batch_size):
        similarity = F.normalize(x_test[start : start + batch_size], dim=1).data @ bank  # (B, N_train)
        nearest = xp.argpartition(-similarity, k - 1, axis=1)[:, :k]  # (B, k)
        nearest_similarity = xp.take_along_axis(similarity, nearest, 1)  # (B, k)
        # shifted by each row's largest similarity: the same vote, and no overflow at small temperatures
        weights = xp.exp((nearest_similarity - nearest_similarity.max(1, keepdims=True)) / temperature)
        votes = xp.zeros((similarity.shape[0], classes), dtype=weights.dtype)
        xp.add.at(votes, (xp.arange(similarity.shape[0])[:, None], labels[nearest]), weights)
        predicted.append(votes.argmax(1))
    return _accuracy(Tensor._make(xp.concatenate(predicted)), y_test)
