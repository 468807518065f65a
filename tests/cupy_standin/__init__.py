"""A strict stand-in for CuPy, for tests only: ``install()`` puts it in ``sys.modules`` as
``cupy`` and ``cupyx`` before minigrad is imported (tests/conftest.py does so when
``MINIGRAD_TEST_FAKE_CUPY=1``), so that ``MINIGRAD_DEVICE=cuda`` runs the suite on it.

What it proves: device discipline (no device array reaches NumPy, no host array reaches device
code, nothing relies on NumPy scalars where CuPy gives 0-d arrays) and API coverage (it has
only the names of real CuPy, listed in names.txt with the version they came from). What it
does not: CUDA kernels, their numerics, memory and speed; the arrays are NumPy's underneath.
"""

import sys
import types

import numpy
import scipy.special

from . import cuda, nccl, random
from .core import CUPY_VERSION, fill_namespace, ndarray, ufunc, wrap

_HOST_TO_DEVICE = (bool, int, float, complex, list, tuple, numpy.ndarray, numpy.generic)


def array(obj, dtype=None, copy=True, order="K", subok=False, ndmin=0, *, blocking=False):
    """A device array from a device array, a NumPy array or Python data (copied unless ``copy``
    is False or None and nothing needs converting)."""
    if type(obj) is ndarray:
        data = numpy.array(obj._array, dtype=dtype, copy=copy, order=order, ndmin=ndmin)
        return obj if data is obj._array else wrap(data)
    if not isinstance(obj, _HOST_TO_DEVICE):
        raise TypeError(f"Unsupported type {type(obj)}")
    return wrap(numpy.array(unwrap_host(obj), dtype=dtype, order=order, ndmin=ndmin))


def unwrap_host(obj):
    """Python data that may hold device arrays (``cupy.array([x, y])``) as host data."""
    if type(obj) is ndarray:
        return obj._array
    if isinstance(obj, (list, tuple)):
        return type(obj)(unwrap_host(o) for o in obj)
    return obj


def asarray(a, dtype=None, order=None, *, copy=None, blocking=False):
    return array(a, dtype, copy, order or "K", blocking=blocking)


def asnumpy(a, stream=None, order="C", out=None, *, blocking=True):
    """A NumPy copy of a device array; other data as ``numpy.asarray`` gives it."""
    if type(a) is ndarray:
        return a.get(order=order, out=out)
    result = numpy.asarray(a, order=order)
    if out is not None:
        out[...] = result
        return out
    return result


def ascontiguousarray(a, dtype=None):
    if type(a) is not ndarray:
        raise TypeError(f"Argument 'a' has incorrect type (expected cupy.ndarray, got {type(a).__name__})")
    return asarray(numpy.ascontiguousarray(a._array, dtype=dtype)) if not a.flags.c_contiguous or dtype else a


def get_array_module(*args):
    return sys.modules["cupy"] if any(type(a) is ndarray for a in args) else numpy


def _check_device_array(x, op: str):
    if type(x) is not ndarray:
        raise TypeError(f"{op}: expected a cupy.ndarray, got {type(x)}")


def as_strided(x, shape=None, strides=None):
    _check_device_array(x, "as_strided")
    return wrap(numpy.lib.stride_tricks.as_strided(x._array, shape, strides))


def sliding_window_view(x, window_shape, axis=None, *, subok=False, writeable=False):
    _check_device_array(x, "sliding_window_view")
    return wrap(numpy.lib.stride_tricks.sliding_window_view(x._array, window_shape, axis, writeable=writeable))


def scatter_add(a, slices, value):
    """``a[slices] += value`` with repeated indices accumulating."""
    sys.modules["cupy"].add.at(a, slices, value)


def _module(name: str, numpy_space, own: dict, namespace: str | None = None) -> types.ModuleType:
    module = types.ModuleType(name, f"The CuPy stand-in's {name}.")
    fill_namespace(module, namespace or name, numpy_space, own)
    return module


def install() -> None:
    """Make ``import cupy`` and ``import cupyx`` (and their submodules) give the stand-in."""
    stride_tricks = _module("cupy.lib.stride_tricks", None, {"as_strided": as_strided,
                                                             "sliding_window_view": sliding_window_view})  # fmt: skip
    lib = _module("cupy.lib", None, {"stride_tricks": stride_tricks})
    linalg = _module("cupy.linalg", numpy.linalg, {})
    cuda_module = _module("cupy.cuda", None, {name: getattr(cuda, name) for name in (
        "Device", "Stream", "runtime", "is_available", "get_device_id", "get_current_stream")})  # fmt: skip
    random_module = _module("cupy.random", random.STATE, random.OWN)
    cupy = _module("cupy", numpy, {
        "__version__": CUPY_VERSION, "ndarray": ndarray, "ufunc": ufunc, "array": array, "asarray": asarray,
        "asanyarray": asarray, "asnumpy": asnumpy, "ascontiguousarray": ascontiguousarray,
        "get_array_module": get_array_module, "random": random_module, "linalg": linalg, "lib": lib,
        "cuda": cuda_module,
    })  # fmt: skip
    special = _module("cupyx.scipy.special", scipy.special, {})
    scipy_module = _module("cupyx.scipy", None, {"special": special})
    cupyx = _module("cupyx", None, {"scatter_add": scatter_add, "scipy": scipy_module, "errstate": numpy.errstate})
    modules = {"cupy": cupy, "cupy.random": random_module, "cupy.linalg": linalg, "cupy.lib": lib,
               "cupy.lib.stride_tricks": stride_tricks, "cupy.cuda": cuda_module, "cupy.cuda.runtime": cuda.runtime,
               "cupyx": cupyx, "cupyx.scipy": scipy_module, "cupyx.scipy.special": special}  # fmt: skip
    cuda_module.nccl = nccl  # CuPy imports cupy.cuda.nccl where NCCL is installed (not in names.txt)
    modules["cupy.cuda.nccl"] = nccl
    sys.modules.update(modules)
