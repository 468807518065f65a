"""minigrad's examples: each trains a model from the project's notes on embedded, offline data."""

import minigrad  # noqa: E402, F401  (before NumPy: minigrad sets how OpenBLAS's threads wait)
