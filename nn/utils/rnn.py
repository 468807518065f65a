"""Variable-length sequences for the recurrent layers (torch.nn.utils.rnn's names).

A batch of sequences of different lengths is either *padded*, a (T, B, *) tensor (or (B, T, *)
with ``batch_first``) with ``lengths`` (B,), or *packed*: a ``PackedSequence`` whose ``data``
(sum(lengths), *) holds the steps time-major, step t being the ``batch_sizes[t]`` sequences
longer than t, longest first. So step t is one contiguous slice of ``data``, and a recurrent
layer fed a ``PackedSequence`` updates only the rows still running at each step.
"""

from __future__ import annotations

from typing import NamedTuple

import minigrad as mg
from minigrad import backend
from minigrad.tensor import Tensor

np = backend.numpy


class PackedSequence(NamedTuple):
    """``data`` (sum(lengths), *): the steps of the sorted sequences, time-major; ``batch_sizes``
    (T,) int64: how many sequences step t holds (non-increasing); ``sorted_indices`` (B,): the
    batch row of each sorted sequence (None when the batch was already sorted);
    ``unsorted_indices`` (B,): its inverse."""

    data: Tensor
    batch_sizes: Tensor
    sorted_indices: Tensor | None = None
    unsorted_indices: Tensor | None = None


def _lengths_array(function: str, lengths, batch: int):
    values = np.asarray(lengths.tolist() if hasattr(lengths, "tolist") else lengths)
    if values.ndim != 1 or len(values) != batch or (values.size and values.dtype.kind not in "iu"):
        raise ValueError(f"{function}: expected {batch} integer lengths (one per sequence), got {values.tolist()}")
    return values.astype(backend.int64)


def _rows(source: Tensor, index, padding_value: float) -> Tensor:
    """Rows ``source[index]`` along dim 0, with a row of ``padding_value`` where index is -1."""
    pad = mg.full((1, *source.shape[1:]), padding_value, dtype=source.dtype, device=source.device)
    index = np.where(index < 0, source.shape[0], index)
    return mg.cat([source, pad]).index_select(0, Tensor(index.astype(backend.int64), device=source.device))


def pad_sequence(sequences: list, batch_first: bool = False, padding_value: float = 0.0, padding_side: str = "right"):
    """Stack sequences (L_i, *) into (T, B, *) (or (B, T, *)) padded with ``padding_value``,
    T = max L_i; ``padding_side="left"`` puts the padding before each sequence."""
    if not sequences:
        raise ValueError("pad_sequence: expected a non-empty list of sequences")
    if padding_side not in ("left", "right"):
        raise ValueError(f"pad_sequence: padding_side must be 'left' or 'right', got {padding_side!r}")
    trailing = {tuple(s.shape[1:]) for s in sequences}
    if len(trailing) > 1 or min(s.ndim for s in sequences) < 1:
        shapes = [tuple(s.shape) for s in sequences]
        raise ValueError(f"pad_sequence: sequences must be (L_i, *) with the same trailing shape, got {shapes}")
    lengths = np.array([s.shape[0] for s in sequences], dtype=backend.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    total = int(lengths.max())
    step = np.arange(total)[:, None]  # (T, 1)
    position = step - (total - lengths)[None, :] if padding_side == "left" else step  # in each sequence
    index = np.where((position >= 0) & (position < lengths[None, :]), starts[None, :] + position, -1)  # (T, B)
    if batch_first:
        index = index.T
    flat = _rows(mg.cat(list(sequences)), index.reshape(-1), padding_value)
    return flat.reshape(*index.shape, *sequences[0].shape[1:])


def pack_padded_sequence(input: Tensor, lengths, batch_first: bool = False, enforce_sorted: bool = True):
    """Pack a padded batch input (T, B, *) (or (B, T, *)) of sequences of ``lengths`` (B,).

    ``enforce_sorted``: lengths must be non-increasing; otherwise the sequences are sorted here
    and the order kept in ``sorted_indices`` so that results come back in the batch order.
    """
    if input.ndim < 2:
        raise ValueError(f"pack_padded_sequence: expected input (T, B, *) or (B, T, *), got shape {tuple(input.shape)}")
    steps, batch = (input.shape[1], input.shape[0]) if batch_first else input.shape[:2]
    lengths = _lengths_array("pack_padded_sequence", lengths, batch)
    if batch == 0 or lengths.min() <= 0 or lengths.max() > steps:
        raise ValueError(
            f"pack_padded_sequence: every length must be in 1..{steps} (the padded length), got {lengths.tolist()}"
        )
    if enforce_sorted:
        if (np.diff(lengths) > 0).any():
            raise ValueError(
                "pack_padded_sequence: lengths must be sorted in decreasing order with enforce_sorted=True "
                f"(pass enforce_sorted=False to sort them here), got {lengths.tolist()}"
            )
        order = np.arange(batch)
    else:
        order = np.argsort(-lengths, kind="stable")
    sorted_lengths = lengths[order]
    batch_sizes = (np.arange(sorted_lengths[0])[:, None] < sorted_lengths[None, :]).sum(axis=1)
    # packed row k is step t of the j-th longest sequence, batch row order[j]
    t = np.repeat(np.arange(len(batch_sizes)), batch_sizes)
    j = np.concatenate([np.arange(b) for b in batch_sizes])
    flat_index = order[j] * steps + t if batch_first else t * batch + order[j]
    data = input.reshape(steps * batch, *input.shape[2:]).index_select(0, Tensor(flat_index, device=input.device))
    sorted_indices = None if enforce_sorted else Tensor(order, device=input.device)
    unsorted_indices = None if enforce_sorted else Tensor(np.argsort(order), device=input.device)
    return PackedSequence(data, Tensor(batch_sizes.astype(backend.int64)), sorted_indices, unsorted_indices)


def packed_lengths(sequence: PackedSequence):
    """The length of each sequence of a ``PackedSequence``, in the sorted order (int64 array)."""
    batch_sizes = np.asarray(sequence.batch_sizes.tolist(), dtype=backend.int64)
    return (np.arange(batch_sizes[0])[None, :] < batch_sizes[:, None]).sum(axis=0)


def pad_packed_sequence(
    sequence: PackedSequence, batch_first: bool = False, padding_value: float = 0.0, total_length: int | None = None
):
    """Undo ``pack_padded_sequence``: (padded (T, B, *) or (B, T, *), lengths (B,) int64), in the
    batch order the sequences were packed from; T = ``total_length`` or the longest length."""
    sorted_lengths = packed_lengths(sequence)
    steps = len(sorted_lengths) and int(sorted_lengths[0])
    if total_length is not None:
        if total_length < steps:
            raise ValueError(
                f"pad_packed_sequence: total_length must be >= the longest length {steps}, got {total_length}"
            )
        steps = total_length
    batch_sizes = np.asarray(sequence.batch_sizes.tolist(), dtype=backend.int64)
    step_starts = np.concatenate([[0], np.cumsum(batch_sizes)[:-1]])
    step_starts = np.concatenate([step_starts, np.zeros(steps - len(batch_sizes), dtype=backend.int64)])
    index = np.arange(len(sorted_lengths))[None, :] + step_starts[:, None]  # (T, B) in sorted order
    index = np.where(np.arange(steps)[:, None] < sorted_lengths[None, :], index, -1)
    lengths = sorted_lengths
    if sequence.unsorted_indices is not None:
        unsort = np.asarray(sequence.unsorted_indices.tolist(), dtype=backend.int64)
        index, lengths = index[:, unsort], sorted_lengths[unsort]
    if batch_first:
        index = index.T
    data = sequence.data
    padded = _rows(data, index.reshape(-1), padding_value).reshape(*index.shape, *data.shape[1:])
    return padded, Tensor(lengths.astype(backend.int64))
