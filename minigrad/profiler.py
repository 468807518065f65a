"""Where the time goes, op by op: ``with mg.profiler.profile() as prof: ...; print(prof.table())``.

The engine calls in at two places, each behind one check of ``autograd._profiler`` (None
when no profile is open, so profiling costs nothing when off):

- ``Function.apply`` runs an op's ``forward`` through ``profile._forward``, which times it and
  counts the bytes of the arrays the node saves for backward;
- the backward walk runs each node's backward (and the routing of its gradients) through
  ``profile._backward``; ``Function.release`` reports the saved bytes a spent node frees.

Each row is an op and a phase, the pass the time is spent in: an op applied inside another
node's backward (a backward formula written with Tensor ops) counts in the backward phase
under its own name. Total time includes the ops nested inside; self time does not. On a GPU
the times are those of launching the kernels, not of running them.
"""

from __future__ import annotations

import time
import weakref
from dataclasses import dataclass

from minigrad import autograd, backend


@dataclass
class OpStats:
    """One op in one phase: how many calls, their total and self (exclusive) seconds, and
    the bytes of the arrays its nodes saved for backward (forward phase only)."""

    calls: int = 0
    total: float = 0.0
    self_time: float = 0.0
    saved_bytes: int = 0


class profile:
    """Records every op's forward and every node's backward run inside the ``with`` block.

    ``stats`` maps ``(op name, "forward" | "backward")`` to ``OpStats``; ``peak_saved_bytes``
    is the most memory the graph's saved arrays held at once (bytes saved by each node
    summed, counted when the node is recorded and freed when backward releases it or it dies).
    """

    def __init__(self):
        self.stats: dict[tuple[str, str], OpStats] = {}
        self.saved_bytes = 0  # held now
        self.peak_saved_bytes = 0
        self._nested = []  # seconds spent in ops nested inside each running op, innermost last
        self._in_backward = 0
        self._held = {}  # id(node) -> (weakref to it, bytes it saved)

    def __enter__(self):
        self._previous = autograd._profiler
        autograd._profiler = self
        return self

    def __exit__(self, *exc):
        autograd._profiler = self._previous

    # ------------------------------------------------------------------ engine hooks
    def _time(self, name: str, phase: str, run, *args):
        """Call ``run(*args)`` and charge its time to ``(name, phase)``."""
        start = time.perf_counter()
        self._nested.append(0.0)
        try:
            return run(*args)
        finally:
            spent = time.perf_counter() - start
            nested = self._nested.pop()
            row = self.stats.get((name, phase))
            if row is None:
                row = self.stats[(name, phase)] = OpStats()
            row.calls += 1
            row.total += spent
            row.self_time += spent - nested
            if self._nested:
                self._nested[-1] += spent

    def _forward(self, fn, arrays, params):
        phase = "backward" if self._in_backward else "forward"
        out = self._time(fn.name, phase, lambda: fn.forward(*arrays, **params))
        if True in fn.needs_input_grad and fn.__dict__.get("_to_save") is not None:  # the node will keep these
            nbytes = sum(a.nbytes for a in fn._to_save if backend.is_array(a))
            if nbytes:
                self._hold(fn, nbytes)
                self.stats[(fn.name, phase)].saved_bytes += nbytes
        return out

    def _backward(self, node, run_node, *args):
        self._in_backward += 1
        try:
            return self._time(node.name, "backward", run_node, node, *args)
        finally:
            self._in_backward -= 1

    def _hold(self, node, nbytes: int) -> None:
        key = id(node)
        self._held[key] = (weakref.ref(node, lambda _: self._free(key)), nbytes)
        self.saved_bytes += nbytes
        self.peak_saved_bytes = max(self.peak_saved_bytes, self.saved_bytes)

    def _free(self, key: int) -> None:
        held = self._held.pop(key, None)
        if held is not None:
            self.saved_bytes -= held[1]

    def _release(self, node) -> None:
        self._free(id(node))

    # ---------------------------------------------------------------------- report
    def table(self, sort_by: str = "self_time", row_limit: int | None = None) -> str:
        """The rows as a text table, most expensive first (``sort_by``: a field of ``OpStats``)."""
        rows = sorted(self.stats.items(), key=lambda item: -getattr(item[1], sort_by))[:row_limit]
        width = max([len("op")] + [len(op) for op, _ in self.stats])
        lines = [
            f"{'op':<{width}}  {'phase':<8}  {'calls':>7}  {'total ms':>10}  {'self ms':>10}  {'saved':>10}",
            "-" * (width + 58),
        ]
        for (op, phase), s in rows:
            lines.append(
                f"{op:<{width}}  {phase:<8}  {s.calls:>7}  {s.total * 1e3:>10.3f}  {s.self_time * 1e3:>10.3f}"
                f"  {_bytes(s.saved_bytes):>10}"
            )
        self_ms = sum(s.self_time for s in self.stats.values()) * 1e3
        lines.append(f"self time of all ops: {self_ms:.3f} ms; peak saved tensors: {_bytes(self.peak_saved_bytes)}")
        return "\n".join(lines)


def _bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB"):
        if n < 1024 or unit == "MiB":
            return f"{n} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
