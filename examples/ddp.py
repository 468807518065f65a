"""Data-parallel ResNet on Fashion-MNIST: DDP over 2 MPI processes against 1 process, same global batch and seed.

Each of the ``--processes`` ranks runs the resnet example's network (its BatchNorms made
SyncBatchNorm) on its share of every global batch; DistributedDataParallel averages the
gradients, so every rank takes the step one process takes on the whole batch. After the DDP
run, rank 0 trains the plain single-process network on the same batches (the other ranks wait
asleep), in float32 and in float64, and compares the weights: DDP is as far from the
single-process float32 weights as float32 rounding takes a run (the float32 run's distance to
the float64 one). It prints the time per step of both and the scaling efficiency, 2-process
throughput / (2 x 1-process throughput). With ``--float64`` every run is in float64 and the
weights agree to about 1e-15.

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
    dtype = mg.float64 if args.float64 else mg.float32
    images = ((x_train - x_train.mean()) / x_train.std()).to(dtype)
    order = mg.randperm(len(y_train))
    epoch = [order[i : i + batch_size] for i in range(0, len(order) - batch_size + 1, batch_size)]
    batches = [epoch[s % len(epoch)] for s in range(steps)]
    shard = slice(rank * batch_size // world, (rank + 1) * batch_size // world)

    mg.manual_seed(args.seed)
    replica = nn.SyncBatchNorm.convert_sync_batchnorm(resnet_small(10, width=width, blocks=args.blocks).to(dtype))
    ddp = nn.parallel.DistributedDataParallel(replica, bucket_cap_mb=args.bucket_cap_mb)
    dist.barrier()
    ddp_losses, ddp_step = train(ddp, images, y_train, batches, args.lr, shard, f"DDP, {world} processes", rank == 0)
    result = None
    if rank == 0:  # the same steps in one process, on the whole global batch; then (for float32) in
        # float64, whose distance to the float32 run is the yardstick of float32 rounding after these steps
        runs = {}
        dtypes = {"1 process": dtype} | ({"1 process, float64": mg.float64} if dtype != mg.float64 else {})
        for name, run_dtype in dtypes.items():
            mg.manual_seed(args.seed)
            model = resnet_small(10, width=width, blocks=args.blocks).to(run_dtype)
            runs[name] = (model, *train(model, images.to(run_dtype), y_train, batches, args.lr, slice(None), name))
        single, losses, single_step = runs["1 process"]
        curves = {f"train loss: DDP, {world} processes": ddp_losses, "train loss: 1 process": losses}
        extra = {}
        if "1 process, float64" in runs:
            exact = runs["1 process, float64"][0]
            extra["max |w_1 process - w_float64|"] = max_difference(single, exact)
            extra["max |w_DDP - w_float64|"] = max_difference(replica, exact)
        extra |= {
            "max |loss_DDP - loss_1 process|": max(abs(a - b) for a, b in zip(ddp_losses, losses)),
            "time per step, 1 process (ms)": 1000 * single_step,
            f"time per step, {world} processes (ms)": 1000 * ddp_step,
            "scaling efficiency": single_step / (world * ddp_step),
            "steps": steps,
            "global batch": batch_size,
        }
        seconds = (ddp_step + single_step) * (steps - 1)
        result = Result("max |w_DDP - w_1 process|", max_difference(replica, single), curves, extra, seconds)
    dist.barrier()  # the other ranks wait here asleep while rank 0 trains the reference
    return result


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
    if result is None:  # ranks other than 0
        return Result("", float("nan"))
    if args.result:
        Path(args.result).write_text(json.dumps(result.__dict__))
        return result
    return finish(result, args, "DDP against one process: ResNet on Fashion-MNIST")


if __name__ == "__main__":
    main()
