"""Every registered differentiable op is reached by an entry of the op database, so that
it gets forward, gradient and double-backward property tests; an op without one fails here."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

import minigrad as mg
from tests.op_db import OPS
from tests.test_ops import differentiable_call


def _functions_in_graph(outputs) -> set:
    names, stack, seen = set(), [o.grad_fn for o in outputs if isinstance(o, mg.Tensor) and o.grad_fn], set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        names.add(type(node).__name__)
        stack.extend(e[0] for e in node.next_edges if e is not None and isinstance(e[0], mg.Function))
    return names


def _reached(info) -> set:
    """The ops in the graphs of a few of the entry's own samples."""
    names = set()

    @settings(max_examples=12, derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck))
    @given(info.samples)
    def run(sample):
        tensors, call = differentiable_call(info, sample)
        if tensors:
            result = call(*tensors)
            names.update(_functions_in_graph(result if isinstance(result, (tuple, list)) else [result]))

    run()
    return names


def test_every_registered_op_has_property_tests():
    covered = set()
    for info in OPS:
        if info.requires_cuda and not mg.cuda.is_available():
            covered.update(info.covers)  # runs (and is checked) on a GPU machine
        elif info.grad:
            covered |= _reached(info)
    missing = sorted(set(mg.Function.registry) - covered)
    assert not missing, f"ops registered without an op_db entry that reaches them: {missing}"
