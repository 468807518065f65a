"""What anomaly mode costs: the op-overhead chain timed with anomaly mode never enabled, enabled
then disabled, and (for information) on.

``python -m benchmarks.anomaly [--repeat N] [--steps S] [--quick]``

Off, anomaly mode is one flag read per op and per node (``minigrad/autograd``), so "never" and
"enabled then disabled" should not differ beyond noise. Each of the ``--repeat`` rounds runs in a
fresh process, so that "never" really is never: the process times "never" first, then enables
and disables anomaly mode and times again, then times with it on. The table gives each mode's
median over the rounds of each round's median ms per step, and its ratio to "never".
Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

from benchmarks.workloads import _chain

MODES = ("never", "enabled then disabled", "on")


def _round(steps: int, n_ops: int) -> dict:
    """One process's medians, ms per step, for every mode in order."""
    import minigrad as mg

    x = mg.randn(16, 16, requires_grad=True)

    def median_ms() -> float:
        for _ in range(max(steps // 10, 1)):  # warm-up
            _chain(x, n_ops).backward()
        times = []
        for _ in range(steps):
            start = time.perf_counter()
            _chain(x, n_ops).backward()
            times.append((time.perf_counter() - start) * 1e3)
        return statistics.median(times)

    assert not mg.autograd.is_anomaly_enabled()
    result = {"never": median_ms()}
    with mg.autograd.detect_anomaly():
        _chain(x, n_ops).backward()
    assert not mg.autograd.is_anomaly_enabled()
    result["enabled then disabled"] = median_ms()
    with mg.autograd.detect_anomaly():
        result["on"] = median_ms()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5, help="rounds, each in a fresh process")
    parser.add_argument("--steps", type=int, default=200, help="timed steps per mode and round")
    parser.add_argument("--ops", type=int, default=300, help="elementwise ops in the chain")
    parser.add_argument("--quick", action="store_true", help="a few steps of a short chain: checks that it runs")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.steps, args.ops = 5, 30
    if args.child:
        print(json.dumps(_round(args.steps, args.ops)))
        return

    rounds = []
    for i in range(args.repeat):
        command = [sys.executable, "-m", "benchmarks.anomaly", "--child", "--steps", str(args.steps)]
        child = subprocess.run([*command, "--ops", str(args.ops)], capture_output=True, text=True, check=True)
        rounds.append(json.loads(child.stdout))
        print(f"round {i + 1}: " + ", ".join(f"{m} {rounds[-1][m]:.3f} ms" for m in MODES), flush=True)

    never = statistics.median(r["never"] for r in rounds)
    print(f"\nanomaly mode, {args.ops} elementwise ops on 16x16 + backward, {args.steps} steps x {args.repeat} rounds")
    print("| anomaly mode | ms/step (median of rounds) | range over rounds | ratio to never |")
    print("|---|---|---|---|")
    for mode in MODES:
        values = [r[mode] for r in rounds]
        median = statistics.median(values)
        print(f"| {mode} | {median:.3f} | {min(values):.3f}-{max(values):.3f} | {median / never:.3f} |")


if __name__ == "__main__":
    main()
