"""Datasets, random_split, default_collate and the DataLoader (order, seeding, workers)."""

import collections
import multiprocessing
import random
import time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
from minigrad.data import DataLoader, Dataset, Subset, TensorDataset, default_collate, random_split, transforms


def _tensor_dataset(n=10):
    return TensorDataset(mg.arange(n).float().reshape(n, 1) * 10, mg.arange(n))


class Squares(Dataset):
    """A per-sample dataset with a nested sample and a random draw (to check per-batch seeding)."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        noise = float(mg.rand(1).item())
        return {"x": np.array([i, i * i], dtype=np.float32), "pair": (i, noise), "name": f"s{i}"}


class Failing(Dataset):
    """Sample 4 fails; sample 2 is slow, so that with two workers the failure of batch 2 arrives
    before batch 1 (which must still be yielded first)."""

    def __len__(self):
        return 6

    def __getitem__(self, i):
        if i == 2:
            time.sleep(0.3)
        if i == 4:
            raise KeyError("sample 4 is missing")
        return i


def _as_lists(batches):
    """Batches as nested Python lists, for exact comparison."""

    def plain(b):
        if isinstance(b, mg.Tensor):
            return b.tolist()
        if isinstance(b, dict):
            return {k: plain(v) for k, v in b.items()}
        if isinstance(b, (list, tuple)):
            return [plain(v) for v in b]
        return b

    return [plain(b) for b in batches]


# ------------------------------------------------------------------------- datasets
def test_tensor_dataset_items_and_length():
    ds = _tensor_dataset(5)
    assert len(ds) == 5
    x, y = ds[3]
    assert x.tolist() == [30.0] and y.item() == 3
    with pytest.raises(ValueError, match="first dimension"):
        TensorDataset(mg.zeros(3, 2), mg.zeros(4))


def test_subset_maps_indices_and_keeps_batching():
    sub = Subset(_tensor_dataset(10), [7, 2, 5])
    assert len(sub) == 3 and sub[0][1].item() == 7 and sub[2][1].item() == 5
    assert sub.batchable
    x, y = sub.get_batch(np.array([2, 0]))
    assert y.tolist() == [5, 7] and x[:, 0].tolist() == [50.0, 70.0]
    assert not Subset(Squares(4), [1]).batchable


def test_random_split_partitions_and_is_seeded():
    ds = _tensor_dataset(10)
    parts = random_split(ds, [3, 7], seed=1)
    assert [len(p) for p in parts] == [3, 7]
    assert sorted(np.concatenate([p.indices for p in parts]).tolist()) == list(range(10))
    again = random_split(ds, [3, 7], seed=1)
    assert all((a.indices == b.indices).all() for a, b in zip(parts, again))
    fractions = random_split(ds, [0.25, 0.75], seed=0)  # 2.5 + 7.5: the remainder goes to the first
    assert [len(p) for p in fractions] == [3, 7]
    assert [len(p) for p in random_split(_tensor_dataset(1), [0.5, 0.5], seed=0)] == [1, 0]  # as PyTorch
    mg.manual_seed(5)
    first = random_split(ds, [5, 5])[0].indices
    mg.manual_seed(5)
    assert (random_split(ds, [5, 5])[0].indices == first).all()
    with pytest.raises(ValueError, match="lengths"):
        random_split(ds, [3, 3])


# -------------------------------------------------------------------------- collate
def test_default_collate_nested_structures():
    samples = [
        {"x": np.array([1.0, 2.0], dtype=np.float32), "pair": (1, 0.5), "name": "a", "t": mg.tensor([1, 2])},
        {"x": np.array([3.0, 4.0], dtype=np.float32), "pair": (2, 1.5), "name": "b", "t": mg.tensor([3, 4])},
    ]
    batch = default_collate(samples)
    assert batch["x"].dtype == mg.float32 and batch["x"].tolist() == [[1, 2], [3, 4]]
    ints, floats = batch["pair"]  # a tuple is collated position by position into a list, as in PyTorch
    assert isinstance(batch["pair"], list)
    assert ints.dtype == mg.int64 and ints.tolist() == [1, 2]
    assert floats.dtype == mg.float64 and floats.tolist() == [0.5, 1.5]
    assert batch["name"] == ["a", "b"]
    assert batch["t"].shape == (2, 2) and batch["t"].tolist() == [[1, 2], [3, 4]]


def test_default_collate_scalars_named_tuples_and_errors():
    assert default_collate([True, False]).dtype == mg.bool
    assert default_collate([np.float32(1), np.float32(2)]).dtype == mg.float32
    Point = collections.namedtuple("Point", "x y")
    p = default_collate([Point(1, 2.0), Point(3, 4.0)])
    assert isinstance(p, Point) and p.x.tolist() == [1, 3] and p.y.tolist() == [2.0, 4.0]
    with pytest.raises(RuntimeError, match="equal shapes"):
        default_collate([mg.zeros(2), mg.zeros(3)])
    with pytest.raises(RuntimeError, match="same length"):
        default_collate([(1, 2), (1,)])
    with pytest.raises(TypeError, match="default_collate"):
        default_collate([object(), object()])
    with pytest.raises(TypeError, match="strings or objects"):  # as PyTorch, not a tensor of strings
        default_collate([np.array(["a"]), np.array(["b"])])


def test_default_collate_matches_torch():
    pytest.importorskip("torch")
    from torch.utils.data import default_collate as torch_collate

    samples = [((i, float(i) / 2), {"a": np.arange(3, dtype=np.int32) + i}) for i in range(4)]
    ours, theirs = default_collate(samples), torch_collate(samples)
    assert ours[0][0].tolist() == theirs[0][0].tolist() and str(theirs[0][0].dtype) == "torch." + str(ours[0][0].dtype)
    assert ours[0][1].tolist() == theirs[0][1].tolist() and str(theirs[0][1].dtype) == "torch." + str(ours[0][1].dtype)
    assert ours[1]["a"].tolist() == theirs[1]["a"].tolist() and ours[1]["a"].dtype == mg.int32
    assert type(ours) is type(theirs) and type(ours[0]) is type(theirs[0])
    for numbers in ([1, 2.5], [2.5, 1]):  # mixed ints and floats are not truncated to ints
        ours, theirs = default_collate(numbers), torch_collate(numbers)
        assert ours.tolist() == theirs.tolist() == numbers
        assert str(theirs.dtype) == "torch." + str(ours.dtype)


# --------------------------------------------------------------------------- loader
def test_loader_order_length_and_drop_last():
    ds = _tensor_dataset(10)
    loader = DataLoader(ds, batch_size=4)
    assert len(loader) == 3
    assert [y.tolist() for _, y in loader] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    dropped = DataLoader(ds, batch_size=4, drop_last=True)
    assert len(dropped) == 2 and [y.tolist() for _, y in dropped] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert len(DataLoader(ds, batch_size=5, drop_last=True)) == 2


@given(
    n=st.integers(0, 40),
    batch_size=st.integers(1, 12),
    shuffle=st.booleans(),
    drop_last=st.booleans(),
    seed=st.integers(0, 2**32),
)
def test_loader_batches_cover_the_dataset(n, batch_size, shuffle, drop_last, seed):
    loader = DataLoader(_tensor_dataset(n), batch_size=batch_size, shuffle=shuffle, drop_last=drop_last, seed=seed)
    batches = [y.tolist() for _, y in loader]
    assert len(batches) == len(loader)
    assert all(len(b) == batch_size for b in batches[:-1] if b) and all(0 < len(b) <= batch_size for b in batches)
    seen = sum(batches, [])
    assert len(set(seen)) == len(seen)
    assert len(seen) == (n - n % batch_size if drop_last else n)
    if not shuffle:
        assert seen == list(range(len(seen)))


def test_loader_argument_errors():
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(_tensor_dataset(), batch_size=0)
    with pytest.raises(ValueError, match="num_workers"):
        DataLoader(_tensor_dataset(), num_workers=-1)


def test_batch_sampler_gives_the_batches_and_excludes_the_batching_options():
    from minigrad.data import BucketBatchSampler

    ds = _tensor_dataset(10)
    loader = DataLoader(ds, batch_sampler=[[3, 1], [0, 9, 4], [7]])
    assert len(loader) == 3 and [y.tolist() for _, y in loader] == [[3, 1], [0, 9, 4], [7]]
    buckets = DataLoader(ds, batch_sampler=BucketBatchSampler([5, 1, 4, 2, 3, 9, 8, 7, 6, 0], batch_size=3))
    batches = [y.tolist() for _, y in buckets]
    assert len(batches) == len(buckets) == 4 and sorted(sum(batches, [])) == list(range(10))
    for options in (dict(batch_size=2), dict(shuffle=True), dict(sampler=[0, 1]), dict(drop_last=True)):
        with pytest.raises(ValueError, match="batch_sampler is mutually exclusive"):
            DataLoader(ds, batch_sampler=[[0]], **options)


def test_shuffle_is_a_permutation_new_each_epoch_and_seeded():
    ds = _tensor_dataset(20)
    loader = DataLoader(ds, batch_size=6, shuffle=True, seed=3)
    first = [y.tolist() for _, y in loader]
    second = [y.tolist() for _, y in loader]
    assert sorted(sum(first, [])) == list(range(20)) and first != second
    again = DataLoader(ds, batch_size=6, shuffle=True, seed=3)
    assert [y.tolist() for _, y in again] == first and [y.tolist() for _, y in again] == second


def test_shuffle_follows_manual_seed_and_leaves_the_generator_alone():
    ds = Squares(9)
    mg.manual_seed(11)
    run1 = _as_lists(DataLoader(ds, batch_size=4, shuffle=True))
    after1 = mg.rand(3, device="cpu").tolist()
    mg.manual_seed(11)
    run2 = _as_lists(DataLoader(ds, batch_size=4, shuffle=True))
    after2 = mg.rand(3, device="cpu").tolist()
    assert run1 == run2 and after1 == after2
    mg.manual_seed(11)
    mg.backend.generator("cpu").integers(2**63)  # what one epoch takes from minigrad's generator
    assert mg.rand(3, device="cpu").tolist() == after1


def test_vectorised_batches_equal_per_sample_collation():
    ds = _tensor_dataset(11)
    fast = _as_lists(DataLoader(ds, batch_size=4, shuffle=True, seed=0))
    slow = _as_lists(DataLoader(ds, batch_size=4, shuffle=True, seed=0, collate_fn=default_collate))
    assert fast == slow
    batch = next(iter(DataLoader(ds, batch_size=4)))
    assert type(batch) is type(default_collate([ds[0], ds[1]])) is list  # as PyTorch's [x, y]


def test_custom_collate_fn_receives_samples():
    loader = DataLoader(Squares(5), batch_size=2, collate_fn=lambda samples: [s["name"] for s in samples])
    assert list(loader) == [["s0", "s1"], ["s2", "s3"], ["s4"]]


@pytest.mark.parametrize("num_workers", [1, 3])
def test_workers_give_the_batches_of_no_workers(num_workers):
    ds = Squares(23)
    plain = _as_lists(DataLoader(ds, batch_size=4, shuffle=True, seed=7))
    workers = _as_lists(DataLoader(ds, batch_size=4, shuffle=True, seed=7, num_workers=num_workers))
    assert workers == plain and len(plain) == 6


class GlobalDraws(Dataset):
    """Samples drawn from NumPy's global generator and Python's ``random``, as many user transforms do."""

    def __len__(self):
        return 8

    def __getitem__(self, i):
        return [float(np.random.rand()), random.random()]


def test_numpy_and_python_random_draws_differ_across_workers_and_epochs_and_repeat_with_the_seed():
    np.random.seed(0)
    outside = np.random.get_state()[1].copy()
    loader = DataLoader(GlobalDraws(), batch_size=2, num_workers=2, seed=5)
    first, second = _as_lists(loader), _as_lists(loader)
    assert len({tuple(numpy_draws) for numpy_draws, _ in first}) == 4  # forked workers do not repeat each other
    assert first != second  # nor an epoch the one before
    assert _as_lists(DataLoader(GlobalDraws(), batch_size=2, seed=5)) == first  # what no workers give
    assert (np.random.get_state()[1] == outside).all()  # the caller's global state is left alone


def test_workers_apply_random_transforms_like_no_workers():
    images = mg.rand(12, 1, 6, 6)
    ds = TensorDataset(images, mg.arange(12))
    flip = transforms.RandomHorizontalFlip()

    def collate(samples):
        x, y = default_collate(samples)
        return flip(x), y

    plain = _as_lists(DataLoader(ds, batch_size=5, collate_fn=collate, seed=1))
    workers = _as_lists(DataLoader(ds, batch_size=5, collate_fn=collate, seed=1, num_workers=2))
    assert workers == plain


def test_workers_with_spawn_context():
    ds = _tensor_dataset(7)
    loader = DataLoader(ds, batch_size=3, num_workers=1, multiprocessing_context="spawn")
    assert [y.tolist() for _, y in loader] == [[0, 1, 2], [3, 4, 5], [6]]


def test_worker_error_is_raised_in_the_main_process_and_workers_stop():
    loader = DataLoader(Failing(), batch_size=2, num_workers=2)
    iterator = iter(loader)
    assert next(iterator).tolist() == [0, 1]
    assert next(iterator).tolist() == [2, 3]
    assert len(multiprocessing.active_children()) == 2
    with pytest.raises(KeyError, match="sample 4 is missing") as error:
        next(iterator)
    assert "\n\nCaught KeyError in DataLoader worker process 0" in str(error.value)  # real line breaks, not "\\n"
    assert multiprocessing.active_children() == []


def test_unpicklable_batch_is_an_error_not_a_hang():
    loader = DataLoader(_tensor_dataset(4), batch_size=2, num_workers=1, collate_fn=lambda samples: lambda: samples)
    with pytest.raises(Exception, match="DataLoader worker process 0"):
        next(iter(loader))


def test_abandoned_iteration_shuts_workers_down():
    for _ in DataLoader(_tensor_dataset(40), batch_size=2, num_workers=2):
        assert len(multiprocessing.active_children()) == 2
        break
    assert multiprocessing.active_children() == []
