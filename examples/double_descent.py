"""Deep double descent: test error against the width of two-layer MLPs on Fashion-MNIST with noisy labels."""

from __future__ import annotations

import minigrad as mg
import minigrad.functional as F
import nn
from examples._common import (
    Result,
    Timer,
    accuracy,
    arguments,
    load_fashion,
    parameters,
    progress,
    setup,
    train_classifier,
)

CLASSES = 10


def noisy_fashion(n_train: int, noise: float, pool: int, quick: bool) -> tuple:
    """The first ``n_train`` training images and the 1000 test images, average-pooled by ``pool``
    (28x28 -> 7x7 by default) and flattened to (N, D), standardised. A fraction ``noise`` of the
    training labels is replaced by a class drawn uniformly at random (which is the true one a tenth
    of the time); the test labels stay clean. Returns ``x_train, y_train, x_test, y_test``."""
    x_train, y_train, x_test, y_test = load_fashion(quick, quick_sizes=(n_train, 500))
    x_train, y_train = x_train[:n_train], y_train[:n_train].clone()
    replaced = mg.rand(n_train) < noise
    y_train[replaced] = mg.randint(0, CLASSES, (int(replaced.sum().item()),))
    x_train, x_test = (F.avg_pool2d(x, pool).flatten(1) for x in (x_train, x_test))
    mean, std = x_train.mean(), x_train.std()
    return (x_train - mean) / std, y_train, (x_test - mean) / std, y_test


def mlp(in_features: int, width: int) -> nn.Module:
    """in_features -> width (ReLU) -> 10 classes: (in_features + 1) * width + (width + 1) * 10 parameters."""
    return nn.Sequential(nn.Linear(in_features, width), nn.ReLU(), nn.Linear(width, CLASSES))


def interpolation_width(n_train: int, in_features: int) -> float:
    """The width at which the MLP has as many parameters as there are training targets (n x classes)."""
    return (n_train * CLASSES - CLASSES) / (in_features + 1 + CLASSES)


def main(argv=None) -> Result:
    args = arguments(argv, epochs=300, batch_size=100, lr=3e-3, n_train=1000, noise=0.2, pool=4,
                     widths="2,4,8,16,32,48,64,96,128,192,256,384,512,1024,2048,4096")  # fmt: skip
    setup(args)
    n_train, epochs = (200, 100) if args.quick else (args.n_train, args.epochs)
    widths = [2, 8, 32, 256] if args.quick else [int(w) for w in args.widths.split(",")]
    x_train, y_train, x_test, y_test = noisy_fashion(n_train, args.noise, args.pool, args.quick)

    train_error, test_error = [], []
    with Timer() as timer:
        for width in (bar := progress(widths, "width")):
            model = mlp(x_train.shape[1], width)
            # Adam at a constant rate, no weight decay, no early stopping: long enough for the models
            # past the threshold to fit every (noisy) training label.
            train_classifier(model, x_train, y_train, epochs, args.batch_size, args.lr)
            train_error.append((width, 1 - accuracy(model, x_train, y_train)))
            test_error.append((width, 1 - accuracy(model, x_test, y_test)))
            print(f"width {width:5d} ({parameters(model):,} parameters): train error {train_error[-1][1]:.3f}, "
                  f"test error {test_error[-1][1]:.3f}", flush=True)  # fmt: skip
            bar.set_postfix(test_error=f"{test_error[-1][1]:.3f}")

    # The threshold: the narrowest model that fits the training set (noisy labels included) to 1 %.
    fitted = [width for width, error in train_error if error <= 0.01]
    threshold = fitted[0] if fitted else None
    # The peak: the worst test error past the best under-parameterised model (the classical sweet spot).
    under = [point for point in test_error if threshold is None or point[0] < threshold] or test_error
    sweet_spot = test_error.index(min(under, key=lambda point: point[1]))
    peak_width, peak_error = max(test_error[sweet_spot:], key=lambda point: point[1])
    extra = {
        "peak at width": peak_width,
        f"at width {widths[0]}": test_error[0][1],
        f"at width {widths[-1]}": test_error[-1][1],
        "interpolation threshold (train error <= 1 %)": threshold,
        "n x classes parameters at width": round(interpolation_width(n_train, x_train.shape[1]), 1),
    }
    curves = {"train error": train_error, "test error": test_error}
    result = Result("test error at the peak", peak_error, curves, extra, timer.seconds)
    print(result.line(), flush=True)
    if args.plot:
        _plot(curves, threshold, interpolation_width(n_train, x_train.shape[1]), args, n_train)
    return result


def _plot(curves: dict, threshold, params_width: float, args, n_train: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for name, points in curves.items():
        widths, errors = zip(*points)
        ax.plot(widths, errors, "o-", label=name)
    if threshold is not None:
        ax.axvline(threshold, color="gray", linestyle="--", label=f"train error <= 1 % (width {threshold})")
    ax.axvline(params_width, color="gray", linestyle=":", label=f"parameters = n x classes (width {params_width:.0f})")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("hidden width")
    ax.set_ylabel("error")
    ax.set_title(f"Two-layer MLPs, Fashion-MNIST {n_train} images, {args.noise:.0%} label noise", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.plot, dpi=110)
    plt.close(fig)
    print(f"plot saved to {args.plot}")


if __name__ == "__main__":
    main()
