"""EfficientNet (MBConv + squeeze-excitation + SiLU; depth, width and resolution scaled by phi) on Fashion-MNIST."""

from __future__ import annotations

from examples._common import Result, arguments, finish, parameters, setup
from examples._vision import at_resolution, fashion, fit, optimizer
from nn.models import EfficientNet, compound_scaling
from nn.models.efficientnet import MBConv

# The phi = 0 network for 28x28 images: a quarter of B0's width, half its depth, at the images' own resolution.
BASE_WIDTH, BASE_DEPTH, BASE_RESOLUTION = 0.25, 0.5, 28


def main(argv=None) -> Result:
    args = arguments(argv, epochs=12, batch_size=64, lr=0.05, phi=0.0)
    setup(args)
    epochs, batch_size, stem_stride = (2, 16, 2) if args.quick else (args.epochs, args.batch_size, 1)
    data = fashion(args.quick)

    # Compound scaling: depth alpha**phi, width beta**phi, resolution gamma**phi, with alpha * beta**2 * gamma**2 ~ 2,
    # so each step of phi about doubles the FLOPs.
    print("phi  depth  width  resolution")
    for phi in sorted({0.0, 1.0, 2.0, 3.0, args.phi}):
        depth, width, resolution = compound_scaling(phi)
        print(f"{phi:3g}  {depth:5.3f}  {width:5.3f}  {resolution:5.3f} -> {round(BASE_RESOLUTION * resolution)} px")
    depth, width, resolution = compound_scaling(args.phi)
    size = round(BASE_RESOLUTION * resolution)
    net = EfficientNet(
        BASE_WIDTH * width,
        BASE_DEPTH * depth,
        num_classes=10,
        in_channels=1,
        stochastic_depth=0.1,
        stem_stride=stem_stride,  # 1: 28 px is small already
        resolution=size,
    )
    blocks = [m for m in net.modules() if isinstance(m, MBConv)]
    print(
        f"phi={args.phi:g}: {len(blocks)} MBConv blocks, width x{BASE_WIDTH * width:.3f}, "
        f"{size}x{size} input, {parameters(net):,} parameters"
    )
    model = at_resolution(net, size)
    optim = optimizer(model, "sgd", args.lr, weight_decay=5e-4)
    curves, seconds = fit(model, data, optim, args.lr, epochs, batch_size)
    extra = {"depth": round(depth, 3), "width": round(width, 3), "resolution": size, "MBConv blocks": len(blocks)}
    result = Result("test accuracy", curves["test accuracy"][-1][1], curves, extra, seconds)
    return finish(result, args, f"EfficientNet (phi={args.phi:g}) on Fashion-MNIST")


if __name__ == "__main__":
    main()
