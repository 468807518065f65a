"""Transfer from Fashion-MNIST to 100 labelled digits: fine-tuned (supervised or SimCLR) vs frozen features vs scratch.

The regimes share one classifier, the same 100 labelled digits, their augmentation (small
shifts and rotations), the test set (the other 1697 digits), the learning rate and the number of
epochs. Its head is linear on multi-stage features: every stage's map of the backbone pooled to
3x3 and concatenated (early stroke detectors transfer across domains better than the last stage),
standardised by a batch norm without affine weights.

- frozen features: the Fashion-MNIST backbone's weights stay fixed; its batch-norm statistics
  (and the head's standardisation) are re-estimated on the 100 training digits (AdaBN, Li et al.,
  2016), then only the linear head trains (a linear probe).
- fine-tuned: linear probing then fine-tuning (LP-FT, Kumar et al., 2022): from the frozen
  regime's model, every weight trains for the same epochs as from scratch.
- fine-tuned from SimCLR: LP-FT as above from a backbone of the same architecture pretrained on
  the same Fashion-MNIST images without their labels (SimCLR, ``examples/simclr.py``).
- from scratch: the same classifier, randomly initialised, trains every weight.
"""

from __future__ import annotations

import minigrad as mg
import minigrad.functional as F
import nn
from examples._common import Result, Timer, accuracy, arguments, finish, fit, on_device, setup
from examples._vision import fashion
from examples.simclr import SimCLR, encoder, fashion_views, pretrain
from minigrad.data import load_digits, train_test_split, transforms
from nn.models import resnet_small


def digits_as_fashion(size: int = 28) -> tuple:
    """UCI digits (N, 1, 8, 8) upsampled bilinearly to the pretrained input size (N, 1, size, size)."""
    images, labels = on_device(*load_digits())
    return F.interpolate(images.unsqueeze(1), size=(size, size), mode="bilinear", align_corners=False), labels


class DigitClassifier(nn.Module):
    """resnet_small (``pretrained``'s weights when given) with a linear head on its multi-stage
    features: each stage's map pooled to 3x3 (where a stroke lies tells a 6 from a 9), concatenated,
    standardised. x: (N, 1, 28, 28) -> logits (N, 10)."""

    def __init__(self, width: int, pretrained: nn.Module | None = None):
        super().__init__()
        self.backbone = resnet_small(10, width=width)
        self.backbone.fc = nn.Identity()  # the pretraining's classifier, if any: not used
        if pretrained is not None:
            self.backbone.load_state_dict({k: v for k, v in pretrained.state_dict().items() if not k.startswith("fc.")})
        features = (1 + 2 + 4) * width * 3 * 3
        self.norm = nn.BatchNorm1d(features, affine=False)
        self.fc = nn.Linear(features, 10)

    def features(self, x: mg.Tensor) -> mg.Tensor:
        """(N, 1, 28, 28) -> (N, 63 * width): the stages' maps pooled to 3x3, standardised."""
        net = self.backbone
        x = net.maxpool(net.relu(net.bn1(net.conv1(x))))
        pooled = []
        for stage in (net.layer1, net.layer2, net.layer3):
            x = stage(x)
            pooled.append(F.adaptive_avg_pool2d(x, 3).flatten(1))
        return self.norm(mg.cat(pooled, 1))

    def forward(self, x: mg.Tensor) -> mg.Tensor:
        return self.fc(self.features(x))


@mg.no_grad()
def adapt_batch_norm(model: nn.Module, images: mg.Tensor) -> None:
    """Set every batch norm's running statistics to those of ``images`` (AdaBN), and leave the model
    in eval mode: frozen weights then see the digits normalised as they saw Fashion-MNIST."""
    norms = [m for m in model.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.momentum = 1.0  # the running statistics become this one batch's
    model.train()
    model(images)
    model.eval()
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum


def main(argv=None) -> Result:
    args = arguments(argv, epochs=15, batch_size=128, lr=0.1, width=8, labelled=100, transfer_epochs=40, seeds=3,
                     simclr_epochs=5)  # fmt: skip
    setup(args)
    quick = args.quick
    epochs, transfer_epochs, seeds, simclr_epochs, simclr_batch = (
        (1, 3, 1, 2, 64) if quick else (args.epochs, args.transfer_epochs, args.seeds, args.simclr_epochs, 256)
    )

    # 1. Pretrain on Fashion-MNIST.
    x_fashion, y_fashion, x_fashion_test, y_fashion_test, crop_flip, normalise, _ = fashion(quick)
    pretrained = resnet_small(10, width=args.width)
    with Timer() as timer:
        curves = fit(pretrained, lambda i: F.cross_entropy(pretrained(crop_flip(x_fashion[i])), y_fashion[i]),
                     len(y_fashion), epochs, args.batch_size, args.lr, desc="pretrain on fashion")  # fmt: skip
        curves = {"pretrain loss": curves["train loss"]}
        fashion_accuracy = accuracy(pretrained, x_fashion_test, y_fashion_test)
        print(f"pretrained on Fashion-MNIST: test accuracy {fashion_accuracy:.4f}", flush=True)
        # ... and the same architecture with SimCLR on the same images, without their labels.
        simclr = SimCLR(encoder(args.width), 4 * args.width)
        run = pretrain(simclr, fashion_views(normalise, len(y_fashion)), simclr_epochs, simclr_batch)
        curves["SimCLR pretrain loss"] = run["train loss"]

        # 2. Transfer to digits: a few labelled images, with small shifts and rotations as augmentation.
        x_digits, y_digits = digits_as_fashion()
        shift_rotate = transforms.Compose([transforms.RandomAffine(10, translate=(0.1, 0.1)), normalise])
        results = {"fine-tuned": [], "frozen features": [], "fine-tuned from SimCLR": [], "frozen SimCLR features": [],
                   "from scratch": []}  # fmt: skip
        print("frozen features: every stage's map pooled to 3x3, batch norm re-estimated on the labelled digits;"
              " fine-tuned from the trained linear probe (LP-FT)", flush=True)  # fmt: skip
        for seed in range(args.seed, args.seed + seeds):
            x_train, x_test, y_train, y_test = train_test_split(
                x_digits, y_digits, test_size=len(y_digits) - args.labelled, seed=seed
            )
            x_test, y_test = (normalise(x_test[:200]), y_test[:200]) if quick else (normalise(x_test), y_test)

            def train(model: nn.Module, regime: str) -> None:
                """Train ``model``'s trainable weights in the mode it is in; record the curve and accuracy."""
                run = fit(model, lambda i: F.cross_entropy(model(shift_rotate(x_train[i])), y_train[i]),
                          args.labelled, transfer_epochs, args.labelled // 4, args.lr,
                          parameters=[p for p in model.parameters() if p.requires_grad], desc=regime)  # fmt: skip
                curves.setdefault(f"{regime} loss", run["train loss"])
                results[regime].append(accuracy(model, x_test, y_test))
                print(f"seed {seed}: {regime} digits test accuracy {results[regime][-1]:.4f}", flush=True)

            pretrained_regimes = [
                (pretrained, "frozen features", "fine-tuned"),
                (simclr.encoder, "frozen SimCLR features", "fine-tuned from SimCLR"),
            ]
            for backbone, frozen, fine_tuned in pretrained_regimes:
                mg.manual_seed(seed)
                model = DigitClassifier(args.width, backbone)
                model.requires_grad_(False)
                model.fc.requires_grad_(True)
                adapt_batch_norm(model, normalise(x_train))  # eval mode: exactly the pretrained map, re-normalised
                train(model, frozen)
                model.requires_grad_(True)
                model.train()
                train(model, fine_tuned)  # LP-FT: from the trained linear probe

            mg.manual_seed(seed)
            model = DigitClassifier(args.width)
            model.train()
            train(model, "from scratch")

    extra = {"fashion test accuracy (pretrained)": fashion_accuracy}
    extra |= {f"{regime} test accuracy": sum(values) / len(values) for regime, values in results.items()}
    result = Result("fine-tuned digits test accuracy", extra["fine-tuned test accuracy"], curves, extra, timer.seconds)
    title = f"Fashion-MNIST -> {args.labelled} labelled digits (mean of {seeds} splits; multi-stage features)"
    return finish(result, args, title)


if __name__ == "__main__":
    main()
