"""DistributedSampler: each of ``num_replicas`` processes reads its own share of a dataset, as
``torch.utils.data.DistributedSampler``."""

from __future__ import annotations

import math

from minigrad import backend

np = backend.numpy


def _from_process_group(argument: str):
    try:
        from minigrad import distributed
    except ImportError:
        raise ValueError(
            f"DistributedSampler: pass {argument}= (minigrad.distributed is not available to supply it)"
        ) from None
    return distributed.get_world_size() if argument == "num_replicas" else distributed.get_rank()


class DistributedSampler:
    """The indices of ``dataset`` that replica ``rank`` of ``num_replicas`` reads in one epoch.

    Every epoch the indices are shuffled (with ``shuffle``, from ``seed + epoch``: call
    ``set_epoch`` before each epoch, with the same ``seed`` on every replica), then made a
    multiple of ``num_replicas`` long: without ``drop_last`` by repeating indices from the
    start, so each replica reads ``ceil(N / num_replicas)`` samples and a few are read twice;
    with ``drop_last`` by dropping the tail, so each reads ``floor(N / num_replicas)``. Replica
    ``rank`` takes every ``num_replicas``-th index from position ``rank``. Pass it to the
    ``DataLoader`` as ``sampler=``.
    """

    def __init__(
        self,
        dataset,
        num_replicas: int | None = None,
        rank: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
    ):
        num_replicas = _from_process_group("num_replicas") if num_replicas is None else num_replicas
        rank = _from_process_group("rank") if rank is None else rank
        if num_replicas < 1:
            raise ValueError(f"DistributedSampler: num_replicas must be >= 1, got {num_replicas}")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"DistributedSampler: rank must be in [0, {num_replicas - 1}], got {rank}")
        self.dataset, self.num_replicas, self.rank = dataset, num_replicas, rank
        self.shuffle, self.seed, self.drop_last = shuffle, seed, drop_last
        self.epoch = 0
        n = len(dataset)
        self.num_samples = n // num_replicas if drop_last else math.ceil(n / num_replicas)
        self.total_size = self.num_samples * num_replicas

    def set_epoch(self, epoch: int) -> None:
        """Shuffle the next epoch from ``seed + epoch``: the same order on every replica."""
        self.epoch = epoch

    def __iter__(self):
        n = len(self.dataset)
        if self.shuffle:
            indices = np.random.default_rng(self.seed + self.epoch).permutation(n)
        else:
            indices = np.arange(n)
        if self.total_size > n:  # pad by repeating from the start, as often as needed
            indices = np.resize(indices, self.total_size)
        indices = indices[: self.total_size]
        return iter(indices[self.rank :: self.num_replicas].tolist())

    def __len__(self) -> int:
        return self.num_samples
