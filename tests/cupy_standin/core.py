"""The stand-in's device array and its functions: NumPy underneath, CuPy's rules on top.

A device array (``ndarray``) wraps a NumPy array and refuses to be taken for one, as CuPy's
does: ``numpy.asarray(x)``, NumPy's functions and ufuncs on it, and arithmetic mixing it with
NumPy arrays raise ``TypeError``; ``.get()``, ``asnumpy`` and ``asarray`` are the only ways
across. Reductions and scalar indexing give 0-d device arrays, not scalars. Every function
unwraps its device arguments, runs NumPy's function of the same name on them and wraps the
arrays (and scalars) it returns.
"""

from __future__ import annotations

import copy as _copy
import functools
import pathlib

import numpy

CUPY_VERSION = "14.2.0"


def _read_names() -> dict[str, dict[str, str]]:
    """names.txt as {namespace: {name: kind}}."""
    spaces: dict[str, dict[str, str]] = {}
    for line in (pathlib.Path(__file__).parent / "names.txt").read_text().splitlines():
        if line.startswith("#"):
            continue
        path, kind = line.split()
        namespace, _, name = path.rpartition(".")
        spaces.setdefault(namespace, {})[name] = kind
    return spaces


NAMES = _read_names()


def _unsupported(value) -> TypeError:
    return TypeError(f"Unsupported type {type(value)} (the CuPy stand-in takes device arrays and scalars only)")


def unwrap(value):
    """The NumPy array inside a device array, through lists, tuples and dicts; a NumPy array
    (a host array handed to device code) raises as it does in CuPy."""
    if type(value) is ndarray:
        return value._array
    if isinstance(value, numpy.ndarray):
        raise _unsupported(value)
    if isinstance(value, (list, tuple)):
        return type(value)(unwrap(v) for v in value)
    if isinstance(value, dict):
        return {k: unwrap(v) for k, v in value.items()}
    return value


def wrap(value):
    """NumPy arrays and NumPy scalars as device arrays (a scalar as a 0-d array), through tuples."""
    if isinstance(value, numpy.ndarray):
        return _device(value)
    if isinstance(value, numpy.generic):
        return _device(numpy.asarray(value))
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # NumPy's named results (linalg.qr)
        return type(value)(*(wrap(v) for v in value))
    if isinstance(value, (list, tuple)):
        return type(value)(wrap(v) for v in value)
    return value


def _device(array: numpy.ndarray) -> ndarray:
    out = object.__new__(ndarray)
    out._array = array
    return out


def _result(result, out):
    """The caller's ``out`` device array(s) when NumPy wrote into them, else ``result`` wrapped."""
    if out is not None:
        return out
    return wrap(result)


def _operand(value):
    """A ufunc's operand: a device array or a scalar (CuPy refuses lists and NumPy arrays)."""
    if type(value) is ndarray:
        return value._array
    if isinstance(value, (bool, int, float, complex, numpy.generic)) and not isinstance(value, numpy.ndarray):
        return value
    raise _unsupported(value)


def _out(out):
    if out is None:
        return None
    if isinstance(out, tuple):
        return tuple(_out(o) for o in out)
    if type(out) is not ndarray:
        raise TypeError(f"out must be a cupy.ndarray, got {type(out)}")
    return out._array


def _with_out(kwargs: dict, out) -> dict:
    """NumPy's keyword arguments, with ``out`` (device arrays) unwrapped where it is given."""
    return kwargs if out is None else {**kwargs, "out": _out(out)}


# ------------------------------------------------------------------------------ ndarray
class ndarray:
    """A device array (a NumPy array inside). ``ndarray(shape, dtype)`` allocates, as in CuPy."""

    __slots__ = ("_array",)
    __array_priority__ = 100
    __array_ufunc__ = None  # NumPy's ufuncs refuse it and NumPy's operators defer to its own
    __hash__ = None

    def __init__(self, shape, dtype=float, memptr=None, strides=None, order="C"):
        self._array = numpy.empty(shape, dtype=dtype, order=order)

    def __array__(self, *args, **kwargs):
        raise TypeError(
            "Implicit conversion to a NumPy array is not allowed. Please use `.get()` to construct a NumPy "
            "array explicitly."
        )

    def __array_function__(self, func, types, args, kwargs):
        raise TypeError(
            f"numpy.{func.__name__} was called on a device array: device code must use the array module "
            "of its arrays (xp = backend.array_module(x)), and .get()/cupy.asnumpy to go to the host"
        )

    # -------------------------------------------------------------------- attributes
    shape = property(lambda self: self._array.shape)

    @shape.setter
    def shape(self, value):
        self._array.shape = value

    dtype = property(lambda self: self._array.dtype)
    ndim = property(lambda self: self._array.ndim)
    size = property(lambda self: self._array.size)
    itemsize = property(lambda self: self._array.itemsize)
    nbytes = property(lambda self: self._array.nbytes)
    strides = property(lambda self: self._array.strides)
    T = property(lambda self: _device(self._array.T))
    mT = property(lambda self: _device(self._array.mT))
    real = property(lambda self: _device(self._array.real))
    imag = property(lambda self: _device(self._array.imag))
    base = property(lambda self: None if self._array.base is None else wrap(self._array.base))
    flags = property(lambda self: Flags(self._array.flags))
    device = property(lambda self: _cuda_device())
    data = property(lambda self: MemoryPointer(self._array))

    # ------------------------------------------------------------ crossing to the host
    def get(self, stream=None, order="C", out=None, blocking=True):
        """A NumPy copy of the array (or ``out`` filled with it)."""
        if out is None:
            return numpy.array(self._array, order=order)
        out[...] = self._array
        return out

    def set(self, arr, stream=None):
        """Copy the NumPy array ``arr`` (same shape and dtype) into this one."""
        if not isinstance(arr, numpy.ndarray) or arr.shape != self.shape or arr.dtype != self.dtype:
            raise ValueError("set: expected a NumPy array of the same shape and dtype")
        self._array[...] = arr

    def item(self, *args):
        return self._array.item(*args)

    def tolist(self):
        return self._array.tolist()

    def __float__(self):
        return float(self._array)

    def __int__(self):
        return int(self._array)

    def __complex__(self):
        return complex(self._array)

    def __bool__(self):
        return bool(self._array)

    def __len__(self):
        return len(self._array)

    # ------------------------------------------------------------------ indexing
    def __getitem__(self, index):
        index = _index(index)
        result = self._array[index]
        if isinstance(result, numpy.generic):  # CuPy gives a 0-d view of the element, not a copy
            result = self._array[(*(index if isinstance(index, tuple) else (index,)), Ellipsis)]
        return _device(result)

    def __setitem__(self, index, value):
        self._array[_index(index)] = unwrap(value)

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(len(self)))

    def __repr__(self):
        return repr(self._array)

    def __str__(self):
        return str(self._array)

    def __format__(self, spec):
        return format(self._array.item() if self.ndim == 0 else self._array, spec)

    def __copy__(self):
        return _device(self._array.copy())

    def __deepcopy__(self, memo):
        return _device(_copy.deepcopy(self._array, memo))

    def __reduce__(self):
        return _rebuild, (self._array,)

    def __sizeof__(self):
        return object.__sizeof__(self)


class MemoryPointer:
    """``ndarray.data``: where the array's first element is (``ptr``, an int address, as NCCL
    and CUDA calls take it); here the address of the wrapped NumPy array's first element."""

    __slots__ = ("ptr",)

    def __init__(self, array: numpy.ndarray):
        self.ptr = array.__array_interface__["data"][0]


class Flags:
    """CuPy's flags: whether the array is C or F contiguous and owns its memory (no ``writeable``)."""

    __slots__ = ("c_contiguous", "f_contiguous", "owndata")

    def __init__(self, flags):
        self.c_contiguous, self.f_contiguous, self.owndata = flags.c_contiguous, flags.f_contiguous, flags.owndata

    def __getitem__(self, name):
        return getattr(self, {"C_CONTIGUOUS": "c_contiguous", "F_CONTIGUOUS": "f_contiguous"}.get(name, name).lower())


def _rebuild(array: numpy.ndarray) -> ndarray:
    return _device(array)


def _index(index):
    """An index with device arrays unwrapped; CuPy takes host index arrays and lists too."""
    if type(index) is ndarray:
        return index._array
    if isinstance(index, tuple):
        return tuple(_index(i) for i in index)
    return index


def _cuda_device():
    from . import cuda

    return cuda.Device(0)


def _method(name: str):
    numpy_method = getattr(numpy.ndarray, name)

    def method(self, *args, out=None, **kwargs):
        return _result(numpy_method(self._array, *unwrap(args), **_with_out(unwrap(kwargs), out)), out)

    method.__name__ = name
    return method


def _inplace(name: str):
    numpy_method = getattr(numpy.ndarray, name)

    def method(self, other):
        numpy_method(self._array, unwrap(other))
        return self

    method.__name__ = name
    return method


_COMPARISONS = {"__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__"}
_NOT_EMULATED = {"__class_getitem__", "__array_finalize__", "__dlpack__", "__dlpack_device__"}
_INPLACE = {"__iadd__", "__iand__", "__ifloordiv__", "__ilshift__", "__imod__", "__imul__", "__ior__", "__ipow__",
            "__irshift__", "__isub__", "__itruediv__", "__ixor__"}  # fmt: skip
for _name, _kind in NAMES["cupy.ndarray"].items():  # the rest of CuPy's methods, from NumPy's
    if _kind != "callable" or _name in vars(ndarray) or _name in _NOT_EMULATED or not hasattr(numpy.ndarray, _name):
        continue
    if _name not in vars(object) or _name in _COMPARISONS:
        setattr(ndarray, _name, (_inplace if _name in _INPLACE else _method)(_name))


# ----------------------------------------------------------------------------- ufuncs
class ufunc:
    """A CuPy ufunc: NumPy's, taking device arrays and scalars only."""

    def __init__(self, numpy_ufunc, name: str | None = None):
        self._ufunc = numpy_ufunc
        self.name = name or numpy_ufunc.__name__
        self.nin, self.nout, self.nargs = numpy_ufunc.nin, numpy_ufunc.nout, numpy_ufunc.nargs
        self.types = numpy_ufunc.types
        self.__name__ = self.name

    def __repr__(self):
        return f"<ufunc '{self.name}'>"

    def __call__(self, *args, out=None, **kwargs):
        result = self._ufunc(*(_operand(a) for a in args), out=_out(out), **kwargs)
        return _result(result, out)

    def at(self, a, indices, b=None):
        if type(a) is not ndarray:
            raise _unsupported(a)
        if b is None:
            self._ufunc.at(a._array, _index(indices))
        else:
            self._ufunc.at(a._array, _index(indices), _operand(b))

    def reduce(self, array, axis=0, dtype=None, out=None, keepdims=False):
        return _result(self._ufunc.reduce(_operand(array), axis, dtype, _out(out), keepdims), out)

    def accumulate(self, array, axis=0, dtype=None, out=None):
        return _result(self._ufunc.accumulate(_operand(array), axis, dtype, _out(out)), out)

    def reduceat(self, array, indices, axis=0, dtype=None, out=None):
        return _result(self._ufunc.reduceat(_operand(array), unwrap(indices), axis, dtype, _out(out)), out)

    def outer(self, a, b, **kwargs):
        return wrap(self._ufunc.outer(_operand(a), _operand(b), **kwargs))


def function(name: str, numpy_fn):
    """CuPy's ``name``: NumPy's function on the unwrapped device arguments, results wrapped."""

    @functools.wraps(numpy_fn)
    def fn(*args, out=None, **kwargs):
        return _result(numpy_fn(*unwrap(args), **_with_out(unwrap(kwargs), out)), out)

    fn.__name__ = fn.__qualname__ = name
    return fn


def missing(qualified_name: str):
    """A name real CuPy has that the stand-in does not emulate: calling it says so."""

    def fn(*args, **kwargs):
        raise NotImplementedError(f"{qualified_name} is not emulated by the CuPy stand-in (tests/cupy_standin)")

    fn.__name__ = qualified_name.rpartition(".")[2]
    return fn


def fill_namespace(module, namespace: str, numpy_space, own: dict) -> None:
    """Give ``module`` the names real CuPy's ``namespace`` has: ``own`` objects first, then NumPy's
    ufuncs and functions of the same name (wrapped), NumPy's very objects where CuPy re-exports
    them, and a stub that raises for every other callable."""
    for name, kind in NAMES[namespace].items():
        if name in own:
            value = own[name]
        elif kind == "numpy":
            value = getattr(numpy, name)
        elif kind == "ufunc" and isinstance(getattr(numpy_space, name, None), numpy.ufunc):
            value = ufunc(getattr(numpy_space, name), name)
        elif kind in ("ufunc", "callable") and callable(getattr(numpy_space, name, None)):
            value = function(name, getattr(numpy_space, name))
        elif kind in ("ufunc", "callable"):
            value = missing(f"{namespace}.{name}")
        else:
            continue  # classes, submodules and values the stand-in does not provide
        setattr(module, name, value)
    extra = set(own) - set(NAMES[namespace])
    if extra:
        raise AssertionError(f"the stand-in's {namespace} has names real CuPy lacks: {sorted(extra)}")
