"""Timing minigrad and PyTorch on the same workload, in the same process.

A workload builds one training step for each framework from the same seeded data and
weights. The two steps are timed in alternating blocks (so drift in the machine's speed hits
both), each as the median of many repeats after a warm-up, and reported as a ratio.
"""

from __future__ import annotations

import datetime
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Workload:
    name: str
    shape: str  # what a reader needs to know about the sizes
    minigrad: Callable[[str], Callable[[], None]]  # device -> one training step
    torch: Callable[[str], Callable[[], None]]  # device -> one training step
    flops: float = 0.0  # floating-point operations per step (forward + backward), 0 if not counted
    target: float | None = None  # the ratio minigrad / PyTorch to stay under
    notes: list = field(default_factory=list)


@dataclass
class Result:
    workload: Workload
    minigrad_ms: float
    torch_ms: float

    @property
    def ratio(self) -> float:
        return self.minigrad_ms / self.torch_ms

    def gflops(self, ms: float) -> float:
        return self.workload.flops / (ms * 1e-3) / 1e9 if self.workload.flops else float("nan")


def _time(step: Callable[[], None], sync: Callable[[], None]) -> float:
    start = time.perf_counter()
    step()
    sync()
    return (time.perf_counter() - start) * 1e3


def measure(workload: Workload, device: str = "cpu", repeats: int = 30, warmup: int = 5, rounds: int = 3) -> Result:
    """Median milliseconds per step for both frameworks.

    The frameworks take turns in blocks of steps (``rounds`` turns each, so slow drift in the
    machine's speed hits both), with a pause before each block and its first step not timed:
    a framework's worker threads keep spinning for a while after its last step, and timing the
    other framework step by step in between would measure the two fighting over the cores.
    """
    import torch

    steps = {"minigrad": workload.minigrad(device), "torch": workload.torch(device)}
    syncs = {
        "minigrad": _cuda_sync_minigrad if device == "cuda" else (lambda: None),
        "torch": torch.cuda.synchronize if device == "cuda" else (lambda: None),
    }
    for name, step in steps.items():
        for _ in range(warmup):
            step()
        syncs[name]()
    times = {name: [] for name in steps}
    per_block = max(repeats // rounds, 1)
    for _ in range(rounds):
        for name, step in steps.items():
            time.sleep(0.3)
            _time(step, syncs[name])
            times[name] += [_time(step, syncs[name]) for _ in range(per_block)]
    return Result(workload, statistics.median(times["minigrad"]), statistics.median(times["torch"]))


def _cuda_sync_minigrad():
    import cupy

    cupy.cuda.Device().synchronize()


def numpy_gemm_gflops(n: int = 1024, repeats: int = 10) -> float:
    """NumPy's float32 GEMM rate on this machine: the ceiling for GEMM-bound steps."""
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    b = np.random.default_rng(1).standard_normal((n, n), dtype=np.float32)
    a @ b
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * n**3 / min(times) / 1e9


def machine() -> dict:
    """What the numbers were measured on."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {
        "date": datetime.date.today().isoformat(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "torch threads": torch.get_num_threads(),
        "numpy float32 GEMM": f"{numpy_gemm_gflops():.0f} GFLOP/s (1024x1024)",
    }


def report(results: list, info: dict, device: str) -> str:
    """A Markdown report: the machine, then one row per workload."""
    lines = [f"# minigrad vs PyTorch, {device}, {info['date']}", ""]
    lines += [f"- {key}: {value}" for key, value in info.items()]
    lines += [
        "",
        "| workload | shape | minigrad ms/step | PyTorch ms/step | ratio | target | minigrad GFLOP/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        target = f"<= {r.workload.target}" if r.workload.target else ""
        verdict = "" if not r.workload.target else (" (met)" if r.ratio <= r.workload.target else " (missed)")
        gflops = f"{r.gflops(r.minigrad_ms):.1f}" if r.workload.flops else ""
        lines.append(
            f"| {r.workload.name} | {r.workload.shape} | {r.minigrad_ms:.3f} | {r.torch_ms:.3f} | "
            f"{r.ratio:.2f}{verdict} | {target} | {gflops} |"
        )
    notes = [f"- {r.workload.name}: {note}" for r in results for note in r.workload.notes]
    if notes:
        lines += ["", "Notes:", *notes]
    return "\n".join(lines) + "\n"
