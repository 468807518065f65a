"""Memory of a training step: peak resident memory of one small-ResNet step, minigrad against
PyTorch, and the growth of minigrad's process over many steps (a leak shows up as growth).

Each measurement runs in a fresh process, so that one framework's allocations and caches do
not count against the other. ``python -m benchmarks.memory [--steps N]``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _child(framework: str, steps: int) -> dict:
    """Run in the child process: build the step, warm up, then measure."""
    from benchmarks.workloads import small_resnet

    workload = small_resnet()
    step = (workload.minigrad if framework == "minigrad" else workload.torch)("cpu")
    before = _peak_mib()  # model, data and optimizer exist; no step has run
    step()
    first = _peak_mib() - before
    for _ in range(10):
        step()
    settled = _rss_mib()
    for _ in range(steps):
        step()
    return {"step peak MiB": first, "rss after 11 steps MiB": settled, "rss after all MiB": _rss_mib(), "steps": steps}


def measure(framework: str, steps: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.memory", "--child", framework, "--steps", str(steps)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=1000, help="steps for the growth measurement (minigrad)")
    parser.add_argument("--child", choices=["minigrad", "torch"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args.child, args.steps if args.child == "minigrad" else 0)))
        return
    ours, theirs = measure("minigrad", args.steps), measure("torch", 0)
    growth = (ours["rss after all MiB"] - ours["rss after 11 steps MiB"]) / ours["rss after 11 steps MiB"]
    ratio = ours["step peak MiB"] / theirs["step peak MiB"]
    print("| measure | minigrad | PyTorch | ratio | target |\n|---|---|---|---|---|")
    print(
        f"| peak memory of one small-ResNet step (MiB above the idle process) | {ours['step peak MiB']:.1f} | "
        f"{theirs['step peak MiB']:.1f} | {ratio:.2f} | <= 1.5 |"
    )
    print(f"| process memory growth over {args.steps} steps | {100 * growth:+.2f} % | | | < 1 % |")


if __name__ == "__main__":
    main()
