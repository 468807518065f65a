"""Write names.txt, the public names of the real CuPy that the stand-in may expose.

Run with the real ``cupy`` importable (it imports without a GPU):
``pip download --no-deps cupy-cuda12x cuda-pathfinder``, unzip both wheels into a folder
DIR, then ``PYTHONPATH=DIR python -P tests/cupy_standin/list_names.py`` (-P: its folder
not on the path, where cuda.py and random.py would hide the real packages).
"""

import importlib
import inspect
import pathlib

import cupy
import numpy

NAMESPACES = (
    "cupy",
    "cupy.ndarray",
    "cupy.ufunc",
    "cupy.random",
    "cupy.random.Generator",
    "cupy.linalg",
    "cupy.lib",
    "cupy.lib.stride_tricks",
    "cupy.cuda",
    "cupy.cuda.Device",
    "cupy.cuda.Stream",
    "cupy.cuda.runtime",
    "cupyx",
    "cupyx.scipy",
    "cupyx.scipy.special",
)
KEPT_DUNDERS = {"__version__"}


def resolve(path: str):
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for part in parts[cut:]:
            obj = getattr(obj, part)
        return obj
    raise ImportError(path)


def kind(namespace, name: str, obj) -> str:
    """What the stand-in must provide: NumPy's own object, or something of its own."""
    if namespace == "cupy" and getattr(numpy, name, None) is obj:
        return "numpy"
    if inspect.ismodule(obj):
        return "module"
    if isinstance(obj, cupy.ufunc):
        return "ufunc"
    if inspect.isclass(obj):
        return "class"
    if callable(obj):
        return "callable"
    return "value"


def main() -> None:
    lines = [
        f"# The public names of CuPy {cupy.__version__} (the cupy-cuda12x {cupy.__version__} wheel, imported",
        "# without a GPU by tests/cupy_standin/list_names.py): namespace.name kind. Kinds: numpy (the very",
        "# object NumPy has: dtypes, scalar types, constants), module, ufunc, class, callable, value.",
    ]
    for namespace in NAMESPACES:
        space = resolve(namespace)
        is_class = inspect.isclass(space)
        children = {child.rpartition(".")[2] for child in NAMESPACES if child.rpartition(".")[0] == namespace}
        for name in sorted(set(dir(space)) | children):  # dir() misses lazy children (cupyx.scipy.special)
            if name.startswith("_") and not (is_class and name.startswith("__")) and name not in KEPT_DUNDERS:
                continue
            obj = getattr(space, name)
            if name == "annotations" or inspect.ismodule(obj) and not obj.__name__.startswith("cupy"):
                continue  # what the namespace itself imported: numpy, warnings, __future__.annotations
            lines.append(f"{namespace}.{name} {kind(namespace, name, obj)}")
    (pathlib.Path(__file__).parent / "names.txt").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
