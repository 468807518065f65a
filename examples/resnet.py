"""ResNet on Fashion-MNIST (embedded 6000/1000): test accuracy, and gradient flow in plain vs residual nets."""

from __future__ import annotations

import minigrad as mg
import minigrad.functional as F
import nn
from examples._common import Result, arguments, finish, setup
from examples._vision import fashion, fit, optimizer
from nn.models import plain_cnn_small, resnet_small, se_resnet_small


def gradient_norms(model: nn.Module, images: mg.Tensor, labels: mg.Tensor) -> list:
    """The gradient norm of every conv layer's weight, input side first, after one backward at init."""
    F.cross_entropy(model(images), labels).backward()
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    return [m.weight.grad.pow(2).sum().sqrt().item() for m in convs]


def main(argv=None) -> Result:
    args = arguments(argv, epochs=20, batch_size=128, lr=0.1, width=16, blocks=1, se=False, depth_blocks=9, amp=False)
    setup(args)
    quick = args.quick
    epochs, width, batch_size = (1, 8, 32) if quick else (args.epochs, args.width, args.batch_size)
    data = fashion(quick)

    build = se_resnet_small if args.se else resnet_small
    model = build(10, width=width, blocks=args.blocks)
    optim = optimizer(model, "sgd", args.lr, weight_decay=5e-4)
    curves, seconds = fit(model, data, optim, args.lr, epochs, batch_size, amp=args.amp)

    # Gradient flow at initialisation: a deep plain network against the same network with shortcuts,
    # both without batch norm and with PyTorch's default conv init (what BN and He init later fixed).
    depth_blocks = 2 if quick else args.depth_blocks
    depth = 6 * depth_blocks + 2
    probe = slice(0, 64)
    extra = {}
    for name, net in (("plain", plain_cnn_small), ("resnet", resnet_small)):
        mg.manual_seed(args.seed)
        model_at_init = net(10, width=width, blocks=depth_blocks, batch_norm=False, he_init=False)
        norms = gradient_norms(model_at_init, data.normalise(data.x_train[probe]), data.y_train[probe])
        curves[f"gradient norm: {name}-{depth}"] = norms
        extra[f"{name}-{depth} first-layer gradient norm"] = norms[0]
        extra[f"{name}-{depth} smallest/largest layer gradient norm"] = min(norms) / max(max(norms), 1e-30)
    result = Result("test accuracy", curves["test accuracy"][-1][1], curves, extra, seconds)
    return finish(result, args, "ResNet on Fashion-MNIST")


if __name__ == "__main__":
    main()
