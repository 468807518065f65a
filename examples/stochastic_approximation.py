"""Robbins-Monro: a running estimate of E[X] converges; SGD with lr 1/n on (theta - x)^2 / 2 is the same iteration."""

from __future__ import annotations

import minigrad as mg
import nn
from examples._common import Result, Timer, arguments, finish, progress, setup


def main(argv=None) -> Result:
    args = arguments(argv, samples=20000, mean=3.0, std=2.0)
    setup(args)
    n = 500 if args.quick else args.samples
    xs = (mg.randn(n, dtype=mg.float64) * args.std + args.mean).tolist()

    with Timer() as timer:
        # Robbins-Monro for the root of g(theta) = E[X] - theta: theta += a_n (x_n - theta), a_n = 1/n.
        theta, robbins_monro = 0.0, []
        for i, x in enumerate(xs, start=1):
            theta += (x - theta) / i
            robbins_monro.append(theta)

        # The same iteration as SGD: the loss (theta - x)^2 / 2 has gradient theta - x; lr = 1/n.
        param = nn.Parameter(mg.zeros(1, dtype=mg.float64))
        optimizer = nn.optim.SGD([param], lr=1.0)
        schedule = nn.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 / (step + 1))
        sgd = []
        for x in progress(xs, "SGD"):
            loss = 0.5 * ((param - x) ** 2).sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            sgd.append(param.item())

    sample_mean = sum(xs) / n
    error = abs(robbins_monro[-1] - args.mean)
    extra = {
        "sample mean": sample_mean,
        "max |SGD - Robbins-Monro|": max(abs(a - b) for a, b in zip(sgd, robbins_monro)),
    }
    curves = {
        "estimate: Robbins-Monro": robbins_monro,
        "estimate: SGD, lr 1/n": sgd,
        "error: |estimate - E[X]|": [abs(v - args.mean) for v in robbins_monro],
    }
    return finish(Result("|estimate - E[X]|", error, curves, extra, timer.seconds), args, "Stochastic approximation")


if __name__ == "__main__":
    main()
