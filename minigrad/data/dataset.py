"""Datasets: an indexable collection of samples (torch.utils.data's names and semantics).

A dataset that can gather a whole batch with one vectorised index (``TensorDataset``, the
image datasets, a ``Subset`` of either) says so with ``batchable = True`` and serves
``get_batch(indices)``; the ``DataLoader`` then skips the per-sample loop and collation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from minigrad import backend
from minigrad.tensor import Tensor

np = backend.numpy


class Dataset:
    """A map-style dataset: ``dataset[i]`` is sample ``i``, ``len(dataset)`` the number of samples."""

    batchable = False  # True where get_batch(indices) returns a collated batch in one step

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must define __len__")

    def get_batch(self, indices):
        """The collated batch of samples ``indices`` (an int64 array), as ``default_collate`` would give it."""
        raise NotImplementedError(f"{type(self).__name__} serves samples one at a time")


class TensorDataset(Dataset):
    """Samples are slices of tensors along their first dimension: ``dataset[i] = (t[i] for t in tensors)``."""

    batchable = True

    def __init__(self, *tensors: Tensor):
        if not tensors:
            raise ValueError("TensorDataset: expected at least one tensor")
        sizes = [t.shape[0] if t.ndim else None for t in tensors]
        if None in sizes or len(set(sizes)) != 1:
            raise ValueError(f"TensorDataset: all tensors must share their first dimension, got sizes {sizes}")
        self.tensors = tensors

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __len__(self) -> int:
        return self.tensors[0].shape[0]

    def get_batch(self, indices):
        return [t[indices] for t in self.tensors]  # a list, as default_collate makes of the samples' tuples


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order."""

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = np.asarray(indices, dtype=backend.int64).reshape(-1)

    @property
    def batchable(self) -> bool:
        return getattr(self.dataset, "batchable", False)

    def __getitem__(self, index):
        if isinstance(index, (list, tuple)):
            return [self.dataset[int(self.indices[i])] for i in index]
        return self.dataset[int(self.indices[index])]

    def __len__(self) -> int:
        return len(self.indices)

    def get_batch(self, indices):
        return self.dataset.get_batch(self.indices[indices])


def random_split(dataset, lengths: Sequence, seed: int | None = None) -> list[Subset]:
    """Split ``dataset`` into non-overlapping random subsets of the given lengths.

    ``lengths`` are sample counts summing to ``len(dataset)``, or fractions summing to 1 (the
    remainder of the rounding goes one by one to the first subsets, as PyTorch does). The
    permutation comes from ``seed``, else from minigrad's generator (``mg.manual_seed``).
    """
    n = len(dataset)
    lengths = list(lengths)
    if lengths and all(0 <= f <= 1 for f in lengths) and math.isclose(sum(lengths), 1):  # (n = 1: both readings agree)
        counts = [int(math.floor(n * f)) for f in lengths]
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
        lengths = counts
    if any(int(k) != k or k < 0 for k in lengths) or sum(lengths) != n:
        raise ValueError(
            f"random_split: lengths must be counts summing to the dataset's length ({n}) "
            f"or fractions summing to 1, got {lengths}"
        )
    rng = np.random.default_rng(seed) if seed is not None else backend.generator("cpu")
    order = rng.permutation(n)
    ends = np.cumsum([int(k) for k in lengths])
    return [Subset(dataset, order[end - int(k) : end]) for k, end in zip(lengths, ends)]
