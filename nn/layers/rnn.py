"""Recurrent layers: RNN, LSTM, GRU (multi-layer, bidirectional) and their single-step cells.

Parameter names, shapes, gate order and initialisation are PyTorch's, so its weights load one to
one. A layer projects the whole input sequence with one GEMM, then runs one GEMM and one fused
pointwise op (minigrad/ops/rnn.py) per time step.

Fed a ``PackedSequence`` (nn/utils/rnn.py), a layer runs step t on the ``batch_sizes[t]``
sequences still running (a contiguous slice of the packed data), so each sequence's final state
is the state after its own last step, as if it had run alone.
"""

from __future__ import annotations

import math

import minigrad as mg
import minigrad.functional as F
from minigrad.ops.rnn import gru_cell_pointwise, gru_sequence, lstm_cell_pointwise, lstm_sequence
from nn import init
from nn.module import Module, Parameter
from nn.utils.rnn import PackedSequence

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def _uniform_init(module: Module) -> None:
    """PyTorch's default for every recurrent weight and bias: U(-1/sqrt(hidden), 1/sqrt(hidden))."""
    bound = 1.0 / math.sqrt(module.hidden_size) if module.hidden_size > 0 else 0
    for weight in module.parameters():
        init.uniform_(weight, -bound, bound)


def _step(mode: str, x_proj: mg.Tensor, state, weight_hh: mg.Tensor, bias_hh: mg.Tensor | None):
    """One time step after the input projection. x_proj: (N, G*H) = x W_ih^T + b_ih; state: h, or (h, c)."""
    if mode == "LSTM":
        h, c = state
        gates = x_proj + F.linear(h, weight_hh, bias_hh)
        return lstm_cell_pointwise(gates, c)
    if mode == "GRU":
        return gru_cell_pointwise(x_proj, F.linear(state, weight_hh, bias_hh), state)
    pre = x_proj + F.linear(state, weight_hh, bias_hh)
    return pre.tanh() if mode == "RNN_TANH" else pre.relu()


class _RNNBase(Module):
    mode = ""  # "RNN_TANH", "RNN_RELU", "LSTM" or "GRU"

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, device=None, dtype=None):  # fmt: skip
        super().__init__()
        if not 0 <= dropout <= 1:
            raise ValueError(f"{type(self).__name__}: dropout should be a number in [0, 1], got {dropout}")
        if hidden_size <= 0 or num_layers <= 0:
            raise ValueError(
                f"{type(self).__name__}: hidden_size and num_layers must be positive, "
                f"got {hidden_size} and {num_layers}"
            )
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout, self.bidirectional = bias, batch_first, float(dropout), bidirectional
        directions = 2 if bidirectional else 1
        gate_size = _GATES[self.mode] * hidden_size
        factory = {"device": device, "dtype": dtype}
        self._weights = []  # per layer and direction: (weight_ih, weight_hh, bias_ih, bias_hh) names
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size * directions
            for direction in range(directions):
                suffix = f"_l{layer}" + ("_reverse" if direction else "")
                shapes = {"weight_ih": (gate_size, layer_input), "weight_hh": (gate_size, hidden_size)}
                if bias:
                    shapes.update(bias_ih=(gate_size,), bias_hh=(gate_size,))
                for name, shape in shapes.items():
                    self.register_parameter(name + suffix, Parameter(mg.empty(*shape, **factory)))
                self._weights.append([name + suffix for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")])
        _uniform_init(self)

    def _params(self, index: int) -> list:
        return [getattr(self, name, None) for name in self._weights[index]]

    def _check_input(self, input: mg.Tensor, hx, state_shape: tuple) -> None:
        if input.ndim not in (2, 3):
            raise ValueError(
                f"{type(self).__name__}: expected input to be 2-D or 3-D, got {input.ndim}-D "
                f"of shape {tuple(input.shape)}"
            )
        if input.shape[-1] != self.input_size:
            raise RuntimeError(
                f"{type(self).__name__}: input.size(-1) must be equal to input_size. "
                f"Expected {self.input_size}, got {input.shape[-1]} (input shape {tuple(input.shape)})"
            )
        for h in hx if isinstance(hx, tuple) else (hx,):
            if h is not None and tuple(h.shape) != state_shape:
                raise RuntimeError(
                    f"{type(self).__name__}: expected hidden state of shape {state_shape}, got {tuple(h.shape)}"
                )

    def forward(self, input: mg.Tensor, hx=None):
        """input: (L, N, H_in), (N, L, H_in) with batch_first, or unbatched (L, H_in).

        Returns output (L, N, D*H) (or (N, L, D*H)) and h_n (num_layers*D, N, H); LSTM: (h_n, c_n).
        A ``PackedSequence`` input gives a ``PackedSequence`` output and the final states of each
        sequence, in the batch order it was packed from.
        """
        if isinstance(input, PackedSequence):
            return self._forward_packed(input, hx)
        directions = 2 if self.bidirectional else 1
        batched = input.ndim == 3
        batch_dim = 0 if self.batch_first else 1
        n = input.shape[batch_dim] if batched else 1
        state_shape = (self.num_layers * directions, n, self.hidden_size)
        self._check_input(input, hx, state_shape if batched else (state_shape[0], self.hidden_size))
        if not batched:
            input = input.unsqueeze(batch_dim)
            hx = None if hx is None else tuple(h.unsqueeze(1) for h in hx) if isinstance(hx, tuple) else hx.unsqueeze(1)
        x = input.transpose(0, 1) if self.batch_first else input  # (L, N, H_in) from here on
        if hx is None:
            zeros = mg.zeros(*state_shape, dtype=input.dtype, device=input.device)
            hx = (zeros, zeros) if self.mode == "LSTM" else zeros
        initial = [h.unbind(0) for h in hx] if self.mode == "LSTM" else [hx.unbind(0)]

        finals = []
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(directions):
                index = layer * directions + direction
                weight_ih, weight_hh, bias_ih, bias_hh = self._params(index)
                if self.mode == "LSTM":  # the whole time loop is one fused op
                    # both biases go into the input projection's GEMM output: one (4H,) add, not a pass over it
                    bias = bias_hh if bias_ih is None else (bias_ih if bias_hh is None else bias_ih + bias_hh)
                    projected = F.linear(x, weight_ih, bias)  # every step's input projection in one GEMM
                    out, h_n, c_n = lstm_sequence(projected, *(s[index] for s in initial), weight_hh, bool(direction))
                    outputs.append(out)
                    finals.append((h_n, c_n))
                    continue
                projected = F.linear(x, weight_ih, bias_ih)  # every step's input projection in one GEMM
                if self.mode == "GRU":  # so is the GRU's
                    if bias_hh is None:
                        bias_hh = mg.zeros(weight_hh.shape[0], dtype=x.dtype, device=x.device)
                    out, h_n = gru_sequence(projected, initial[0][index], weight_hh, bias_hh, bool(direction))
                    outputs.append(out)
                    finals.append(h_n)
                    continue
                state, hs = initial[0][index], []
                steps = projected.unbind(0)
                for x_proj in reversed(steps) if direction else steps:
                    state = _step(self.mode, x_proj, state, weight_hh, bias_hh)
                    hs.append(state)
                outputs.append(mg.stack(hs[::-1] if direction else hs))
                finals.append(state)
            x = outputs[0] if directions == 1 else mg.cat(outputs, dim=2)
            if self.dropout and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, True)

        output = x.transpose(0, 1) if self.batch_first else x
        if self.mode == "LSTM":
            h_n = (mg.stack([h for h, _ in finals]), mg.stack([c for _, c in finals]))
        else:
            h_n = mg.stack(finals)
        if not batched:
            output = output.squeeze(batch_dim)
            h_n = tuple(h.squeeze(1) for h in h_n) if self.mode == "LSTM" else h_n.squeeze(1)
        return output, h_n

    def _forward_packed(self, packed: PackedSequence, hx=None):
        """input.data (sum(lengths), H_in) -> (PackedSequence of (sum(lengths), D*H), h_n)."""
        directions = 2 if self.bidirectional else 1
        batch_sizes = packed.batch_sizes.tolist()
        n = batch_sizes[0]
        state_shape = (self.num_layers * directions, n, self.hidden_size)
        self._check_input(packed.data, hx, state_shape)
        x = packed.data
        if hx is None:
            zeros = mg.zeros(*state_shape, dtype=x.dtype, device=x.device)
            hx = (zeros, zeros) if self.mode == "LSTM" else zeros
        states = list(hx) if self.mode == "LSTM" else [hx]  # [h_0] or [h_0, c_0]
        if packed.sorted_indices is not None:  # the states follow their sequences into sorted order
            states = [h.index_select(1, packed.sorted_indices) for h in states]
        initial = [h.unbind(0) for h in states]
        finals = []
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(directions):
                index = layer * directions + direction
                out, final = self._run_packed(x, batch_sizes, [s[index] for s in initial], index, bool(direction))
                outputs.append(out)
                finals.append(final)
            x = outputs[0] if directions == 1 else mg.cat(outputs, dim=1)
            if self.dropout and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, True)

        h_n = [mg.stack(list(parts)) for parts in zip(*finals)]  # LSTM: [h_n, c_n]
        if packed.unsorted_indices is not None:
            h_n = [h.index_select(1, packed.unsorted_indices) for h in h_n]
        h_n = tuple(h_n) if self.mode == "LSTM" else h_n[0]
        return PackedSequence(x, packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices), h_n

    def _run_packed(self, x: mg.Tensor, batch_sizes: list, initial: list, index: int, reverse: bool):
        """One direction over packed steps x (sum(lengths), H_in) from initial [h0] or [h0, c0],
        each (N, H). Returns the outputs (sum(lengths), H) and the final [h] or [h, c].

        The running state holds the rows of the sequences that have started; a sequence joins
        (from its initial state) at its first step and is set aside after its last, so that step
        t's GEMM and cell op see only its ``batch_sizes[t]`` rows.
        """
        weight_ih, weight_hh, bias_ih, bias_hh = self._params(index)
        projected = F.linear(x, weight_ih, bias_ih)  # every step's input projection in one GEMM
        starts = [0]
        for size in batch_sizes[:-1]:
            starts.append(starts[-1] + size)
        state = [h[:0] for h in initial]
        finished, outputs = [], []
        for t in reversed(range(len(batch_sizes))) if reverse else range(len(batch_sizes)):
            size, running = batch_sizes[t], state[0].shape[0]
            if size > running:  # sequences whose first step this is (reverse direction)
                state = [mg.cat([s, h[running:size]]) for s, h in zip(state, initial)]
            elif size < running:  # sequences that ended at the step before (forward direction)
                finished.append([s[size:] for s in state])
                state = [s[:size] for s in state]
            current = tuple(state) if self.mode == "LSTM" else state[0]
            new = _step(self.mode, projected[starts[t] : starts[t] + size], current, weight_hh, bias_hh)
            state = list(new) if self.mode == "LSTM" else [new]
            outputs.append(state[0])
        finals = [mg.cat([s, *parts[::-1]]) if parts else s for s, *parts in zip(state, *finished)]
        return mg.cat(outputs[::-1] if reverse else outputs), finals

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            text += f", num_layers={self.num_layers}"
        if not self.bias:
            text += ", bias=False"
        if self.batch_first:
            text += ", batch_first=True"
        if self.dropout:
            text += f", dropout={self.dropout}"
        if self.bidirectional:
            text += ", bidirectional=True"
        return text


class RNN(_RNNBase):
    """h_t = nonlinearity(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh), nonlinearity "tanh" or "relu"."""

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, device=None, dtype=None):  # fmt: skip
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: unknown nonlinearity {nonlinearity!r}; expected 'tanh' or 'relu'")
        self.mode = "RNN_" + nonlinearity.upper()
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, device, dtype)
        self.nonlinearity = nonlinearity


class LSTM(_RNNBase):
    """Gates i, f, g, o; c_t = f * c_{t-1} + i * g; h_t = o * tanh(c_t). forward(input, (h_0, c_0))."""

    mode = "LSTM"


class GRU(_RNNBase):
    """Gates r, z; n = tanh(x W_in + b_in + r * (h W_hn + b_hn)); h_t = (1 - z) * n + z * h_{t-1}."""

    mode = "GRU"


class _CellBase(Module):
    mode = ""

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__()
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        gate_size = _GATES[self.mode] * hidden_size
        factory = {"device": device, "dtype": dtype}
        self.weight_ih = Parameter(mg.empty(gate_size, input_size, **factory))
        self.weight_hh = Parameter(mg.empty(gate_size, hidden_size, **factory))
        self.bias_ih = Parameter(mg.empty(gate_size, **factory)) if bias else None
        self.bias_hh = Parameter(mg.empty(gate_size, **factory)) if bias else None
        _uniform_init(self)

    def forward(self, input: mg.Tensor, hx=None):
        """input: (N, H_in) or (H_in,); hx: (N, H) (LSTMCell: (h, c)), zeros when None."""
        if input.ndim not in (1, 2) or input.shape[-1] != self.input_size:
            raise RuntimeError(
                f"{type(self).__name__}: expected input of shape (N, {self.input_size}) or "
                f"({self.input_size},), got {tuple(input.shape)}"
            )
        batched = input.ndim == 2
        x = input if batched else input.unsqueeze(0)
        if hx is None:
            zeros = mg.zeros(x.shape[0], self.hidden_size, dtype=input.dtype, device=input.device)
            hx = (zeros, zeros) if self.mode == "LSTM" else zeros
        elif not batched:
            hx = tuple(h.unsqueeze(0) for h in hx) if self.mode == "LSTM" else hx.unsqueeze(0)
        for h in hx if self.mode == "LSTM" else (hx,):
            if tuple(h.shape) != (x.shape[0], self.hidden_size):
                raise RuntimeError(
                    f"{type(self).__name__}: expected hidden state of shape "
                    f"{(x.shape[0], self.hidden_size)}, got {tuple(h.shape)}"
                )
        out = _step(self.mode, F.linear(x, self.weight_ih, self.bias_ih), hx, self.weight_hh, self.bias_hh)
        if not batched:
            out = tuple(o.squeeze(0) for o in out) if self.mode == "LSTM" else out.squeeze(0)
        return out

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")


class RNNCell(_CellBase):
    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", device=None, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNNCell: unknown nonlinearity {nonlinearity!r}; expected 'tanh' or 'relu'")
        self.mode = "RNN_" + nonlinearity.upper()
        super().__init__(input_size, hidden_size, bias, device, dtype)
        self.nonlinearity = nonlinearity


class LSTMCell(_CellBase):
    mode = "LSTM"


class GRUCell(_CellBase):
    mode = "GRU"
