"""Attention: Nadaraya-Watson kernel regression, then Bahdanau attention in a GRU seq2seq vs the plain one."""

from __future__ import annotations

from pathlib import Path

import minigrad as mg
import minigrad.functional as F
import nn
from examples._common import Result, Timer, arguments, finish, progress, setup
from examples._seq import EPOCHS, METRICS, build, load_task, save_attention_map, score, train, translate


def target_function(x: mg.Tensor) -> mg.Tensor:
    """d2l's regression target: 2 sin(x) + x^0.8."""
    return 2 * x.sin() + x**0.8


def nadaraya_watson(n_train: int, steps: int, plot: str | None) -> tuple:
    """Fixed vs learned bandwidth on y = 2 sin(x) + x^0.8 + noise, x in [0, 5). The learned bandwidth
    minimises the leave-one-out error: each training point is predicted from the others (the mask
    hides it from itself). Returns the test MSE of both, the learned bandwidth and its loss curve."""
    x_train = mg.tensor(sorted((mg.rand(n_train) * 5).tolist()))
    y_train = target_function(x_train) + 0.5 * mg.randn(n_train)
    x_test = mg.arange(0, 5, 0.1)
    keys, values = x_train.reshape(1, -1, 1), y_train.reshape(1, -1, 1)

    def predict(module, queries, mask=None):
        return module(queries.reshape(1, -1, 1), keys, values, mask).reshape(-1)

    fixed, learned = nn.NadarayaWatson(bandwidth=1.0), nn.NadarayaWatson(bandwidth=1.0, learnable=True)
    others = ~mg.eye(n_train, dtype=mg.bool).unsqueeze(0)  # (1, n, n): a training query may not see itself
    optimizer = nn.optim.SGD(learned.parameters(), lr=0.5)
    losses = []
    for _ in progress(range(steps), "Nadaraya-Watson"):
        loss = F.mse_loss(predict(learned, x_train, others), y_train)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    with mg.no_grad():
        truth = target_function(x_test)
        mse = {
            name: F.mse_loss(predict(m, x_test), truth).item() for name, m in (("fixed", fixed), ("learned", learned))
        }
        if plot:
            _plot_regression(x_train, y_train, x_test, truth, fixed, learned, predict, plot)
    return mse, learned.bandwidth.item(), losses


def _plot_regression(x_train, y_train, x_test, truth, fixed, learned, predict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    axes[0].plot(x_test.cpu().numpy(), truth.cpu().numpy(), label="truth")
    axes[0].plot(x_train.cpu().numpy(), y_train.cpu().numpy(), "o", alpha=0.4, label="training data")
    for ax, (name, module) in zip(axes[1:], (("fixed", fixed), ("learned", learned))):
        axes[0].plot(
            x_test.cpu().numpy(), predict(module, x_test).cpu().numpy(), label=f"{name} h={module.bandwidth.item():.2f}"
        )
        ax.imshow(module.attention_weights.cpu().numpy()[0], cmap="Reds", aspect="auto")
        ax.set_title(f"attention weights, {name} bandwidth")
        ax.set_xlabel("training input (sorted)")
        ax.set_ylabel("test input")
    axes[0].legend()
    axes[0].set_title("Nadaraya-Watson kernel regression")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> Result:
    args = arguments(argv, task="both", epochs=None, batch_size=64, lr=5e-3, embed_size=32, num_hiddens=128,
                     num_layers=1, dropout=0.1, n_train=50, nw_steps=50)  # fmt: skip
    setup(args)
    stem = Path(args.plot).with_suffix("") if args.plot else None
    names = ["dates", "en-es"] if args.task == "both" else [args.task]
    curves, extra = {}, {}
    with Timer() as timer:
        mse, bandwidth, curves["Nadaraya-Watson loss"] = nadaraya_watson(
            args.n_train, args.nw_steps, f"{stem}_nadaraya_watson.png" if stem else None
        )
        extra |= {"NW MSE fixed h=1": mse["fixed"], f"NW MSE learned h={bandwidth:.2f}": mse["learned"]}
        for name in names:
            task = load_task(name, args.quick)
            epochs = 1 if args.quick else args.epochs or EPOCHS[name]
            for kind in ("plain", "attention"):
                mg.manual_seed(args.seed)  # the same initial draws and batches for both
                model = build(kind, task, args)
                curves[f"{name} {kind} train loss"] = train(
                    model, task, epochs, args.batch_size, args.lr, f"{name} {kind}"
                )
                extra[f"{name} {kind} {METRICS[name]}"] = score(name, translate(model, task), task)
            if stem:
                for index in range(2):
                    path = f"{stem}_attention_{name}_{index}.png"
                    save_attention_map(model, task, index, path, f"Bahdanau attention, {name} test pair {index}")
                    print(f"attention map saved to {path}")
    gains = {
        name: extra[f"{name} attention {METRICS[name]}"] - extra[f"{name} plain {METRICS[name]}"] for name in names
    }
    extra |= {f"{name} gain": gain for name, gain in gains.items()}
    result = Result(f"{names[0]} attention {METRICS[names[0]]}", extra.pop(f"{names[0]} attention {METRICS[names[0]]}"),
                    curves, extra, timer.seconds)  # fmt: skip
    return finish(result, args, "Nadaraya-Watson; GRU seq2seq with and without attention")


if __name__ == "__main__":
    main()
