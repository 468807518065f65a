"""Receptive fields of a ResNet: the analytic formula against the support of one output pixel's gradient."""

from __future__ import annotations

import nn
from examples._common import Result, Timer, arguments, setup
from nn.models import resnet_small
from nn.utils import conv_layers, empirical_receptive_field, receptive_field


def main(argv=None) -> Result:
    args = arguments(argv, blocks=2)
    setup(args)
    blocks = 1 if args.quick else args.blocks
    with Timer() as timer:
        model = resnet_small(10, width=4, blocks=blocks)
        # The chain of 3x3 convs along the deepest path (the shortcuts add shorter paths, never longer ones).
        features = nn.Sequential(model.conv1, *model.layer1, *model.layer2, *model.layer3)
        chain = [layer for layer in conv_layers(features) if layer[0] == 3]
        analytic = receptive_field(chain)
        size, jump = analytic[-1]
        side = 2 * size + 8 * jump
        measured = empirical_receptive_field(features, (1, 1, side, side))
    for i, (r, j) in enumerate(analytic, start=1):
        print(f"conv {i:2d}: receptive field {r:3d} px, jump {j}")
    extra = {"analytic": f"{size}x{size}", "measured by backprop": f"{measured[0]}x{measured[1]}",
             "convs": len(chain)}  # fmt: skip
    result = Result("analytic == measured", float(measured == (size, size)), {}, extra, timer.seconds)
    print(result.line())
    return result


if __name__ == "__main__":
    main()
