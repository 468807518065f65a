"""ResNet on Fashion-MNIST (embedded 6000/1000): test accuracy, and gradient flow in plain vs residual nets."""

from __future__ import annotations

import minigrad as mg
import minigrad.functional as F
import nn
from examples._common import Result, Timer, accuracy, arguments, batches, finish, progress, setup
from minigrad.data import FashionMNIST, transforms
from nn.models import plain_cnn_small, resnet_small, se_resnet_small


def load(quick: bool):
    """Fashion-MNIST as (N, 1, 28, 28) float tensors in [0, 1] and int64 labels."""
    train, test = FashionMNIST(train=True), FashionMNIST(train=False)
    x_train, y_train = train.data.float().unsqueeze(1) / 255, train.targets
    x_test, y_test = test.data.float().unsqueeze(1) / 255, test.targets
    if quick:
        return x_train[:256], y_train[:256], x_test[:200], y_test[:200]
    return x_train, y_train, x_test, y_test


def gradient_norms(model: nn.Module, images: mg.Tensor, labels: mg.Tensor) -> list:
    """The gradient norm of every conv layer's weight, input side first, after one backward at init."""
    F.cross_entropy(model(images), labels).backward()
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    return [m.weight.grad.pow(2).sum().sqrt().item() for m in convs]


def main(argv=None) -> Result:
    args = arguments(argv, epochs=20, batch_size=128, lr=0.1, width=16, blocks=1, se=False, depth_blocks=9)
    setup(args)
    quick = args.quick
    epochs, width, batch_size = (1, 8, 32) if quick else (args.epochs, args.width, args.batch_size)
    x_train, y_train, x_test, y_test = load(quick)
    # Augment the raw images (the crop pads with black, the background), then normalise.
    normalise = transforms.Normalize([x_train.mean().item()], [x_train.std().item()])
    augment = transforms.Compose([transforms.RandomCrop(28, padding=2), transforms.RandomHorizontalFlip(), normalise])
    x_test = normalise(x_test)

    build = se_resnet_small if args.se else resnet_small
    model = build(10, width=width, blocks=args.blocks)
    steps_per_epoch = len(y_train) // batch_size
    optimizer = nn.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    schedule = nn.optim.lr_scheduler.OneCycleLR(optimizer, args.lr, total_steps=epochs * steps_per_epoch)

    curves = {"train loss": [], "test accuracy": []}
    with Timer() as timer:
        for epoch in range(epochs):
            model.train()
            bar = progress(
                batches(len(y_train), batch_size, drop_last=True), f"epoch {epoch + 1}/{epochs}", total=steps_per_epoch
            )
            for index in bar:
                loss = F.cross_entropy(model(augment(x_train[index])), y_train[index])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                schedule.step()
                curves["train loss"].append(loss.item())
                bar.set_postfix(loss=f"{loss.item():.3f}")
            curves["test accuracy"].append((epoch + 1, accuracy(model, x_test, y_test)))
            print(f"epoch {epoch + 1}: test accuracy {curves['test accuracy'][-1][1]:.4f}", flush=True)

    # Gradient flow at initialisation: a deep plain network against the same network with shortcuts,
    # both without batch norm and with PyTorch's default conv init (what BN and He init later fixed).
    depth_blocks = 2 if quick else args.depth_blocks
    depth = 6 * depth_blocks + 2
    probe = slice(0, 64)
    extra = {}
    for name, net in (("plain", plain_cnn_small), ("resnet", resnet_small)):
        mg.manual_seed(args.seed)
        model_at_init = net(10, width=width, blocks=depth_blocks, batch_norm=False, he_init=False)
        norms = gradient_norms(model_at_init, normalise(x_train[probe]), y_train[probe])
        curves[f"gradient norm: {name}-{depth}"] = norms
        extra[f"{name}-{depth} first-layer gradient norm"] = norms[0]
        extra[f"{name}-{depth} smallest/largest layer gradient norm"] = min(norms) / max(max(norms), 1e-30)
    result = Result("test accuracy", curves["test accuracy"][-1][1], curves, extra, timer.seconds)
    return finish(result, args, "ResNet on Fashion-MNIST")


if __name__ == "__main__":
    main()
