"""Soft F1 on 1:20 imbalanced digits: a linear classifier trained on it gets a higher F1 than with cross-entropy."""

from __future__ import annotations

import minigrad as mg
import minigrad.functional as F
import nn
from examples._common import Result, Timer, arguments, f1_score, finish, on_device, setup, train_epoch
from minigrad.data import load_digits, train_test_split


def one_vs_rest(digit: int, ratio: int, seed: int) -> list:
    """Digits as (N, 64) features and float labels "is it ``digit``?", the positives subsampled to one
    per ``ratio`` negatives, split 2:1 into train and test: ``x_train, x_test, y_train, y_test``."""
    images, labels = on_device(*load_digits())
    index = mg.arange(len(labels))
    negatives, positives = index[labels != digit], index[labels == digit]
    keep = mg.cat([negatives, positives[mg.randperm(len(positives))[: len(negatives) // ratio]]])
    return train_test_split(images.reshape(-1, 64)[keep], (labels[keep] == digit).float(), test_size=1 / 3, seed=seed)


def main(argv=None) -> Result:
    args = arguments(
        argv, epochs=500, digit=8, ratio=20, hidden=0, lr=0.02, weight_decay=0.1, batch_size=4096, repeats=8
    )
    setup(args)
    epochs, repeats = (30, 1) if args.quick else (args.epochs, args.repeats)
    losses = {"cross-entropy": F.binary_cross_entropy_with_logits, "soft F1": F.soft_f1_loss}
    curves, scores = {}, {name: [] for name in losses}

    with Timer() as timer:
        for repeat in range(repeats):  # another subsample and split each time; the same weights for both losses
            x_train, x_test, y_train, y_test = one_vs_rest(args.digit, args.ratio, seed=args.seed + repeat)
            for name, loss_fn in losses.items():
                mg.manual_seed(args.seed + repeat)
                # hidden=0: (regularised) logistic regression, where the 1/2 threshold of cross-entropy's
                # calibrated probabilities misses much of the rare class. F1 is a property of the whole set:
                # the default batch holds all of it.
                model = nn.models.mlp(64, (args.hidden,) if args.hidden else (), num_classes=1)
                optimizer = nn.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
                history = []
                for _ in range(epochs):
                    history += train_epoch(
                        model, optimizer, len(y_train), args.batch_size,
                        lambda i: loss_fn(model(x_train[i]).squeeze(1), y_train[i]), f"{name} run {repeat + 1}",
                    )  # fmt: skip
                curves.setdefault(f"{name} train loss", history)
                with mg.no_grad():
                    predicted = model.eval()(x_test).squeeze(1) > 0  # probability above 1/2
                scores[name].append(f1_score(predicted, y_test > 0.5))
                print(f"run {repeat + 1}, {name:>13}: test F1 {scores[name][-1]:.3f}", flush=True)

    ce, soft = (sum(scores[name]) / repeats for name in losses)
    extra = {"cross-entropy F1": ce, "runs where soft F1 >= cross-entropy": sum(
        s >= c for s, c in zip(scores["soft F1"], scores["cross-entropy"]))}  # fmt: skip
    result = Result(f"soft-F1 test F1 (mean of {repeats} runs)", soft, curves, extra, timer.seconds)
    return finish(result, args, f"Cross-entropy vs soft F1, {args.digit} vs rest at 1:{args.ratio}")


if __name__ == "__main__":
    main()
