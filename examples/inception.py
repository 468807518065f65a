"""Inception (GoogLeNet blocks: parallel 1x1, 3x3, 5x5 and pool branches, 1x1 reductions) on Fashion-MNIST."""

from __future__ import annotations

from examples._common import Result, arguments, finish, parameters, setup
from examples._vision import fashion, fit, optimizer
from nn.models import inception_small


def main(argv=None) -> Result:
    args = arguments(argv, epochs=10, batch_size=128, lr=0.1, width=8, stem_stride=2)
    setup(args)
    epochs, width, batch_size = (1, 4, 32) if args.quick else (args.epochs, args.width, args.batch_size)
    data = fashion(args.quick)

    # Four Inception blocks; the stem's stride 2 runs them at 14 and 7 px, as GoogLeNet runs its own
    # blocks on a strongly downsampled image.
    model = inception_small(10, width=width, stem_stride=args.stem_stride)
    print(f"inception_small(width={width}): {parameters(model):,} parameters")
    optim = optimizer(model, "sgd", args.lr, weight_decay=5e-4)
    curves, seconds = fit(model, data, optim, args.lr, epochs, batch_size)
    result = Result("test accuracy", curves["test accuracy"][-1][1], curves, {}, seconds)
    return finish(result, args, "Inception on Fashion-MNIST")


if __name__ == "__main__":
    main()
