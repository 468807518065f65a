"""Variable-length sequences: pad_sequence, pack_padded_sequence, pad_packed_sequence, and the
recurrent layers on a PackedSequence (each sequence's result as if it ran alone)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minigrad as mg
import nn
from nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence, pad_sequence

_LENGTHS = st.lists(st.integers(1, 6), min_size=1, max_size=5)


def _padded(lengths, features=3, seed=0, batch_first=False):
    """A random padded batch (T, B, C) (or (B, T, C)) whose padding is NaN, so any use of it shows."""
    rng = np.random.default_rng(seed)
    x = np.full((max(lengths), len(lengths), features), np.nan)
    for b, n in enumerate(lengths):
        x[:n, b] = rng.standard_normal((n, features))
    return x.transpose(1, 0, 2) if batch_first else x


# ---------------------------------------------------------------------------- padding/packing
@given(_LENGTHS, st.booleans(), st.sampled_from(["left", "right"]))
def test_pad_sequence(lengths, batch_first, side):
    sequences = [mg.arange(n * 2).float().reshape(n, 2) + 100 * i for i, n in enumerate(lengths)]
    padded = pad_sequence(sequences, batch_first=batch_first, padding_value=-1.0, padding_side=side).cpu().numpy()
    padded = padded if batch_first else padded.transpose(1, 0, 2)
    assert padded.shape == (len(lengths), max(lengths), 2)
    for row, sequence in zip(padded, sequences):
        n, pad = sequence.shape[0], max(lengths) - sequence.shape[0]
        body, rest = (row[pad:], row[:pad]) if side == "left" else (row[:n], row[n:])
        np.testing.assert_array_equal(body, sequence.cpu().numpy())
        assert (rest == -1).all()


@given(_LENGTHS, st.booleans())
def test_pack_then_pad_round_trip(lengths, batch_first):
    x = _padded(lengths, batch_first=batch_first)
    packed = pack_padded_sequence(mg.tensor(x), lengths, batch_first=batch_first, enforce_sorted=False)
    assert packed.data.shape == (sum(lengths), 3) and not np.isnan(packed.data.cpu().numpy()).any()
    sizes = packed.batch_sizes.cpu().numpy()
    assert sizes[0] == len(lengths) and (np.diff(sizes) <= 0).all() and sizes.sum() == sum(lengths)
    padded, got_lengths = pad_packed_sequence(packed, batch_first=batch_first, padding_value=np.nan)
    assert got_lengths.tolist() == lengths
    np.testing.assert_array_equal(padded.cpu().numpy(), x)
    longer, _ = pad_packed_sequence(packed, batch_first=batch_first, total_length=max(lengths) + 2)
    assert longer.shape[1 if batch_first else 0] == max(lengths) + 2


def test_packing_gradient_reaches_only_the_real_steps():
    x = mg.tensor(np.nan_to_num(_padded([3, 1, 2])), requires_grad=True)
    packed = pack_padded_sequence(x, [3, 1, 2], enforce_sorted=False)
    (packed.data * 2).sum().backward()
    mask = ~np.isnan(_padded([3, 1, 2]))
    np.testing.assert_array_equal(x.grad.cpu().numpy(), 2.0 * mask)


def test_packing_bad_input():
    x = mg.zeros(4, 3, 2)
    with pytest.raises(ValueError, match=r"pack_padded_sequence: lengths must be sorted .*\[2, 3, 1\]"):
        pack_padded_sequence(x, [2, 3, 1])
    with pytest.raises(ValueError, match=r"pack_padded_sequence: every length must be in 1\.\.4.*\[5, 3, 1\]"):
        pack_padded_sequence(x, [5, 3, 1])
    with pytest.raises(ValueError, match=r"pack_padded_sequence: every length must be in 1\.\.4.*\[3, 0, 0\]"):
        pack_padded_sequence(x, [3, 0, 0], enforce_sorted=False)
    with pytest.raises(ValueError, match=r"expected 3 integer lengths"):
        pack_padded_sequence(x, [3, 2])
    packed = pack_padded_sequence(x, [4, 2, 1])
    with pytest.raises(ValueError, match=r"total_length must be >= the longest length 4, got 3"):
        pad_packed_sequence(packed, total_length=3)
    with pytest.raises(ValueError, match="same trailing shape"):
        pad_sequence([mg.zeros(2, 3), mg.zeros(2, 4)])


# ------------------------------------------------------------------------- recurrent layers
_LAYERS = [
    ("RNN", {}),
    ("GRU", {}),
    ("LSTM", {}),
    ("GRU", dict(num_layers=2, bidirectional=True)),
    ("LSTM", dict(num_layers=2, bidirectional=True)),
    ("RNN", dict(bidirectional=True, nonlinearity="relu")),
]


def _states(h):
    return [s.detach().cpu().numpy() for s in (h if isinstance(h, tuple) else (h,))]


@pytest.mark.parametrize("name, kwargs", _LAYERS)
@settings(deadline=None, max_examples=15)
@given(lengths=_LENGTHS, batch_first=st.booleans(), with_state=st.booleans())
def test_packed_layer_equals_each_sequence_alone(name, kwargs, lengths, batch_first, with_state):
    mg.manual_seed(0)
    layer = getattr(nn, name)(3, 4, batch_first=batch_first, **kwargs).to(mg.float64)
    x = _padded(lengths, batch_first=batch_first)
    state_shape = (layer.num_layers * (1 + layer.bidirectional), len(lengths), 4)
    hx = None
    if with_state:
        hx = tuple(mg.randn(*state_shape, dtype=mg.float64) for _ in range(1 + (name == "LSTM")))
        hx = hx if name == "LSTM" else hx[0]
    packed = pack_padded_sequence(mg.tensor(x), lengths, batch_first=batch_first, enforce_sorted=False)
    output, h_n = layer(packed, hx)
    assert isinstance(output, PackedSequence) and output.data.shape == (sum(lengths), 4 * (1 + layer.bidirectional))
    padded, _ = pad_packed_sequence(output, batch_first=batch_first)
    padded = padded.detach().cpu().numpy()
    for b, n in enumerate(lengths):
        alone = (x[b : b + 1, :n] if batch_first else x[:n, b : b + 1]).copy()
        h_b = None if hx is None else tuple(h[:, b : b + 1] for h in hx) if name == "LSTM" else hx[:, b : b + 1]
        out_b, h_alone = layer(mg.tensor(alone), h_b)
        for got, want in zip(_states(h_n), _states(h_alone)):
            np.testing.assert_allclose(got[:, b : b + 1], want, rtol=1e-12, atol=1e-12)
        got_out = padded[b : b + 1] if batch_first else padded[:, b : b + 1]
        want_out = out_b.detach().cpu().numpy()
        np.testing.assert_allclose(got_out[:, :n] if batch_first else got_out[:n], want_out, rtol=1e-12, atol=1e-12)
        assert (got_out[:, n:] if batch_first else got_out[n:]).sum() == 0


def test_packed_gru_gradcheck():
    mg.manual_seed(1)
    layer = nn.GRU(2, 3, num_layers=2, bidirectional=True).to(mg.float64)
    lengths = [2, 4, 1]
    x = mg.tensor(np.nan_to_num(_padded(lengths, features=2)), requires_grad=True)
    h0 = mg.randn(4, 3, 3, dtype=mg.float64, requires_grad=True)

    def run(x, h0, *weights):
        output, h_n = layer(pack_padded_sequence(x, lengths, enforce_sorted=False), h0)
        return output.data, h_n

    assert mg.gradcheck(run, (x, h0, *layer.parameters()))


def test_packed_layer_bad_state():
    layer = nn.GRU(3, 4)
    packed = pack_padded_sequence(mg.zeros(5, 2, 3), [5, 2])
    with pytest.raises(RuntimeError, match=r"GRU: expected hidden state of shape \(1, 2, 4\), got \(1, 3, 4\)"):
        layer(packed, mg.zeros(1, 3, 4))
    with pytest.raises(RuntimeError, match="GRU: input.size"):
        nn.GRU(2, 4)(packed)


@pytest.mark.parametrize("name, kwargs", _LAYERS)
def test_packed_layer_matches_torch(name, kwargs):
    torch = pytest.importorskip("torch")
    theirs = getattr(torch.nn, name)(3, 4, batch_first=True, **kwargs).double()
    ours = getattr(nn, name)(3, 4, batch_first=True, **kwargs).to(mg.float64)
    ours.load_state_dict({k: v.detach().cpu().numpy() for k, v in theirs.state_dict().items()})
    lengths = [3, 5, 1, 4]
    x = np.nan_to_num(_padded(lengths, batch_first=True, seed=2))
    x_ours, x_theirs = mg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    packed_ours = pack_padded_sequence(x_ours, lengths, batch_first=True, enforce_sorted=False)
    packed_theirs = torch.nn.utils.rnn.pack_padded_sequence(x_theirs, lengths, batch_first=True, enforce_sorted=False)
    out_ours, h_ours = ours(packed_ours)
    out_theirs, h_theirs = theirs(packed_theirs)
    padded_ours, _ = pad_packed_sequence(out_ours, batch_first=True)
    padded_theirs, _ = torch.nn.utils.rnn.pad_packed_sequence(out_theirs, batch_first=True)
    h_ours = h_ours if isinstance(h_ours, tuple) else (h_ours,)
    h_theirs = h_theirs if isinstance(h_theirs, tuple) else (h_theirs,)
    for got, want in zip([padded_ours, *h_ours], [padded_theirs, *h_theirs]):
        np.testing.assert_allclose(got.detach().cpu().numpy(), want.detach().cpu().numpy(), rtol=1e-10, atol=1e-12)
    weight = np.random.default_rng(3).standard_normal(padded_ours.shape)
    ((padded_ours * mg.tensor(weight)).sum() + sum(h.sum() for h in h_ours)).backward()
    ((padded_theirs * torch.tensor(weight)).sum() + sum(h.sum() for h in h_theirs)).backward()
    np.testing.assert_allclose(x_ours.grad.cpu().numpy(), x_theirs.grad.cpu().numpy(), rtol=1e-9, atol=1e-12)
    for key, p in theirs.named_parameters():
        np.testing.assert_allclose(getattr(ours, key).grad.cpu().numpy(), p.grad.cpu().numpy(), rtol=1e-9, atol=1e-12)
