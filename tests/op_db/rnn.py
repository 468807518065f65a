"""OpInfos for the fused recurrent-cell ops (minigrad/ops/rnn.py)."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import minigrad.testing as mgt
from minigrad.ops.rnn import gru_cell_pointwise, gru_sequence, lstm_cell_pointwise, lstm_sequence
from tests.op_db import OpInfo, Sample


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _np_lstm(gates, c):
    i, f, g, o = np.split(gates, 4, axis=-1)
    c_next = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
    return _sigmoid(o) * np.tanh(c_next), c_next


def _np_gru(gates_x, gates_h, h):
    xr, xz, xn = np.split(gates_x, 3, axis=-1)
    hr, hz, hn = np.split(gates_h, 3, axis=-1)
    r, z = _sigmoid(xr + hr), _sigmoid(xz + hz)
    n = np.tanh(xn + r * hn)
    return (1 - z) * n + z * h


@st.composite
def _cell_samples(draw, n_gates, n_states):
    batch = draw(mgt.shapes(0, 2, 0, 3))
    hidden = draw(st.integers(1, 3))
    gates = [draw(mgt.tensors(batch + (n_gates * hidden,))) for _ in range(n_states)]
    return Sample((*gates, draw(mgt.tensors(batch + (hidden,)))))


OPS = [
    OpInfo("lstm_cell_pointwise", lstm_cell_pointwise, _cell_samples(4, 1), _np_lstm),
    OpInfo("gru_cell_pointwise", gru_cell_pointwise, _cell_samples(3, 2), _np_gru),
]


def _np_lstm_sequence(x_proj, h0, c0, weight_hh, reverse=False):
    h, c, outputs = h0, c0, []
    for t in range(x_proj.shape[0])[::-1] if reverse else range(x_proj.shape[0]):
        h, c = _np_lstm(x_proj[t] + h @ weight_hh.T, c)
        outputs.append(h)
    return np.stack(outputs[::-1] if reverse else outputs), h, c


@st.composite
def _sequence_samples(draw):
    steps, batch, hidden = draw(st.integers(1, 3)), draw(st.integers(1, 2)), draw(st.integers(1, 2))
    x = draw(mgt.tensors((steps, batch, 4 * hidden)))
    h0, c0 = draw(mgt.tensors((batch, hidden))), draw(mgt.tensors((batch, hidden)))
    weight = draw(mgt.tensors((4 * hidden, hidden), low=-1, high=1))
    return Sample((x, h0, c0, weight), {"reverse": draw(st.booleans())})


OPS.append(OpInfo("lstm_sequence", lstm_sequence, _sequence_samples(), _np_lstm_sequence))


def _np_gru_sequence(x_proj, h0, weight_hh, bias_hh, reverse=False):
    h, outputs = h0, []
    for t in range(x_proj.shape[0])[::-1] if reverse else range(x_proj.shape[0]):
        h = _np_gru(x_proj[t], h @ weight_hh.T + bias_hh, h)
        outputs.append(h)
    return np.stack(outputs[::-1] if reverse else outputs), h


@st.composite
def _gru_sequence_samples(draw):
    steps, batch, hidden = draw(st.integers(1, 3)), draw(st.integers(1, 2)), draw(st.integers(1, 2))
    x = draw(mgt.tensors((steps, batch, 3 * hidden)))
    h0 = draw(mgt.tensors((batch, hidden)))
    weight = draw(mgt.tensors((3 * hidden, hidden), low=-1, high=1))
    bias = draw(mgt.tensors((3 * hidden,), low=-1, high=1))
    return Sample((x, h0, weight, bias), {"reverse": draw(st.booleans())})


OPS.append(OpInfo("gru_sequence", gru_sequence, _gru_sequence_samples(), _np_gru_sequence))
