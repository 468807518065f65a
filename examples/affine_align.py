"""Gradient descent through affine_grid and grid_sample recovers a known rotation, scale and shift of digit images."""

from __future__ import annotations

import math

import minigrad as mg
import minigrad.functional as F
import nn
from examples._common import Result, Timer, arguments, finish, on_device, progress, setup
from minigrad.data import load_digits


def similarity(angle: mg.Tensor, log_scale: mg.Tensor, shift: mg.Tensor, n: int) -> mg.Tensor:
    """The (n, 2, 3) matrix [[s cos a, -s sin a, tx], [s sin a, s cos a, ty]] in affine_grid's
    normalised coordinates (it maps each output pixel to where it samples the input)."""
    s = log_scale.exp()
    cos, sin = s * angle.cos(), s * angle.sin()
    theta = mg.stack([mg.stack([cos, -sin, shift[0]]), mg.stack([sin, cos, shift[1]])])
    return theta.unsqueeze(0).expand(n, 2, 3)


def warp(images: mg.Tensor, theta: mg.Tensor) -> mg.Tensor:
    """images: (N, 1, H, W) resampled bilinearly at theta's grid (zeros outside)."""
    return F.grid_sample(images, F.affine_grid(theta, images.shape, align_corners=False), align_corners=False)


def main(argv=None) -> Result:
    args = arguments(argv, steps=400, lr=0.02, images=16, size=32, angle=25.0, scale=1.2, shift_x=0.15, shift_y=-0.1)
    setup(args)
    steps = 40 if args.quick else args.steps
    images, _ = on_device(*load_digits())
    # 8x8 digits enlarged to size x size: a smoother image gives the loss a wider basin around the answer.
    sources = F.interpolate(images[: args.images].unsqueeze(1), size=(args.size, args.size), mode="bilinear")
    n = len(sources)
    truth = {"angle": math.radians(args.angle), "log scale": math.log(args.scale)}
    truth["shift"] = [args.shift_x, args.shift_y]
    targets = warp(sources, similarity(*(mg.tensor(v) for v in truth.values()), n))

    # The unknowns, from the identity: every image went through the same transform.
    angle, log_scale, shift = (nn.Parameter(mg.zeros(shape)) for shape in ((), (), (2,)))
    optimizer = nn.optim.Adam([angle, log_scale, shift], lr=args.lr)
    curves = {"alignment loss (MSE)": [], "degrees: angle": []}
    with Timer() as timer:
        for _ in progress(range(steps), "aligning"):
            loss = F.mse_loss(warp(sources, similarity(angle, log_scale, shift, n)), targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            curves["alignment loss (MSE)"].append(loss.item())
            curves["degrees: angle"].append(math.degrees(angle.item()))

    errors = {
        "angle error (degrees)": abs(math.degrees(angle.item() - truth["angle"])),
        "scale error": abs(math.exp(log_scale.item()) - args.scale),
        "shift error (pixels)": max(abs(s - t) for s, t in zip(shift.tolist(), truth["shift"])) * args.size / 2,
    }
    extra = errors | {"found": f"{math.degrees(angle.item()):.2f} deg, scale {math.exp(log_scale.item()):.3f}, "
                               f"shift ({shift[0].item():.3f}, {shift[1].item():.3f})"}  # fmt: skip
    error = max(abs(v) for v in (angle.item() - truth["angle"], log_scale.item() - truth["log scale"], *(
        s - t for s, t in zip(shift.tolist(), truth["shift"]))))  # fmt: skip
    result = Result("max parameter error", error, curves, extra, timer.seconds)
    return finish(result, args, f"Recovering a rotation of {args.angle:g} deg, scale {args.scale:g} and a shift")


if __name__ == "__main__":
    main()
