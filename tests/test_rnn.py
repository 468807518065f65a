"""Recurrent layers and the fused cell ops they run on."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
import minigrad.testing as mgt
from minigrad.ops.rnn import gru_cell_pointwise, gru_cell_reference, lstm_cell_pointwise, lstm_cell_reference


def _grads(fn, inputs, weights):
    outputs = fn(*inputs)
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    loss = sum((o * w).sum() for o, w in zip(outputs, weights))
    return [o.detach().cpu().numpy() for o in outputs], [g.cpu().numpy() for g in mg.grad(loss, inputs)]


@pytest.mark.parametrize(
    "fused, reference, n_gates, n_gate_inputs",
    [(lstm_cell_pointwise, lstm_cell_reference, 4, 1), (gru_cell_pointwise, gru_cell_reference, 3, 2)],
)
@given(data=st.data(), batch=st.integers(1, 4), hidden=st.integers(1, 5))
def test_fused_cell_matches_its_composition(fused, reference, n_gates, n_gate_inputs, data, batch, hidden):
    inputs = [data.draw(mgt.tensors((batch, n_gates * hidden), low=-6, high=6)) for _ in range(n_gate_inputs)]
    inputs.append(data.draw(mgt.tensors((batch, hidden))))
    n_out = 2 if fused is lstm_cell_pointwise else 1
    weights = [data.draw(mgt.tensors((batch, hidden), requires_grad=False)) for _ in range(n_out)]
    got_out, got_grads = _grads(fused, inputs, weights)
    want_out, want_grads = _grads(reference, inputs, weights)
    for got, want in zip(got_out + got_grads, want_out + want_grads):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_lstm_cell_with_only_the_cell_state_used():
    gates = mg.randn(3, 8, dtype=mg.float64, requires_grad=True)
    c = mg.randn(3, 2, dtype=mg.float64, requires_grad=True)
    _, c_next = lstm_cell_pointwise(gates, c)
    fused = mg.grad(c_next.sum(), [gates, c])
    _, c_ref = lstm_cell_reference(gates, c)
    reference = mg.grad(c_ref.sum(), [gates, c])
    for got, want in zip(fused, reference):
        np.testing.assert_allclose(got.cpu().numpy(), want.cpu().numpy(), rtol=1e-12)
