"""The CuPy stand-in is strict: wrong device code raises instead of passing on NumPy underneath.

These tests install the stand-in themselves (in a fresh ``sys.modules`` view) where the suite
does not run on it, and put back whatever was there after each test.
"""

import pathlib
import sys

import numpy as np
import pytest

from tests import cupy_standin
from tests.cupy_standin.core import NAMES


@pytest.fixture
def cupy(monkeypatch):
    for name in [n for n in sys.modules if n.split(".")[0] in ("cupy", "cupyx")]:
        monkeypatch.setitem(sys.modules, name, sys.modules[name])  # restored after the test
    cupy_standin.install()
    return sys.modules["cupy"]


@pytest.mark.parametrize(
    "wrong",
    [
        lambda cp, x: np.asarray(x),  # implicit conversion to the host
        lambda cp, x: np.array(x),
        lambda cp, x: np.sum(x),  # a NumPy function on a device array
        lambda cp, x: np.exp(x),  # a NumPy ufunc on a device array
        lambda cp, x: np.concatenate([x, x]),
        lambda cp, x: x + np.ones(3),  # host and device arrays mixed
        lambda cp, x: np.ones(3) * x,
        lambda cp, x: cp.add(x, np.ones(3)),
        lambda cp, x: cp.concatenate([x, np.ones(3)]),
        lambda cp, x: cp.where(np.ones(3, bool), x, x),
        lambda cp, x: cp.exp([1.0, 2.0]),  # CuPy's ufuncs take no lists
        lambda cp, x: cp.ascontiguousarray(np.ones(3)),
        lambda cp, x: range(x[0]),  # a 0-d device array is no index (no __index__)
    ],
)
def test_wrong_device_code_raises(cupy, wrong):
    x = cupy.arange(3.0)
    with pytest.raises(TypeError):
        wrong(cupy, x)


def test_crossing_is_explicit_and_values_are_checkable(cupy):
    host = np.arange(6.0).reshape(2, 3)
    x = cupy.asarray(host)
    host[0, 0] = 7  # asarray copied it to the device
    assert type(x) is cupy.ndarray and x.get()[0, 0] == 0
    total = x.sum()
    assert type(total) is cupy.ndarray and total.shape == () and float(total) == 15.0  # 0-d, not a scalar
    assert type(x[1, 2]) is cupy.ndarray and int(x[1, 2]) == 5 and bool(x[0, 1])
    np.testing.assert_array_equal(cupy.asnumpy(cupy.exp(x)), np.exp(np.arange(6.0).reshape(2, 3)))
    assert (np.float32(2) * x).dtype == np.float64  # NumPy scalars are scalars on the device too
    assert not hasattr(x.flags, "writeable")


def test_only_names_of_real_cupy(cupy):
    """Every public name the stand-in's modules have is in names.txt (CuPy 14.2.0): ``Generator``
    has no ``normal`` or ``permutation``, there is no ``cupy.errstate``. ``cupy.cuda.nccl``, which
    CuPy imports only where NCCL is installed, has names of CuPy's NCCL bindings only."""
    import cupyx

    for namespace, module in [("cupy", cupy), ("cupy.random", cupy.random), ("cupy.cuda", cupy.cuda),
                              ("cupy.linalg", cupy.linalg), ("cupy.lib.stride_tricks", cupy.lib.stride_tricks),
                              ("cupyx", cupyx), ("cupyx.scipy.special", cupyx.scipy.special)]:  # fmt: skip
        public = {n for n in vars(module) if not n.startswith("_")} - ({"nccl"} if namespace == "cupy.cuda" else set())
        assert public <= set(NAMES[namespace]), (namespace, sorted(public - set(NAMES[namespace])))
    generator = cupy.random.default_rng(0)
    assert not any(hasattr(generator, n) for n in ("normal", "permutation", "choice", "shuffle"))
    assert not hasattr(cupy, "errstate")
    nccl = {n for n, v in vars(cupy.cuda.nccl).items() if not n.startswith(("_", "NCCL_")) and callable(v)}
    assert nccl == {"NcclCommunicator", "NcclError", "get_unique_id"}
    header = (pathlib.Path(cupy_standin.__file__).parent / "names.txt").read_text().splitlines()[0]
    assert "CuPy 14.2.0" in header


def test_nccl_buffers_are_the_device_arrays_memory(cupy):
    """The NCCL stand-in reads and writes the arrays behind ``ndarray.data.ptr``, so a wrong
    pointer, count or dtype code gives wrong values or an error, never a silent pass."""
    from cupy.cuda import nccl

    x = cupy.arange(6, dtype=cupy.float32)
    view = x[2:]
    assert view.data.ptr == x.data.ptr + 2 * x.itemsize
    assert not hasattr(np.ones(3).data, "ptr")  # a host array has no device pointer
    memory = nccl._memory(view.data.ptr, 3, nccl.NCCL_FLOAT32)
    assert memory.tolist() == [2.0, 3.0, 4.0]
    memory[...] = -1
    assert x.tolist() == [0.0, 1.0, -1.0, -1.0, -1.0, 5.0]
    assert nccl._memory(x.data.ptr, 3, nccl.NCCL_FLOAT64).tolist() != x.tolist()[:3]  # the wrong type reads garbage
    for pointer, datatype in ((x.data.ptr, 99), (None, nccl.NCCL_FLOAT32), (0, nccl.NCCL_FLOAT32)):
        with pytest.raises(nccl.NcclError, match="ncclInvalidArgument"):
            nccl._memory(pointer, 3, datatype)
