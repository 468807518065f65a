"""Benchmarks: minigrad against PyTorch on the same workloads, in one run (``python -m benchmarks``)."""

import minigrad  # noqa: E402, F401  (before NumPy: minigrad sets how OpenBLAS's threads wait)
