"""DataLoader: a dataset's samples in batches, shuffled reproducibly, optionally made by worker processes.

Reproducibility. Each pass over the loader (an epoch) draws one ``epoch_seed``: from the
loader's own generator when it was given ``seed=``, else from minigrad's generator, so that
``mg.manual_seed`` fixes every epoch. The shuffle order and, for each batch ``k``, the random
state the dataset's transforms draw from (minigrad's generator, and NumPy's global one and
Python's ``random`` for transforms that use those) are derived from ``(epoch_seed, k)`` alone. A batch
therefore has the same content whichever process makes it: ``num_workers=4`` yields exactly
the batches of ``num_workers=0`` (PyTorch instead seeds each worker, so there the augmented
batches depend on the number of workers). Making a batch leaves these generators as it
found them, so the data pipeline never shifts the draws of initialisation or dropout.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import numbers
import pickle
import queue
import random
import signal
import traceback
from collections.abc import Mapping

from minigrad import backend
from minigrad.ops.shape import stack
from minigrad.tensor import Tensor

np = backend.numpy

_WORKER_POLL_S = 1.0  # how often a waiting loader checks that its workers are still alive


def default_collate(batch: list):
    """Merge a list of samples into a batch, as PyTorch's ``default_collate`` does.

    Tensors and NumPy arrays are stacked along a new first dimension; Python ints become an
    int64 tensor (of the default float dtype if a float is among them), floats a float64 tensor,
    bools a bool tensor, NumPy scalars keep their dtype;
    strings stay a list. Tuples and lists are collated position by position (giving a list),
    dicts key by key, named tuples field by field.
    """
    elem = batch[0]
    if isinstance(elem, Tensor):
        shapes = {tuple(t.shape) for t in batch}
        if len(shapes) > 1:
            raise RuntimeError(f"default_collate: tensors in a batch must have equal shapes, got {sorted(shapes)}")
        return stack(batch)
    if backend.is_array(elem):
        if elem.dtype.kind in "SUO":
            raise TypeError(f"default_collate: arrays of strings or objects ({elem.dtype}) cannot become a tensor")
        shapes = {a.shape for a in batch}
        if len(shapes) > 1:
            raise RuntimeError(f"default_collate: arrays in a batch must have equal shapes, got {sorted(shapes)}")
        return Tensor._make(backend.array_module(elem).stack(batch))
    if isinstance(elem, np.generic):
        return Tensor._make(np.asarray(batch))
    if isinstance(elem, bool):
        return Tensor._make(np.asarray(batch, dtype=backend.bool_))
    if isinstance(elem, int):  # a float among the ints makes a float tensor, as torch.tensor(batch) infers
        floats = any(isinstance(x, float) for x in batch)
        return Tensor._make(np.asarray(batch, dtype=backend.get_default_dtype() if floats else backend.int64))
    if isinstance(elem, float):
        return Tensor._make(np.asarray(batch, dtype=backend.float64))
    if isinstance(elem, (str, bytes)):
        return list(batch)
    if isinstance(elem, Mapping):
        return {key: default_collate([sample[key] for sample in batch]) for key in elem}
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):
        return type(elem)(*(default_collate(list(field)) for field in zip(*batch)))
    if isinstance(elem, (tuple, list)):
        if any(len(sample) != len(elem) for sample in batch):
            raise RuntimeError("default_collate: each element in a batch of sequences must have the same length")
        return [default_collate(list(position)) for position in zip(*batch)]
    raise TypeError(
        f"default_collate: a batch must hold tensors, NumPy arrays, numbers, strings, dicts or sequences; "
        f"found {type(elem).__name__}"
    )


@contextlib.contextmanager
def _random_state(seed: list):
    """Let the code inside draw from minigrad's generator, NumPy's global one and Python's
    ``random``, all seeded from ``seed``, then put their old states back. (Worker processes
    forked from one parent would otherwise repeat NumPy's global draws in every worker and epoch.)"""
    saved = backend.generators.state(), np.random.get_state(), random.getstate()
    backend.generators.reseed(seed)
    words = np.random.SeedSequence(seed).generate_state(4)
    np.random.seed(words)
    random.seed(int.from_bytes(words.tobytes(), "little"))
    try:
        yield
    finally:
        backend.generators.set_state(saved[0])
        np.random.set_state(saved[1])
        random.setstate(saved[2])


def _make_batch(dataset, collate_fn, indices, seed: list):
    with _random_state(seed):
        if collate_fn is None and getattr(dataset, "batchable", False):
            return dataset.get_batch(indices)
        return (collate_fn or default_collate)([dataset[int(i)] for i in indices])


def _worker_loop(dataset, collate_fn, tasks, results) -> None:
    """Make batches for ``(k, indices, seed)`` tasks until the ``None`` that says stop.

    Each result is pickled here rather than by the queue's background thread, so that a batch
    that cannot be pickled becomes an error the loader raises instead of a batch that never comes.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the loader's to handle: it stops the workers
    results.cancel_join_thread()  # at shutdown the loader no longer wants what is still queued
    while (task := tasks.get()) is not None:
        k, indices, seed = task
        try:
            message = pickle.dumps((k, _make_batch(dataset, collate_fn, indices, seed), None), pickle.HIGHEST_PROTOCOL)
        except Exception as error:
            failure = (type(error), str(error), traceback.format_exc())
            try:
                message = pickle.dumps((k, None, failure))
            except Exception:  # an exception class defined where it cannot be pickled
                message = pickle.dumps((k, None, (RuntimeError, *failure[1:])))
        results.put(message)


class _AsIs(str):
    """A message a KeyError shows as it is, line breaks included (KeyError shows its argument's repr)."""

    def __repr__(self) -> str:
        return str(self)


def _reraise(worker: int, failure) -> None:
    kind, message, trace = failure
    text = f"{message}\n\nCaught {kind.__name__} in DataLoader worker process {worker}. Original {trace}"
    try:
        error = kind(_AsIs(text) if issubclass(kind, KeyError) else text)
    except Exception:  # an exception type that cannot be rebuilt from a message
        error = RuntimeError(text)
    raise error


class DataLoader:
    """Iterate over ``dataset`` in batches of ``batch_size`` samples.

    ``shuffle`` draws a new order every epoch (see the module docstring for the seeding);
    ``sampler`` (an iterable of indices with a length, such as ``DistributedSampler``) gives the
    order instead, so it cannot be combined with ``shuffle``; ``batch_sampler`` (an iterable of
    lists of indices with a length, such as ``BucketBatchSampler``) gives the batches themselves,
    so it excludes ``batch_size``, ``shuffle``, ``sampler`` and ``drop_last``;
    ``drop_last`` drops a last incomplete batch; ``collate_fn`` merges a list of samples into a
    batch (``default_collate`` when None). ``num_workers > 0`` makes batches in that many worker
    processes, keeping up to ``prefetch_factor`` batches per worker in flight; they yield the
    same batches, in the same order, as ``num_workers=0``, and stop when the iteration ends
    or is abandoned. Datasets that are ``batchable`` (``TensorDataset``, the image datasets)
    are indexed once per batch instead of once per sample when ``collate_fn`` is None.
    """

    def __init__(
        self,
        dataset,
        batch_size: int = 1,
        shuffle: bool = False,
        drop_last: bool = False,
        num_workers: int = 0,
        collate_fn=None,
        seed: int | None = None,
        prefetch_factor: int = 2,
        multiprocessing_context: str | None = None,
        sampler=None,
        batch_sampler=None,
    ):
        if not isinstance(batch_size, numbers.Integral) or batch_size <= 0:
            raise ValueError(f"DataLoader: batch_size must be a positive integer, got {batch_size!r}")
        if not isinstance(num_workers, numbers.Integral) or num_workers < 0:
            raise ValueError(f"DataLoader: num_workers must be a non-negative integer, got {num_workers!r}")
        if not isinstance(prefetch_factor, numbers.Integral) or prefetch_factor <= 0:
            raise ValueError(f"DataLoader: prefetch_factor must be a positive integer, got {prefetch_factor!r}")
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler is mutually exclusive with shuffle=True")
        if batch_sampler is not None and (batch_size != 1 or shuffle or sampler is not None or drop_last):
            raise ValueError(
                "DataLoader: batch_sampler is mutually exclusive with batch_size, shuffle, sampler and drop_last"
            )
        self.dataset = dataset
        self.sampler, self.batch_sampler = sampler, batch_sampler
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.num_workers = int(num_workers)
        self.collate_fn = collate_fn
        self.prefetch_factor = int(prefetch_factor)
        self.multiprocessing_context = multiprocessing_context
        self._generator = np.random.default_rng(seed) if seed is not None else None

    def __len__(self) -> int:
        if self.batch_sampler is not None:
            return len(self.batch_sampler)
        n = len(self.dataset) if self.sampler is None else len(self.sampler)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self):
        generator = self._generator if self._generator is not None else backend.generator("cpu")
        epoch_seed = int(generator.integers(2**63))
        batches = self._batches(epoch_seed)
        seeds = [[epoch_seed, 1, k] for k in range(len(batches))]
        if self.num_workers == 0:
            return (_make_batch(self.dataset, self.collate_fn, b, s) for b, s in zip(batches, seeds))
        return self._from_workers(batches, seeds)

    def _batches(self, epoch_seed: int) -> list:
        """This epoch's batches, each an int64 array of dataset indices."""
        if self.batch_sampler is not None:
            return [np.asarray(list(batch), dtype=backend.int64) for batch in self.batch_sampler]
        if self.sampler is not None:
            order = np.fromiter(self.sampler, dtype=backend.int64)
        elif self.shuffle:
            order = np.random.default_rng([epoch_seed, 0]).permutation(len(self.dataset))
        else:
            order = np.arange(len(self.dataset))
        return [order[k * self.batch_size : (k + 1) * self.batch_size] for k in range(len(self))]

    def _from_workers(self, batches: list, seeds: list):
        context = multiprocessing.get_context(self.multiprocessing_context)
        results = context.Queue()
        tasks = [context.Queue() for _ in range(self.num_workers)]
        workers = [
            context.Process(target=_worker_loop, args=(self.dataset, self.collate_fn, q, results), daemon=True)
            for q in tasks
        ]
        for worker in workers:
            worker.start()
        try:
            for k in range(min(len(batches), self.prefetch_factor * self.num_workers)):
                tasks[k % self.num_workers].put((k, batches[k], seeds[k]))
            done = {}  # batch number -> (batch, failure), for batches that came back early
            for k in range(len(batches)):
                while k not in done:
                    j, batch, failure = pickle.loads(self._receive(results, workers))
                    done[j] = batch, failure
                ahead = k + self.prefetch_factor * self.num_workers
                if ahead < len(batches):
                    tasks[ahead % self.num_workers].put((ahead, batches[ahead], seeds[ahead]))
                batch, failure = done.pop(k)
                if failure is not None:  # raised in its turn, after every earlier batch
                    _reraise(k % self.num_workers, failure)
                yield batch
        finally:
            for q in tasks:
                q.put(None)
            for worker in workers:
                worker.join(timeout=5)
                if worker.is_alive():
                    worker.terminate()
                    worker.join()
            for q in (*tasks, results):
                q.cancel_join_thread()
                q.close()

    @staticmethod
    def _receive(results, workers):
        while True:
            try:
                return results.get(timeout=_WORKER_POLL_S)
            except queue.Empty:
                for i, worker in enumerate(workers):
                    if not worker.is_alive():
                        raise RuntimeError(
                            f"DataLoader worker {i} (pid {worker.pid}) exited unexpectedly "
                            f"with exit code {worker.exitcode}"
                        ) from None
