"""The MLP benchmark's training step written by hand in plain NumPy: the floor for minigrad.

``python -m benchmarks.numpy_mlp [--repeats N]`` times one SGD step (momentum 0.9) of the
784-512-512-10 ReLU MLP at batch 128 with the same GEMMs minigrad runs (forward, the weight and
input gradients), a hand-derived backward and an in-place momentum update, next to minigrad's
step on the same sizes, alternating; it prints the median milliseconds per step of each. What
minigrad takes beyond this is the framework: recording, the tape, modules, the optimizer.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import minigrad  # noqa: F401  (first: it sets OpenBLAS's threads to sleep between calls, as for minigrad)
from benchmarks.workloads import mlp

SIZES = (784, 512, 512, 10)


def numpy_step(batch: int = 128, lr: float = 0.01, momentum: float = 0.9):
    """One SGD step of the MLP on fixed data, as a closure over its weights and buffers."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, SIZES[0])).astype(np.float32)
    y = rng.integers(0, SIZES[-1], batch)
    weights = [(rng.standard_normal((n, m)) / np.sqrt(m)).astype(np.float32) for m, n in zip(SIZES, SIZES[1:])]
    biases = [np.zeros(n, np.float32) for n in SIZES[1:]]
    params = weights + biases
    buffers = [np.zeros_like(p) for p in params]

    def step():
        inputs, pre = [x], []  # each layer's input and pre-activation
        for i, (w, b) in enumerate(zip(weights, biases)):
            z = inputs[-1] @ w.T
            z += b
            pre.append(z)
            if i < len(weights) - 1:
                inputs.append(np.maximum(z, 0))
        logits = pre[-1]
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        p[np.arange(batch), y] -= 1  # d(mean cross-entropy) / d logits, before the 1 / batch
        g = p / batch
        grads_w, grads_b = [], []
        for i in reversed(range(len(weights))):
            grads_w.append(g.T @ inputs[i])
            grads_b.append(g.sum(axis=0))
            if i:
                g = g @ weights[i]
                g *= pre[i - 1] > 0
        for param, grad, buffer in zip(params, grads_w[::-1] + grads_b[::-1], buffers):
            buffer *= momentum
            buffer += grad
            param -= lr * buffer

    return step


def _median_ms(step, steps: int) -> float:
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="alternating rounds of 100 steps each")
    args = parser.parse_args(argv)
    steps = {"hand-written NumPy": numpy_step(), "minigrad": mlp().minigrad("cpu")}
    for step in steps.values():
        for _ in range(20):
            step()
    medians = {name: [] for name in steps}
    for _ in range(args.repeats):
        for name, step in steps.items():
            medians[name].append(_median_ms(step, 100))
    for name, values in medians.items():
        print(f"{name:20s} {statistics.median(values):.3f} ms/step (rounds: {min(values):.3f}-{max(values):.3f})")


if __name__ == "__main__":
    main()
