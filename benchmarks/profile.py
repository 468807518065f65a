"""Where a minigrad training step spends its time, op by op.

``python -m benchmarks.profile resnet [--steps N]`` runs one workload's training step and
prints, for each op, the milliseconds per step it takes in the forward pass and in the
backward pass (exclusive time: an op's backward that calls other ops, as conv's backward
calls the transposed conv, is charged to those ops), and what is left to Python, the
optimizer and the tape. PyTorch's time for the same step is printed beside the total, so
the table says how far each part is from closing the gap.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict

from benchmarks.harness import machine
from benchmarks.workloads import BATCHED, WORKLOADS
from minigrad.autograd import Function


class OpTimer:
    """Wraps every registered op's forward and backward with an exclusive-time clock."""

    def __init__(self):
        self.totals = defaultdict(float)  # (op, phase) -> seconds
        self.calls = defaultdict(int)
        self.phase = "forward"
        self._stack = []  # start times of the ops running, innermost last
        self._originals = {}

    def _wrap(self, cls, method: str):
        original = cls.__dict__[method]
        timer = self

        def timed(fn, *args, **kwargs):
            start = time.perf_counter()
            timer._stack.append(0.0)  # time spent in nested ops
            try:
                return original(fn, *args, **kwargs)
            finally:
                nested = timer._stack.pop()
                spent = time.perf_counter() - start
                key = (type(fn).__name__, timer.phase if method == "forward" else "backward")
                timer.totals[key] += spent - nested
                timer.calls[key] += 1
                if timer._stack:
                    timer._stack[-1] += spent

        self._originals[(cls, method)] = original
        setattr(cls, method, timed)

    def __enter__(self):
        for cls in Function.registry.values():
            for method in ("forward", "backward"):
                # wrap the class that defines the method (a shared base such as _Normalization) once
                owner = next(c for c in cls.__mro__ if method in c.__dict__)
                if owner is not Function and (owner, method) not in self._originals:
                    self._wrap(owner, method)
        return self

    def __exit__(self, *exc):
        for (cls, method), original in self._originals.items():
            setattr(cls, method, original)


def profile(name: str, steps: int) -> str:
    workload = WORKLOADS[name]()
    minigrad_step, torch_step = workload.minigrad("cpu"), workload.torch("cpu")
    for _ in range(3):
        minigrad_step()
        torch_step()
    torch_ms = []
    for _ in range(steps):
        start = time.perf_counter()
        torch_step()
        torch_ms.append((time.perf_counter() - start) * 1e3)
    time.sleep(0.5)  # let PyTorch's worker threads stop spinning

    # backward runs inside the step: mark it by wrapping Tensor.backward
    from minigrad.tensor import Tensor

    step_ms = []
    with OpTimer() as timer:
        original_backward = Tensor.backward

        def backward(tensor, *args, **kwargs):
            timer.phase = "backward"
            try:
                return original_backward(tensor, *args, **kwargs)
            finally:
                timer.phase = "forward"

        Tensor.backward = backward
        try:
            for _ in range(steps):
                start = time.perf_counter()
                minigrad_step()
                step_ms.append((time.perf_counter() - start) * 1e3)
        finally:
            Tensor.backward = original_backward

    total = statistics.fmean(step_ms)  # a mean, like the per-op totals it is split into
    rows = sorted(timer.totals.items(), key=lambda item: -item[1])
    info = machine()
    lines = [
        f"# Profile of one {workload.name} training step ({workload.shape})",
        "",
        f"- {info['date']}, {info['cpu']}, {info['cores']} cores, numpy {info['numpy']}, torch {info['torch']}",
        f"- minigrad {total:.2f} ms/step (mean of {steps}, timers on), PyTorch {statistics.fmean(torch_ms):.2f}"
        " ms/step",
        "",
        "| op | phase | calls/step | ms/step | share |",
        "|---|---|---|---|---|",
    ]
    accounted = other = 0.0
    for (op, phase), seconds in rows:
        ms = seconds * 1e3 / steps
        accounted += ms
        if ms >= 0.005 * total:
            lines.append(f"| {op} | {phase} | {timer.calls[(op, phase)] // steps} | {ms:.2f} | {ms / total:.0%} |")
        else:  # ops under 0.5 % of the step are summed into one row
            other += ms
    lines.append(f"| other ops | | | {other:.2f} | {other / total:.0%} |")
    lines.append(f"| Python, tape, optimizer | | | {total - accounted:.2f} | {(total - accounted) / total:.0%} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workloads", nargs="+", choices=[w for w in WORKLOADS if w in BATCHED])
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    for name in args.workloads:
        print(profile(name, args.steps))


if __name__ == "__main__":
    main()
