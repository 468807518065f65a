"""SSD single-shot detector on generated digit scenes: anchors, IoU matching, hard negatives, NMS; mAP@0.5."""

from __future__ import annotations

import nn
from examples._common import Result, Timer, arguments, finish, parameters, setup
from examples._scenes import epoch_batches, evaluate_detector, held_out, targets_of, update
from nn.models import ssd_small


def main(argv=None) -> Result:
    args = arguments(argv, epochs=10, scenes_per_epoch=1000, test_scenes=500, batch_size=32, lr=3e-3, width=32)
    setup(args)
    quick = args.quick
    epochs, per_epoch, n_test = (2, 64, 50) if quick else (args.epochs, args.scenes_per_epoch, args.test_scenes)
    test = held_out(n_test, args.seed)

    model = ssd_small(10, width=8 if quick else args.width)
    steps = epochs * (per_epoch // args.batch_size)
    optimizer = nn.optim.Adam(model.parameters(), lr=args.lr)
    schedule = nn.optim.lr_scheduler.OneCycleLR(optimizer, args.lr, total_steps=steps)

    curves = {"train loss": [], "box loss": [], "class loss": [], "test mAP@0.5": []}
    with Timer() as timer:
        for epoch in range(epochs):
            train, bar = epoch_batches(epoch, epochs, per_epoch, args.batch_size, args.seed)
            for index in bar:
                logits, offsets = model(train.images[index])
                box_loss, class_loss = model.loss(logits, offsets, *targets_of(train, index))
                loss = box_loss + class_loss
                update(loss, optimizer, schedule)
                for name, value in (("train loss", loss), ("box loss", box_loss), ("class loss", class_loss)):
                    curves[name].append(value.item())
                bar.set_postfix(box=f"{box_loss.item():.3f}", cls=f"{class_loss.item():.3f}")
            curves["test mAP@0.5"].append((epoch + 1, evaluate_detector(model, test)))
            print(f"epoch {epoch + 1}: test mAP@0.5 {curves['test mAP@0.5'][-1][1]:.4f}", flush=True)

    extra = {"anchors": model.anchors.shape[0], "parameters": parameters(model)}
    result = Result("test mAP@0.5", curves["test mAP@0.5"][-1][1], curves, extra, timer.seconds)
    return finish(result, args, "SSD on digit scenes")


if __name__ == "__main__":
    main()
