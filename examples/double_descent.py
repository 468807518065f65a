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


def pooled_fashion(n_train: int, pool: int, quick: bool) -> tuple:
    """The first ``n_train`` training images and the 1000 test images, average-pooled by ``pool``
    (28x28 -> 7x7 by default), flattened to (N, D) and standardised, with their labels (int64)."""
    x_train, y_train, x_test, y_test = load_fashion(quick, quick_sizes=(n_train, 500))
    x_train, x_test = (F.avg_pool2d(x, pool).flatten(1) for x in (x_train[:n_train], x_test))
    mean, std = x_train.mean(), x_train.std()
    return (x_train - mean) / std, y_train[:n_train], (x_test - mean) / std, y_test


def noisy(labels: mg.Tensor, noise: float) -> mg.Tensor:
    """``labels`` with a fraction ``noise`` of them replaced by a class drawn uniformly at random
    (which is the true one a tenth of the time)."""
    labels = labels.clone()
    replaced = mg.rand(len(labels)) < noise
    labels[replaced] = mg.randint(0, CLASSES, (int(replaced.sum().item()),))
    return labels


def mlp(in_features: int, width: int) -> nn.Module:
    """in_features -> width (ReLU) -> 10 classes: (in_features + 1) * width + (width + 1) * 10 parameters."""
    return nn.Sequential(nn.Linear(in_features, width), nn.ReLU(), nn.Linear(width, CLASSES))


def interpolation_width(n_train: int, in_features: int) -> float:
    """The width at which the MLP has as many parameters as there are training targets (n x classes)."""
    return (n_train * CLASSES - CLASSES) / (in_features + 1 + CLASSES)


def main(argv=None) -> Result:
    args = arguments(argv, epochs=300, batch_size=100, lr=3e-3, n_train=1000, noise=0.2, pool=4, runs=3,
                     widths="2,4,8,16,32,48,64,96,128,192,256,384,512,1024,2048")  # fmt: skip
    setup(args)
    n_train, epochs, runs = (200, 100, 1) if args.quick else (args.n_train, args.epochs, args.runs)
    widths = [2, 8, 32, 256] if args.quick else [int(w) for w in args.widths.split(",")]
    x_train, clean_labels, x_test, y_test = pooled_fashion(n_train, args.pool, args.quick)

    errors = {width: ([], []) for width in widths}  # width -> (train errors, test errors), one per run
    with Timer() as timer:
        for run in range(runs):
            mg.manual_seed(args.seed + run)  # each run draws its own noisy labels and initial weights
            y_train = noisy(clean_labels, args.noise)
            for width in (bar := progress(widths, f"run {run + 1}/{runs}: width")):
                model = mlp(x_train.shape[1], width)
                # Adam at a constant rate, no weight decay, no early stopping: long enough for the
                # models past the threshold to fit every (noisy) training label.
                train_classifier(model, x_train, y_train, epochs, args.batch_size, args.lr)
                errors[width][0].append(1 - accuracy(model, x_train, y_train))
                errors[width][1].append(1 - accuracy(model, x_test, y_test))
                bar.set_postfix(test_error=f"{errors[width][1][-1]:.3f}")
    train_error = [(width, sum(train) / runs) for width, (train, _) in errors.items()]
    test_error = [(width, sum(test) / runs) for width, (_, test) in errors.items()]
    for (width, train), (_, test) in zip(train_error, test_error):
        size = parameters(mlp(x_train.shape[1], width))
        print(f"width {width:5d} ({size:,} parameters): train error {train:.3f}, test error {test:.3f}")

    # The threshold: the narrowest model that fits the training set (noisy labels included) to 1 %.
    fitted = [width for width, error in train_error if error <= 0.01]
    threshold = fitted[0] if fitted else None
    # The peak: the worst test error past the best under-parameterised model (the classical sweet spot).
    under = [point for point in test_error if threshold is None or point[0] < threshold] or test_error
    sweet_spot = test_error.index(min(under, key=lambda point: point[1]))
    peak_width, peak_error = max(test_error[sweet_spot:], key=lambda point: point[1])
    extra = {
        "peak at width": peak_width,
        f"best below the threshold (width {test_error[sweet_spot][0]})": test_error[sweet_spot][1],
        f"at width {widths[0]}": test_error[0][1],
        f"at width {widths[-1]}": test_error[-1][1],
        "interpolation threshold (train error <= 1 %)": threshold,
        "n x classes parameters at width": round(interpolation_width(n_train, x_train.shape[1]), 1),
    }
    curves = {"train error": train_error, "test error": test_error}
    result = Result("test error at the peak", peak_error, curves, extra, timer.seconds)
    print(result.line(), flush=True)
    if args.plot:
        _plot(curves, threshold, interpolation_width(n_train, x_train.shape[1]), args, n_train, runs)
    return result


def _plot(curves: dict, threshold, params_width: float, args, n_train: int, runs: int) -> None:
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
    ax.set_title(f"Two-layer MLPs, Fashion-MNIST {n_train} images, {args.noise:.0%} label noise "
                 f"(mean of {runs} runs)", fontsize=9)  # fmt: skip
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.plot, dpi=110)
    plt.close(fig)
    print(f"plot saved to {args.plot}")


if __name__ == "__main__":
    main()
