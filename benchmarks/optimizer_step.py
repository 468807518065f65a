"""Time of one optimizer step, one parameter at a time against the foreach (flat buffer) step.

``python -m benchmarks.optimizer_step [--repeats N]`` builds each parameter set (the MLP and
transformer-layer workloads' parameters, and 300 small tensors), gives them fixed gradients and
times ``optimizer.step()`` for SGD with momentum and Adam, the two paths alternating in one
process; it prints the median milliseconds per step of each and their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time

import minigrad as mg
import nn
from benchmarks.workloads import _framework, _mlp, _transformer


def _small_tensors():
    return [nn.Parameter(mg.randn(16, 16) if i % 2 else mg.randn(16)) for i in range(300)]


PARAMETER_SETS = {
    "mlp 784-512-512-10": lambda: list(_mlp(_framework("minigrad")).parameters()),
    "transformer layer d=256": lambda: list(_transformer(_framework("minigrad")).parameters()),
    "300 small tensors": _small_tensors,
}
OPTIMIZERS = {
    "SGD momentum=0.9": lambda params, foreach: nn.optim.SGD(params, lr=0.01, momentum=0.9, foreach=foreach),
    "Adam": lambda params, foreach: nn.optim.Adam(params, lr=1e-3, foreach=foreach),
}


def _time_step(optimizer) -> float:
    start = time.perf_counter()
    optimizer.step()
    return (time.perf_counter() - start) * 1e3


def measure(repeats: int) -> list[str]:
    rows = [
        "| parameters | optimizer | tensors | per-parameter ms | foreach ms | speed-up |",
        "|---|---|---|---|---|---|",
    ]
    for set_name, build in PARAMETER_SETS.items():
        for optim_name, make in OPTIMIZERS.items():
            optimizers = []
            for foreach in (False, True):
                params = build()
                for p in params:
                    p.grad = mg.randn(*p.shape) * 0.01
                optimizers.append(make(params, foreach))
            times = ([], [])
            for _ in range(3):  # warm up: state made, buffers flattened
                for optimizer in optimizers:
                    optimizer.step()
            for _ in range(repeats):
                for path, optimizer in enumerate(optimizers):
                    times[path].append(_time_step(optimizer))
            single, flat = (statistics.median(t) for t in times)
            count = len(optimizers[0].param_groups[0]["params"])
            rows.append(f"| {set_name} | {optim_name} | {count} | {single:.3f} | {flat:.3f} | {single / flat:.2f}x |")
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args(argv)
    print("\n".join(measure(args.repeats)))


if __name__ == "__main__":
    main()
