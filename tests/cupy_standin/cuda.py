"""``cupy.cuda``: one device (0) with a null stream; ``runtime.getDeviceCount()`` is 1. NCCL's
bindings, ``cupy.cuda.nccl``, are in nccl.py (collectives carried over MPI)."""

import types


class Device:
    def __init__(self, device=None):
        if device not in (None, 0):
            raise ValueError(f"the CuPy stand-in has one device (0), got {device!r}")
        self.id = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def __eq__(self, other):
        return isinstance(other, Device) and other.id == self.id

    def __hash__(self):
        return hash(self.id)

    def __repr__(self):
        return "<CUDA Device 0>"

    def use(self) -> None:
        pass

    def synchronize(self) -> None:
        pass


class Stream:
    def __init__(self, null=False, non_blocking=False, ptds=False, priority=None):
        self.null = null
        self.ptr = 0 if null else id(self)  # cudaStream_t: 0 is the null (default) stream

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def use(self):
        return self

    def synchronize(self) -> None:
        pass


def getDeviceCount() -> int:
    return 1


def deviceSynchronize() -> None:
    pass


runtime = types.ModuleType("cupy.cuda.runtime")
runtime.getDeviceCount, runtime.deviceSynchronize = getDeviceCount, deviceSynchronize


def is_available() -> bool:
    return True


def get_device_id() -> int:
    return 0


def get_current_stream():
    return Stream(null=True)
