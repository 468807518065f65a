"""``mg.cuda.is_available()``, as in PyTorch."""

from minigrad.backend import cuda_is_available as is_available  # noqa: F401
