"""What every example shares: arguments, seed, device, progress bar, curves and plots.

An example is a module with a one-line docstring and ``run(args) -> Result``; it reads like a
script: data, model, training loop, metric, plot. This module keeps the plumbing out of it.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field

import minigrad as mg
import minigrad.functional as F
import nn


@dataclass
class Result:
    """What an example reached: its headline metric, and its curves (name -> values)."""

    metric: str  # e.g. "test accuracy"
    value: float
    curves: dict = field(default_factory=dict)  # "train loss" -> [...], per step or epoch
    extra: dict = field(default_factory=dict)  # other figures worth printing
    seconds: float = 0.0

    def line(self) -> str:
        if 0 < abs(self.value) < 1e-3:  # a difference or an error: its size, not 0.0000
            shown = f"{self.value:.3g}"
        else:
            shown = f"{self.value:.4f}" if abs(self.value) < 10 else f"{self.value:.2f}"
        parts = [f"{self.metric}: {shown}"] + [f"{k}: {_fmt(v)}" for k, v in self.extra.items()]
        return " | ".join(parts) + f" ({self.seconds:.1f} s)"


def _fmt(v):
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def arguments(argv=None, **defaults) -> argparse.Namespace:
    """The options every example takes (``--epochs`` etc. default to the example's own values)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default=mg.backend.get_default_device(), choices=["cpu", "cuda"])
    parser.add_argument("--epochs", type=int, default=defaults.pop("epochs", 1))
    parser.add_argument("--quick", action="store_true", help="a few seconds' smoke run")
    parser.add_argument("--plot", metavar="PATH", help="save the curves to this image")
    parser.add_argument("--seed", type=int, default=42)
    for name, value in defaults.items():
        flag = f"--{name.replace('_', '-')}"
        if isinstance(value, bool):
            parser.add_argument(flag, action="store_true", default=value)
        else:
            parser.add_argument(flag, type=type(value) if value is not None else str, default=value)
    return parser.parse_args(argv)


def setup(args) -> None:
    """Seed every generator and make the chosen device the default one."""
    mg.manual_seed(args.seed)
    mg.backend.set_default_device(args.device)


def progress(iterable, desc: str, total: int | None = None, **kwargs):
    """A tqdm progress bar (to stderr, so the final line stays easy to read)."""
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, total=total, leave=False, dynamic_ncols=True, **kwargs)


class Timer:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start


def save_plot(curves: dict, path: str, title: str = "", xlabel: str = "step") -> None:
    """One panel per group of curves that share a unit (losses, accuracies, ...)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups: dict = {}
    for name, values in curves.items():
        # "unit: what" names share a panel; otherwise losses go together, and accuracies.
        unit = (
            name.split(":")[0] if ":" in name else "accuracy" if "acc" in name else "loss" if "loss" in name else name
        )
        groups.setdefault(unit, []).append((name, values))
    fig, axes = plt.subplots(1, len(groups), figsize=(5 * len(groups), 3.6), squeeze=False)
    for ax, (unit, series) in zip(axes[0], groups.items()):
        per_epoch = False
        for name, values in series:
            per_epoch = bool(values) and isinstance(values[0], tuple)  # (epoch, value) pairs
            xs, ys = zip(*values) if per_epoch else (range(len(values)), values)
            ax.plot(list(xs), list(ys), label=name)
        ax.set_xlabel("epoch" if per_epoch and xlabel == "step" else xlabel)
        ax.set_ylabel(unit)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def finish(result: Result, args, title: str = "") -> Result:
    """Print the figure reached (one line) and save the plot if asked."""
    print(result.line(), flush=True)
    if args.plot and result.curves:
        save_plot(result.curves, args.plot, title)
        print(f"plot saved to {args.plot}")
    return result


def parameters(model: nn.Module) -> int:
    """The number of values in ``model``'s parameters."""
    return sum(p.numel() for p in model.parameters())


def nesterov_sgd(parameters, lr: float, weight_decay: float) -> nn.optim.SGD:
    """The CNN recipe's optimizer: SGD with Nesterov momentum 0.9."""
    return nn.optim.SGD(parameters, lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay)


class MixedPrecision:
    """``--amp``: the forward and the loss run under ``mg.autocast(device, float16)`` and the update
    goes through a ``GradScaler``; when not ``enabled``, a plain float32 step::

        with precision.autocast:
            loss = loss_of(batch)
        precision.step(loss, optimizer)
    """

    def __init__(self, device: str, enabled: bool):
        self.autocast = mg.autocast(device, dtype=mg.float16, enabled=enabled)
        self.scaler = nn.amp.GradScaler(enabled=enabled)

    def step(self, loss: mg.Tensor, optimizer: nn.optim.Optimizer) -> None:
        """Backward through the scaled loss, then step on the unscaled gradients (skipped, and the scale
        lowered, when one is inf or NaN)."""
        optimizer.zero_grad()
        self.scaler.scale(loss).backward()
        self.scaler.step(optimizer)
        self.scaler.update()


def fit(model, loss_of, n: int, epochs: int, batch_size: int, lr: float, parameters=None, evaluate=None,
        desc: str = "epoch", weight_decay: float = 5e-4, optimizer=None, amp: bool = False,
        loader=None) -> dict:  # fmt: skip
    """Train for ``epochs`` over ``n`` samples in shuffled batches (a last partial batch dropped): SGD
    with Nesterov momentum 0.9 on ``parameters`` (default all of the model's), one-cycle learning rate
    peaking at ``lr``. ``loss_of(index)`` gives a batch's loss; ``evaluate()``, if given, a test
    accuracy after each epoch. ``optimizer``, if given, replaces the SGD. ``amp``: mixed precision
    (``MixedPrecision``) on the default device. ``loader``, if given (a ``DataLoader``), gives the
    batches instead of the indices: ``loss_of(batch)``. The model stays in the mode the caller set.
    Returns the curves ``{"train loss": per step, "test accuracy": [(epoch, accuracy)]}``."""
    if optimizer is None:
        optimizer = nesterov_sgd(model.parameters() if parameters is None else parameters, lr, weight_decay)
    steps_per_epoch = n // batch_size if loader is None else len(loader)
    schedule = nn.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=epochs * steps_per_epoch)
    precision = MixedPrecision(mg.backend.get_default_device(), amp)
    curves = {"train loss": [], "test accuracy": []}
    for epoch in range(epochs):
        epoch_batches = batches(n, batch_size, drop_last=True) if loader is None else loader
        bar = progress(epoch_batches, f"{desc} {epoch + 1}/{epochs}", total=steps_per_epoch)
        for batch in bar:
            with precision.autocast:
                loss = loss_of(batch)
            precision.step(loss, optimizer)
            schedule.step()
            curves["train loss"].append(loss.item())
            bar.set_postfix(loss=f"{loss.item():.3f}")
        if evaluate is not None:
            curves["test accuracy"].append((epoch + 1, evaluate()))
            print(f"{desc} {epoch + 1}: test accuracy {curves['test accuracy'][-1][1]:.4f}", flush=True)
    return curves


def optimizer_step(optimizer, loss: mg.Tensor, schedule=None, max_norm: float | None = None) -> float:
    """One update: zero the gradients, backpropagate ``loss``, clip the gradients' joint norm to
    ``max_norm`` (when given), step the optimizer, then the learning-rate ``schedule`` (when given).
    Returns the loss as a float."""
    optimizer.zero_grad()
    loss.backward()
    if max_norm is not None:
        nn.utils.clip_grad_norm_([p for group in optimizer.param_groups for p in group["params"]], max_norm)
    optimizer.step()
    if schedule is not None:
        schedule.step()
    return loss.item()


@mg.no_grad()
def accuracy(model, images, labels, batch_size: int = 500) -> float:
    """Top-1 accuracy of ``model`` on tensors, in eval mode, batch by batch."""
    was_training = model.training
    model.eval()
    correct = 0
    for start in range(0, len(labels), batch_size):
        logits = model(images[start : start + batch_size])
        correct += int((logits.argmax(1) == labels[start : start + batch_size]).sum().item())
    model.train(was_training)
    return correct / len(labels)


def batches(n: int, batch_size: int, shuffle: bool = True, drop_last: bool = False):
    """Index batches over ``n`` samples, shuffled by minigrad's seeded generator."""
    order = mg.randperm(n) if shuffle else mg.arange(n)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        yield order[start : start + batch_size]


def on_device(*tensors: mg.Tensor) -> tuple:
    """The tensors on the default device (the one ``--device`` chose): datasets load on the CPU."""
    device = mg.backend.get_default_device()
    return tuple(t.to(device) for t in tensors)


def load_fashion(quick: bool = False, quick_sizes: tuple = (512, 250)) -> tuple:
    """Fashion-MNIST (embedded 6000/1000): images (N, 1, 28, 28) float in [0, 1] and int64 labels,
    as ``x_train, y_train, x_test, y_test``; --quick keeps ``quick_sizes`` training and test images."""
    from minigrad.data import FashionMNIST

    train, test = FashionMNIST(train=True), FashionMNIST(train=False)
    n_train, n_test = quick_sizes if quick else (len(train), len(test))
    x_train, x_test = (part.data[:n].float().unsqueeze(1) / 255 for part, n in ((train, n_train), (test, n_test)))
    return on_device(x_train, train.targets[:n_train], x_test, test.targets[:n_test])


def train_epoch(model, optimizer, n: int, batch_size: int, loss_of, desc: str = "") -> list:
    """One pass over ``n`` samples in shuffled batches; ``loss_of(index)`` gives a batch's loss.
    Returns the batch losses."""
    model.train()
    losses = []
    for index in progress(batches(n, batch_size), desc, total=-(-n // batch_size)):
        loss = loss_of(index)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def train_classifier(model, x_train, y_train, epochs: int, batch_size: int = 32, lr: float = 3e-3) -> list:
    """Cross-entropy with Adam at a constant learning rate for ``epochs`` over shuffled batches of
    ``(x_train, y_train)``, in the mode the caller set. Returns the batch losses."""
    optimizer = nn.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(epochs):
        for index in batches(len(y_train), batch_size):
            loss = F.cross_entropy(model(x_train[index]), y_train[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    return losses


def imbalanced_digits(minority: tuple, ratio: int, seed: int) -> tuple:
    """UCI digits as (N, 64) features, split 1500/297 as the data README does; in the training split
    each ``minority`` class keeps one sample in ``ratio`` (chosen with ``seed``), the test split is
    left as it is. Returns ``x_train, y_train, x_test, y_test``."""
    from minigrad.data import load_digits, train_test_split

    images, labels = on_device(*load_digits())
    x_train, x_test, y_train, y_test = train_test_split(images.reshape(-1, 64), labels, test_size=297, seed=seed)
    kept = []
    for c in range(10):
        members = mg.arange(len(y_train))[y_train == c]
        kept.append(members[mg.randperm(len(members))[: len(members) // ratio]] if c in minority else members)
    keep = mg.cat(kept)
    return x_train[keep], y_train[keep], x_test, y_test


def average_precision(scores: mg.Tensor, positive: mg.Tensor) -> float:
    """The area under the precision-recall curve as scikit-learn computes it: the mean, over the
    positives ranked by ``scores`` (highest first), of the precision at each one's rank."""
    hits = positive[mg.argsort(scores, descending=True)].float()
    precision_at = hits.cumsum(0) / mg.arange(1, len(hits) + 1)
    return ((precision_at * hits).sum() / hits.sum()).item()


def f1_score(predicted: mg.Tensor, positive: mg.Tensor) -> float:
    """2 TP / (2 TP + FP + FN) of boolean predictions against boolean truth."""
    true_positives = (predicted & positive).sum().item()
    return 2 * true_positives / max(predicted.sum().item() + positive.sum().item(), 1)
