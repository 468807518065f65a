"""minigrad.distributed, DistributedDataParallel and SyncBatchNorm.

The multi-process tests launch ``mpiexec -n 2`` on small scripts (each checks its results and
exits non-zero when a check fails: ``python -m mpi4py`` aborts every rank on an uncaught
exception); they are skipped when mpi4py or an MPI launcher is missing."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import minigrad as mg
import minigrad.distributed as dist
import nn

ROOT = Path(__file__).resolve().parents[1]
MPIEXEC = dist.find_mpiexec()
needs_mpi = pytest.mark.skipif(
    not (dist.is_available() and MPIEXEC),
    reason="needs mpi4py and an MPI launcher (pip install 'minigrad[distributed]')",
)

PRELUDE = """
import numpy as np
import minigrad as mg
import minigrad.distributed as dist
import minigrad.functional as F
import nn

dist.init_process_group("{backend}")
rank, world = dist.get_rank(), dist.get_world_size()
assert world == {n}, world
"""


def launch(tmp_path, body: str, n: int = 2, backend: str = "mpi", timeout: float = 60) -> subprocess.CompletedProcess:
    script = tmp_path / "script.py"
    script.write_text(PRELUDE.format(backend=backend, n=n) + textwrap.dedent(body))
    env = dict(os.environ, MINIGRAD_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    if backend == "mpi":  # host tensors: the ranks' default device is the CPU whatever the suite's is
        env["MINIGRAD_DEVICE"] = "cpu"
    command = [MPIEXEC, "-n", str(n), sys.executable, "-m", "mpi4py", str(script)]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)


def run_ok(tmp_path, body: str, **options) -> str:
    done = launch(tmp_path, body, **options)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


# ------------------------------------------------------------------- one process, no MPI
def test_collectives_before_init_raise():
    assert not dist.is_initialized()
    for call in (
        lambda: dist.all_reduce(mg.ones(2)),
        lambda: dist.broadcast(mg.ones(2), 0),
        dist.get_rank,
        dist.barrier,
    ):
        with pytest.raises(RuntimeError, match="not initialised; call init_process_group"):
            call()
    with pytest.raises(RuntimeError, match="DistributedDataParallel: the default process group is not initialised"):
        nn.parallel.DistributedDataParallel(nn.Linear(2, 2))


def test_unknown_backend_raises():
    with pytest.raises(ValueError, match="unknown backend 'gloo'"):
        dist.init_process_group("gloo")


def test_post_accumulate_grad_hook_fires_once_with_the_whole_gradient():
    w = mg.randn(3, requires_grad=True, dtype=mg.float64)
    seen = []
    handle = w.register_post_accumulate_grad_hook(lambda p: seen.append(p.grad.cpu().numpy().copy()))
    ((w * 2).sum() + (w * w).sum()).backward()
    assert len(seen) == 1
    np.testing.assert_allclose(seen[0], 2 + 2 * w.detach().cpu().numpy())
    handle.remove()
    (w * 3).sum().backward()
    assert len(seen) == 1
    with pytest.raises(RuntimeError, match="only leaf tensors"):
        (w * 2).register_post_accumulate_grad_hook(lambda p: None)


def test_sync_batchnorm_alone_is_batchnorm():
    mg.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(), nn.Linear(12, 2)).double()
    reference = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(), nn.Linear(12, 2)).double()
    reference.load_state_dict(model.state_dict())
    model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    assert isinstance(model[1], nn.SyncBatchNorm) and model[1].weight is not reference[1].weight
    x = mg.randn(4, 2, 4, 4, dtype=mg.float64)
    for m in (model, reference):
        m(x).pow(2).sum().backward()
    np.testing.assert_allclose(model[0].weight.grad.cpu().numpy(), reference[0].weight.grad.cpu().numpy(), rtol=1e-12)
    np.testing.assert_allclose(model[1].running_var.cpu().numpy(), reference[1].running_var.cpu().numpy(), rtol=1e-12)


def test_sync_batchnorm_gradcheck_in_float64():
    mg.manual_seed(0)
    norm = nn.SyncBatchNorm(3).double()
    x = mg.randn(4, 3, 2, dtype=mg.float64, requires_grad=True)
    assert mg.gradcheck(lambda x, w, b: norm(x).pow(2).sum() + (norm(x) * w.reshape(1, 3, 1)).sum() + b.sum(),
                        (x, norm.weight, norm.bias))  # fmt: skip


# ------------------------------------------------------------------- two processes
@needs_mpi
def test_collectives(tmp_path):
    run_ok(
        tmp_path,
        """
        for dtype in (mg.float16, mg.float32, mg.float64):
            t = mg.tensor([1.0 + rank, -2.0 * rank, 3.0], dtype=dtype)
            dist.all_reduce(t)
            assert t.dtype == dtype and t.tolist() == [3.0, -2.0, 6.0], t
            t = mg.tensor([1.0 + rank, -2.0 * rank, 3.0], dtype=dtype)
            dist.all_reduce(t, dist.ReduceOp.AVG)
            assert t.tolist() == [1.5, -1.0, 3.0], t
            t = mg.tensor([1.0 + rank, -2.0 * rank, 3.0], dtype=dtype)
            dist.all_reduce(t, op=dist.ReduceOp.MAX)
            assert t.tolist() == [2.0, 0.0, 3.0], t
        for op, expected in ((dist.ReduceOp.SUM, [True, True, False]), (dist.ReduceOp.MIN, [True, False, False])):
            t = mg.tensor([True, rank == 0, False])
            dist.all_reduce(t, op)
            assert t.dtype == mg.bool and t.tolist() == expected, (op, t)
        t = mg.arange(6, dtype=mg.float64).reshape(2, 3) * (rank + 1)
        dist.broadcast(t, src=1)
        assert t.tolist() == [[0, 2, 4], [6, 8, 10]], t
        view = mg.zeros(4)[::2]  # not contiguous: reduced through a copy, written back
        view.data[...] = rank + 1
        dist.all_reduce(view)
        assert view.tolist() == [3.0, 3.0]
        gathered = [mg.zeros(2, dtype=mg.float64) for _ in range(world)]
        dist.all_gather(gathered, mg.tensor([rank, rank + 0.5], dtype=mg.float64))
        assert [g.tolist() for g in gathered] == [[0, 0.5], [1, 1.5]]
        out = mg.zeros(2)
        dist.reduce_scatter(out, [mg.tensor([10.0 * r + rank, 1.0]) for r in range(world)])
        assert out.tolist() == [20.0 * rank + 1, 2.0], out
        dist.reduce_scatter(out, [mg.tensor([10.0 * r + rank, 1.0]) for r in range(world)], op=dist.ReduceOp.MAX)
        assert out.tolist() == [10.0 * rank + 1, 1.0], out
        dist.barrier()
        for call, message in (
            (lambda: dist.all_gather([mg.zeros(2)], mg.zeros(2)), "must hold 2 tensors"),
            (lambda: dist.all_gather([mg.zeros(2), mg.zeros(3)], mg.zeros(2)), "shape and dtype of the first"),
            (lambda: dist.broadcast(mg.zeros(2), src=2), "src must be a rank"),
            (lambda: dist.all_reduce(mg.zeros(2, dtype=mg.int64), dist.ReduceOp.AVG), "AVG needs a floating"),
        ):
            try:
                call()
            except (ValueError, RuntimeError, TypeError) as error:
                assert message in str(error), error
            else:
                raise AssertionError(f"no error: {message}")
        if mg.cuda.is_available():
            try:
                dist.all_reduce(mg.zeros(2, device="cuda"))
            except RuntimeError as error:
                assert "backend 'mpi' moves cpu tensors, got a tensor on cuda" in str(error), error
            else:
                raise AssertionError("no device error")
        dist.destroy_process_group()
        assert not dist.is_initialized()
        print("ok", rank)
        """,
    )


# A small CNN with BatchNorm: DDP (with SyncBatchNorm) on 2 x 4 images against one process on the 8.
DDP_SETUP = """
import contextlib

def build():
    mg.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 3 * 3, 3),
    ).double()

def batch(step):
    generator = np.random.default_rng(step)
    return mg.tensor(generator.normal(size=(8, 1, 6, 6))), mg.tensor(generator.integers(0, 3, 8))

def train(model, steps, shard, micro_batches=1):
    optimizer = nn.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    for step in range(steps):
        x, y = batch(step)
        x, y = x[shard], y[shard]
        optimizer.zero_grad()
        parts = np.array_split(np.arange(len(y)), micro_batches)
        for i, part in enumerate(parts):
            sync = model.no_sync() if hasattr(model, "no_sync") and i < len(parts) - 1 else contextlib.nullcontext()
            with sync:
                (F.cross_entropy(model(x[part]), y[part]) / micro_batches).backward()
        optimizer.step()

def max_difference(a, b):
    pairs = zip(a.state_dict().values(), b.state_dict().values())
    return max(float(np.abs(p.detach().numpy() - q.detach().numpy()).max()) for p, q in pairs)
"""


@needs_mpi
def test_ddp_matches_one_process_on_the_global_batch(tmp_path):
    out = run_ok(
        tmp_path,
        DDP_SETUP
        + textwrap.dedent(
            """
        reference = build()
        train(reference, 4, slice(None))
        replica = nn.SyncBatchNorm.convert_sync_batchnorm(build())
        if rank == 1:  # other weights and statistics: DDP must broadcast rank 0's
            for t in list(replica.parameters()) + list(replica.buffers()):
                t.data[...] = 7
        ddp = nn.parallel.DistributedDataParallel(replica, bucket_cap_mb=0.0005)
        assert len(ddp.buckets) > 1, len(ddp.buckets)
        train(ddp, 4, slice(4 * rank, 4 * rank + 4))
        difference = max_difference(reference, replica)
        assert difference < 1e-10, difference

        # gradient accumulation: two micro-batches per step, the first under no_sync
        replica = nn.SyncBatchNorm.convert_sync_batchnorm(build())
        ddp = nn.parallel.DistributedDataParallel(replica)
        train(ddp, 3, slice(4 * rank, 4 * rank + 4), micro_batches=2)
        reference = build()
        optimizer = nn.optim.SGD(reference.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
        for step in range(3):  # the same micro-batches: each rank's first two, then its last two
            x, y = batch(step)
            optimizer.zero_grad()
            for part in ([0, 1, 4, 5], [2, 3, 6, 7]):
                (F.cross_entropy(reference(x[part]), y[part]) / 2).backward()
            optimizer.step()
        difference = max_difference(reference, replica)
        assert difference < 1e-10, difference
        print("max difference", difference)
        """
        ),
    )
    assert out.count("max difference") == 2


@needs_mpi
def test_ddp_unused_parameters(tmp_path):
    run_ok(
        tmp_path,
        """
        class TwoHeads(nn.Module):
            def __init__(self):
                super().__init__()
                self.body, self.used, self.unused = nn.Linear(3, 3), nn.Linear(3, 1), nn.Linear(3, 1)

            def forward(self, x):
                return self.used(self.body(x))

        mg.manual_seed(0)
        x = mg.randn(4, 3)
        ddp = nn.parallel.DistributedDataParallel(TwoHeads())
        try:
            ddp(x).sum().backward()
        except RuntimeError as error:
            assert "['unused.weight', 'unused.bias']" in str(error) and "find_unused_parameters=True" in str(error)
        else:
            raise AssertionError("no error for the unused parameters")
        model = TwoHeads()
        ddp = nn.parallel.DistributedDataParallel(model, find_unused_parameters=True, bucket_cap_mb=1e-5)
        ddp(x * (rank + 1)).sum().backward()
        assert model.unused.weight.grad is None and model.unused.bias.grad is None  # no rank used them
        np.testing.assert_allclose(model.used.bias.grad.numpy(), [4.0])  # the mean of 4 and 4
        with mg.no_grad():
            expected = (model.body(x).sum(0) + model.body(2 * x).sum(0)) / 2
        np.testing.assert_allclose(model.used.weight.grad.numpy()[0], expected.numpy(), rtol=1e-5)
        print("ok")
        """,
    )


@needs_mpi
def test_ddp_parameter_used_on_one_rank_only_gets_the_average(tmp_path):
    run_ok(
        tmp_path,
        """
        class Branches(nn.Module):
            def __init__(self):
                super().__init__()
                self.left, self.right = nn.Linear(2, 1), nn.Linear(2, 1)

            def forward(self, x, use_right):
                return self.left(x) + (self.right(x) if use_right else 0)

        model = Branches()
        ddp = nn.parallel.DistributedDataParallel(model, find_unused_parameters=True)
        ddp(mg.ones(3, 2), use_right=rank == 0).sum().backward()
        np.testing.assert_allclose(model.right.bias.grad.numpy(), [1.5])  # (3 + 0) / 2: rank 1 counts as zero
        np.testing.assert_allclose(model.left.bias.grad.numpy(), [3.0])
        print("ok")
        """,
    )


@needs_mpi
def test_sync_batchnorm_matches_batchnorm_on_the_concatenated_batch(tmp_path):
    run_ok(
        tmp_path,
        """
        mg.manual_seed(0)
        x = mg.randn(6, 3, 2, 2, dtype=mg.float64) * 3 + 1
        g = mg.randn(6, 3, 2, 2, dtype=mg.float64)
        shard = slice(3 * rank, 3 * rank + 3)
        reference = nn.BatchNorm2d(3).double()
        reference.weight.data[...] = [1.0, -2.0, 0.5]
        sync = nn.SyncBatchNorm(3).double()
        sync.load_state_dict(reference.state_dict())
        whole, part = x.clone().requires_grad_(), x[shard].clone().requires_grad_()
        out, out_part = reference(whole), sync(part)
        (out * g).sum().backward()
        (out_part * g[shard]).sum().backward()
        np.testing.assert_allclose(out_part.detach().numpy(), out.detach().numpy()[shard], rtol=0, atol=1e-12)
        np.testing.assert_allclose(part.grad.numpy(), whole.grad.numpy()[shard], rtol=0, atol=1e-12)
        for name in ("weight", "bias"):  # local gradients: their sum over ranks is BatchNorm's
            total = getattr(sync, name).grad.clone()
            dist.all_reduce(total)
            np.testing.assert_allclose(total.numpy(), getattr(reference, name).grad.numpy(), rtol=1e-12)
        for name in ("running_mean", "running_var"):
            np.testing.assert_allclose(getattr(sync, name).numpy(), getattr(reference, name).numpy(), rtol=1e-12)
        print("ok")
        """,
    )


@needs_mpi
def test_distributed_sampler_covers_every_index_once(tmp_path):
    run_ok(
        tmp_path,
        """
        from minigrad.data import DataLoader, DistributedSampler, TensorDataset

        for n, drop_last in ((10, False), (11, False), (11, True)):
            dataset = TensorDataset(mg.arange(n))
            sampler = DistributedSampler(dataset, shuffle=True, seed=3, drop_last=drop_last)
            for epoch in range(2):
                sampler.set_epoch(epoch)
                mine = mg.cat([b for (b,) in DataLoader(dataset, batch_size=2, sampler=sampler)]).to(mg.float64)
                gathered = [mg.zeros(len(sampler), dtype=mg.float64) for _ in range(world)]
                dist.all_gather(gathered, mine)
                counts = np.bincount(np.concatenate([t.numpy() for t in gathered]).astype(int), minlength=n)
                if n % world == 0:
                    assert np.all(counts == 1), counts
                elif drop_last:
                    assert counts.sum() == n - 1 and counts.max() == 1, counts
                else:
                    assert counts.min() == 1 and counts.sum() == n + 1, counts
        print("ok")
        """,
    )


@needs_mpi
def test_an_exception_on_one_rank_aborts_every_rank(tmp_path):
    start = time.perf_counter()
    done = launch(
        tmp_path,
        """
        if rank == 1:
            raise ValueError("rank 1 fails")
        dist.barrier()  # rank 0 would wait here forever without the abort
        """,
    )
    assert done.returncode != 0
    assert "rank 1 fails" in done.stderr
    assert time.perf_counter() - start < 60


@needs_mpi
@pytest.mark.cuda
@pytest.mark.skipif(not mg.cuda.is_available(), reason="needs CuPy and a GPU")
def test_nccl_collectives_on_the_gpu(tmp_path):
    """One process per GPU; with one GPU, a world of one still goes through NCCL."""
    import cupy

    n = cupy.cuda.runtime.getDeviceCount()
    if os.environ.get("MINIGRAD_TEST_FAKE_CUPY") == "1":
        n = 2  # the stand-in's NCCL lets two ranks share its one device (real NCCL does not)
    run_ok(
        tmp_path,
        """
        for dtype in (mg.float16, mg.float32, mg.float64):
            t = mg.tensor([1.0 + rank, 2.0], dtype=dtype, device="cuda")
            dist.all_reduce(t, dist.ReduceOp.AVG)
            assert t.device == "cuda" and t.tolist() == [1 + (world - 1) / 2, 2.0], t
        t = mg.tensor([True, rank == 0, False], device="cuda")
        dist.all_reduce(t, dist.ReduceOp.MAX)
        assert t.dtype == mg.bool and t.tolist() == [True, True, False], t
        t = mg.full((3,), float(rank), device="cuda")
        dist.broadcast(t, src=0)
        assert t.tolist() == [0.0] * 3
        gathered = [mg.zeros(2, device="cuda") for _ in range(world)]
        dist.all_gather(gathered, mg.full((2,), float(rank), device="cuda"))
        assert [g.tolist() for g in gathered] == [[float(r)] * 2 for r in range(world)]
        out = mg.zeros(2, device="cuda")
        dist.reduce_scatter(out, [mg.full((2,), float(r), device="cuda") for r in range(world)])
        assert out.tolist() == [float(rank * world)] * 2, out
        try:
            dist.all_reduce(mg.zeros(2, device="cpu"))
        except RuntimeError as error:
            assert "backend 'nccl' moves cuda tensors, got a tensor on cpu" in str(error), error
        else:
            raise AssertionError("no device error")
        model = nn.Linear(3, 2).to("cuda")
        ddp = nn.parallel.DistributedDataParallel(model)
        ddp(mg.randn(4, 3, device="cuda")).sum().backward()
        assert model.weight.grad.device == "cuda"
        print("ok")
        """,
        n=min(n, 2),
        backend="nccl",
    )
