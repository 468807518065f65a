"""Focal loss on digits made 1:20 imbalanced: higher minority-class recall and AP than plain cross-entropy."""

from __future__ import annotations

import minigrad as mg
import minigrad.functional as F
import nn
from examples._common import Result, Timer, arguments, average_precision, finish, imbalanced_digits, setup, train_epoch

MINORITY = (3, 8, 9)  # each kept at 1 in 20 training samples


def minority_scores(model: nn.Module, x: mg.Tensor, y: mg.Tensor) -> tuple:
    """Mean over the minority classes of the recall and of the one-vs-rest average precision."""
    with mg.no_grad():
        probabilities = F.softmax(model.eval()(x), 1)
    predicted = probabilities.argmax(1)
    recalls = [(predicted[y == c] == c).float().mean().item() for c in MINORITY]
    precisions = [average_precision(probabilities[:, c], y == c) for c in MINORITY]
    return sum(recalls) / len(MINORITY), sum(precisions) / len(MINORITY)


def main(argv=None) -> Result:
    args = arguments(argv, epochs=20, gamma=2.0, ratio=20, hidden=64, lr=3e-3, batch_size=64, repeats=10)
    setup(args)
    epochs, repeats = (5, 1) if args.quick else (args.epochs, args.repeats)
    losses = {
        "cross-entropy": F.cross_entropy,
        f"focal (gamma={args.gamma:g})": lambda logits, y: F.focal_loss(logits, y, gamma=args.gamma),
    }
    curves, scores = {}, {name: [] for name in losses}

    with Timer() as timer:
        # Each repeat draws another split and subsample; both losses train from the same weights on it.
        for repeat in range(repeats):
            x_train, y_train, x_test, y_test = imbalanced_digits(MINORITY, args.ratio, seed=args.seed + repeat)
            for name, loss_fn in losses.items():
                mg.manual_seed(args.seed + repeat)
                model = nn.models.mlp(64, (args.hidden,))
                optimizer = nn.optim.Adam(model.parameters(), lr=args.lr)
                history, recall = [], curves.setdefault(f"minority recall: {name}", [0.0] * epochs)
                for epoch in range(epochs):
                    history += train_epoch(
                        model, optimizer, len(y_train), args.batch_size,
                        lambda i: loss_fn(model(x_train[i]), y_train[i]), f"{name} run {repeat + 1}/{repeats}",
                    )  # fmt: skip
                    recall[epoch] += minority_scores(model, x_test, y_test)[0] / repeats  # the mean over runs
                curves.setdefault(f"{name} train loss", history)
                scores[name].append(minority_scores(model, x_test, y_test))
                overall = (model(x_test).argmax(1) == y_test).float().mean().item()
                print(f"run {repeat + 1}, {name:>18}: minority recall {scores[name][-1][0]:.3f}, "
                      f"AP {scores[name][-1][1]:.3f}, test accuracy {overall:.3f}", flush=True)  # fmt: skip

    # Focal loss stops spending the gradient on the many easy majority samples, so the rare classes are
    # learned sooner; trained much longer, both losses memorise the few minority samples and the gap
    # closes (the "minority recall" curves show both).
    (ce, focal) = ([sum(s[k] for s in scores[name]) / repeats for k in (0, 1)] for name in losses)
    for name in losses:
        curves[f"minority recall: {name}"] = list(enumerate(curves[f"minority recall: {name}"], start=1))  # by epoch
    wins = [sum(f[k] >= c[k] for c, f in zip(*scores.values())) for k in (0, 1)]
    extra = {"cross-entropy minority recall": ce[0], "focal minority AP": focal[1], "cross-entropy minority AP": ce[1],
             "runs where focal >= CE (recall, AP)": f"{wins[0]}, {wins[1]} of {repeats}"}  # fmt: skip
    result = Result(f"focal minority recall (mean of {repeats} runs)", focal[0], curves, extra, timer.seconds)
    return finish(result, args, f"Cross-entropy vs focal loss, digits {MINORITY} at 1:{args.ratio}")


if __name__ == "__main__":
    main()
