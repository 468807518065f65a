"""Benchmarks: minigrad against PyTorch on the same workloads, in one run (``python -m benchmarks``)."""
