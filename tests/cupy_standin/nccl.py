"""``cupy.cuda.nccl``: NCCL's collectives as CuPy's bindings expose them, for the stand-in.

The calls take what CuPy's take (device pointers, an element count, NCCL's dtype and op codes, a
stream) and are carried out over MPI between the processes, on the NumPy arrays behind the
stand-in's pointers (``ndarray.data.ptr`` is the address of the wrapped array's first element).
So the ``nccl`` backend of minigrad.distributed runs without a GPU, and a wrong pointer, count,
dtype or root shows up as a wrong result or an error. What it does not check: NCCL itself,
streams, or two ranks sharing one GPU (real NCCL refuses that; here every rank is device 0).

CuPy imports this module only where NCCL is installed, so the names are not in names.txt (the
wheel was listed without NCCL); they are those of CuPy's ``cupy.cuda.nccl`` documentation.
"""

from __future__ import annotations

import ctypes
import os

import numpy

# ncclDataType_t and ncclRedOp_t, as nccl.h numbers them
NCCL_INT8, NCCL_UINT8, NCCL_INT32, NCCL_UINT32, NCCL_INT64, NCCL_UINT64 = 0, 1, 2, 3, 4, 5
NCCL_FLOAT16, NCCL_FLOAT32, NCCL_FLOAT64 = 6, 7, 8
NCCL_SUM, NCCL_PROD, NCCL_MAX, NCCL_MIN = 0, 1, 2, 3

_DTYPES = {NCCL_INT8: numpy.int8, NCCL_UINT8: numpy.uint8, NCCL_INT32: numpy.int32, NCCL_UINT32: numpy.uint32,
           NCCL_INT64: numpy.int64, NCCL_UINT64: numpy.uint64, NCCL_FLOAT16: numpy.float16,
           NCCL_FLOAT32: numpy.float32, NCCL_FLOAT64: numpy.float64}  # fmt: skip
_REDUCTIONS = {NCCL_SUM: numpy.add, NCCL_PROD: numpy.multiply, NCCL_MAX: numpy.maximum, NCCL_MIN: numpy.minimum}


class NcclError(RuntimeError):
    pass


def get_unique_id() -> tuple:
    """128 random bytes, as CuPy gives ncclUniqueId: rank 0 makes it, the others receive it."""
    return tuple(int(b) - 128 for b in os.urandom(128))


def _memory(pointer: int, count: int, datatype: int) -> numpy.ndarray:
    """The ``count`` elements of type ``datatype`` at ``pointer``, as a writable NumPy view."""
    if datatype not in _DTYPES:
        raise NcclError(f"ncclInvalidArgument: unknown datatype {datatype}")
    if not isinstance(pointer, int) or pointer == 0:
        raise NcclError(f"ncclInvalidArgument: a device pointer is an int address, got {pointer!r}")
    dtype = numpy.dtype(_DTYPES[datatype])
    if count == 0:
        return numpy.empty(0, dtype)
    raw = (ctypes.c_char * (count * dtype.itemsize)).from_address(pointer)
    return numpy.frombuffer(raw, dtype=dtype, count=count)


class NcclCommunicator:
    """``NcclCommunicator(ndev, commId, rank)``: every process passes the same id and the world
    size, and its own rank (MPI's, here)."""

    def __init__(self, ndev: int, commId: tuple, rank: int):
        from mpi4py import MPI

        self._comm = MPI.COMM_WORLD.Dup()
        if ndev != self._comm.Get_size() or rank != self._comm.Get_rank():
            raise NcclError(f"ncclInvalidUsage: ndev {ndev}, rank {rank} in a world of {self._comm.Get_size()}")
        if len(set(self._comm.allgather(tuple(commId)))) != 1:
            raise NcclError("ncclInvalidUsage: the ranks were given different unique ids")
        self._rank, self._size = rank, ndev

    def rank_id(self) -> int:
        return self._rank

    def size(self) -> int:
        return self._size

    def device_id(self) -> int:
        return 0

    def destroy(self) -> None:
        self._comm.Free()

    def _reduce(self, parts, op: int):
        if op not in _REDUCTIONS:
            raise NcclError(f"ncclInvalidArgument: unknown reduction {op}")
        return _REDUCTIONS[op].reduce(numpy.stack(parts), axis=0)

    def allReduce(self, sendbuf: int, recvbuf: int, count: int, datatype: int, op: int, stream: int) -> None:
        parts = self._comm.allgather(_memory(sendbuf, count, datatype).copy())
        _memory(recvbuf, count, datatype)[...] = self._reduce(parts, op)

    def bcast(self, buff: int, count: int, datatype: int, root: int, stream: int) -> None:
        self.broadcast(buff, buff, count, datatype, root, stream)

    def broadcast(self, sendbuf: int, recvbuf: int, count: int, datatype: int, root: int, stream: int) -> None:
        if not 0 <= root < self._size:
            raise NcclError(f"ncclInvalidArgument: root {root} in a world of {self._size}")
        data = _memory(sendbuf, count, datatype).copy() if self._rank == root else None
        _memory(recvbuf, count, datatype)[...] = self._comm.bcast(data, root=root)

    def allGather(self, sendbuf: int, recvbuf: int, count: int, datatype: int, stream: int) -> None:
        parts = self._comm.allgather(_memory(sendbuf, count, datatype).copy())
        _memory(recvbuf, count * self._size, datatype)[...] = numpy.concatenate(parts)

    def reduceScatter(self, sendbuf: int, recvbuf: int, recvcount: int, datatype: int, op: int,
                      stream: int) -> None:  # fmt: skip
        parts = self._comm.allgather(_memory(sendbuf, recvcount * self._size, datatype).copy())
        mine = slice(self._rank * recvcount, (self._rank + 1) * recvcount)
        _memory(recvbuf, recvcount, datatype)[...] = self._reduce(parts, op)[mine]
