"""SimCLR on Fashion-MNIST: NT-Xent on two augmented views; linear and k-NN probes vs a random and a supervised encoder.

Chen et al. (2020): an encoder f and a projection head g learn without labels by making the two
augmented views of each image pick each other out of the batch (NT-Xent over the projections
z = g(f(x))). The representation h = f(x) is then judged by probes of the frozen encoder on the
labelled images: a linear classifier (logistic regression on standardised features) and a
cosine k-NN vote (k = 20). The references are the same probes on the same architecture randomly
initialised (what SimCLR must beat) and trained with labels (the upper reference).

The two views are drawn in the ``DataLoader``: the training set's transform is ``TwoViews`` of
the augmentation, every image gets its own crop, flip and jitter, and ``--num-workers N`` makes
the batches in N worker processes (the same batches as without, given the seed).
``--sweep`` measures instead the probe after shorter training (``--sweep-epochs``) for several
temperatures and batch sizes, as the paper's Figure 9 and Table 5 do.
"""

from __future__ import annotations

import minigrad.functional as F
import nn
from examples._common import Result, Timer, arguments, finish, fit, on_device, setup
from examples._ssl import augmentation, probe
from examples._vision import fashion
from minigrad.data import DataLoader, FashionMNIST, Subset, transforms
from nn.models import resnet_small


def fashion_views(normalise: transforms.Normalize, n: int) -> Subset:
    """The first ``n`` Fashion-MNIST training images, each sample a pair of views ``(view_1, view_2)``
    (1, 28, 28) and its label (unused by SimCLR): the shared SimCLR augmentation, its crops covering
    20-100 % of the area, then ``normalise``."""
    augment = augmentation(normalise)
    return Subset(FashionMNIST(train=True, transform=transforms.TwoViews(augment)), range(n))


def encoder(width: int) -> nn.Module:
    """resnet_small without its classifier: x (N, 1, 28, 28) -> h (N, 4 width), globally pooled."""
    net = resnet_small(10, width=width)
    net.fc = nn.Identity()
    return net


class SimCLR(nn.Module):
    """The encoder f and the projection head g (Linear, BatchNorm, ReLU, Linear):
    x (N, 1, 28, 28) -> z (N, projection_dim). NT-Xent compares z; the probes use h = f(x)."""

    def __init__(self, encoder: nn.Module, features: int, projection_dim: int = 64):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Sequential(
            nn.Linear(features, features, bias=False),
            nn.BatchNorm1d(features),
            nn.ReLU(),
            nn.Linear(features, projection_dim),
        )

    def forward(self, x):
        return self.head(self.encoder(x))


def pretrain(model: SimCLR, views, epochs: int, batch_size: int = 256, lr: float = 0.5, temperature: float = 0.5,
             num_workers: int = 0, evaluate=None, desc: str = "SimCLR") -> dict:  # fmt: skip
    """Train ``model`` with NT-Xent at ``temperature`` on the pairs of views of ``views`` (a dataset
    of ``((view_1, view_2), label)``; the labels are not used), in shuffled batches of
    ``batch_size`` images made by ``num_workers`` worker processes: SGD with Nesterov momentum,
    one-cycle learning rate peaking at ``lr``. ``evaluate()``, if given, runs after each epoch.
    Returns the curves ``{"train loss": per step, "test accuracy": [(epoch, evaluate())]}``."""
    loader = DataLoader(views, batch_size, shuffle=True, drop_last=True, num_workers=num_workers)

    def loss_of(batch):
        (view_1, view_2), _ = batch
        view_1, view_2 = on_device(view_1, view_2)  # the loader draws the views on the CPU
        return F.nt_xent(model(view_1), model(view_2), temperature)

    model.train()
    return fit(model, loss_of, len(views), epochs, batch_size, lr, evaluate=evaluate, desc=desc, loader=loader)


def sweep(args, data, train: tuple, test: tuple) -> Result:
    """The probes after ``args.sweep_epochs`` epochs for each temperature (at ``args.batch_size``) and
    each batch size (at ``args.temperature``; the learning rate scaled with the batch size).
    --quick: one epoch, the batch sizes divided by 8 (256 images)."""
    shrink, epochs = (8, 1) if args.quick else (1, args.sweep_epochs)
    default = (args.temperature, args.batch_size // shrink)
    settings = [(t, default[1]) for t in sorted({0.1, 0.5, 1.0, args.temperature})]
    settings += [(args.temperature, b // shrink) for b in sorted({64, 512} - {args.batch_size})]
    views = fashion_views(data.normalise, len(data.y_train))
    extra = {}
    with Timer() as timer:
        for temperature, batch_size in settings:
            setting = f"temperature {temperature}, batch {batch_size}"
            model = SimCLR(encoder(args.width), 4 * args.width)
            pretrain(model, views, epochs, batch_size, args.lr * batch_size / 256, temperature, args.num_workers,
                     desc=setting)  # fmt: skip
            linear, knn = probe(model.encoder, train, test)
            extra[f"{setting}: linear (k-NN) probe"] = f"{linear:.4f} ({knn:.4f})"
            print(f"{setting}: linear probe {linear:.4f}, k-NN {knn:.4f}", flush=True)
    linear = float(extra[f"temperature {default[0]}, batch {default[1]}: linear (k-NN) probe"].split()[0])
    metric = f"linear-probe test accuracy after {epochs} epochs (temperature {default[0]}, batch {default[1]})"
    return finish(Result(metric, linear, {}, extra, timer.seconds), args)


def main(argv=None) -> Result:
    args = arguments(argv, epochs=5, batch_size=256, lr=0.5, temperature=0.5, width=8, supervised_epochs=5,
                     num_workers=0, sweep=False, sweep_epochs=3)  # fmt: skip
    setup(args)
    quick = args.quick
    epochs, batch_size = (2, 64) if quick else (args.epochs, args.batch_size)
    data = fashion(quick)
    train, test = (data.normalise(data.x_train), data.y_train), (data.x_test, data.y_test)
    if args.sweep:
        return sweep(args, data, train, test)

    with Timer() as timer:
        # 1. SimCLR: no labels; the probes after every epoch only watch.
        model = SimCLR(encoder(args.width), 4 * args.width)
        knn_curve = []

        def evaluate() -> float:
            linear, knn = probe(model.encoder, train, test)
            knn_curve.append((len(knn_curve) + 1, knn))
            return linear

        run = pretrain(model, fashion_views(data.normalise, len(data.y_train)), epochs, batch_size,
                       args.lr * batch_size / 256, args.temperature, args.num_workers, evaluate)  # fmt: skip
        simclr = run["test accuracy"][-1][1], knn_curve[-1][1]

        # 2. The references: the same encoder randomly initialised, and trained with the labels.
        random = probe(encoder(args.width), train, test)
        supervised = resnet_small(10, width=args.width)

        def supervised_loss(index):
            return F.cross_entropy(supervised(data.augment(data.x_train[index])), data.y_train[index])

        supervised_run = fit(supervised, supervised_loss, len(data.y_train), 1 if quick else args.supervised_epochs,
                             128, 0.1, desc="supervised")  # fmt: skip
        supervised.fc = nn.Identity()
        supervised = probe(supervised, train, test)

    references = {"random encoder": random, "supervised encoder": supervised}
    for i, name in enumerate(("linear", "k-NN")):
        print(f"{name} probe: SimCLR {simclr[i]:.4f}, random encoder {random[i]:.4f}, supervised {supervised[i]:.4f}")
    curves = {
        "NT-Xent: SimCLR train loss": run["train loss"],
        "cross-entropy: supervised train loss": supervised_run["train loss"],
        "probe accuracy: SimCLR, linear": run["test accuracy"],
        "probe accuracy: SimCLR, k-NN": knn_curve,
    }
    for name, (linear, _) in references.items():
        curves[f"probe accuracy: {name}, linear"] = [(1, linear), (epochs, linear)]
    extra = {"SimCLR k-NN probe": simclr[1]}
    for name, (linear, knn) in references.items():
        extra |= {f"{name} linear probe": linear, f"{name} k-NN probe": knn}
    result = Result("SimCLR linear-probe test accuracy", simclr[0], curves, extra, timer.seconds)
    setting = f"resnet_small width {args.width}, temperature {args.temperature}, batch {batch_size}"
    return finish(result, args, f"SimCLR on Fashion-MNIST ({setting})")


if __name__ == "__main__":
    main()
