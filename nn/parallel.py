"""DistributedDataParallel: data-parallel training over ``minigrad.distributed``'s processes.

Every process holds a replica of the model and runs it on its own share of the global batch.
The wrapper only schedules communication: it copies rank 0's parameters and buffers to every
replica once, and during backward it averages the gradients over the processes, bucket by
bucket, from the parameters' gradient-accumulation hooks, so that every replica takes the same
optimizer step as one process would on the global batch (with a mean loss).
"""

from __future__ import annotations

import contextlib
from collections import defaultdict

import minigrad as mg
from minigrad import autograd, backend, distributed
from minigrad.distributed import ReduceOp
from nn.module import Module


def _broadcast_from_rank0(tensors: list) -> None:
    """Copy rank 0's values into ``tensors``: one broadcast per dtype, of all of them flattened."""
    by_dtype = defaultdict(list)
    for t in tensors:
        by_dtype[t.dtype].append(t)
    for group in by_dtype.values():
        xp = backend.array_module(group[0].data)
        flat = mg.Tensor._make(xp.concatenate([t.data.ravel() for t in group]))
        distributed.broadcast(flat, src=0)
        offset = 0
        for t in group:
            t.data[...] = flat.data[offset : offset + t.data.size].reshape(t.shape)
            t._bump_version()
            offset += t.data.size


def _leaves_reached(outputs) -> set:
    """The ids of the leaf tensors the graph of ``outputs`` leads back to."""
    stack = [o.grad_fn for o in outputs if o.grad_fn is not None]
    reached, seen = {id(o) for o in outputs if o.grad_fn is None}, set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        for edge in node.next_edges:
            if edge is None:
                continue
            if isinstance(edge[0], autograd.Function):
                stack.append(edge[0])
            else:
                reached.add(id(edge[0]))
    return reached


def _tensors_in(value) -> list:
    if isinstance(value, mg.Tensor):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _tensors_in(v)]
    return []


class DistributedDataParallel(Module):
    """``module`` replicated over the process group, its gradients averaged over the processes.

    Parameters go into buckets of about ``bucket_cap_mb`` MiB, last parameter first (the order
    backward produces their gradients in). During backward, once every parameter of a bucket
    has its gradient accumulated, the bucket is flattened and all-reduced (averaged); buckets
    are reduced in the same order on every process. A parameter that gets no gradient in a
    backward is an error naming it, unless ``find_unused_parameters=True``: then forward finds
    the parameters its output does not depend on and their gradients count as zeros; the
    gradient of a parameter that no process used is left as it was (None), as PyTorch does.
    ``broadcast_buffers`` copies rank 0's buffers (BatchNorm's running statistics) to every
    replica before each forward in training, as PyTorch does.
    """

    def __init__(self, module: Module, bucket_cap_mb: float = 25, find_unused_parameters: bool = False,
                 broadcast_buffers: bool = True):  # fmt: skip
        super().__init__()
        if not distributed.is_initialized():
            raise RuntimeError(
                "DistributedDataParallel: the default process group is not initialised; call "
                "minigrad.distributed.init_process_group() first"
            )
        self.module = module
        self.find_unused_parameters, self.broadcast_buffers = find_unused_parameters, broadcast_buffers
        self.require_backward_grad_sync = True
        named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        self._names = {id(p): n for n, p in named}
        with mg.no_grad():
            _broadcast_from_rank0([p for _, p in named] + list(module.buffers()))
        self.buckets = self._assign_buckets([p for _, p in reversed(named)], bucket_cap_mb * 2**20)
        self._bucket_of = {id(p): i for i, bucket in enumerate(self.buckets) for p in bucket}
        self._syncing = False
        for _, p in named:
            p.register_post_accumulate_grad_hook(self._on_gradient)

    @staticmethod
    def _assign_buckets(params: list, cap_bytes: float) -> list:
        """Consecutive parameters, a new bucket when the cap is reached or the dtype or device changes."""
        buckets, size = [], 0
        for p in params:
            last = buckets[-1][-1] if buckets else None
            if last is None or size >= cap_bytes or (p.dtype, p.device) != (last.dtype, last.device):
                buckets.append([])
                size = 0
            buckets[-1].append(p)
            size += p.data.nbytes
        return buckets

    def forward(self, *args, **kwargs):
        if self.training and self.broadcast_buffers and distributed.get_world_size() > 1:
            buffers = list(self.module.buffers())
            if buffers:
                with mg.no_grad():
                    _broadcast_from_rank0(buffers)
        output = self.module(*args, **kwargs)
        self._syncing = mg.is_grad_enabled() and self.require_backward_grad_sync
        if self._syncing:
            self._ready = [set() for _ in self.buckets]
            self._next_bucket, self._finish_queued = 0, False
            if self.find_unused_parameters:
                used = _leaves_reached(_tensors_in(output))
                self._unused = [p for b in self.buckets for p in b if id(p) not in used]
                for p in self._unused:
                    self._ready[self._bucket_of[id(p)]].add(id(p))
        return output

    @contextlib.contextmanager
    def no_sync(self):
        """Backward passes of forwards run inside only accumulate gradients locally (gradient
        accumulation); the first backward after it averages the accumulated gradients."""
        previous = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = previous

    # ----------------------------------------------------------------- during backward
    def _on_gradient(self, param) -> None:
        if not self._syncing:
            return
        if not self._finish_queued:
            autograd.queue_callback(self._finish_backward)
            self._finish_queued = True
        self._ready[self._bucket_of[id(param)]].add(id(param))
        self._reduce_ready_buckets()

    def _reduce_ready_buckets(self) -> None:
        """All-reduce the next buckets in order while they are complete (the same order on every rank)."""
        while self._next_bucket < len(self.buckets):
            bucket = self.buckets[self._next_bucket]
            if len(self._ready[self._next_bucket]) < len(bucket):
                return
            self._reduce(bucket)
            self._next_bucket += 1

    def _reduce(self, bucket: list) -> None:
        xp = backend.array_module(bucket[0].data)
        parts = [(xp.zeros_like(p.data) if p.grad is None else p.grad.data).ravel() for p in bucket]
        if self.find_unused_parameters:  # one more entry per parameter: 1 where this rank used it
            unused = {id(p) for p in self._unused}
            parts.append(xp.asarray([id(p) not in unused for p in bucket], dtype=parts[0].dtype))
        flat = distributed.all_reduce_array(xp.concatenate(parts), ReduceOp.AVG)
        used_anywhere = flat[-len(bucket) :] > 0 if self.find_unused_parameters else [True] * len(bucket)
        offset = 0
        for p, used in zip(bucket, used_anywhere):
            if used:  # as PyTorch, the gradient of a parameter no rank used is left as it was (None)
                p.grad = mg.Tensor._make(flat[offset : offset + p.data.size].reshape(p.shape))
            offset += p.data.size

    def _finish_backward(self) -> None:
        self._reduce_ready_buckets()
        self._syncing = False
        if self._next_bucket < len(self.buckets):
            ready = set().union(*self._ready)
            missing = [name for key, name in self._names.items() if key not in ready]
            raise RuntimeError(
                f"DistributedDataParallel: parameters got no gradient in this backward, so their buckets "
                f"could not be reduced: {missing}; make every parameter take part in the loss, or pass "
                "find_unused_parameters=True"
            )
