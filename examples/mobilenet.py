"""MobileNet v1/v2 (depthwise separable convs; width and resolution multipliers) on Fashion-MNIST."""

from __future__ import annotations

import minigrad as mg
import nn
from examples._common import Result, arguments, finish, parameters, setup
from examples._vision import at_resolution, fashion, fit, optimizer
from nn.models import mobilenet_v1, mobilenet_v2
from nn.models.mobilenet import make_divisible
from nn.utils import summary


def separable_vs_standard(c_in: int, c_out: int, size: int) -> dict:
    """Parameters and FLOPs of a 3x3 conv against its depthwise + pointwise factorisation."""
    x = mg.zeros(1, c_in, size, size)
    standard = nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False))  # summary() counts children
    separable = nn.Sequential(
        nn.Conv2d(c_in, c_in, 3, padding=1, groups=c_in, bias=False), nn.Conv2d(c_in, c_out, 1, bias=False)
    )
    costs = {name: summary(layer, x) for name, layer in (("standard", standard), ("separable", separable))}
    print(f"3x3 conv, {c_in} -> {c_out} channels on {size}x{size}:")
    for name, info in costs.items():
        print(f"  {name:>9}: {info.params:>7,} parameters, {info.flops / 1e6:6.2f} MFLOPs")
    ratio = costs["separable"].flops / costs["standard"].flops
    print(f"  separable / standard FLOPs = {ratio:.3f}; the paper's 1/C_out + 1/9 = {1 / c_out + 1 / 9:.3f}")
    return {"separable/standard FLOPs": ratio}


def main(argv=None) -> Result:
    args = arguments(
        argv, epochs=20, batch_size=128, lr=0.05, version=1, width_mult=0.5, resolution_mult=1.0, stem_stride=1
    )
    setup(args)
    quick = (1, 16, 0.25, 0.1)
    epochs, batch_size, alpha, lr = quick if args.quick else (args.epochs, args.batch_size, args.width_mult, args.lr)
    data = fashion(args.quick)

    # The width multiplier alpha thins every layer; the resolution multiplier rho shrinks (or grows) the input.
    resolution = round(28 * args.resolution_mult)
    extra = separable_vs_standard(
        make_divisible(64 * alpha), make_divisible(128 * alpha), resolution // args.stem_stride
    )
    build = mobilenet_v1 if args.version == 1 else mobilenet_v2
    net = build(10, alpha, in_channels=1, stem_stride=args.stem_stride)  # stride 1: 28 px is small already
    model = at_resolution(net, resolution)
    info = summary(model.eval(), data.x_test[:1])  # eval: batch norm on one image
    print(
        f"mobilenet_v{args.version}(width_mult={alpha}) at {resolution}x{resolution}: "
        f"{parameters(model):,} parameters, {info.flops / 1e6:.1f} MFLOPs per image"
    )
    optim = optimizer(model, "sgd", lr, weight_decay=5e-4)
    curves, seconds = fit(model, data, optim, lr, epochs, batch_size)
    extra.update(parameters=parameters(model), MFLOPs=round(info.flops / 1e6, 1))
    result = Result("test accuracy", curves["test accuracy"][-1][1], curves, extra, seconds)
    return finish(result, args, f"MobileNet v{args.version} on Fashion-MNIST")


if __name__ == "__main__":
    main()
