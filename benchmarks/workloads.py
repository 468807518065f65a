"""The workloads: each builds one step for minigrad and one for PyTorch from the same data."""

from __future__ import annotations

import numpy as np

from benchmarks.harness import Workload


def _chain(x, n_ops: int):
    """n_ops elementwise ops in a chain that also keeps reusing the input."""
    y = x
    for _ in range(n_ops // 3):
        y = (y * 0.9).tanh() + x
    return y.sum()


def op_overhead(n_ops: int = 300, size: int = 16) -> Workload:
    data = np.random.default_rng(0).standard_normal((size, size)).astype(np.float32)

    def minigrad_step(device):
        import minigrad as mg

        x = mg.tensor(data, device=device, requires_grad=True)
        return lambda: _chain(x, n_ops).backward()

    def torch_step(device):
        import torch

        x = torch.tensor(data, device=device, requires_grad=True)
        return lambda: _chain(x, n_ops).backward()

    return Workload(
        "op overhead",
        f"{n_ops} elementwise ops on {size}x{size}, then backward",
        minigrad_step,
        torch_step,
        target=2.0,
    )


WORKLOADS = {"overhead": op_overhead}
