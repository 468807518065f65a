"""Faster R-CNN (RPN + RoI Align/RoI pooling + softmax and smooth-L1 heads) on generated digit scenes: mAP@0.5."""

from __future__ import annotations

import nn
from examples._common import Result, Timer, arguments, finish, parameters, setup
from examples._scenes import epoch_batches, evaluate_detector, held_out, targets_of, update
from nn.models import faster_rcnn_small


def main(argv=None) -> Result:
    args = arguments(argv, epochs=8, scenes_per_epoch=1000, test_scenes=500, batch_size=32, lr=3e-3, width=16,
                     pooling="align")  # fmt: skip
    setup(args)
    quick = args.quick
    epochs, per_epoch, n_test = (2, 96, 20) if quick else (args.epochs, args.scenes_per_epoch, args.test_scenes)
    batch_size = 8 if quick else args.batch_size
    test = held_out(n_test, args.seed)

    model = faster_rcnn_small(10, width=8 if quick else args.width, pooling=args.pooling)
    steps = epochs * (per_epoch // batch_size)
    optimizer = nn.optim.Adam(model.parameters(), lr=args.lr)
    schedule = nn.optim.lr_scheduler.OneCycleLR(optimizer, args.lr, total_steps=steps)

    curves = {"train loss": [], "test mAP@0.5": []}
    with Timer() as timer:
        for epoch in range(epochs):
            train, bar = epoch_batches(epoch, epochs, per_epoch, batch_size, args.seed)
            for index in bar:
                losses = model.losses(train.images[index], *targets_of(train, index))
                loss = sum(losses.values())
                update(loss, optimizer, schedule)
                curves["train loss"].append(loss.item())
                # The four terms share a panel; "box regression" first rises, as more proposals hit objects.
                for name, value in losses.items():
                    curves.setdefault(f"term: {name}", []).append(value.item())
                bar.set_postfix(loss=f"{loss.item():.3f}")
            curves["test mAP@0.5"].append((epoch + 1, evaluate_detector(model, test)))
            print(f"epoch {epoch + 1}: test mAP@0.5 {curves['test mAP@0.5'][-1][1]:.4f}", flush=True)

    extra = {"pooling": args.pooling, "parameters": parameters(model)}
    result = Result("test mAP@0.5", curves["test mAP@0.5"][-1][1], curves, extra, timer.seconds)
    return finish(result, args, f"Faster R-CNN (RoI {args.pooling}) on digit scenes")


if __name__ == "__main__":
    main()
