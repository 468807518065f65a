"""DistributedSampler: coverage, padding and drop_last as PyTorch's, per-epoch shuffling, the DataLoader's sampler=."""

import math

import pytest

import minigrad as mg
from minigrad.data import DataLoader, DistributedSampler, TensorDataset


def _shares(n, replicas, **kwargs):
    return [list(DistributedSampler(range(n), replicas, rank, **kwargs)) for rank in range(replicas)]


@pytest.mark.parametrize("n, replicas", [(12, 3), (10, 3), (7, 4), (2, 5)])
@pytest.mark.parametrize("shuffle", [True, False])
def test_every_index_once_per_epoch_with_padding(n, replicas, shuffle):
    shares = _shares(n, replicas, shuffle=shuffle)
    assert all(len(s) == math.ceil(n / replicas) for s in shares)
    read = [i for s in shares for i in s]
    assert sorted(set(read)) == list(range(n))
    assert len(read) - n == math.ceil(n / replicas) * replicas - n  # only the padding is read twice


@pytest.mark.parametrize("n, replicas", [(12, 3), (10, 3), (7, 4)])
def test_drop_last_drops_the_tail(n, replicas):
    shares = _shares(n, replicas, shuffle=False, drop_last=True)
    assert all(len(s) == n // replicas for s in shares)
    read = sorted(i for s in shares for i in s)
    assert read == list(range(n // replicas * replicas))  # no index twice


def test_rank_takes_every_num_replicas_th_index_and_padding_repeats_from_the_start():
    assert _shares(7, 3, shuffle=False) == [[0, 3, 6], [1, 4, 0], [2, 5, 1]]
    assert _shares(2, 5, shuffle=False) == [[0], [1], [0], [1], [0]]
    assert len(DistributedSampler(range(7), 3, 0, drop_last=True)) == 2


def test_shuffle_is_deterministic_per_epoch_and_changes_across_epochs():
    def epoch_order(epoch, seed=0):
        sampler = DistributedSampler(range(50), 2, 0, seed=seed)
        sampler.set_epoch(epoch)
        return list(sampler)

    assert epoch_order(3) == epoch_order(3)
    assert epoch_order(3) != epoch_order(4)
    assert epoch_order(3, seed=1) != epoch_order(3)
    assert sorted(epoch_order(0)) != epoch_order(0)


def test_bad_rank_and_missing_arguments_are_named():
    with pytest.raises(ValueError, match=r"rank must be in \[0, 1\], got 2"):
        DistributedSampler(range(4), num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="rank"):
        DistributedSampler(range(4), num_replicas=2, rank=-1)
    with pytest.raises(ValueError, match="num_replicas"):
        DistributedSampler(range(4), num_replicas=0, rank=0)
    try:
        import minigrad.distributed  # noqa: F401
    except ImportError:
        with pytest.raises(ValueError, match="num_replicas="):
            DistributedSampler(range(4), rank=0)
        with pytest.raises(ValueError, match="rank="):
            DistributedSampler(range(4), num_replicas=2)


def test_dataloader_reads_the_samplers_share():
    x = mg.arange(10)
    sampler = DistributedSampler(TensorDataset(x), num_replicas=2, rank=1, shuffle=False)
    loader = DataLoader(TensorDataset(x), batch_size=2, sampler=sampler)
    assert len(loader) == 3
    assert [b[0].tolist() for b in loader] == [[1, 3], [5, 7], [9]]
    with pytest.raises(ValueError, match="mutually exclusive with shuffle"):
        DataLoader(TensorDataset(x), sampler=sampler, shuffle=True)


@pytest.mark.parametrize("n, replicas", [(10, 3), (12, 4), (2, 5), (7, 2)])
@pytest.mark.parametrize("drop_last", [False, True])
def test_matches_torch_without_shuffle(n, replicas, drop_last):
    torch = pytest.importorskip("torch")
    for rank in range(replicas):
        ours = DistributedSampler(range(n), replicas, rank, shuffle=False, drop_last=drop_last)
        theirs = torch.utils.data.DistributedSampler(range(n), replicas, rank, shuffle=False, drop_last=drop_last)
        assert list(ours) == list(theirs)
        assert len(ours) == len(theirs)
