"""Optimizer: parameter groups with their own options, per-parameter state, and state_dict in
PyTorch's layout (parameters named by their position across the groups).

The foreach step (PyTorch's ``foreach=True``) updates a whole group in a few array ops: at the
first step each group's parameters are copied into one flat array per (dtype, device) and each
Parameter's ``data`` becomes a view into it; the optimizer state (momentum buffers, moments) lives
in flat arrays of the same layout, and ``state[p]`` holds views into them, so state_dict stays
per parameter. The update itself is the subclass's ``_update`` called on the flat arrays: one
formula for both paths, elementwise, so both give the same bits."""

from __future__ import annotations

import copy

import minigrad as mg
from minigrad import backend
from minigrad.tensor import Tensor
from nn.module import _zero_grad


class Optimizer:
    """Subclasses define ``defaults`` checks and ``_update(p, grad, state, group)`` on raw arrays:
    elementwise array math, the same for one parameter or a flat run of them.

    ``defaults["foreach"]``: True updates each group through flat buffers, False one parameter at
    a time, None picks: flat for groups of more than one parameter (what pays, measured)."""

    def __init__(self, params, defaults: dict):
        self.defaults = defaults
        self.state: dict = {}  # Parameter -> {name: array or number}
        self.param_groups: list = []
        self._flat: dict = {}  # id(group) -> (its parameters' ids, its _FlatBuckets), made at the first foreach step
        groups = list(params) if not isinstance(params, Tensor) else None
        if groups is None:
            raise TypeError(f"{type(self).__name__}: params must be an iterable of Tensors or dicts, got a Tensor")
        if not groups:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group: dict) -> None:
        group = dict(group)
        params = group["params"]
        if isinstance(params, (set, frozenset)):
            raise TypeError(
                f"{type(self).__name__}: optimizer parameters need to be organized in ordered collections, but the "
                "ordering of tensors in sets will change between runs. Please use a list instead."
            )
        params = [params] if isinstance(params, Tensor) else list(params)
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"{type(self).__name__}: can only optimize Tensors, got {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError(f"{type(self).__name__}: can't optimize a non-leaf Tensor (shape {tuple(p.shape)})")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params) or len({id(p) for p in params}) != len(params):
            raise ValueError(f"{type(self).__name__}: some parameters appear in more than one parameter group")
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        self._check(group)
        group["params"] = params
        self.param_groups.append(group)

    def _check(self, group: dict) -> None:
        if group["lr"] < 0:
            raise ValueError(f"{type(self).__name__}: Invalid learning rate: {group['lr']}")
        if group.get("weight_decay", 0) < 0:
            raise ValueError(f"{type(self).__name__}: Invalid weight_decay value: {group['weight_decay']}")

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Gradients to None, or (``set_to_none=False``) zeroed in place, as PyTorch does: a
        reference to ``p.grad`` kept elsewhere sees the zeros."""
        for group in self.param_groups:
            for p in group["params"]:
                _zero_grad(p, set_to_none)

    @mg.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with mg.enable_grad():
                loss = closure()
        for group in self.param_groups:
            if self._uses_foreach(group):
                for bucket in self._buckets(group):
                    self._step_flat(bucket, group)
                continue
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad.data
                if group.get("maximize"):
                    grad = -grad
                self._update(p.data, grad, self.state.setdefault(p, {}), group)
                p._bump_version()  # a graph that saved the old value must not backpropagate through it
        return loss

    @staticmethod
    def _uses_foreach(group: dict) -> bool:
        foreach = group.get("foreach")
        return len(group["params"]) > 1 if foreach is None else foreach

    def _buckets(self, group: dict) -> list:
        """The group's flat buckets, made again when a parameter's array or state was replaced
        since they were made (``p.data = ...``, ``module.to(...)``, ``load_state_dict``)."""
        params = group["params"]
        ids, buckets = self._flat.get(id(group), (None, None))
        if ids != tuple(map(id, params)) or not all(b.is_current(self.state) for b in buckets):
            kinds: dict = {}  # (dtype, device) -> the group's parameters of that kind, in order
            for p in params:
                kinds.setdefault((p.dtype, backend.device_of(p.data)), []).append(p)
            buckets = [_FlatBucket(ps, self.state) for ps in kinds.values()]
            self._flat[id(group)] = (tuple(map(id, params)), buckets)
        return buckets

    def _step_flat(self, bucket: _FlatBucket, group: dict) -> None:
        """Update the bucket's parameters run by run: a run is a stretch of neighbouring parameters
        that have a gradient and the same kind of state (the same step count, the same buffers),
        so one ``_update`` on their part of the flat arrays does what one per parameter would. A
        parameter of more than ``_GATHER_MAX`` elements is a run of its own: copying its gradient
        into the flat buffer would cost more than the calls it saves."""
        params, start = bucket.params, 0
        small = [p.data.size <= _GATHER_MAX for p in params]
        kinds = [_state_kind(p, self.state) for p in params]
        while start < len(params):
            stop = start + 1
            while stop < len(params) and small[start] and small[stop] and kinds[stop] == kinds[start]:
                stop += 1
            if kinds[start] is not None:
                self._update_run(bucket, group, start, stop)
            start = stop

    def _update_run(self, bucket: _FlatBucket, group: dict, start: int, stop: int) -> None:
        """``_update`` on parameters start..stop as one flat array, cut in chunks small enough
        that the update's temporaries stay in cache (elementwise: the chunks change no bits)."""
        params = bucket.params[start:stop]
        a, b = bucket.offsets[start], bucket.offsets[stop]
        if stop - start == 1:
            grad = params[0].grad.data.reshape(-1)
        else:
            grad = backend.array_module(bucket.param).concatenate([p.grad.data.reshape(-1) for p in params])
        before = self.state.get(params[0], {})
        made = set()  # the state arrays this step makes (at a parameter's first step)
        for lo in range(a, max(b, a + 1), _CHUNK):
            hi = min(lo + _CHUNK, b)
            chunk_grad = -grad[lo - a : hi - a] if group.get("maximize") else grad[lo - a : hi - a]
            given = {name: bucket.state[name][lo:hi] if backend.is_array(v) else v for name, v in before.items()}
            state = dict(given)
            self._update(bucket.param[lo:hi], chunk_grad, state, group)
            for name, value in state.items():
                if backend.is_array(value) and value is not given.get(name):
                    bucket.write(name, value, lo, hi)
                    made.add(name)
        for i, p in enumerate(params, start):
            mine = self.state.setdefault(p, {})
            for name, value in state.items():
                if name in made:
                    mine[name] = bucket.view(name, i)
                elif not backend.is_array(value):
                    mine[name] = value  # the step count: the same out of every chunk
            p._bump_version()  # a graph that saved the old value must not backpropagate through it

    def _update(self, param, grad, state: dict, group: dict) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------ state_dict
    def state_dict(self) -> dict:
        """{"state": {index: {name: Tensor or number}}, "param_groups": [{options, "params": [index, ...]}]}."""
        index, groups = {}, []
        for group in self.param_groups:
            for p in group["params"]:
                index.setdefault(id(p), len(index))
            groups.append(
                {**{k: v for k, v in group.items() if k != "params"}, "params": [index[id(p)] for p in group["params"]]}
            )
        state = {}
        for group in self.param_groups:
            for p in group["params"]:
                if p in self.state and self.state[p]:
                    state[index[id(p)]] = {
                        k: Tensor._make(v.copy()) if backend.is_array(v) else v for k, v in self.state[p].items()
                    }
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError(
                f"{type(self).__name__}.load_state_dict: the state has {len(groups)} parameter groups, "
                f"the optimizer {len(self.param_groups)}"
            )
        for mine, theirs in zip(self.param_groups, groups):
            if len(mine["params"]) != len(theirs["params"]):
                raise ValueError(
                    f"{type(self).__name__}.load_state_dict: a parameter group has "
                    f"{len(theirs['params'])} parameters in the state, {len(mine['params'])} here"
                )
        params = {
            i: p
            for g_mine, g_theirs in zip(self.param_groups, groups)
            for i, p in zip(g_theirs["params"], g_mine["params"])
        }
        state = {}
        for key, values in state_dict["state"].items():
            p = params[int(key)]
            state[p] = {}
            for name, value in values.items():
                if isinstance(value, Tensor) or backend.is_array(value):
                    array = value.data if isinstance(value, Tensor) else value
                    if array.ndim == 0 and (p.ndim or name == "step"):  # a step count saved as a tensor
                        value = array.item()
                    elif tuple(array.shape) != tuple(p.shape):
                        raise ValueError(
                            f"{type(self).__name__}.load_state_dict: state {name!r} of parameter {key} "
                            f"has shape {tuple(array.shape)}, the parameter {tuple(p.shape)}"
                        )
                    else:
                        value = backend.as_array(array, p.dtype, p.device).copy()
                state[p][name] = value
        self.state = state
        for mine, theirs in zip(self.param_groups, groups):
            mine.update({k: copy.deepcopy(v) for k, v in theirs.items() if k not in ("params", "foreach")})

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(group.items()) if k != "params"]
        return "\n".join(lines) + "\n)"


def _state_kind(p: Tensor, state: dict):
    """None for a parameter without a gradient (not updated); else what its update depends on
    besides its arrays: the step count and which buffers it has."""
    if p.grad is None:
        return None
    return tuple((name, None if backend.is_array(value) else value) for name, value in state.get(p, {}).items())


_CHUNK = 1 << 15  # elements per flat update: an Adam step's dozen temporaries of this size stay in cache
_GATHER_MAX = 1 << 11  # elements: larger parameters update alone (benchmarks/optimizer_step.py)


class _FlatBucket:
    """Parameters of one dtype and device stored as views into one flat array ``param``, their
    state arrays as views into one flat array per state name; parameter i is
    ``param[offsets[i]:offsets[i + 1]]``."""

    def __init__(self, params: list, state: dict):
        xp = backend.array_module(params[0].data)
        self.params = params
        self.offsets = [0]
        for p in params:
            self.offsets.append(self.offsets[-1] + p.data.size)
        self.param = xp.empty(self.offsets[-1], dtype=params[0].dtype)
        self.views = []
        for p, a, b in zip(params, self.offsets, self.offsets[1:]):
            self.param[a:b] = p.data.reshape(-1)
            p.data = self.param[a:b].reshape(p.shape)
            self.views.append(p.data)
        self.state: dict = {}  # state name -> flat array like param
        self.state_views: list = [{} for _ in params]  # per parameter: state name -> its view
        for i, p in enumerate(params):
            mine = state.get(p, {})
            for name, value in mine.items():
                if backend.is_array(value):
                    self.write(name, value, self.offsets[i], self.offsets[i + 1])
                    mine[name] = self.view(name, i)

    def write(self, name: str, values, lo: int, hi: int) -> None:
        """Copy ``values`` into elements lo..hi of the flat array of state ``name`` (made at the
        first write; the values themselves when they cover the whole bucket)."""
        if name not in self.state:
            whole = lo == 0 and hi == self.param.size and values.dtype == self.param.dtype and values.ndim == 1
            self.state[name] = values if whole else backend.array_module(self.param).zeros_like(self.param)
        if values is not self.state[name]:
            self.state[name][lo:hi] = values.reshape(-1)

    def view(self, name: str, i: int):
        """Parameter i's part of the flat array of state ``name``, shaped as the parameter."""
        view = self.state[name][self.offsets[i] : self.offsets[i + 1]].reshape(self.params[i].shape)
        self.state_views[i][name] = view
        return view

    def is_current(self, state: dict) -> bool:
        """Whether every parameter's array and state arrays are still the views handed out."""
        for p, view, views in zip(self.params, self.views, self.state_views):
            if p.data is not view:
                return False
            for name, value in state.get(p, {}).items():
                if backend.is_array(value) and value is not views.get(name):
                    return False
        return True
