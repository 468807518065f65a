"""Batch size on Fashion-MNIST: gradient noise scale; a growing batch instead of LR decay needs fewer updates."""

from __future__ import annotations

import minigrad as mg
import minigrad.functional as F
import nn
from examples._common import Result, Timer, accuracy, arguments, finish, load_fashion, setup, train_epoch


def squared_gradient_norm(model: nn.Module, images: mg.Tensor, labels: mg.Tensor) -> float:
    """|g_B|^2 for the mean loss over one batch."""
    model.zero_grad()
    F.cross_entropy(model(images), labels).backward()
    return sum((p.grad * p.grad).sum().item() for p in model.parameters())


def noise_scale(model: nn.Module, images: mg.Tensor, labels: mg.Tensor, small: int, big: int, repeats: int) -> float:
    """McCandlish et al.'s simple noise scale B_simple = tr(Sigma) / |G|^2 (appendix A.1).

    E|g_B|^2 = |G|^2 + tr(Sigma) / B, so the mean squared norms at two batch sizes give unbiased
    estimates of |G|^2 and tr(Sigma); each is averaged over ``repeats`` batches before dividing.
    """
    means = {}
    for size in (small, big):
        norms = [squared_gradient_norm(model, images[i], labels[i]) for i in (mg.randperm(len(labels))[:size]
                                                                               for _ in range(repeats))]  # fmt: skip
        means[size] = sum(norms) / repeats
    true_gradient = (big * means[big] - small * means[small]) / (big - small)
    trace_sigma = (means[small] - means[big]) / (1 / small - 1 / big)
    return trace_sigma / true_gradient


def main(argv=None) -> Result:
    args = arguments(argv, epochs=24, lr=0.05, batch_size=50, factor=5, hidden=256, repeats=20)
    setup(args)
    x_train, y_train, x_test, y_test = load_fashion(args.quick)
    epochs, repeats = (3, 4) if args.quick else (args.epochs, args.repeats)
    n = len(y_train)
    milestones = [epochs // 3, 2 * epochs // 3]  # the noise scale drops by `factor` at each
    curves, results, noise = {}, {}, {}

    with Timer() as timer:
        mg.manual_seed(args.seed)
        noise["B_simple at init"] = noise_scale(nn.models.mlp(hidden=(args.hidden, args.hidden)), x_train, y_train,
                                                16, 256, repeats)  # fmt: skip
        for schedule in ("decay LR", "grow batch"):
            mg.manual_seed(args.seed)
            model = nn.models.mlp(hidden=(args.hidden, args.hidden))
            optimizer = nn.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
            lr, batch_size, updates = args.lr, args.batch_size, 0
            curves[f"train loss ({schedule})"], curves[f"test accuracy ({schedule})"] = [], []
            for epoch in range(epochs):
                if epoch in milestones:  # Smith et al.: both keep the SGD noise g = lr (N / B - 1) on the same path
                    if schedule == "decay LR":
                        lr /= args.factor
                        optimizer.param_groups[0]["lr"] = lr
                    else:
                        batch_size *= args.factor
                losses = train_epoch(
                    model, optimizer, n, batch_size, lambda i: F.cross_entropy(model(x_train[i]), y_train[i]),
                    f"{schedule} {epoch + 1}/{epochs}",
                )  # fmt: skip
                updates += len(losses)
                curves[f"train loss ({schedule})"] += [(updates - len(losses) + k, v) for k, v in enumerate(losses)]
                curves[f"test accuracy ({schedule})"].append((updates, accuracy(model, x_test, y_test)))
                noise_g = lr * (n / batch_size - 1)
                curves.setdefault(f"noise g = lr (N/B - 1): {schedule}", []).append((updates, noise_g))
            results[schedule] = (curves[f"test accuracy ({schedule})"][-1][1], updates)
            print(f"{schedule}: test accuracy {results[schedule][0]:.4f} after {updates} updates "
                  f"(final lr {lr:g}, batch size {batch_size})", flush=True)  # fmt: skip
            noise[f"B_simple after training ({schedule})"] = noise_scale(model, x_train, y_train, 16, 256, repeats)

    (decay_accuracy, decay_updates), (grow_accuracy, grow_updates) = results["decay LR"], results["grow batch"]
    extra = {
        "decay-LR test accuracy": decay_accuracy,
        "updates (grow batch / decay LR)": f"{grow_updates} / {decay_updates}",
    } | noise
    result = Result("grow-batch test accuracy", grow_accuracy, curves, extra, timer.seconds)
    return finish(result, args, "Decaying the learning rate vs growing the batch (x: parameter updates)")


if __name__ == "__main__":
    main()
