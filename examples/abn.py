"""Attention Branch Network on Fashion-MNIST: test accuracy, and its attention maps saved as an image grid."""

from __future__ import annotations

from pathlib import Path

import minigrad as mg
import minigrad.functional as F
import nn
from examples._common import Result, Timer, accuracy, arguments, finish, fit, setup
from examples._vision import fashion
from minigrad.data import FashionMNIST
from nn.models import abn_resnet_small


@mg.no_grad()
def save_attention_maps(model, images, raw, labels, path: str) -> None:
    """One column per image: the image, then its attention map laid over it (upsampled to the image size)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    model.eval()
    logits, _, attention = model.branches(images)
    maps = F.interpolate(attention, size=tuple(images.shape[-2:]), mode="bilinear", align_corners=False)
    predicted = logits.argmax(1).tolist()
    names = FashionMNIST.classes
    fig, axes = plt.subplots(2, len(labels), figsize=(1.5 * len(labels), 3.4), squeeze=False)
    for i, label in enumerate(labels.tolist()):
        axes[0, i].imshow(raw[i, 0].cpu().numpy(), cmap="gray")
        axes[0, i].set_title(f"{names[label]}\n(said {names[predicted[i]]})", fontsize=7)
        axes[1, i].imshow(raw[i, 0].cpu().numpy(), cmap="gray")
        axes[1, i].imshow(maps[i, 0].cpu().numpy(), cmap="jet", alpha=0.5, vmin=0, vmax=1)
        for ax in axes[:, i]:
            ax.axis("off")
    fig.suptitle("ABN attention maps (red: attended)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> Result:
    args = arguments(argv, epochs=12, batch_size=64, lr=0.1, width=12, blocks=1, maps=None)
    setup(args)
    quick = args.quick
    epochs, width, batch_size = (1, 4, 32) if quick else (args.epochs, args.width, args.batch_size)
    x_train, y_train, x_test, y_test, augment, _, x_test_raw = fashion(quick)

    model = abn_resnet_small(10, width=width, blocks=args.blocks)

    def loss_of(index):
        perception, attention_logits, _ = model.branches(augment(x_train[index]))
        # Both branches learn from the labels: L = L_att + L_per.
        return F.cross_entropy(attention_logits, y_train[index]) + F.cross_entropy(perception, y_train[index])

    with Timer() as timer:
        curves = fit(model, loss_of, len(y_train), epochs, batch_size, args.lr,
                     evaluate=lambda: accuracy(model, x_test, y_test))  # fmt: skip

    attention_branch = nn.Sequential(model.features, model.attention, model.attention_classifier)
    extra = {"attention branch test accuracy": accuracy(attention_branch, x_test, y_test)}
    # The first test image of each class.
    first = [y_test.tolist().index(c) for c in range(10) if c in y_test.tolist()]
    maps = args.maps or (str(Path(args.plot).with_name(Path(args.plot).stem + "_attention.png")) if args.plot else
                         "abn_attention.png")  # fmt: skip
    save_attention_maps(model, x_test[first], x_test_raw[first], y_test[first], maps)
    print(f"attention maps saved to {maps}")
    result = Result("test accuracy", curves["test accuracy"][-1][1], curves, extra, timer.seconds)
    return finish(result, args, "Attention Branch Network on Fashion-MNIST")


if __name__ == "__main__":
    main()
