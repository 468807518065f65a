"""SSD single-shot detector on generated digit scenes: anchors, IoU matching, hard negatives, NMS; mAP@0.5."""

from __future__ import annotations

import nn
from examples._common import Result, Timer, arguments, batches, finish, progress, setup
from minigrad.data import scenes
from minigrad.metrics import mean_average_precision
from nn.models import ssd_small


def evaluate(detector: nn.Module, test, batch_size: int = 100) -> float:
    """mAP@0.5 of ``detector`` (in eval mode) on the held-out scenes."""
    detector.eval()
    found = []
    for start in range(0, len(test), batch_size):
        found += detector.detect(test.images[start : start + batch_size])
    detector.train()
    return mean_average_precision(found, list(zip(test.boxes, test.labels)), iou_threshold=0.5)[0]


def main(argv=None) -> Result:
    args = arguments(argv, epochs=10, scenes_per_epoch=1000, test_scenes=500, batch_size=32, lr=3e-3, width=32)
    setup(args)
    quick = args.quick
    epochs, per_epoch, n_test = (2, 64, 50) if quick else (args.epochs, args.scenes_per_epoch, args.test_scenes)
    # Held-out scenes paste digits that no training scene shows (split="test").
    test = scenes(n_test, seed=args.seed + 10_000, split="test")

    model = ssd_small(10, width=8 if quick else args.width)
    steps = epochs * (per_epoch // args.batch_size)
    optimizer = nn.optim.Adam(model.parameters(), lr=args.lr)
    schedule = nn.optim.lr_scheduler.OneCycleLR(optimizer, args.lr, total_steps=steps)

    curves = {"train loss": [], "box loss": [], "class loss": [], "test mAP@0.5": []}
    with Timer() as timer:
        for epoch in range(epochs):
            train = scenes(per_epoch, seed=args.seed + epoch, split="train")  # fresh scenes every epoch
            bar = progress(batches(per_epoch, args.batch_size, drop_last=True), f"epoch {epoch + 1}/{epochs}",
                           total=per_epoch // args.batch_size)  # fmt: skip
            for index in bar:
                logits, offsets = model(train.images[index])
                picked = index.tolist()
                box_loss, class_loss = model.loss(
                    logits, offsets, [train.boxes[i] for i in picked], [train.labels[i] for i in picked]
                )
                loss = box_loss + class_loss
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                schedule.step()
                for name, value in (("train loss", loss), ("box loss", box_loss), ("class loss", class_loss)):
                    curves[name].append(value.item())
                bar.set_postfix(box=f"{box_loss.item():.3f}", cls=f"{class_loss.item():.3f}")
            curves["test mAP@0.5"].append((epoch + 1, evaluate(model, test)))
            print(f"epoch {epoch + 1}: test mAP@0.5 {curves['test mAP@0.5'][-1][1]:.4f}", flush=True)

    extra = {"anchors": model.anchors.shape[0], "parameters": sum(p.numel() for p in model.parameters())}
    result = Result("test mAP@0.5", curves["test mAP@0.5"][-1][1], curves, extra, timer.seconds)
    return finish(result, args, "SSD on digit scenes")


if __name__ == "__main__":
    main()
