"""Perceptron and softmax regression on UCI digits: the perceptron separates 0 from 1; softmax regression >= 95 %."""

from __future__ import annotations

import minigrad as mg
import minigrad.functional as F
import nn
from examples._common import Result, Timer, arguments, batches, finish, on_device, progress, setup
from minigrad.data import load_digits, train_test_split


def perceptron(x: mg.Tensor, y: mg.Tensor, max_epochs: int) -> tuple:
    """Rosenblatt's rule, y in {-1, +1}: on each mistake, w += y x and b += y. Returns (w, b, mistakes per epoch)."""
    w, b, history = mg.zeros(x.shape[1]), 0.0, []
    for _ in range(max_epochs):
        mistakes = 0
        for xi, yi in zip(x, y.tolist()):
            if yi * ((w * xi).sum().item() + b) <= 0:
                w, b, mistakes = w + yi * xi, b + yi, mistakes + 1
        history.append(mistakes)
        if mistakes == 0:  # a separating hyperplane: the rule has converged
            break
    return w, b, history


def main(argv=None) -> Result:
    args = arguments(argv, epochs=30, lr=0.5, batch_size=64)
    setup(args)
    images, labels = on_device(*load_digits())
    x = images.reshape(-1, 64)
    x_train, x_test, y_train, y_test = train_test_split(x, labels, test_size=297, seed=args.seed)
    if args.quick:
        x_train, y_train = x_train[:300], y_train[:300]
    epochs = 3 if args.quick else args.epochs

    with Timer() as timer:
        pair = (y_train == 0) | (y_train == 1)
        signs = mg.where(y_train[pair] == 1, 1.0, -1.0)
        w, b, mistakes = perceptron(x_train[pair], signs, max_epochs=20)
        test_pair = (y_test == 0) | (y_test == 1)
        predicted = ((x_test[test_pair] * w).sum(1) + b) > 0
        perceptron_accuracy = ((predicted == (y_test[test_pair] == 1)).float().mean()).item()

        model = nn.Linear(64, 10)  # softmax regression: logits = x W^T + b
        optimizer = nn.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
        curves = {"train loss": [], "test accuracy": []}
        for epoch in progress(range(epochs), "softmax regression"):
            for index in batches(len(y_train), args.batch_size):
                loss = F.cross_entropy(model(x_train[index]), y_train[index])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                curves["train loss"].append(loss.item())
            with mg.no_grad():
                accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
            curves["test accuracy"].append((epoch + 1, accuracy))
    curves["perceptron: mistakes per epoch"] = mistakes
    extra = {"perceptron epochs to separate 0 from 1": len(mistakes), "perceptron test accuracy (0 vs 1)":
             perceptron_accuracy}  # fmt: skip
    return finish(Result("softmax regression test accuracy", accuracy, curves, extra, timer.seconds), args,
                  "Perceptron and softmax regression on digits")  # fmt: skip


if __name__ == "__main__":
    main()
