"""The op database: one ``OpInfo`` per public op, from which ``test_ops.py`` derives
hypothesis-driven forward checks against NumPy, finite-difference gradient checks,
double-backward checks and backward invariants.

Each module of this package defines a list ``OPS``; adding an op to minigrad means
adding one entry here. ``test_registry.py`` fails when a registered ``Function`` is
reached by no entry.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field

from hypothesis import strategies as st


@dataclass(frozen=True)
class Sample:
    """The arguments of one call: Tensors (the differentiable inputs) and anything else."""

    args: tuple
    kwargs: dict = field(default_factory=dict)

    def __repr__(self):
        return f"Sample(args={self.args!r}, kwargs={self.kwargs!r})"


@dataclass
class OpInfo:
    name: str
    op: Callable  # called as op(*sample.args, **sample.kwargs)
    samples: st.SearchStrategy  # draws Sample
    ref: Callable | None = None  # NumPy reference, called with arrays in place of Tensors
    grad: bool = True  # run gradcheck
    gradgrad: bool = True  # run gradgradcheck
    fast: bool = False  # use gradcheck's fast (random projection) mode
    eps: float = 1e-6
    atol: float = 1e-5
    rtol: float = 1e-3
    ref_atol: float = 1e-7
    ref_rtol: float = 1e-6
    requires_cuda: bool = False
    covers: tuple = ()  # Functions this entry exercises when it cannot run here (cuda only)
    # ref is float64-exact (NumPy's own function, or a high-precision value): in float64 the
    # forward must match it to rtol 1e-12, not only to ref_rtol
    exact: bool = False
    # Samples at a removable singularity of the derivative (a 0/0 such as std's gradient where
    # every value is equal): the gradient there must be finite, PyTorch's limit convention
    singular: st.SearchStrategy | None = None


def _collect() -> list:
    ops = []
    for module in pkgutil.iter_modules(__path__):
        ops.extend(importlib.import_module(f"{__name__}.{module.name}").OPS)
    names = [info.name for info in ops]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise ValueError(f"op_db: duplicate OpInfo names {sorted(duplicates)}")
    return ops


OPS = _collect()
