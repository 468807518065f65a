"""Run the benchmarks: ``python -m benchmarks [workload ...] [--device cuda] [--repeats N]``.

Prints a Markdown table and writes it to ``benchmarks/results/<date>-<machine>.md``.
Run it on an otherwise idle machine: one busy core slows a NumPy step many times over.
"""

from __future__ import annotations

import argparse
import pathlib
import platform

from benchmarks.harness import machine, measure, report
from benchmarks.workloads import BATCHED, WORKLOADS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workloads", nargs="*", choices=[[], *WORKLOADS], help="default: all")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument(
        "--batch-scale", type=int, help="batch multiplier for the training steps (default 1, 8 on cuda)"
    )
    parser.add_argument("--out", type=pathlib.Path, help="where to write the report")
    args = parser.parse_args()

    results = []
    for name in args.workloads or list(WORKLOADS):
        scale = args.batch_scale or (8 if args.device == "cuda" else 1)
        workload = WORKLOADS[name](scale) if name in BATCHED else WORKLOADS[name]()
        result = measure(workload, args.device, args.repeats)
        print(
            f"{name}: minigrad {result.minigrad_ms:.3f} ms, PyTorch {result.torch_ms:.3f} ms, ratio {result.ratio:.2f}",
            flush=True,
        )
        results.append(result)
    info = machine()
    text = report(results, info, args.device)
    print(text)
    out = (
        args.out
        or pathlib.Path(__file__).parent / "results" / f"{info['date']}-{platform.node() or 'machine'}-{args.device}.md"
    )
    out.write_text(text)
    print(f"written to {out}")


if __name__ == "__main__":
    main()
