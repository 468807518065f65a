"""``mg.save`` / ``mg.load``: tensors in the safetensors format, never pickle, so loading a file
never runs code.

A flat dict of tensors (a model's state_dict) is written as plain safetensors, readable by any
safetensors loader, and a file PyTorch's safetensors wrote loads back as such a dict. Anything
else (an optimizer's state_dict: nested dicts and lists, numbers, strings) is written as its
tensors plus a JSON description of the structure in the header's metadata.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from collections.abc import Mapping

from minigrad import backend
from minigrad.tensor import Tensor

_STRUCTURE = "minigrad.structure"
_NUMPY_DTYPES = {"BOOL", "U8", "I8", "U16", "I16", "U32", "I32", "U64", "I64", "F16", "F32", "F64", "C64"}


def _contiguous(array):
    """A C-contiguous NumPy copy when needed (np.ascontiguousarray would turn a 0-d array into 1-d)."""
    array = backend.to_numpy(array)
    return array if array.flags.c_contiguous else array.copy(order="C")


def _is_flat(obj) -> bool:
    """A dict plain safetensors can hold ("__metadata__" names its header's metadata, not a tensor)."""
    return (
        isinstance(obj, Mapping)
        and "__metadata__" not in obj
        and all(isinstance(k, str) and isinstance(v, Tensor) for k, v in obj.items())
    )


def _encode(obj, path: str, tensors: dict):
    """A JSON-able description of ``obj``; its tensors go into ``tensors`` under their path."""
    if isinstance(obj, Tensor) or backend.is_array(obj):
        data = obj.data if isinstance(obj, Tensor) else obj
        # a path already taken ({"a.b": x, "a": {"b": y}}, {0: x, "0": y}) gets a name no path can have
        name = path if path not in tensors else f"#{len(tensors)}"
        tensors[name] = _contiguous(data)
        return {"tensor": name, "requires_grad": bool(getattr(obj, "requires_grad", False))}
    if isinstance(obj, Mapping):
        return {"dict": [[_encode(k, f"{path}.key", {}), _encode(v, f"{path}.{k}", tensors)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        kind = "list" if isinstance(obj, list) else "tuple"
        return {kind: [_encode(v, f"{path}.{i}", tensors) for i, v in enumerate(obj)]}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return {"value": obj}
    raise TypeError(f"save: cannot store a {type(obj).__name__} (tensors, numbers, strings, lists, tuples, dicts)")


def save(obj, path) -> None:
    """Write ``obj`` (a state_dict, an optimizer's state_dict, or any nesting of tensors, numbers,
    strings, lists and dicts) to ``path`` in the safetensors format."""
    from safetensors.numpy import save_file

    if _is_flat(obj):
        tensors = {k: _contiguous(v.data) for k, v in obj.items()}
        metadata = {"format": "pt"}
    else:
        tensors = {}
        structure = _encode(obj, "root", tensors)
        metadata = {"format": "pt", _STRUCTURE: json.dumps(structure)}
    save_file(tensors, os.fspath(path), metadata=metadata)


class _Corrupt(ValueError):
    pass


def _decode(node, tensors: dict, device: str):
    if not isinstance(node, dict) or len(node) not in (1, 2):
        raise _Corrupt(f"unexpected entry {str(node)[:80]!r}")
    if "tensor" in node:
        if node["tensor"] not in tensors:
            raise _Corrupt(f"the structure refers to a tensor {node['tensor']!r} that the file does not hold")
        t = Tensor._make(backend.to_device(tensors[node["tensor"]], device))
        t.requires_grad = bool(node.get("requires_grad")) and t.dtype.kind == "f"
        return t
    ((kind, value),) = node.items()
    if kind == "value":
        return value
    if kind == "dict":
        return {_decode(k, tensors, device): _decode(v, tensors, device) for k, v in value}
    if kind in ("list", "tuple"):
        items = [_decode(v, tensors, device) for v in value]
        return items if kind == "list" else tuple(items)
    raise _Corrupt(f"unknown entry kind {kind!r}")


def load(path, map_location=None):
    """Read what ``save`` wrote (or any safetensors file of tensors) onto ``map_location``
    ("cpu" or "cuda"; default: the default device). A truncated or corrupt file raises ValueError,
    a tensor of a dtype NumPy has not (bfloat16, float8) TypeError."""
    from safetensors import SafetensorError, safe_open

    device = backend.check_device(map_location or backend.get_default_device())
    name = os.fspath(path)
    if not os.path.exists(name):
        raise FileNotFoundError(f"load: no such file: {name}")
    try:
        with safe_open(name, framework="numpy") as f:
            metadata = f.metadata() or {}
            dtypes = {key: f.get_slice(key).get_dtype() for key in f.keys()}
            tensors = OrderedDict((key, f.get_tensor(key)) for key in f.keys() if dtypes[key] in _NUMPY_DTYPES)
    except (SafetensorError, OSError, TypeError, ValueError, KeyError) as error:
        raise ValueError(f"load: {name} is not a valid safetensors file (truncated or corrupt?): {error}") from error
    unreadable = {key: dtype for key, dtype in dtypes.items() if dtype not in _NUMPY_DTYPES}
    if unreadable:
        raise TypeError(f"load: {name} holds tensors of dtypes NumPy, and so minigrad, has not: {unreadable}")
    if _STRUCTURE not in metadata:
        return OrderedDict((k, Tensor._make(backend.to_device(v, device))) for k, v in tensors.items())
    try:
        return _decode(json.loads(metadata[_STRUCTURE]), tensors, device)
    except (_Corrupt, json.JSONDecodeError, TypeError, ValueError) as error:
        raise ValueError(f"load: {name} has a corrupt structure description: {error}") from error
