"""SimSiam (Chen & He, 2021) on Fashion-MNIST: two views, one encoder, stop-gradient; without it, collapse.

An encoder and a projector map each view to z; a small predictor maps z to p; the loss is the
symmetric negative cosine ``D(p1, stopgrad(z2)) / 2 + D(p2, stopgrad(z1)) / 2``. Nothing in it
pushes different images apart, so a constant z would minimise it: the stop-gradient is what
keeps the network from finding that solution. Two runs from the same weights show it:

- with stop-gradient the per-dimension standard deviation of ``z / ||z||`` over a batch (the
  paper's collapse measure) stays near ``1 / sqrt(d)``, what spread-out outputs give;
- without it the same measure falls towards 0: every image is mapped to the same point.

Each encoder is then judged by a linear probe and a k-NN probe on its frozen features, next to
the same probes on the untrained (random) encoder.
"""

from __future__ import annotations

import copy
import math

import minigrad as mg
import minigrad.functional as F
import nn
from examples._common import Result, Timer, arguments, finish, fit, setup
from examples._ssl import conv_encoder, fashion_views, probe


class SimSiam(nn.Module):
    """Encoder -> projector (z) -> predictor (p, a bottleneck MLP), the paper's heads: the projector
    ends in a batch norm on z, the predictor has a batch-normed bottleneck. The batch norm alone
    does not prevent collapse: its learned scale and shift can make z the same for every image."""

    def __init__(self, width: int, dim: int, pred_dim: int):
        super().__init__()
        self.encoder = conv_encoder(width)
        self.projector = nn.Sequential(
            nn.Linear(4 * width, dim, bias=False), nn.BatchNorm1d(dim), nn.ReLU(),
            nn.Linear(dim, dim, bias=False), nn.BatchNorm1d(dim),
        )  # fmt: skip
        self.predictor = nn.Sequential(
            nn.Linear(dim, pred_dim, bias=False), nn.BatchNorm1d(pred_dim), nn.ReLU(), nn.Linear(pred_dim, dim)
        )

    def forward(self, x: mg.Tensor) -> tuple[mg.Tensor, mg.Tensor]:
        """x: (N, 1, 28, 28) -> z, p: (N, dim)."""
        z = self.projector(self.encoder(x))
        return z, self.predictor(z)


def simsiam_loss(model: SimSiam, x1: mg.Tensor, x2: mg.Tensor, stop_gradient: bool) -> tuple[mg.Tensor, mg.Tensor]:
    """The symmetric negative cosine of two views ``(N, 1, 28, 28)``, and the first view's z."""
    (z1, p1), (z2, p2) = model(x1), model(x2)
    if stop_gradient:
        z1, z2 = z1.detach(), z2.detach()
    loss = 0.5 * F.negative_cosine_similarity(p1, z2) + 0.5 * F.negative_cosine_similarity(p2, z1)
    return loss, z1


@mg.no_grad()
def output_std(z: mg.Tensor) -> float:
    """The collapse measure: the standard deviation over the batch of each dimension of the
    l2-normalised ``z: (N, d)``, averaged over the d dimensions (0 when collapsed, about
    1 / sqrt(d) when z / ||z|| spreads over the sphere)."""
    return F.normalize(z.detach(), dim=1).std(0).mean().item()


def train(model: SimSiam, data, stop_gradient: bool, args, epochs: int, batch_size: int) -> dict:
    """SimSiam training (AdamW, one-cycle learning rate); curves of the loss and the collapse measure."""
    stds = []

    def loss_of(index):
        loss, z1 = simsiam_loss(model, *data.views(data.x_train[index]), stop_gradient)
        stds.append(output_std(z1))
        return loss

    model.train()
    desc = "with stop-gradient" if stop_gradient else "without stop-gradient"
    optimizer = nn.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    curves = fit(model, loss_of, len(data.y_train), epochs, batch_size, args.lr, optimizer=optimizer, desc=desc)
    return {"loss": curves["train loss"], "std": stds}


def main(argv=None) -> Result:
    args = arguments(argv, epochs=15, batch_size=32, lr=2e-3, weight_decay=1e-4, width=16, dim=128, pred_dim=32)
    setup(args)
    quick = args.quick
    epochs = 2 if quick else args.epochs
    data = fashion_views(quick)

    model = SimSiam(args.width, args.dim, args.pred_dim)
    untrained = copy.deepcopy(model)  # both runs start from these weights
    train_set, test_set = (data.normalise(data.x_train), data.y_train), (data.x_test, data.y_test)
    with Timer() as timer:
        random_linear, random_knn = probe(untrained.encoder, train_set, test_set)
        print(f"random encoder: linear probe {random_linear:.4f}, k-NN {random_knn:.4f}", flush=True)
        runs, accuracies = {}, {}
        for stop_gradient, name in ((True, "stop-gradient"), (False, "no stop-gradient")):
            net = model if stop_gradient else copy.deepcopy(untrained)
            runs[name] = train(net, data, stop_gradient, args, epochs, args.batch_size)
            accuracies[name] = probe(net.encoder, train_set, test_set)
            print(f"{name}: linear probe {accuracies[name][0]:.4f}, k-NN {accuracies[name][1]:.4f}, "
                  f"output std {runs[name]['std'][-1]:.4f}", flush=True)  # fmt: skip

    curves = {f"{name} loss": run["loss"] for name, run in runs.items()}
    curves |= {f"std of z/||z||: {name}": run["std"] for name, run in runs.items()}
    curves["std of z/||z||: 1/sqrt(d)"] = [1 / math.sqrt(args.dim)] * len(runs["stop-gradient"]["std"])
    extra = {
        "k-NN": accuracies["stop-gradient"][1],
        "random encoder linear probe": random_linear,
        "random encoder k-NN": random_knn,
        "no stop-gradient linear probe": accuracies["no stop-gradient"][0],
        "no stop-gradient k-NN": accuracies["no stop-gradient"][1],
        "output std (stop-gradient)": runs["stop-gradient"]["std"][-1],
        "output std (no stop-gradient)": runs["no stop-gradient"]["std"][-1],
        "1/sqrt(d)": 1 / math.sqrt(args.dim),
    }
    result = Result("linear probe accuracy", accuracies["stop-gradient"][0], curves, extra, timer.seconds)
    return finish(result, args, f"SimSiam on Fashion-MNIST ({epochs} epochs): collapse with and without stop-gradient")


if __name__ == "__main__":
    main()
