"""Data-parallel ResNet on Fashion-MNIST: DDP over 2 MPI processes against 1 process, same global batch and seed.

Each of the ``--processes`` ranks runs the resnet example's network (its BatchNorms made
SyncBatchNorm) on its share of every global batch; DistributedDataParallel averages the
gradients, so every rank takes the step one process takes on the whole batch. After each DDP
run, rank 0 trains the plain network alone on the same batches (the other ranks wait asleep)
and compares the weights. It does so in float64, where they agree to about 1e-15, and in
float32, where they agree as far as float32 rounding lets two runs agree: the yardstick printed
beside it is the distance between the one-process runs in float32 and in float64 (this early
phase of training with BatchNorm takes a 1e-7 rounding difference to 1e-3 within three steps). The
float32 runs are timed: time per step of both and the scaling efficiency, 2-process throughput
/ (2 x 1-process throughput). ``--float64`` skips the float32 runs.

Run as ``python -m examples ddp``: it launches ``mpiexec -n 2 python -m mpi4py -m examples ddp``
itself; or launch that command directly. Each process uses one thread (MINIGRAD_NUM_THREADS=1),
so with 2 processes on a 2-core machine the efficiency measures how well 2 cores are used by
2 single-threaded replicas plus their communication, against one core.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import minigrad as mg
import minigrad.distributed as dist
import minigrad.functional as F
import nn
from examples._common import Result, arguments, finish, load_fashion, nesterov_sgd, progress, setup
from nn.models import resnet_small

LAUNCHER_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE")  # set by MPICH's and Open MPI's mpiexec


def train(model: nn.Module, images: mg.Tensor, labels: mg.Tensor, batches: list, lr: float, shard, desc: str,
          show: bool = True):  # fmt: skip
    """SGD steps, one per global batch (rows ``shard`` of it on this process); returns
    (the global batch's loss per step, seconds per step after the first); ``show``: a progress bar."""
    optimizer = nesterov_sgd(model.parameters(), lr, weight_decay=5e-4)
    distributed = isinstance(model, nn.parallel.DistributedDataParallel)
    losses = []
    for step, index in enumerate(progress(batches, desc, disable=not show)):
        if step == 1:  # the first step allocates everything: time the others
            start = time.perf_counter()
        index = index[shard]
        loss = F.cross_entropy(model(images[index]), labels[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if distributed:  # the global batch's loss: the mean of the shards' (equal sizes)
            loss = loss.detach()
            dist.all_reduce(loss, dist.ReduceOp.AVG)
        losses.append(loss.item())
    return losses, (time.perf_counter() - start) / (len(batches) - 1)


def max_difference(a: nn.Module, b: nn.Module) -> float:
    """The largest |a - b| over the parameters and running statistics (in float64)."""
    pairs = zip(a.state_dict().values(), b.state_dict().values())
    return max((p.detach().double() - q.detach().double()).abs().max().item() for p, q in pairs)


def run_ranks(args) -> Result | None:
    """One process of the MPI job; rank 0 returns the Result."""
    dist.init_process_group("nccl" if args.device == "cuda" else "mpi")
    rank, world = dist.get_rank(), dist.get_world_size()
    quick = args.quick
    steps, batch_size, width = (8, 32, 8) if quick else (args.steps, args.batch_size, args.width)
    if batch_size % world:
        raise ValueError(f"ddp: the global batch ({batch_size}) must split evenly over {world} processes")
    x_train, y_train, _, _ = load_fashion(quick, quick_sizes=(256, 1))
    images = (x_train - x_train.mean()) / x_train.std()
    order = mg.randperm(len(y_train))
    epoch = [order[i : i + batch_size] for i in range(0, len(order) - batch_size + 1, batch_size)]
    batches = [epoch[s % len(epoch)] for s in range(steps)]
    shard = slice(rank * batch_size // world, (rank + 1) * batch_size // world)

    # float32 (timed), then float64; each: DDP on every rank, then one process (rank 0; the others wait asleep)
    runs = {}
    for dtype in (mg.float64,) if args.float64 else (mg.float32, mg.float64):
        mg.manual_seed(args.seed)
        replica = nn.SyncBatchNorm.convert_sync_batchnorm(resnet_small(10, width=width, blocks=args.blocks).to(dtype))
        ddp = nn.parallel.DistributedDataParallel(replica, bucket_cap_mb=args.bucket_cap_mb)
        dist.barrier()
        desc = f"DDP, {world} processes, {dtype.name}"
        runs[dtype] = [(replica, *train(ddp, images.to(dtype), y_train, batches, args.lr, shard, desc, rank == 0))]
        if rank == 0:
            mg.manual_seed(args.seed)
            single = resnet_small(10, width=width, blocks=args.blocks).to(dtype)
            desc = f"1 process, {dtype.name}"
            runs[dtype].append((single, *train(single, images.to(dtype), y_train, batches, args.lr, slice(None), desc)))
        dist.barrier()
    if rank != 0:
        return None

    (_, ddp_losses, ddp_step), (_, losses, single_step) = next(iter(runs.values()))
    extra = {f"max |w_DDP - w_1 process| ({dtype.name})": max_difference(ddp[0], one[0])
             for dtype, (ddp, one) in runs.items()}  # fmt: skip
    if len(runs) == 2:  # how far float32 rounding alone takes the 1-process run
        extra["max |w_1 process, float32 - w_1 process, float64|"] = max_difference(*(r[1][0] for r in runs.values()))
    timed = next(iter(runs)).name
    extra |= {
        f"max |loss_DDP - loss_1 process| ({timed})": max(abs(a - b) for a, b in zip(ddp_losses, losses)),
        f"time per step, 1 process, {timed} (ms)": 1000 * single_step,
        f"time per step, {world} processes, {timed} (ms)": 1000 * ddp_step,
        "scaling efficiency": single_step / (world * ddp_step),
        "steps": steps,
        "global batch": batch_size,
    }
    curves = {f"train loss: DDP, {world} processes": ddp_losses, "train loss: 1 process": losses}
    exact = extra.pop("max |w_DDP - w_1 process| (float64)")
    return Result("max |w_DDP - w_1 process| (float64)", exact, curves, extra, (ddp_step + single_step) * (steps - 1))


def launch(argv: list, args) -> Result:
    """Run this example under ``mpiexec -n processes`` and read rank 0's Result back."""
    mpiexec = dist.find_mpiexec()
    if not (dist.is_available() and mpiexec):
        raise SystemExit("ddp: needs mpi4py and an MPI launcher: pip install 'minigrad[distributed]'")
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, MINIGRAD_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "result.json"
        argv = [a for a in argv if a != "--plot" and a != args.plot] + ["--result", str(path)]
        command = [mpiexec, "-n", str(args.processes), sys.executable, "-m", "mpi4py", "-m", "examples", "ddp", *argv]
        print(" ".join(command[:6] + ["-m", "examples", "ddp"]), flush=True)
        done = subprocess.run(command, env=env, cwd=root, stdout=subprocess.PIPE, text=True)
        if done.returncode != 0:
            print(done.stdout)
            raise SystemExit(f"ddp: mpiexec exited with status {done.returncode}")
        fields = json.loads(path.read_text())
    return Result(**fields)


def main(argv=None) -> Result:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = arguments(argv, steps=50, batch_size=64, lr=0.05, width=16, blocks=1, processes=2, bucket_cap_mb=25.0,
                     float64=False, result=None)  # fmt: skip
    setup(args)
    if args.result is None and not any(v in os.environ for v in LAUNCHER_VARIABLES):
        return finish(launch(argv, args), args, "DDP against one process: ResNet on Fashion-MNIST")
    result = run_ranks(args)
    if result is None:  # the ranks other than 0
        return Result("", float("nan"))
    if args.result:
        Path(args.result).write_text(json.dumps(result.__dict__))
        return result
    return finish(result, args, "DDP against one process: ResNet on Fashion-MNIST")


if __name__ == "__main__":
    main()
