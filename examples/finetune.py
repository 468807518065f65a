"""Transfer from Fashion-MNIST to 100 labelled digits: fine-tuned vs frozen features + linear head vs from scratch."""

from __future__ import annotations

import minigrad as mg
import minigrad.functional as F
import nn
from examples._common import Result, Timer, accuracy, arguments, finish, fit, setup
from examples._vision import fashion
from minigrad.data import load_digits, train_test_split, transforms
from nn.models import resnet_small


def digits_as_fashion(size: int = 28) -> tuple:
    """UCI digits (N, 1, 8, 8) upsampled bilinearly to the pretrained input size (N, 1, size, size)."""
    images, labels = load_digits()
    return F.interpolate(images.unsqueeze(1), size=(size, size), mode="bilinear", align_corners=False), labels


def digit_classifier(width: int, pretrained: nn.Module | None = None) -> nn.Module:
    """resnet_small with a new linear head on its features pooled to 3x3 (where a stroke lies tells
    a 6 from a 9), starting from ``pretrained``'s weights when given."""
    model = resnet_small(10, width=width)
    if pretrained is not None:
        model.load_state_dict(pretrained.state_dict())
    model.avgpool = nn.AdaptiveAvgPool2d(3)
    model.fc = nn.Linear(4 * width * 9, 10)
    return model


def main(argv=None) -> Result:
    args = arguments(argv, epochs=6, batch_size=128, lr=0.1, width=8, labelled=100, transfer_epochs=40, seeds=3)
    setup(args)
    quick = args.quick
    epochs, transfer_epochs, seeds = (1, 3, 1) if quick else (args.epochs, args.transfer_epochs, args.seeds)

    # 1. Pretrain on Fashion-MNIST.
    x_fashion, y_fashion, x_fashion_test, y_fashion_test, crop_flip, normalise, _ = fashion(quick)
    pretrained = resnet_small(10, width=args.width)
    with Timer() as timer:
        curves = fit(pretrained, lambda i: F.cross_entropy(pretrained(crop_flip(x_fashion[i])), y_fashion[i]),
                     len(y_fashion), epochs, args.batch_size, args.lr, desc="pretrain on fashion")  # fmt: skip
        curves = {"pretrain loss": curves["train loss"]}
        fashion_accuracy = accuracy(pretrained, x_fashion_test, y_fashion_test)
        print(f"pretrained on Fashion-MNIST: test accuracy {fashion_accuracy:.4f}", flush=True)

        # 2. Transfer to digits: a few labelled images, with small shifts and rotations as augmentation.
        x_digits, y_digits = digits_as_fashion()
        shift_rotate = transforms.Compose([transforms.RandomAffine(10, translate=(0.1, 0.1)), normalise])
        results = {"fine-tuned": [], "frozen features": [], "from scratch": []}
        for seed in range(args.seed, args.seed + seeds):
            x_train, x_test, y_train, y_test = train_test_split(
                x_digits, y_digits, test_size=len(y_digits) - args.labelled, seed=seed
            )
            x_test, y_test = (normalise(x_test[:200]), y_test[:200]) if quick else (normalise(x_test), y_test)
            for regime in results:
                mg.manual_seed(seed)
                model = digit_classifier(args.width, None if regime == "from scratch" else pretrained)
                if regime == "frozen features":
                    model.requires_grad_(False)
                    model.fc.requires_grad_(True)
                # Frozen features keep their batch-norm statistics too (eval mode): exactly the pretrained map.
                model.train(regime != "frozen features")
                lr = args.lr / 3 if regime == "fine-tuned" else args.lr  # gentler: keep what pretraining learned
                run = fit(model, lambda i, m=model: F.cross_entropy(m(shift_rotate(x_train[i])), y_train[i]),
                          args.labelled, transfer_epochs, args.labelled // 4, lr,
                          parameters=[p for p in model.parameters() if p.requires_grad], desc=regime)  # fmt: skip
                curves.setdefault(f"{regime} loss", run["train loss"])
                results[regime].append(accuracy(model, x_test, y_test))
                print(f"seed {seed}: {regime} digits test accuracy {results[regime][-1]:.4f}", flush=True)

    extra = {"fashion test accuracy (pretrained)": fashion_accuracy}
    extra |= {f"{regime} test accuracy": sum(values) / len(values) for regime, values in results.items()}
    result = Result("fine-tuned digits test accuracy", extra["fine-tuned test accuracy"], curves, extra, timer.seconds)
    return finish(result, args, f"Fashion-MNIST -> {args.labelled} labelled digits (mean of {seeds} splits)")


if __name__ == "__main__":
    main()
