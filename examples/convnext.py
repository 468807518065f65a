"""ConvNeXt (7x7 depthwise conv, LayerNorm, inverted bottleneck, GELU, layer scale, drop path) on Fashion-MNIST."""

from __future__ import annotations

from examples._common import Result, arguments, finish, parameters, setup
from examples._vision import fashion, fit, optimizer
from nn.models import convnext_mini


def main(argv=None) -> Result:
    args = arguments(
        argv, epochs=20, batch_size=64, lr=4e-3, weight_decay=0.05, width=16, drop_path=0.0, layer_scale=0.1
    )
    setup(args)
    epochs, width, batch_size = (1, 8, 32) if args.quick else (args.epochs, args.width, args.batch_size)
    data = fashion(args.quick)

    # Three stages on 14, 7 and 3 px (2x2 patchify stem); trained the Transformer way, with AdamW. The
    # paper's layer scale 1e-6 and drop path suit long training; a few epochs want the blocks active at once.
    model = convnext_mini(10, width=width, drop_path_rate=args.drop_path, layer_scale=args.layer_scale)
    print(f"convnext_mini(width={width}): {parameters(model):,} parameters")
    optim = optimizer(model, "adamw", args.lr, weight_decay=args.weight_decay)
    curves, seconds = fit(model, data, optim, args.lr, epochs, batch_size)
    result = Result("test accuracy", curves["test accuracy"][-1][1], curves, {}, seconds)
    return finish(result, args, "ConvNeXt on Fashion-MNIST")


if __name__ == "__main__":
    main()
