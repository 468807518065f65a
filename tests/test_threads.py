"""The CPU kernels that split their work: over threads and cache-sized blocks
(``backend.parallel``) or into cache-sized chunks (``backend.in_chunks``).

The op database's samples are small, so the registry tests run these kernels whole, on one
thread. Here every split is forced (no minimum size, three threads: uneven parts, some empty;
blocks of one item; chunks of 3 elements), and the same properties are checked again: forward
against the NumPy reference, and gradcheck.
"""

from __future__ import annotations

import contextlib
import multiprocessing

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
from minigrad import backend
from tests import test_ops
from tests.op_db import OPS

# every op whose kernel calls backend.parallel (directly or through col2im, contiguous_copy,
# elementwise or softmax_rows) or backend.in_chunks
SPLIT = {
    "conv1d",
    "conv2d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv2d_weight_grad",
    "fold",
    "unfold",
    "max_pool1d",
    "max_pool2d",
    "avg_pool1d",
    "avg_pool2d",
    "batch_norm",
    "gelu",
    "gelu_backward",
    "erf",
    "erfc",
    "relu",
    "softmax",
    "cross_entropy",
    "scaled_dot_product_attention",
}
_SPLIT_OPS = [pytest.param(info, id=info.name) for info in OPS if info.name in SPLIT]


@contextlib.contextmanager
def every_kernel_split(threads: int = 3):
    saved = backend._PARALLEL_MIN, backend._BLOCK_BYTES, backend._CHUNK, backend.get_num_threads()
    backend._PARALLEL_MIN, backend._BLOCK_BYTES, backend._CHUNK = 1, 1, 3  # cache blocks of one item
    backend.set_num_threads(threads)
    try:
        yield
    finally:
        backend._PARALLEL_MIN, backend._BLOCK_BYTES, backend._CHUNK = saved[:3]
        backend.set_num_threads(saved[3])


def test_every_threaded_op_is_in_the_database():
    assert SPLIT <= {info.name for info in OPS}


@pytest.mark.parametrize("info", _SPLIT_OPS)
@given(data=st.data())
def test_split_forward_matches_numpy(info, data):
    with every_kernel_split():
        test_ops.test_forward_matches_numpy.hypothesis.inner_test(info, data)


@pytest.mark.parametrize("info", _SPLIT_OPS)
@given(data=st.data())
def test_split_gradcheck(info, data):
    sample = data.draw(info.samples, label="sample")
    tensors, call = test_ops.differentiable_call(info, sample)
    with every_kernel_split():
        assert mg.gradcheck(call, tensors, eps=info.eps, atol=info.atol, rtol=info.rtol, fast_mode=info.fast)


def test_parallel_covers_the_range_once_in_parts():
    seen = []
    with every_kernel_split(threads=3):
        backend.parallel(lambda start, stop: seen.append((start, stop)), 10, np.empty(10))
    assert sorted(seen) == [(0, 3), (3, 6), (6, 10)]


def test_parallel_runs_small_work_on_the_calling_thread():
    seen = []
    backend.parallel(lambda start, stop: seen.append((start, stop)), 10, np.empty(10))
    assert seen == [(0, 10)]


def test_parallel_raises_what_a_part_raised():
    def fail_last(start, stop):
        if stop == 10:
            raise ValueError("part failed")

    with every_kernel_split(threads=2), pytest.raises(ValueError, match="part failed"):
        backend.parallel(fail_last, 10, np.empty(10))


def test_set_num_threads_checks_its_argument():
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="set_num_threads"):
            mg.set_num_threads(bad)
    assert mg.get_num_threads() >= 1


def _split_batch_norm_in_child(queue):
    x = mg.randn(4, 6, 5, dtype=mg.float64)
    with every_kernel_split(threads=2):
        queue.put(mg.functional.batch_norm(x, None, None, training=True).cpu().numpy())


def test_a_forked_child_gets_threads_of_its_own():
    """The pool's threads do not survive a fork (a DataLoader worker): the child makes its own."""
    with every_kernel_split(threads=2):  # the parent's pool exists before the fork
        backend.parallel(lambda start, stop: None, 2, np.empty(2))
        context = multiprocessing.get_context("fork")
        queue = context.Queue()
        child = context.Process(target=_split_batch_norm_in_child, args=(queue,))
        child.start()
        out = queue.get(timeout=60)
        child.join(timeout=60)
    assert child.exitcode == 0
    np.testing.assert_allclose(out.mean(axis=(0, 2)), 0, atol=1e-12)


def test_glibc_keeps_freed_memory():
    """On glibc the import tuned malloc to keep freed arrays (mallopt accepted both settings)."""
    import platform

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("malloc tuning applies to glibc only")
    assert backend.keep_freed_memory()


def test_cache_blocks_cover_each_part_in_order():
    seen = []
    with every_kernel_split(threads=2):
        backend._BLOCK_BYTES = 16  # two float64 items of a (10, 1) array per block
        backend.parallel(lambda start, stop: seen.append((start, stop)), 10, np.empty((10, 1)), cache_blocks=True)
    assert sorted(seen) == [(0, 2), (2, 4), (4, 5), (5, 7), (7, 9), (9, 10)]


def test_a_parallel_call_inside_a_part_runs_on_that_thread():
    """A kernel that splits its work from inside another split must not wait on the pool it is
    running on (with two threads, that would wait forever)."""
    seen = []

    def outer(start, stop):
        backend.parallel(lambda a, b: seen.append((start, a, b)), 4, np.empty(4))

    with every_kernel_split(threads=2):
        backend.parallel(outer, 2, np.empty(2))
    assert sorted(seen) == [(0, 0, 4), (1, 0, 4)]
