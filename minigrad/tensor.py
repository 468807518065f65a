"""The Tensor: an array, whether it needs a gradient, and the node that made it."""

from __future__ import annotations

from minigrad import autograd, backend


class Tensor:
    """An n-dimensional array that records the ops applied to it.

    ``data`` is the raw NumPy (cpu) or CuPy (cuda) array. A tensor made by an op that
    needed gradients has a ``grad_fn`` (the node to call in backward); a tensor made by
    the user is a leaf, and ``backward`` accumulates its gradient in ``.grad``.
    """

    __slots__ = (
        "data",
        "grad",
        "grad_fn",
        "_requires_grad",
        "_output_nr",
        "_version",
        "_base",
        "_hooks",
        "__weakref__",
    )
    __array_ufunc__ = None  # NumPy defers to us: ndarray * Tensor calls Tensor.__rmul__

    def __init__(self, data, dtype=None, device=None, requires_grad: bool = False):
        if isinstance(data, Tensor):
            data = data.data
        if device is None:
            device = "cuda" if backend.device_of(data) == "cuda" else backend.get_default_device()
        self.data = backend.as_array(
            data, None if dtype is None else backend.check_dtype(dtype), backend.check_device(device)
        )
        self.grad = self.grad_fn = self._version = self._base = self._hooks = None
        self._output_nr = 0
        self._requires_grad = False
        self.requires_grad = requires_grad

    @classmethod
    def _make(cls, data, requires_grad: bool = False, grad_fn=None, output_nr: int = 0) -> Tensor:
        """Wrap an array without checks: the fast path every op takes."""
        t = object.__new__(cls)
        t.data = data
        t._requires_grad = requires_grad
        t.grad_fn = grad_fn
        t._output_nr = output_nr
        t.grad = t._version = t._base = t._hooks = None
        return t

    # --------------------------------------------------------------- attributes
    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, flag: bool) -> None:
        flag = bool(flag)
        if flag and self.data.dtype.kind != "f":
            raise RuntimeError(f"only floating-point tensors can require gradients; this one is {self.data.dtype}")
        if self.grad_fn is not None and not flag:
            raise RuntimeError("requires_grad can only be changed on leaf tensors; use .detach()")
        self._requires_grad = flag

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        self.requires_grad = requires_grad
        return self

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def device(self) -> str:
        return backend.device_of(self.data)

    def size(self, dim: int | None = None):
        return self.data.shape if dim is None else self.data.shape[dim]

    def dim(self) -> int:
        return self.data.ndim

    def numel(self) -> int:
        return int(self.data.size)

    def __len__(self) -> int:
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __repr__(self) -> str:
        body = backend.numpy.array2string(
            backend.to_numpy(self.data), separator=", ", prefix="tensor(", precision=4, threshold=200
        )
        extras = []
        if self.dtype not in (backend.get_default_dtype(), backend.int64, backend.bool_) or self.data.size == 0:
            extras.append(f"dtype={self.dtype}")
        if self.device != "cpu":
            extras.append(f"device='{self.device}'")
        if self.grad_fn is not None:
            extras.append(f"grad_fn=<{self.grad_fn.name}Backward>")
        elif self._requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + ", ".join([body, *extras]) + ")"

    __hash__ = object.__hash__  # == is elementwise, so hash by identity

    # --------------------------------------------------------------- conversions
    def numpy(self):
        if self._requires_grad:
            raise RuntimeError("numpy(): this tensor requires grad; call .detach().numpy()")
        if self.device != "cpu":
            raise TypeError("numpy(): this tensor is on cuda; call .cpu() first")
        return self.data

    def __array__(self, dtype=None, copy=None):
        array = backend.to_numpy(self.data)
        return array if dtype is None else array.astype(dtype)

    def item(self):
        if self.data.size != 1:
            raise RuntimeError(f"item(): the tensor has {self.data.size} elements; item() needs exactly one")
        return self.data.item()

    def tolist(self):
        return self.data.tolist()

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise RuntimeError(f"the truth value of a tensor with {self.data.size} elements is ambiguous")
        return bool(self.data.item())

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self.data.dtype.kind not in "iub":
            raise TypeError(f"only integer tensors can be used as an index, not {self.dtype}")
        return int(self.item())

    def to(self, *args, **kwargs) -> Tensor:
        """``to(device)``, ``to(dtype)``, ``to(device, dtype)`` or ``to(other_tensor)``."""
        device, dtype = kwargs.pop("device", None), kwargs.pop("dtype", None)
        if kwargs:
            raise TypeError(f"to(): unexpected arguments {sorted(kwargs)}")
        for arg in args:
            if isinstance(arg, Tensor):
                device, dtype = arg.device, arg.dtype
            elif isinstance(arg, str) and arg.split(":")[0] in backend.DEVICES:
                device = arg
            else:
                dtype = arg
        out = self
        if dtype is not None and backend.check_dtype(dtype, "to") != self.dtype:
            out = ops.elementwise.Cast.apply(out, dtype=backend.check_dtype(dtype, "to"))
        if device is not None and backend.check_device(device) != self.device:
            out = ops.elementwise.ToDevice.apply(out, device=backend.check_device(device))
        return out

    def cpu(self) -> Tensor:
        return self.to("cpu")

    def cuda(self) -> Tensor:
        return self.to("cuda")

    def float(self) -> Tensor:
        return self.to(backend.float32)

    def double(self) -> Tensor:
        return self.to(backend.float64)

    def half(self) -> Tensor:
        return self.to(backend.float16)

    def long(self) -> Tensor:
        return self.to(backend.int64)

    def int(self) -> Tensor:
        return self.to(backend.int32)

    def bool(self) -> Tensor:
        return self.to(backend.bool_)

    def detach(self) -> Tensor:
        """The same memory, cut from the graph."""
        out = Tensor._make(self.data)
        out._version = self._version_counter()
        return out

    # ----------------------------------------------------------------- autograd
    def backward(self, gradient=None, retain_graph: bool | None = None, create_graph: bool = False) -> None:
        autograd.backward(self, gradient, retain_graph, create_graph)

    def register_hook(self, hook):
        """Call ``hook(grad)`` when this tensor's gradient is computed; it may return a new one."""
        if not self._requires_grad:
            raise RuntimeError("register_hook: this tensor does not require grad")
        if self.grad_fn is not None:
            return self.grad_fn.register_prehook(self._output_nr, hook)
        if self._hooks is None:
            self._hooks = []
        self._hooks.append(hook)
        return autograd._HookHandle(self._hooks, hook)

    def register_post_accumulate_grad_hook(self, hook):
        """Call ``hook(self)`` once backward has accumulated this leaf's gradient into ``.grad``
        (after every use of the leaf in the graph has contributed), as in PyTorch."""
        if not self._requires_grad or self.grad_fn is not None:
            raise RuntimeError("register_post_accumulate_grad_hook: only leaf tensors that require grad have one")
        return autograd.register_post_accumulate_grad_hook(self, hook)

    def retain_grad(self) -> None:
        """Keep this non-leaf tensor's gradient in ``.grad`` after backward."""
        if self.grad_fn is not None:
            self.grad_fn.register_prehook(self._output_nr, autograd.retain_grad_hook(self))

    def _version_value(self) -> int:
        return 0 if self._version is None else self._version.value

    def _version_counter(self) -> autograd.VersionCounter:
        if self._version is None:
            self._version = autograd.VersionCounter()
        return self._version

    def _bump_version(self) -> None:
        self._version_counter().value += 1

    # ----------------------------------------------------------------- in place
    def _inplace(self, name: str, op, *args, **kwargs) -> Tensor:
        """Compute ``op(self, *args)`` and write it into this tensor's memory.

        When autograd records the change, this tensor takes the new node as its
        ``grad_fn``; any node that saved the old value sees the version bump and
        refuses to run backward with the changed data.
        """
        tracking = autograd._grad_enabled and (
            self._requires_grad or any(isinstance(a, Tensor) and a._requires_grad for a in args)
        )
        if tracking and self.grad_fn is None and self._requires_grad:
            raise RuntimeError(
                f"{name}: a leaf tensor that requires grad cannot be changed in place while "
                "recording; do it inside mg.no_grad()"
            )
        if tracking and self._base is not None:
            raise RuntimeError(
                f"{name}: in-place changes to a view are not recorded by autograd; use the out-of-place op"
            )
        result = op(self, *args, **kwargs)
        if result.shape != self.shape:
            raise RuntimeError(f"{name}: the result has shape {tuple(result.shape)}, the tensor {tuple(self.shape)}")
        if not backend.numpy.can_cast(result.dtype, self.dtype, "same_kind"):
            raise RuntimeError(f"{name}: a {result.dtype} result cannot be stored in a {self.dtype} tensor")
        self._write(name, Ellipsis, result.data)
        if tracking:
            self.grad_fn, self._output_nr, self._requires_grad = result.grad_fn, result._output_nr, True
        return self

    def _write(self, name: str, index, value) -> None:
        if not backend.is_writeable(self.data):
            raise RuntimeError(f"{name}: this tensor is a read-only view (from expand); clone() it first")
        try:
            self.data[index] = value
        except ValueError as error:  # a value that does not broadcast to the indexed part
            shape = tuple(getattr(value, "shape", ()))
            raise RuntimeError(
                f"{name}: a value of shape {shape} cannot be written into {tuple(self.shape)}: {error}"
            ) from error
        self._bump_version()

    def __setitem__(self, index, value) -> None:
        tracking = autograd._grad_enabled and (
            self._requires_grad or (isinstance(value, Tensor) and value._requires_grad)
        )
        if tracking:
            self._inplace("__setitem__", ops.index.index_put, index, value)
        else:
            index = ops.index.as_index(index, self)
            self._write("__setitem__", index, value.data if isinstance(value, Tensor) else value)

    def add_(self, other, alpha=1) -> Tensor:
        return self._inplace("add_", ops.elementwise.add, other if alpha == 1 else other * alpha)

    def sub_(self, other, alpha=1) -> Tensor:
        return self._inplace("sub_", ops.elementwise.sub, other if alpha == 1 else other * alpha)

    def mul_(self, other) -> Tensor:
        return self._inplace("mul_", ops.elementwise.mul, other)

    def div_(self, other) -> Tensor:
        return self._inplace("div_", ops.elementwise.div, other)

    def clamp_(self, min=None, max=None) -> Tensor:
        return self._inplace("clamp_", ops.elementwise.clamp, min, max)

    def masked_fill_(self, mask, value) -> Tensor:
        return self._inplace("masked_fill_", ops.index.masked_fill, mask, value)

    def copy_(self, src) -> Tensor:
        self[...] = src
        return self

    def fill_(self, value) -> Tensor:
        self[...] = value
        return self

    def zero_(self) -> Tensor:
        self[...] = 0
        return self

    def uniform_(self, a: float = 0.0, b: float = 1.0) -> Tensor:
        draw = backend.generator(self.device).random(self.shape, dtype=self._float_dtype("uniform_"))
        self[...] = draw * (b - a) + a
        return self

    def normal_(self, mean: float = 0.0, std: float = 1.0) -> Tensor:
        draw = backend.generator(self.device).standard_normal(self.shape, dtype=self._float_dtype("normal_"))
        self[...] = draw * std + mean
        return self

    def _float_dtype(self, name):
        if self.dtype.kind != "f":
            raise TypeError(f"{name}: needs a floating-point tensor, got {self.dtype}")
        return backend.float64 if self.dtype == backend.float64 else backend.float32

    __iadd__ = add_
    __isub__ = sub_
    __imul__ = mul_
    __itruediv__ = div_

    @property
    def T(self) -> Tensor:
        return ops.shape.permute(self, tuple(range(self.ndim - 1, -1, -1)))

    @property
    def mT(self) -> Tensor:
        return ops.shape.transpose(self, -2, -1)


def _reflected(fn):
    def reflected(self, other):
        return fn(other, self)

    reflected.__name__ = f"r{fn.__name__}"
    return reflected


from minigrad import ops  # noqa: E402  (ops build on Tensor: import them after it)
from minigrad.ops import elementwise as _ew  # noqa: E402
from minigrad.ops import index as _ix  # noqa: E402
from minigrad.ops import linalg as _la  # noqa: E402
from minigrad.ops import nondiff as _nd  # noqa: E402
from minigrad.ops import reduce as _rd  # noqa: E402
from minigrad.ops import shape as _sh  # noqa: E402

# Operators. Each is the public function of the same name in minigrad.ops.
Tensor.__add__, Tensor.__radd__ = _ew.add, _reflected(_ew.add)
Tensor.__sub__, Tensor.__rsub__ = _ew.sub, _reflected(_ew.sub)
Tensor.__mul__, Tensor.__rmul__ = _ew.mul, _reflected(_ew.mul)
Tensor.__truediv__, Tensor.__rtruediv__ = _ew.div, _reflected(_ew.div)
Tensor.__pow__, Tensor.__rpow__ = _ew.pow, _reflected(_ew.pow)
Tensor.__matmul__, Tensor.__rmatmul__ = _la.matmul, _reflected(_la.matmul)
Tensor.__neg__ = _ew.neg
Tensor.__pos__ = lambda self: self
Tensor.__abs__ = _ew.abs
Tensor.__getitem__ = _ix.getitem
Tensor.__eq__, Tensor.__ne__ = _nd.eq, _nd.ne
Tensor.__lt__, Tensor.__le__, Tensor.__gt__, Tensor.__ge__ = _nd.lt, _nd.le, _nd.gt, _nd.ge
Tensor.__and__, Tensor.__or__, Tensor.__xor__ = _nd.bitwise_and, _nd.bitwise_or, _nd.bitwise_xor
Tensor.__invert__ = _nd.bitwise_not
Tensor.__floordiv__, Tensor.__rfloordiv__ = _nd.floor_divide, _reflected(_nd.floor_divide)
Tensor.__mod__, Tensor.__rmod__ = _nd.remainder, _reflected(_nd.remainder)

# Methods: x.exp() is mg.exp(x).
for _module, _names in (
    (
        _ew,
        "add sub mul div neg pow exp log sqrt rsqrt abs sin cos tanh erf erfc sigmoid relu clamp "
        "maximum minimum sign floor ceil round clone",
    ),
    (_rd, "sum mean var std max min amax amin logsumexp prod cumsum cumprod sum_to"),
    (
        _sh,
        "reshape view flatten transpose permute squeeze unsqueeze expand expand_as repeat "
        "contiguous split chunk unbind flip roll tile tril triu",
    ),
    (_ix, "gather scatter_add masked_fill index_select sort topk"),
    (_la, "matmul"),
    (_nd, "eq ne lt le gt ge argmax argmin isnan isinf isfinite logical_not"),
):
    for _name in _names.split():
        setattr(Tensor, _name, getattr(_module, _name))
Tensor.clip = _ew.clamp
Tensor.where = lambda self, condition, other: _ew.where(condition, self, other)
Tensor.type_as = lambda self, other: self.to(other.dtype)
del _module, _names, _name
