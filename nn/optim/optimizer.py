"""Optimizer: parameter groups with their own options, per-parameter state, and state_dict in
PyTorch's layout (parameters named by their position across the groups)."""

from __future__ import annotations

import copy

import minigrad as mg
from minigrad import backend
from minigrad.tensor import Tensor


class Optimizer:
    """Subclasses define ``defaults`` checks and ``_update(p, grad, state, group)`` on raw arrays."""

    def __init__(self, params, defaults: dict):
        self.defaults = defaults
        self.state: dict = {}  # Parameter -> {name: array or number}
        self.param_groups: list = []
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
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.grad = None if set_to_none else mg.zeros_like(p.grad)

    @mg.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with mg.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad.data
                if group.get("maximize"):
                    grad = -grad
                self._update(p.data, grad, self.state.setdefault(p, {}), group)
                p._bump_version()  # a graph that saved the old value must not backpropagate through it
        return loss

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
                    if array.ndim == 0:  # a step count saved as a tensor
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
            mine.update({k: copy.deepcopy(v) for k, v in theirs.items() if k != "params"})

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(group.items()) if k != "params"]
        return "\n".join(lines) + "\n)"
