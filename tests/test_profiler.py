"""mg.profiler.profile: calls, total and self time per op and phase, and saved-tensor memory."""

from __future__ import annotations

import pytest

import minigrad as mg
from minigrad import autograd
from minigrad.autograd import Function, SavedTensor


class _TimesTwo(Function):
    """An op whose backward applies another op (a Mul): the nesting the self time must see."""

    def forward(self, x):
        return x * 2

    def backward(self, grad):
        return grad * 2


def calls(prof, phase: str) -> dict:
    return {op: row.calls for (op, p), row in prof.stats.items() if p == phase}


def test_calls_per_op_and_phase_of_a_known_step():
    a = mg.randn(3, requires_grad=True)
    b = mg.randn(3, requires_grad=True)
    with mg.profiler.profile() as prof:
        y = a * b + a
        y.backward(mg.ones(3))  # Add's and Mul's backward run on arrays: no ops nested in them
    assert calls(prof, "forward") == {"Mul": 1, "Add": 1}
    # Add passes the seed itself on to a: the engine clones it there (a leaf's .grad owns its array)
    assert calls(prof, "backward") == {"Add": 1, "Mul": 1, "Clone": 1}
    for row in prof.stats.values():
        assert 0 <= row.self_time <= row.total


def test_ops_nested_in_a_backward_count_in_the_backward_phase_and_not_in_its_self_time():
    x = mg.randn(4, requires_grad=True)
    with mg.profiler.profile() as prof:
        _TimesTwo.apply(x).sum().backward()
    node, nested = prof.stats[("_TimesTwo", "backward")], prof.stats[("Mul", "backward")]
    assert nested.calls == 1 and ("Mul", "forward") not in prof.stats
    assert node.self_time == pytest.approx(node.total - nested.total, abs=1e-9)
    assert node.self_time < node.total
    assert x.grad.tolist() == [2.0] * 4


def test_peak_saved_memory_is_the_sum_of_the_saved_arrays_and_backward_frees_it():
    a, b, c = (mg.randn(5, dtype=mg.float64, requires_grad=True) for _ in range(3))
    with mg.profiler.profile() as prof:
        y = ((a * b).tanh() * c).sum()  # Mul saves a, b; Tanh its output; Mul tanh's output and c
        saved = _saved_bytes(y.grad_fn)
        assert prof.saved_bytes == saved == 5 * 8 * 5
        y.backward()
        assert prof.saved_bytes == 0
    assert prof.peak_saved_bytes == saved
    assert prof.stats[("Mul", "forward")].saved_bytes == 4 * 5 * 8


def test_a_dropped_graph_frees_its_saved_bytes():
    a = mg.randn(100, requires_grad=True)
    with mg.profiler.profile() as prof:
        y = (a * a).sum()
        assert prof.saved_bytes == 2 * 400
        del y
        assert prof.saved_bytes == 0


def test_nothing_is_recorded_when_off(monkeypatch):
    assert autograd._profiler is None

    def boom(*args):
        raise AssertionError("the profiler ran while off")

    monkeypatch.setattr(mg.profiler.profile, "_forward", boom)
    monkeypatch.setattr(mg.profiler.profile, "_backward", boom)
    monkeypatch.setattr(mg.profiler.profile, "_release", boom)
    a = mg.randn(3, requires_grad=True)
    (a * a).sum().backward()
    with mg.profiler.profile() as outer:
        with mg.profiler.profile() as inner:
            assert autograd._profiler is inner
        assert autograd._profiler is outer
    assert autograd._profiler is None


def test_table_names_the_ops():
    a = mg.randn(2, 3, requires_grad=True)
    with mg.profiler.profile() as prof:
        (a.exp() @ a.T).mean().backward()
    text = prof.table()
    for op in ("Exp", "Mean", "forward", "backward", "self ms", "peak saved tensors"):
        assert op in text
    assert len(prof.table(row_limit=2).splitlines()) == 2 + 2 + 1  # header, rule, rows, footer


def _saved_bytes(root) -> int:
    """Bytes of the arrays every node of the graph saved."""
    total, seen, stack = 0, set(), [root]
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        for s in node._saved if "_saved" in node.__dict__ else ():
            if type(s) is SavedTensor:
                total += (s.tensor.data if s.tensor is not None else s.data).nbytes
        stack.extend(e[0] for e in node.next_edges if e is not None and isinstance(e[0], Function))
    return total
