"""Deformable convolution on randomly rotated, scaled and sheared Fashion-MNIST: deformable vs plain last stage."""

from __future__ import annotations

import minigrad as mg
import minigrad.functional as F
import nn
from examples._common import Result, Timer, accuracy, arguments, finish, fit, load_fashion, parameters, setup
from minigrad.data import transforms


class DeformableConv(nn.Module):
    """A 3x3 deformable convolution (Dai et al., 2017) with its offset branch: a plain 3x3 conv
    predicts a (dy, dx) shift for each of the 9 taps at every output pixel. The offset conv
    starts at zero, so training starts from the plain convolution and learns where to look."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.DeformConv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.offset = nn.Conv2d(in_channels, 2 * 3 * 3, 3, padding=1)
        nn.init.zeros_(self.offset.weight)
        nn.init.zeros_(self.offset.bias)

    def forward(self, x: mg.Tensor) -> mg.Tensor:
        return self.conv(x, self.offset(x))


def small_cnn(width: int, deformable: int) -> nn.Sequential:
    """conv-BN-ReLU layers at widths w, 2w, 2w (28 -> 14), 4w, 4w, 4w (-> 7), a global pool and a
    linear classifier; the last ``deformable`` convolutions are deformable."""
    plan = [(1, width, 1), (width, 2 * width, 2), (2 * width, 2 * width, 1), (2 * width, 4 * width, 2)]
    plan += [(4 * width, 4 * width, 1)] * 2
    layers = []
    for i, (c_in, c_out, stride) in enumerate(plan):
        if i >= len(plan) - deformable:
            conv = DeformableConv(c_in, c_out)
        else:
            conv = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        layers += [conv, nn.BatchNorm2d(c_out), nn.ReLU()]
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4 * width, 10))


def main(argv=None) -> Result:
    args = arguments(argv, epochs=6, batch_size=128, lr=0.05, width=16, deformable=2, degrees=60.0)
    setup(args)
    quick = args.quick
    epochs, width, batch_size = (3, 4, 32) if quick else (args.epochs, args.width, args.batch_size)
    x_train, y_train, x_test, y_test = load_fashion(quick)
    # Strong geometric distortion, drawn afresh for every training batch and once for the test set.
    distort = transforms.RandomAffine(args.degrees, scale=(0.6, 1.2), shear=25)
    normalise = transforms.Normalize([x_train.mean().item()], [x_train.std().item()])
    x_test = normalise(distort(x_test))

    curves, extra = {}, {}
    with Timer() as timer:
        for name, deformable in (("plain", 0), ("deformable", args.deformable)):
            mg.manual_seed(args.seed)
            model = small_cnn(width, deformable)
            mg.manual_seed(args.seed + 1)  # both nets see the same batches and the same distortions

            def loss_of(index, model=model):
                return F.cross_entropy(model(normalise(distort(x_train[index]))), y_train[index])

            run = fit(model, loss_of, len(y_train), epochs, batch_size, args.lr, desc=name,
                      evaluate=lambda model=model: accuracy(model, x_test, y_test))  # fmt: skip
            curves[f"{name} train loss"], curves[f"{name} test accuracy"] = run["train loss"], run["test accuracy"]
            extra[f"{name} test accuracy"] = run["test accuracy"][-1][1]
            extra[f"{name} parameters"] = parameters(model)
    gain = extra["deformable test accuracy"] - extra["plain test accuracy"]
    result = Result("deformable - plain test accuracy", gain, curves, extra, timer.seconds)
    return finish(result, args, "Deformable vs plain convolution on distorted Fashion-MNIST")


if __name__ == "__main__":
    main()
