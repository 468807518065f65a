"""Collective communication between processes, with ``torch.distributed``'s names.

The processes are started by an MPI launcher (``mpiexec -n 2 python -m mpi4py script.py``); MPI
numbers them (rank) and counts them (world size). Two backends move the data:

- ``"mpi"``: host (cpu) tensors, handed to MPI through mpi4py's buffer interface (no pickling);
- ``"nccl"``: device (cuda) tensors, with ``cupy.cuda.nccl``; the NCCL unique id goes from rank 0
  to the others over MPI, and each process uses GPU ``local rank % device count``.

Every collective works in place on the tensors' arrays, as PyTorch's do. float16 is reduced
in float32 over MPI (MPI has no half type) and cast back.
"""

from __future__ import annotations

import enum
import importlib.util
import shutil
import sys
import time
from pathlib import Path

from minigrad import backend
from minigrad.tensor import Tensor

BACKENDS = ("mpi", "nccl")


class ReduceOp(enum.Enum):
    SUM = "sum"
    AVG = "avg"
    MAX = "max"
    MIN = "min"


class _ProcessGroup:
    """The world: MPI's COMM_WORLD, and for ``nccl`` a NCCL communicator over the same ranks."""

    def __init__(self, backend_name: str):
        try:
            from mpi4py import MPI
        except ImportError:
            raise ImportError(
                "init_process_group: mpi4py is not installed; pip install 'minigrad[distributed]' "
                "(mpi4py and MPICH) and launch with mpiexec -n N python -m mpi4py script.py"
            ) from None
        self.backend, self.mpi = backend_name, MPI
        self.comm = MPI.COMM_WORLD
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        # AVG is a SUM divided by the world size afterwards (MPI has no average)
        self.ops = {ReduceOp.SUM: MPI.SUM, ReduceOp.AVG: MPI.SUM, ReduceOp.MAX: MPI.MAX, ReduceOp.MIN: MPI.MIN}
        self.nccl = None
        if backend_name == "nccl":
            self._init_nccl()

    def _init_nccl(self) -> None:
        if not backend.cuda_is_available():
            raise RuntimeError("init_process_group: backend 'nccl' needs CuPy and a GPU; none is available here")
        import cupy  # the NCCL bindings are CuPy's; the array math still goes through backend.xp
        from cupy.cuda import nccl

        local_rank = self.comm.Split_type(self.mpi.COMM_TYPE_SHARED).Get_rank()
        cupy.cuda.Device(local_rank % cupy.cuda.runtime.getDeviceCount()).use()
        unique_id = self.comm.bcast(nccl.get_unique_id() if self.rank == 0 else None, root=0)
        self.nccl_module, self.cupy = nccl, cupy
        self.nccl = nccl.NcclCommunicator(self.size, unique_id, self.rank)
        self.ops = {ReduceOp.SUM: nccl.NCCL_SUM, ReduceOp.AVG: nccl.NCCL_SUM, ReduceOp.MAX: nccl.NCCL_MAX,
                    ReduceOp.MIN: nccl.NCCL_MIN}  # fmt: skip

    # ------------------------------------------------------------- arrays
    def all_reduce(self, array, op: ReduceOp) -> None:
        if self.nccl is not None:
            pointer = array.data.ptr
            self.nccl.allReduce(pointer, pointer, array.size, self._nccl_type(array), self.ops[op], self._stream())
        else:
            self.comm.Allreduce(self.mpi.IN_PLACE, array, op=self.ops[op])
        if op is ReduceOp.AVG:
            array /= self.size

    def broadcast(self, array, src: int) -> None:
        if self.nccl is not None:
            self.nccl.bcast(array.data.ptr, array.size, self._nccl_type(array), src, self._stream())
        else:
            self.comm.Bcast(array, root=src)

    def all_gather(self, out, array) -> None:
        """``out``: (world size, *array.shape), filled with every rank's ``array``."""
        if self.nccl is not None:
            self.nccl.allGather(array.data.ptr, out.data.ptr, array.size, self._nccl_type(array), self._stream())
        else:
            self.comm.Allgather(array, out)

    def reduce_scatter(self, out, stacked, op: ReduceOp) -> None:
        """``stacked``: (world size, *out.shape); ``out`` gets the reduction of this rank's row."""
        if op is ReduceOp.AVG:
            self.reduce_scatter(out, stacked, ReduceOp.SUM)
            out /= self.size
        elif self.nccl is not None:
            self.nccl.reduceScatter(stacked.data.ptr, out.data.ptr, out.size, self._nccl_type(out), self.ops[op],
                                    self._stream())  # fmt: skip
        else:
            self.comm.Reduce_scatter_block(stacked, out, op=self.ops[op])

    def _nccl_type(self, array):
        nccl = self.nccl_module
        types = {"float16": nccl.NCCL_FLOAT16, "float32": nccl.NCCL_FLOAT32, "float64": nccl.NCCL_FLOAT64,
                 "uint8": nccl.NCCL_UINT8, "int32": nccl.NCCL_INT32, "int64": nccl.NCCL_INT64}  # fmt: skip
        if array.dtype.name not in types:
            raise TypeError(f"distributed (nccl): unsupported dtype {array.dtype}; expected one of {sorted(types)}")
        return types[array.dtype.name]

    def _stream(self) -> int:
        return self.cupy.cuda.get_current_stream().ptr

    def synchronize(self) -> None:
        """Wait for the queued NCCL work, so the arrays hold the results when a collective returns."""
        if self.nccl is not None:
            self.cupy.cuda.get_current_stream().synchronize()


_group: _ProcessGroup | None = None


def is_available() -> bool:
    """Whether mpi4py, the MPI bindings every backend needs, is installed."""
    return importlib.util.find_spec("mpi4py") is not None


def find_mpiexec() -> str | None:
    """The MPI launcher: the one beside this Python (the ``mpich`` wheel installs it in the
    environment's ``bin``), else ``mpiexec`` on PATH; None when there is none."""
    beside = Path(sys.executable).parent / "mpiexec"
    return str(beside) if beside.exists() else shutil.which("mpiexec")


def init_process_group(backend: str = "mpi") -> None:
    """Join the processes started by the MPI launcher; ``backend``: ``"mpi"`` (cpu tensors) or
    ``"nccl"`` (cuda tensors)."""
    global _group
    if backend not in BACKENDS:
        raise ValueError(f"init_process_group: unknown backend {backend!r}; expected one of {BACKENDS}")
    if _group is not None:
        raise RuntimeError("init_process_group: the process group is already initialised")
    _group = _ProcessGroup(backend)


def destroy_process_group() -> None:
    """Leave the process group (MPI itself is finalised at exit by mpi4py)."""
    global _group
    if _group is not None and _group.nccl is not None:
        _group.nccl.destroy()
    _group = None


def is_initialized() -> bool:
    return _group is not None


def _world(name: str) -> _ProcessGroup:
    if _group is None:
        raise RuntimeError(f"{name}: the default process group is not initialised; call init_process_group() first")
    return _group


def get_rank() -> int:
    return _world("get_rank").rank


def get_world_size() -> int:
    return _world("get_world_size").size


def get_backend() -> str:
    return _world("get_backend").backend


def barrier() -> None:
    """Wait until every process has reached this call. The wait sleeps between checks rather than
    spinning (MPI's blocking barrier busy-polls), so a waiting rank leaves its core to the others."""
    request = _world("barrier").comm.Ibarrier()
    while not request.Test():
        time.sleep(0.001)


# ----------------------------------------------------------------- collectives on tensors
def _check(name: str, group: _ProcessGroup, *tensors: Tensor) -> None:
    wanted = "cuda" if group.nccl is not None else "cpu"
    for t in tensors:
        if not isinstance(t, Tensor):
            raise TypeError(f"{name}: expected Tensors, got {type(t).__name__}")
        device = backend.device_of(t.data)
        if device != wanted:
            raise RuntimeError(
                f"{name}: backend {group.backend!r} moves {wanted} tensors, got a tensor on {device} "
                f"(use backend={'nccl' if device == 'cuda' else 'mpi'!r})"
            )
        if t.dtype != tensors[0].dtype or t.shape != tensors[0].shape:
            raise RuntimeError(
                f"{name}: every tensor must have the shape and dtype of the first, {tuple(tensors[0].shape)} "
                f"{tensors[0].dtype}; got {tuple(t.shape)} {t.dtype}"
            )


def _buffer(group: _ProcessGroup, array):
    """A contiguous array MPI/NCCL can reduce: ``array`` itself when it is one, else a copy
    (float16 becomes float32 over MPI; bool becomes uint8, so SUM and MAX are a logical or, MIN an and)."""
    xp = backend.array_module(array)
    dtype = backend.float32 if group.nccl is None and array.dtype == backend.float16 else array.dtype
    if array.dtype == backend.bool_:
        dtype = backend.numpy.uint8
    return xp.ascontiguousarray(array, dtype=dtype)


def _in_place(group: _ProcessGroup, tensor: Tensor, collective) -> None:
    """Run ``collective(buffer)`` on ``tensor``'s data (through a copy when MPI cannot take it as is)."""
    buffer = _buffer(group, tensor.data)
    collective(buffer)
    group.synchronize()
    _write_back(tensor, buffer)


def _write_back(tensor: Tensor, result) -> None:
    if result is not tensor.data:
        tensor.data[...] = result
    tensor._bump_version()


def _check_op(name: str, op: ReduceOp, tensor: Tensor) -> None:
    if not isinstance(op, ReduceOp):
        raise ValueError(f"{name}: op must be a ReduceOp (SUM, AVG, MAX, MIN), got {op!r}")
    if op is ReduceOp.AVG and not backend.is_floating(tensor.dtype):
        raise TypeError(f"{name}: ReduceOp.AVG needs a floating-point tensor, got {tensor.dtype}")


def all_reduce(tensor: Tensor, op: ReduceOp = ReduceOp.SUM) -> None:
    """Replace ``tensor`` on every rank, in place, by the reduction (``op``) of all ranks' tensors."""
    group = _world("all_reduce")
    _check("all_reduce", group, tensor)
    _check_op("all_reduce", op, tensor)
    _in_place(group, tensor, lambda buffer: group.all_reduce(buffer, op))


def broadcast(tensor: Tensor, src: int) -> None:
    """Copy rank ``src``'s ``tensor`` into ``tensor`` on every other rank, in place."""
    group = _world("broadcast")
    _check("broadcast", group, tensor)
    if not 0 <= src < group.size:
        raise ValueError(f"broadcast: src must be a rank in [0, {group.size - 1}], got {src}")
    _in_place(group, tensor, lambda buffer: group.broadcast(buffer, src))


def all_gather(tensor_list: list, tensor: Tensor) -> None:
    """Fill ``tensor_list[r]`` (one tensor per rank, shaped like ``tensor``) with rank r's ``tensor``."""
    group = _world("all_gather")
    if len(tensor_list) != group.size:
        raise ValueError(
            f"all_gather: tensor_list must hold {group.size} tensors (the world size), got {len(tensor_list)}"
        )
    _check("all_gather", group, tensor, *tensor_list)
    source = _buffer(group, tensor.data)
    out = backend.array_module(source).empty((group.size,) + source.shape, dtype=source.dtype)
    group.all_gather(out, source)
    group.synchronize()
    for t, row in zip(tensor_list, out):
        _write_back(t, row)


def reduce_scatter(output: Tensor, input_list: list, op: ReduceOp = ReduceOp.SUM) -> None:
    """``output`` on rank r becomes the reduction (``op``) over ranks of their ``input_list[r]``."""
    group = _world("reduce_scatter")
    if len(input_list) != group.size:
        raise ValueError(
            f"reduce_scatter: input_list must hold {group.size} tensors (the world size), got {len(input_list)}"
        )
    _check("reduce_scatter", group, output, *input_list)
    _check_op("reduce_scatter", op, output)
    xp = backend.array_module(output.data)
    stacked = xp.stack([_buffer(group, t.data) for t in input_list])
    out = _buffer(group, output.data).copy()
    group.reduce_scatter(out, stacked, op)
    group.synchronize()
    _write_back(output, out)


def all_reduce_array(array, op: ReduceOp = ReduceOp.SUM):
    """``array`` reduced over ranks (a new array; ``array`` itself when no process group is initialised):
    what SyncBatchNorm's statistics and DDP's buckets use."""
    if _group is None or _group.size == 1:
        return array
    buffer = _buffer(_group, array)
    if buffer is array:
        buffer = buffer.copy()
    _group.all_reduce(buffer, op)
    _group.synchronize()
    return buffer.astype(array.dtype, copy=False)
