"""Tensor factories: zeros, ones, full, arange, rand, ... (PyTorch's names and arguments)."""

from __future__ import annotations

from minigrad import backend
from minigrad.tensor import Tensor


def _make(array, requires_grad: bool) -> Tensor:
    t = Tensor._make(array)
    t.requires_grad = requires_grad  # validated: integer tensors cannot require grad
    return t


def _size(size) -> tuple:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = size[0]
    return tuple(int(s) for s in size)


def _where(dtype, device, default=None):
    dtype = backend.check_dtype(dtype) if dtype is not None else (default or backend.get_default_dtype())
    device = backend.check_device(device) if device is not None else backend.get_default_device()
    return dtype, device, backend.module_for(device)


def tensor(data, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of ``data`` (Python floats become the default dtype)."""
    if isinstance(data, Tensor):
        data = data.data
    elif isinstance(data, (list, tuple)) and data and all(isinstance(d, Tensor) for d in data):
        data = backend.numpy.stack([backend.to_numpy(d.data) for d in data])
    t = Tensor(data, dtype=dtype, device=device, requires_grad=requires_grad)
    if backend.is_array(data) and t.data is data:
        t.data = t.data.copy()
    return t


def from_numpy(array) -> Tensor:
    """A tensor sharing memory with a NumPy array."""
    backend.check_dtype(array.dtype, "from_numpy")
    return Tensor._make(array)


def zeros(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    dtype, device, xp = _where(dtype, device)
    return _make(xp.zeros(_size(size), dtype=dtype), requires_grad)


def ones(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    dtype, device, xp = _where(dtype, device)
    return _make(xp.ones(_size(size), dtype=dtype), requires_grad)


def empty(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    dtype, device, xp = _where(dtype, device)
    return _make(xp.empty(_size(size), dtype=dtype), requires_grad)


def full(size, fill_value, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    default = backend.get_default_dtype() if isinstance(fill_value, float) else backend.numpy.asarray(fill_value).dtype
    if default.kind in "iu":
        default = backend.int64
    dtype, device, xp = _where(dtype, device, default)
    return _make(xp.full(_size((size,)), fill_value, dtype=dtype), requires_grad)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    if end is None:
        start, end = 0, start
    integral = all(isinstance(v, int) for v in (start, end, step))
    dtype, device, xp = _where(dtype, device, backend.int64 if integral else None)
    return _make(xp.arange(start, end, step).astype(dtype), requires_grad)


def linspace(start, end, steps: int, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    dtype, device, xp = _where(dtype, device)
    return _make(xp.linspace(start, end, steps).astype(dtype), requires_grad)


def eye(n: int, m: int | None = None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    dtype, device, xp = _where(dtype, device)
    return _make(xp.eye(n, m, dtype=dtype), requires_grad)


def _random_dtype(dtype):
    return backend.float64 if dtype == backend.float64 else backend.float32


def rand(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Uniform on [0, 1), from the generator ``mg.manual_seed`` seeds."""
    dtype, device, _ = _where(dtype, device)
    draw = backend.generator(device).random(_size(size), dtype=_random_dtype(dtype))
    return _make(draw.astype(dtype, copy=False), requires_grad)


def randn(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Standard normal, from the generator ``mg.manual_seed`` seeds."""
    dtype, device, _ = _where(dtype, device)
    draw = backend.generator(device).standard_normal(_size(size), dtype=_random_dtype(dtype))
    return _make(draw.astype(dtype, copy=False), requires_grad)


def randint(low, high=None, size=(), dtype=None, device=None) -> Tensor:
    """Integers in [low, high) (``randint(high, size)`` starts at 0)."""
    if isinstance(high, (tuple, list)):
        low, high, size = 0, low, high
    elif high is None:
        low, high = 0, low
    dtype, device, _ = _where(dtype, device, backend.int64)
    return _make(backend.generator(device).integers(low, high, size=_size((size,))).astype(dtype), False)


def randperm(n: int, dtype=None, device=None) -> Tensor:
    dtype, device, _ = _where(dtype, device, backend.int64)
    generator = backend.generator(device)
    if device == "cpu":
        order = generator.permutation(n)
    else:  # CuPy's Generator has no permutation: the order of n uniform draws is one
        order = backend.module_for(device).argsort(generator.random(n))
    return _make(order.astype(dtype), False)


def zeros_like(input: Tensor, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return zeros(input.shape, dtype=dtype or input.dtype, device=device or input.device, requires_grad=requires_grad)


def ones_like(input: Tensor, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return ones(input.shape, dtype=dtype or input.dtype, device=device or input.device, requires_grad=requires_grad)


def empty_like(input: Tensor, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return empty(input.shape, dtype=dtype or input.dtype, device=device or input.device, requires_grad=requires_grad)


def full_like(input: Tensor, fill_value, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return full(
        input.shape, fill_value, dtype=dtype or input.dtype, device=device or input.device, requires_grad=requires_grad
    )


def rand_like(input: Tensor, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return rand(input.shape, dtype=dtype or input.dtype, device=device or input.device, requires_grad=requires_grad)


def randn_like(input: Tensor, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return randn(input.shape, dtype=dtype or input.dtype, device=device or input.device, requires_grad=requires_grad)
