"""Module: the base of every layer and model; Parameter; and the containers.

A Module owns Parameters (tensors to train), buffers (state that is not trained, such as
BatchNorm's running statistics) and child modules, registered by assigning them as attributes.
``state_dict`` names every parameter and persistent buffer by its dotted path (``layer1.0.conv1.
weight``), exactly as PyTorch does, so a PyTorch state_dict loads one to one.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections import OrderedDict, namedtuple
from collections.abc import Iterator

import minigrad as mg
from minigrad import backend
from minigrad.autograd import Function, _link_view
from minigrad.tensor import Tensor


class Parameter(Tensor):
    """A Tensor that a Module registers as trainable; requires grad unless told otherwise."""

    __slots__ = ()

    def __init__(self, data=None, requires_grad: bool = True):
        data = mg.empty(0) if data is None else data
        source = data.data if isinstance(data, Tensor) else backend.as_array(data, None, backend.get_default_device())
        Tensor.__init__(self, source, device=backend.device_of(source))
        self.data = source  # share the array, as PyTorch's Parameter shares the storage
        self.requires_grad = requires_grad

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

    def __deepcopy__(self, memo):
        copy = Parameter(self.data.copy(), self.requires_grad)
        memo[id(self)] = copy
        return copy

    def __reduce_ex__(self, protocol):
        return Parameter, (backend.to_numpy(self.data), self.requires_grad)


class IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    """What load_state_dict returns: the keys it did not find, and the keys it did not use."""

    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()


class RemovableHandle:
    """What register_*_hook returns: ``remove()`` takes the hook out again (also on leaving a ``with``)."""

    _ids = itertools.count()

    def __init__(self, hooks: dict, entry, prepend: bool = False):
        self.hooks, self.id = hooks, next(self._ids)
        hooks[self.id] = entry
        if prepend:
            hooks.move_to_end(self.id, last=False)

    def remove(self) -> None:
        self.hooks.pop(self.id, None)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


# Hooks every module runs, before its own: (hook, with_kwargs[, always_call]) by handle id.
_global_forward_pre_hooks: OrderedDict = OrderedDict()
_global_forward_hooks: OrderedDict = OrderedDict()


def register_module_forward_pre_hook(hook) -> RemovableHandle:
    """``hook(module, args)`` before every module's forward (and before its own pre-hooks)."""
    return RemovableHandle(_global_forward_pre_hooks, (hook, False))


def register_module_forward_hook(hook, *, with_kwargs: bool = False, always_call: bool = False) -> RemovableHandle:
    """``hook(module, args, output)`` after every module's forward (and before its own hooks)."""
    return RemovableHandle(_global_forward_hooks, (hook, with_kwargs, always_call))


class _ModuleBackwardHook(Function):
    """Identity on a module's inputs (or outputs) whose backward hands the gradients to the
    module's backward hooks, which may replace them."""

    def forward(self, *arrays, on_grads):
        self.on_grads = on_grads
        return arrays

    def backward(self, *grads):
        return self.on_grads(grads)


def _through_identity(values: tuple, on_grads):
    """Pass the values that require grad through a ``_ModuleBackwardHook``: (their places, values)."""
    places = [i for i, v in enumerate(values) if isinstance(v, Tensor) and v.requires_grad]
    if not places:
        return None, values
    wrapped = _ModuleBackwardHook.apply(*(values[i] for i in places), on_grads=on_grads)
    wrapped = wrapped if isinstance(wrapped, tuple) else (wrapped,)
    values = list(values)
    for i, out in zip(places, wrapped):
        _link_view(out, values[i])  # the identity shares memory (and so the version counter) with its input
        values[i] = out
    return places, tuple(values)


def _spread(places: list, grads: tuple, n: int) -> tuple:
    """The gradients of the tensors at ``places``, as one entry per value (None elsewhere)."""
    full = [None] * n
    for i, g in zip(places, grads):
        full[i] = g
    return tuple(full)


class _BackwardHooks:
    """One module call's backward hooks: the gradient of the outputs, kept until the inputs' arrives."""

    def __init__(self, module: Module):
        self.module = module
        self.pre_hooks = list(module._backward_pre_hooks.values())
        self.hooks = list(module._backward_hooks.values())
        self.grad_output = None

    def wrap_inputs(self, args: tuple) -> tuple:
        self.n_inputs = len(args)
        self.input_places, args = _through_identity(args, self.on_grad_input)
        return args

    def wrap_outputs(self, result):
        single = not isinstance(result, tuple)
        outputs = (result,) if single else result
        self.n_outputs = len(outputs)
        self.output_places, outputs = _through_identity(outputs, self.on_grad_output)
        return outputs[0] if single else outputs

    def on_grad_output(self, grads: tuple) -> tuple:
        grad_output = _spread(self.output_places, grads, self.n_outputs)
        for hook in self.pre_hooks:
            grad_output = self._replaced(grad_output, hook(self.module, grad_output), "grad_output")
        if self.input_places is None:  # no input needs a gradient: the hooks run now, on Nones
            grad_input = (None,) * self.n_inputs
            for hook in self.hooks:
                changed = hook(self.module, grad_input, grad_output)
                if changed is not None and any(g is not None for g in changed):
                    raise RuntimeError(f"{type(self.module).__name__}: no input requires grad, so a backward "
                                       "hook must return None (or only Nones)")  # fmt: skip
        else:
            self.grad_output = grad_output
        return tuple(grad_output[i] for i in self.output_places)

    def on_grad_input(self, grads: tuple) -> tuple:
        if self.grad_output is None:  # the gradient reached the inputs without passing the outputs
            return grads
        grad_input = _spread(self.input_places, grads, self.n_inputs)
        for hook in self.hooks:
            grad_input = self._replaced(grad_input, hook(self.module, grad_input, self.grad_output), "grad_input")
        self.grad_output = None
        return tuple(grad_input[i] for i in self.input_places)

    def _replaced(self, grads: tuple, changed, what: str) -> tuple:
        if changed is None:
            return grads
        changed = tuple(changed) if isinstance(changed, (tuple, list)) else (changed,)
        if len(changed) != len(grads):
            raise RuntimeError(f"{type(self.module).__name__}: a backward hook returned {len(changed)} "
                               f"{what} entries, expected {len(grads)}")  # fmt: skip
        return changed


class Module:
    """Subclass it, assign parameters, buffers and sub-modules in ``__init__``, define ``forward``."""

    training: bool

    def __init__(self):
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())
        for table in ("_forward_pre_hooks", "_forward_hooks", "_backward_pre_hooks", "_backward_hooks"):
            object.__setattr__(self, table, OrderedDict())

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} has no forward()")

    def __call__(self, *args, **kwargs):
        if (self._forward_pre_hooks or self._forward_hooks or self._backward_pre_hooks or self._backward_hooks
                or _global_forward_pre_hooks or _global_forward_hooks):  # fmt: skip
            return self._call_with_hooks(args, kwargs)
        return self.forward(*args, **kwargs)

    def _call_with_hooks(self, args: tuple, kwargs: dict):
        """``__call__`` when any hook is registered: pre-hooks, forward, hooks, backward-hook nodes.

        If anything raises, the ``always_call`` hooks not yet run get the output so far (None
        when forward did not finish); an error of theirs is only warned about, and the first error is raised.
        """
        hooks = [*_global_forward_hooks.values(), *self._forward_hooks.values()]
        result, called = None, 0
        try:
            for hook, with_kwargs in [*_global_forward_pre_hooks.values(), *self._forward_pre_hooks.values()]:
                if with_kwargs:
                    changed = hook(self, args, kwargs)
                    if changed is not None:
                        if not (isinstance(changed, tuple) and len(changed) == 2):
                            raise RuntimeError(f"{type(self).__name__}: a forward pre-hook with kwargs must "
                                               "return None or a tuple (args, kwargs), got "
                                               f"{type(changed).__name__}")  # fmt: skip
                        args, kwargs = changed
                else:
                    changed = hook(self, args)
                    if changed is not None:
                        args = changed if isinstance(changed, tuple) else (changed,)
            backward_hooks = None
            if (self._backward_hooks or self._backward_pre_hooks) and mg.is_grad_enabled():
                backward_hooks = _BackwardHooks(self)
                args = backward_hooks.wrap_inputs(args)
            result = self.forward(*args, **kwargs)
            for hook, with_kwargs, _ in hooks:
                called += 1  # counted before the call: a hook that raises is not run again
                changed = hook(self, args, kwargs, result) if with_kwargs else hook(self, args, result)
                if changed is not None:
                    result = changed
        except Exception:
            for hook, with_kwargs, always_call in hooks[called:]:
                if always_call:
                    try:
                        hook(self, args, kwargs, result) if with_kwargs else hook(self, args, result)
                    except Exception as error:
                        warnings.warn(f"{type(self).__name__}: a forward hook with always_call=True raised "
                                      f"{error!r}, silenced as forward had already raised", stacklevel=2)  # fmt: skip
            raise
        if backward_hooks is not None:
            result = backward_hooks.wrap_outputs(result)
        return result

    def register_forward_pre_hook(self, hook, *, prepend: bool = False, with_kwargs: bool = False) -> RemovableHandle:
        """``hook(module, args)`` before forward; it may return new args (a tuple, or one value).

        With ``with_kwargs``: ``hook(module, args, kwargs)``, which may return ``(args, kwargs)``.
        ``prepend`` runs it before the hooks already registered."""
        return RemovableHandle(self._forward_pre_hooks, (hook, with_kwargs), prepend)

    def register_forward_hook(
        self, hook, *, prepend: bool = False, with_kwargs: bool = False, always_call: bool = False
    ) -> RemovableHandle:
        """``hook(module, args, output)`` after forward; it may return a new output.

        With ``with_kwargs``: ``hook(module, args, kwargs, output)``. ``always_call`` runs it
        (with output None) even when forward raises."""
        return RemovableHandle(self._forward_hooks, (hook, with_kwargs, always_call), prepend)

    def register_full_backward_pre_hook(self, hook, prepend: bool = False) -> RemovableHandle:
        """``hook(module, grad_output)`` when the gradients of the outputs are known, before the
        module's own backward; it may return a new grad_output (a tuple, one entry per output)."""
        return RemovableHandle(self._backward_pre_hooks, hook, prepend)

    def register_full_backward_hook(self, hook, prepend: bool = False) -> RemovableHandle:
        """``hook(module, grad_input, grad_output)`` once the gradients of the inputs are computed;
        it may return a new grad_input (one entry per positional input, None for non-tensors)."""
        return RemovableHandle(self._backward_hooks, hook, prepend)

    # ------------------------------------------------------------ registration
    def __setattr__(self, name: str, value) -> None:
        params, buffers, modules = (self.__dict__.get(t) for t in ("_parameters", "_buffers", "_modules"))
        if isinstance(value, (Parameter, Module)):
            if params is None:
                raise AttributeError(f"cannot assign {type(value).__name__} {name!r} before Module.__init__() call")
            target = params if isinstance(value, Parameter) else modules
            for table in (params, buffers, modules):
                if table is not target:
                    table.pop(name, None)
            self.__dict__.pop(name, None)
            target[name] = value  # a replaced entry keeps its place in the order
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(
                    f"cannot assign '{type(value).__name__}' as parameter '{name}' (nn.Parameter or None expected)"
                )
            params[name] = None
        elif modules is not None and name in modules:
            if value is not None:
                raise TypeError(
                    f"cannot assign '{type(value).__name__}' as child module '{name}' (nn.Module or None expected)"
                )
            modules[name] = None
        elif buffers is not None and name in buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign '{type(value).__name__}' as buffer '{name}' (Tensor or None expected)")
            buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str):
        # Only called when normal lookup fails: parameters, buffers and children live in tables.
        for table in ("_parameters", "_buffers", "_modules"):
            entries = self.__dict__.get(table)
            if entries is not None and name in entries:
                return entries[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        for table in ("_parameters", "_buffers", "_modules"):
            if name in self.__dict__.get(table, {}):
                del self.__dict__[table][name]
                self._non_persistent.discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers) | set(self._modules))

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter: {name!r} must be a Parameter or None, got {type(param).__name__}")
        self._check_name(name, "_parameters")
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """State saved in state_dict (unless ``persistent=False``) and moved by ``to()``, but not trained."""
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"register_buffer: {name!r} must be a Tensor or None, got {type(tensor).__name__}")
        self._check_name(name, "_buffers")
        self._buffers[name] = tensor
        (self._non_persistent.discard if persistent else self._non_persistent.add)(name)

    def add_module(self, name: str, module: Module | None) -> None:
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module: {name!r} must be a Module or None, got {type(module).__name__}")
        self._check_name(name, "_modules")
        self._modules[name] = module

    register_module = add_module

    def _check_name(self, name: str, table: str) -> None:
        if not isinstance(name, str) or not name or "." in name:
            raise KeyError(f'{type(self).__name__}: a name can\'t be empty or contain ".", got {name!r}')
        if name in self.__dict__ or any(
            name in getattr(self, t) for t in ("_parameters", "_buffers", "_modules") if t != table
        ):
            raise KeyError(f"{type(self).__name__}: attribute {name!r} already exists")

    def get_submodule(self, target: str) -> Module:
        module = self
        for part in target.split(".") if target else []:
            if part not in module._modules:
                raise AttributeError(f"{type(module).__name__} has no attribute `{part}` (looking for {target!r})")
            module = module._modules[part]
        return module

    def get_parameter(self, target: str) -> Parameter:
        path, _, name = target.rpartition(".")
        module = self.get_submodule(path)
        if name not in module._parameters:
            raise AttributeError(f"{type(module).__name__} has no parameter {name!r}")
        return module._parameters[name]

    # --------------------------------------------------------------- traversal
    def named_modules(self, memo=None, prefix: str = "", remove_duplicate: bool = True) -> Iterator:
        memo = set() if memo is None else memo
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, child in self._modules.items():
            if child is not None:
                yield from child.named_modules(memo, f"{prefix}.{name}" if prefix else name, remove_duplicate)

    def modules(self) -> Iterator:
        for _, module in self.named_modules():
            yield module

    def named_children(self) -> Iterator:
        seen = set()
        for name, child in self._modules.items():
            if child is not None and id(child) not in seen:
                seen.add(id(child))
                yield name, child

    def children(self) -> Iterator:
        for _, child in self.named_children():
            yield child

    def _named_members(self, table: str, prefix: str, recurse: bool, remove_duplicate: bool = True) -> Iterator:
        seen = set()
        modules = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse else [(prefix, self)]
        for module_prefix, module in modules:
            for name, value in getattr(module, table).items():
                if value is None or (remove_duplicate and id(value) in seen):
                    continue
                seen.add(id(value))
                yield (f"{module_prefix}.{name}" if module_prefix else name), value

    def named_parameters(self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True) -> Iterator:
        yield from self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True) -> Iterator:
        yield from self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    # ------------------------------------------------------------------ modes
    def train(self, mode: bool = True) -> Module:
        if not isinstance(mode, bool):
            raise ValueError(f"training mode is expected to be boolean, got {mode!r}")
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Gradients to None, or (``set_to_none=False``) zeroed in place, as PyTorch does."""
        for p in self.parameters():
            _zero_grad(p, set_to_none)

    def apply(self, fn) -> Module:
        """Call ``fn`` on every submodule (children first) and on self."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    def to(self, *args, **kwargs) -> Module:
        """Move parameters and buffers to a device and/or cast floating ones to a dtype, in place:
        the Parameter objects stay the same (an optimizer built before keeps working)."""
        device, dtype = _device_and_dtype(args, kwargs)
        for module in self.modules():
            for table in (module._parameters, module._buffers):
                for tensor in table.values():
                    if tensor is not None:
                        _move(tensor, device, dtype)
        return self

    def cpu(self) -> Module:
        return self.to("cpu")

    def cuda(self) -> Module:
        return self.to("cuda")

    def float(self) -> Module:
        return self.to(mg.float32)

    def double(self) -> Module:
        return self.to(mg.float64)

    def half(self) -> Module:
        return self.to(mg.float16)

    # ------------------------------------------------------------- state_dict
    def state_dict(self, destination=None, prefix: str = "", keep_vars: bool = False) -> OrderedDict:
        """Parameters and persistent buffers by dotted name, in registration order (detached)."""
        destination = OrderedDict() if destination is None else destination
        for name, p in self._parameters.items():
            if p is not None:
                destination[prefix + name] = p if keep_vars else p.detach()
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent:
                destination[prefix + name] = b if keep_vars else b.detach()
        for name, child in self._modules.items():
            if child is not None:
                child.state_dict(destination, prefix + name + ".", keep_vars)
        return destination

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False) -> IncompatibleKeys:
        """Copy values (Tensors or arrays) into the parameters and buffers, in place.

        Everything is checked first: with ``strict``, missing and unexpected keys are errors, and
        a shape or dtype that does not match is always one. If anything is wrong, nothing is
        loaded and one RuntimeError lists every problem.
        """
        own = self.state_dict(keep_vars=True)
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        problems = []
        if strict and unexpected:
            problems.append("Unexpected key(s) in state_dict: " + ", ".join(f'"{k}"' for k in unexpected) + ".")
        if strict and missing:
            problems.append("Missing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing) + ".")
        values = {}
        for key, target in own.items():
            if key not in state_dict:
                continue
            value = state_dict[key]
            array = value.data if isinstance(value, Tensor) else value
            if not backend.is_array(array):
                problems.append(f'While copying the parameter named "{key}", expected a Tensor or an array, '
                                f"got {type(value).__name__}.")  # fmt: skip
            elif tuple(array.shape) != tuple(target.shape):
                problems.append(f"size mismatch for {key}: copying a param with shape {tuple(array.shape)} from "
                                f"checkpoint, the shape in current model is {tuple(target.shape)}.")  # fmt: skip
            elif not _castable(array.dtype, target.dtype):
                problems.append(f"dtype mismatch for {key}: copying a param of dtype {array.dtype} from checkpoint, "
                                f"the dtype in current model is {target.dtype}.")  # fmt: skip
            else:
                values[key] = array
        if problems:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t" + "\n\t".join(problems)
                               + "\n(nothing was loaded)")  # fmt: skip
        for key, array in values.items():
            target = own[key]
            target.data[...] = backend.as_array(array, target.dtype, target.device)
            target._bump_version()
        return IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------------ repr
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        extra = self.extra_repr()
        children = [(name, repr(child)) for name, child in self._modules.items() if child is not None]
        if not children:
            return f"{type(self).__name__}({extra})"
        lines = [extra] if extra else []
        lines += [f"({name}): " + text.replace("\n", "\n  ") for name, text in children]
        return f"{type(self).__name__}(\n  " + "\n  ".join(lines) + "\n)"


def _castable(source, target) -> bool:
    """Checkpoint values convert within a kind (float64 -> float32 is fine; float -> int is not)."""
    source, target = backend.numpy.dtype(source), backend.numpy.dtype(target)
    if source.kind == target.kind:
        return True
    return {source.kind, target.kind} <= {"i", "u"}


def _device_and_dtype(args, kwargs):
    device = kwargs.get("device")
    dtype = kwargs.get("dtype")
    for arg in args:
        if isinstance(arg, str):
            device = arg
        elif isinstance(arg, Tensor):
            device, dtype = arg.device, arg.dtype
        else:
            dtype = arg
    if device is not None:
        device = backend.check_device(device)
    if dtype is not None:
        dtype = backend.numpy.dtype(dtype)
        if dtype.kind != "f":
            raise TypeError(f"nn.Module.to only accepts floating point dtypes, but got desired dtype={dtype}")
    return device, dtype


def _move(tensor: Tensor, device, dtype) -> None:
    """Change a tensor's array (and its gradient's) in place; integer buffers keep their dtype."""
    for t in (tensor, tensor.grad):
        if t is None:
            continue
        data = t.data
        if dtype is not None and data.dtype.kind == "f":
            data = data.astype(dtype, copy=False)
        if device is not None and backend.device_of(data) != device:
            data = backend.to_device(data, device)
        if data is not t.data:
            t.data = data
            t._bump_version()


# ------------------------------------------------------------------- containers
class Sequential(Module):
    """Modules applied one after another: ``Sequential(a, b, c)(x) == c(b(a(x)))``."""

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, module in modules[0].items():
                self.add_module(name, module)
        else:
            for i, module in enumerate(modules):
                self.add_module(str(i), module)

    def forward(self, x):
        for module in self._modules.values():
            x = module(x)
        return x

    def __getitem__(self, index):
        if isinstance(index, slice):
            return Sequential(OrderedDict(list(self._modules.items())[index]))
        return list(self._modules.values())[_index(index, len(self))]

    def __setitem__(self, index: int, module: Module) -> None:
        setattr(self, list(self._modules)[_index(index, len(self))], module)

    def __delitem__(self, index) -> None:
        _delete(self, index)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module: Module) -> Sequential:
        self.add_module(str(len(self)), module)
        return self


def _delete(container: Module, index) -> None:
    """Remove entries of a Sequential or ModuleList and number the rest 0, 1, ... again."""
    keys = list(container._modules)
    for key in keys[index] if isinstance(index, slice) else [keys[_index(index, len(keys))]]:
        del container._modules[key]
    remaining = list(container._modules.values())
    container._modules.clear()
    for i, module in enumerate(remaining):
        container._modules[str(i)] = module


def _index(index: int, length: int) -> int:
    if not -length <= index < length:
        raise IndexError(f"index {index} is out of range for a container of {length} modules")
    return index % length


class ModuleList(Module):
    """A list of modules, registered (their parameters are the list's)."""

    def __init__(self, modules=None):
        super().__init__()
        for module in modules or []:
            self.append(module)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return ModuleList(list(self._modules.values())[index])
        return list(self._modules.values())[_index(index, len(self))]

    def __setitem__(self, index: int, module: Module) -> None:
        setattr(self, list(self._modules)[_index(index, len(self))], module)

    def __delitem__(self, index) -> None:
        _delete(self, index)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module: Module) -> ModuleList:
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules) -> ModuleList:
        for module in modules:
            self.append(module)
        return self

    def pop(self, index: int = -1) -> Module:
        module = self[index]
        del self[index]
        return module

    def insert(self, index: int, module: Module) -> None:
        items = list(self._modules.values())
        items.insert(index, module)
        self._modules.clear()
        for i, m in enumerate(items):
            self.add_module(str(i), m)


class ModuleDict(Module):
    """A dict of modules, registered under their keys."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key: str) -> Module:
        return self._modules[key]

    def __setitem__(self, key: str, module: Module) -> None:
        self.add_module(key, module) if key not in self._modules else setattr(self, key, module)

    def __delitem__(self, key: str) -> None:
        del self._modules[key]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def __contains__(self, key: str) -> bool:
        return key in self._modules

    def keys(self):
        return self._modules.keys()

    def values(self):
        return self._modules.values()

    def items(self):
        return self._modules.items()

    def update(self, modules) -> None:
        for key, module in modules.items() if hasattr(modules, "items") else modules:
            self[key] = module


class ParameterList(Module):
    def __init__(self, values=None):
        super().__init__()
        for value in values or []:
            self.append(value)

    def __getitem__(self, index: int) -> Parameter:
        return list(self._parameters.values())[_index(index, len(self))]

    def __len__(self) -> int:
        return len(self._parameters)

    def __iter__(self):
        return iter(self._parameters.values())

    def append(self, value) -> ParameterList:
        self.register_parameter(str(len(self)), value if isinstance(value, Parameter) else Parameter(value))
        return self


class Identity(Module):
    """Returns its input (any arguments to the constructor are ignored, as in PyTorch)."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        return x


class Flatten(Module):
    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Tensor) -> Tensor:
        return x.flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    def __init__(self, dim: int, unflattened_size: tuple):
        super().__init__()
        self.dim, self.unflattened_size = dim, tuple(unflattened_size)

    def forward(self, x: Tensor) -> Tensor:
        dim = self.dim % x.ndim
        if math.prod(self.unflattened_size) != x.shape[dim] and -1 not in self.unflattened_size:
            raise RuntimeError(f"Unflatten: unflattened_size {self.unflattened_size} must multiply up to the size "
                               f"of dim {self.dim}, {x.shape[dim]} (input shape {tuple(x.shape)})")  # fmt: skip
        return x.reshape(*x.shape[:dim], *self.unflattened_size, *x.shape[dim + 1 :])

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"


def _zero_grad(p, set_to_none: bool) -> None:
    """``p.grad`` to None, or zeroed in place (a gradient recorded with create_graph is replaced
    by detached zeros instead, cutting it from its graph)."""
    if p.grad is None:
        return
    if set_to_none:
        p.grad = None
    elif p.grad.grad_fn is not None:
        p.grad = mg.zeros_like(p.grad)
    else:
        p.grad.zero_()
