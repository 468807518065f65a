"""U-Net segmentation of generated digit scenes (foreground or digit classes): held-out mean IoU; upsampling selectable.

``--classes foreground`` labels each pixel object or background; ``--classes digits`` asks for
the digit too (background + ten classes), which needs the network to recognise each digit and
many more steps (``--classes digits --epochs 16``).
"""

from __future__ import annotations

import minigrad as mg
import minigrad.functional as F
import nn
from examples._common import Result, Timer, arguments, finish, setup
from examples._scenes import epoch_batches, held_out, update
from minigrad.metrics import mean_iou
from nn.models import unet_small
from nn.models.unet import UPSAMPLE_MODES

NUM_CLASSES = {"foreground": 2, "digits": 11}  # background + object, or background + ten digits


def targets(semantic: mg.Tensor, classes: str) -> mg.Tensor:
    """Per-pixel class maps (N, H, W) for ``classes`` from the scenes' semantic maps."""
    return semantic if classes == "digits" else (semantic > 0).long()


@mg.no_grad()
def predict(model: nn.Module, images: mg.Tensor, batch_size: int = 100) -> mg.Tensor:
    """Per-pixel class maps (N, H, W) of ``model`` in eval mode."""
    model.eval()
    maps = [model(images[start : start + batch_size]).argmax(1) for start in range(0, len(images), batch_size)]
    model.train()
    return mg.cat(maps)


def main(argv=None) -> Result:
    args = arguments(argv, epochs=4, scenes_per_epoch=640, test_scenes=500, batch_size=16, lr=3e-3, width=8,
                     upsample="bilinear", classes="foreground")  # fmt: skip
    if args.upsample not in UPSAMPLE_MODES:
        raise SystemExit(f"--upsample must be one of {', '.join(UPSAMPLE_MODES)}")
    if args.classes not in NUM_CLASSES:
        raise SystemExit(f"--classes must be one of {', '.join(NUM_CLASSES)}")
    num_classes = NUM_CLASSES[args.classes]
    setup(args)
    quick = args.quick
    epochs, per_epoch, n_test = (2, 64, 20) if quick else (args.epochs, args.scenes_per_epoch, args.test_scenes)
    test = held_out(n_test, args.seed)

    model = unet_small(num_classes, width=4 if quick else args.width, upsample=args.upsample)
    steps = epochs * (per_epoch // args.batch_size)
    optimizer = nn.optim.Adam(model.parameters(), lr=args.lr)
    schedule = nn.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)

    curves = {"train loss": [], "test mean IoU": []}
    with Timer() as timer:
        for epoch in range(epochs):
            train, bar = epoch_batches(epoch, epochs, per_epoch, args.batch_size, args.seed)
            for index in bar:
                loss = F.cross_entropy(model(train.images[index]), targets(train.semantic[index], args.classes))
                update(loss, optimizer, schedule)
                curves["train loss"].append(loss.item())
                bar.set_postfix(loss=f"{loss.item():.3f}")
            mean, iou = mean_iou(predict(model, test.images), targets(test.semantic, args.classes), num_classes)
            curves["test mean IoU"].append((epoch + 1, mean))
            print(f"epoch {epoch + 1}: test mean IoU {curves['test mean IoU'][-1][1]:.4f}", flush=True)

    extra = {"classes": args.classes, "upsample": args.upsample, "background IoU": float(iou[0]),
             "worst object class IoU": float(iou[1:].min())}  # fmt: skip
    result = Result("test mean IoU", curves["test mean IoU"][-1][1], curves, extra, timer.seconds)
    return finish(result, args, f"U-Net ({args.upsample} upsampling, {args.classes}) on digit scenes")


if __name__ == "__main__":
    main()
