"""Where a minigrad training step spends its time, op by op.

``python -m benchmarks.profile resnet [--steps N]`` runs one workload's training step and
prints, for each op, the milliseconds per step it takes in the forward pass and in the
backward pass, measured by ``mg.profiler`` (self time: an op's backward that calls other ops,
as conv's backward calls the transposed conv, is charged to those ops), and what is left to
Python, the optimizer and the tape. PyTorch's time for the same step is printed beside the
total, so the table says how far each part is from closing the gap.
"""

from __future__ import annotations

import argparse
import statistics
import time

import minigrad as mg
from benchmarks.harness import machine
from benchmarks.workloads import BATCHED, WORKLOADS


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

    step_ms = []
    with mg.profiler.profile() as prof:
        for _ in range(steps):
            start = time.perf_counter()
            minigrad_step()
            step_ms.append((time.perf_counter() - start) * 1e3)

    total = statistics.fmean(step_ms)  # a mean, like the per-op totals it is split into
    rows = sorted(((key, row.self_time) for key, row in prof.stats.items()), key=lambda item: -item[1])
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
            lines.append(f"| {op} | {phase} | {prof.stats[(op, phase)].calls // steps} | {ms:.2f} | {ms / total:.0%} |")
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
