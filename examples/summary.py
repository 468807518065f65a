"""Parameters, FLOPs and activations of ResNet and ViT, and the memory formula against a measured training step."""

from __future__ import annotations

import minigrad as mg
import nn
from examples._common import Result, Timer, arguments, setup
from nn.models import resnet_small, vit_tiny
from nn.utils import measured_step_peak, summary


def main(argv=None) -> Result:
    args = arguments(argv, batch_size=64)
    setup(args)
    batch = 8 if args.quick else args.batch_size
    x, y = mg.randn(batch, 1, 28, 28), mg.randint(0, 10, (batch,))
    ratios, extra = [], {}
    with Timer() as timer:
        for name, model in (("resnet_small", resnet_small(10, width=16)), ("vit_tiny", vit_tiny())):
            info = summary(model, x)
            optimizer = nn.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
            measured_step_peak(model, x, y, optimizer)  # the first step creates the momentum buffers
            # Weights and optimizer state exist before the step: it adds gradients and activations.
            predicted = info.memory_formula(optimizer_states=1) - 4 * 2 * info.params
            measured = measured_step_peak(model, x, y, optimizer)
            ratios.append(measured / predicted)
            print(f"{name}: {info.params:,} parameters, {info.flops / 1e6:.1f} MFLOPs forward for {batch} images")
            print(
                f"  training step: formula 4 B x (params + activations) = {predicted / 2**20:.1f} MiB, "
                f"measured peak {measured / 2**20:.1f} MiB"
            )
            extra[f"{name} measured/formula"] = round(measured / predicted, 2)
    if not args.quick:
        print(summary(resnet_small(10, width=16), x[:1]).table())
    result = Result("worst measured/formula memory ratio", max(ratios), {}, extra, timer.seconds)
    print(result.line())
    return result


if __name__ == "__main__":
    main()
