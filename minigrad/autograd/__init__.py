"""Recording ops and walking them backwards.

Every differentiable op is a ``Function`` subclass. Calling ``Op.apply(*inputs)`` runs
``forward`` on the raw arrays; when grad mode is on and an input requires grad, the
``Function`` instance stays behind as the node of the graph: the output tensor points to
it (``grad_fn``) and it points to where each input's gradient goes (``next_edges``).

``backward`` walks those nodes from the output in reverse topological order, without
recursion, calling each node's ``backward`` with the gradient of its outputs. Backward
formulas are written with Tensor ops: with ``create_graph=True`` they are recorded like
any forward computation, which is what makes double backward work for every op.
"""

from __future__ import annotations

import functools
import os
import traceback
import warnings
import weakref

from minigrad import backend

# ------------------------------------------------------------------------ grad mode
# Grad mode is per process (not per thread): a flag read on every op.
_grad_enabled = True


def is_grad_enabled() -> bool:
    return _grad_enabled


# Autocast (minigrad.amp): None when off, else the function ``(op class, inputs) -> inputs`` that
# casts an op's inputs to the dtype its autocast list asks for. Read once per op.
_autocast = None


def _set_autocast(cast_inputs) -> None:
    global _autocast
    _autocast = cast_inputs


def autocast_inputs(op, *inputs) -> tuple:
    """``inputs`` cast as autocast's lists ask for ``op`` (unchanged when autocast is off). A composite
    function on the lists (a loss built from several ops) calls it at entry, as ``Function.apply``
    does for every op, so that all of its ops run in that dtype."""
    return inputs if _autocast is None else _autocast(op, inputs)


def _set_grad_enabled(mode: bool) -> None:
    global _grad_enabled
    _grad_enabled = bool(mode)


class _GradModeContext:
    """A context manager that is also a decorator (``@no_grad()`` or ``@no_grad``)."""

    mode: bool

    def __new__(cls, func=None):
        self = super().__new__(cls)
        if func is not None and callable(func):  # bare @no_grad
            return self(func)
        return self

    def __enter__(self):
        self._prev = _grad_enabled
        _set_grad_enabled(self.mode)

    def __exit__(self, *exc):
        _set_grad_enabled(self._prev)

    def __call__(self, func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with type(self)():
                return func(*args, **kwargs)

        return wrapper


class no_grad(_GradModeContext):
    """Ops inside record nothing: for evaluation and parameter updates."""

    mode = False


class enable_grad(_GradModeContext):
    """Turn recording back on inside a ``no_grad`` block."""

    mode = True


class set_grad_enabled:
    """``set_grad_enabled(False)`` switches recording off at once; as a context it restores."""

    def __init__(self, mode: bool):
        self._prev = _grad_enabled
        _set_grad_enabled(mode)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _set_grad_enabled(self._prev)


# ------------------------------------------------------------------------ profiler
# The open ``minigrad.profiler.profile`` or None: read once per op and once per node.
_profiler = None


# ------------------------------------------------------------------------ anomaly mode
# Off by default: then the only cost is this one flag, read once per op and once per node.
_anomaly_enabled = False
_anomaly_check_nan = True


def is_anomaly_enabled() -> bool:
    return _anomaly_enabled


def is_anomaly_check_nan_enabled() -> bool:
    return _anomaly_check_nan


def _set_anomaly(mode: bool, check_nan: bool) -> None:
    global _anomaly_enabled, _anomaly_check_nan
    _anomaly_enabled, _anomaly_check_nan = bool(mode), bool(check_nan)


class detect_anomaly:
    """Inside, every recorded op keeps the traceback of the line that created it, and the first
    op whose output (forward) holds NaN, or an inf it made from finite inputs and constants, or
    whose input gradient (backward) holds NaN/inf, raises, naming the op, the input and that
    line. Slow: for finding a bug, not for training."""

    def __init__(self, check_nan: bool = True):
        self.check_nan = check_nan

    def __enter__(self):
        self._prev = (_anomaly_enabled, _anomaly_check_nan)
        _set_anomaly(True, self.check_nan)

    def __exit__(self, *exc):
        _set_anomaly(*self._prev)


class set_detect_anomaly:
    """``set_detect_anomaly(True)`` turns anomaly mode on at once; as a context it restores."""

    def __init__(self, mode: bool, check_nan: bool = True):
        self._prev = (_anomaly_enabled, _anomaly_check_nan)
        _set_anomaly(mode, check_nan)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _set_anomaly(*self._prev)


_LIBRARY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the minigrad package


def _user_stack() -> list:
    """Where an op is being created, without the engine's own frames."""
    return [f for f in traceback.extract_stack() if not f.filename.startswith(_LIBRARY)]


def _format_stack(stack) -> str:
    return "".join(traceback.format_list(stack)) if stack else "  (no frames outside minigrad)\n"


def _non_finite(array) -> str | None:
    """'nan', 'inf' or None for a floating array."""
    if array.dtype.kind not in "fc":
        return None
    xp = backend.array_module(array)
    if bool(xp.isnan(array).any()):
        return "nan"
    return "inf" if bool(xp.isinf(array).any()) else None


def _infinite_constant(value) -> bool:
    return isinstance(value, float) and value in (float("inf"), float("-inf"))


def _check_forward(fn, inputs, params, outputs) -> None:
    """NaN in an output is an anomaly; so is inf, where the op made it from finite inputs and
    constants (log(0), exp overflow). An infinity passed on, such as a -inf mask filled in by
    masked_fill(x, mask, -inf) or added to attention scores, is meant: it is not reported."""
    fn._anomaly_stack = stack = _user_stack()
    if not _anomaly_check_nan:
        return
    for i, out in enumerate(outputs):
        bad = _non_finite(out)
        if bad is None:  # the common case: the inputs need no scan
            continue
        carriers = [f"input {k} holds {b}" for k, x in enumerate(inputs)
                    if isinstance(x, Tensor) and (b := _non_finite(x.data))]  # fmt: skip
        given_inf = any(_infinite_constant(x) for x in (*inputs, *params.values())) or any("inf" in c for c in carriers)
        if bad == "inf" and given_inf:
            continue
        source = "; ".join(carriers) if carriers else "every input is finite"
        raise RuntimeError(
            f"anomaly mode: {fn.name} produced {bad} in output {i} "
            f"({source}). The op was created at:\n{_format_stack(stack)}"
        )


def _created_at(node) -> str:
    stack = node.__dict__.get("_anomaly_stack")
    if stack is None:
        return "(its forward ran with anomaly mode off, so where it was created is unknown)"
    return f"The forward op was created at:\n{_format_stack(stack)}"


def _check_backward(node, input_grads) -> None:
    for i, g in enumerate(input_grads):
        value = g.data if isinstance(g, Tensor) else g  # raw arrays (or numbers) outside a recorded backward
        bad = None if g is None else _non_finite(value if backend.is_array(value) else backend.numpy.asarray(value))
        if bad is not None:
            raise RuntimeError(
                f"anomaly mode: {node.name}.backward returned {bad} in the gradient for input {i}. {_created_at(node)}"
            )


# --------------------------------------------------------------------- saved tensors
class SavedTensor:
    """What a node keeps for backward: an input Tensor, one of its own outputs, or a constant.

    The version of a saved tensor is remembered so that backward can tell, and say, when
    the tensor was changed in place after the op used it. An output is kept as its array
    (not its Tensor, which would point back at the node: a reference cycle) and becomes a
    Tensor again, attached to the node, when backward asks for it.
    """

    __slots__ = ("tensor", "data", "output_nr", "counter", "version")

    def __init__(self, tensor=None, data=None, output_nr=-1, counter=None, version=0):
        self.tensor, self.data, self.output_nr = tensor, data, output_nr
        self.counter, self.version = counter, version

    def unpack(self, node: Function):
        if self.tensor is not None:
            current = self.tensor._version_value()
            if current != self.version:
                raise _modified_error(node, self.tensor.shape, self.version, current)
            return self.tensor
        if self.output_nr >= 0:
            if self.counter.value != self.version:
                raise _modified_error(node, self.data.shape, self.version, self.counter.value)
            out = Tensor._make(self.data, True, node, self.output_nr)
            out._version = self.counter
            return out
        return Tensor._make(self.data)

    def unpack_array(self, node: Function):
        """The saved value as a raw array (for a backward that runs on arrays), version-checked."""
        if self.tensor is not None:
            if self.tensor._version_value() != self.version:
                raise _modified_error(node, self.tensor.shape, self.version, self.tensor._version_value())
            return self.tensor.data
        if self.output_nr >= 0 and self.counter.value != self.version:
            raise _modified_error(node, self.data.shape, self.version, self.counter.value)
        return self.data


def _modified_error(node, shape, saved, current):
    return RuntimeError(
        f"{node.name}: a tensor of shape {tuple(shape)} that backward needs was modified in "
        f"place after the op used it (version {current}, saved at version {saved}); "
        "change it out of place, or .clone() it before the in-place op"
    )


class VersionCounter:
    """Counts in-place changes to an array; views share their base's counter."""

    __slots__ = ("value",)

    def __init__(self):
        self.value = 0


# ------------------------------------------------------------------------- Function
class Function:
    """One op. Subclasses define:

    - ``forward(self, *arrays, **params)``: arrays in, an array (or a tuple) out. Call
      ``self.save_for_backward(*arrays)`` with what backward needs, and keep plain
      values (shapes, dims) as attributes.
    - ``backward(self, *grads)``: one gradient Tensor per output in, one gradient per
      input out (a tuple when there are several inputs; ``None`` where an input needs
      none), written with Tensor ops.

    ``self.needs_input_grad`` (one bool per input) is set before ``forward`` runs, so an
    op saves only what the gradients it will compute need (as PyTorch does).

    Inputs may be Tensors or constants (Python numbers, arrays). Gradients come back in
    the shape of the op's output broadcast; the engine sums them down to each input's
    shape and casts them to its dtype, so no op undoes broadcasting itself.
    """

    registry: dict[str, type] = {}
    n_outputs = 1
    view = False  # True for ops whose output may share memory with their first input
    exact_dtype = False  # True for ops whose output dtype is chosen, not promoted (casts)
    # True when backward uses only what Tensors and arrays share (+ - * / ** @, comparisons, reshape,
    # mT, sum over axes): then,
    # unless the backward pass is being recorded, the engine runs it on the raw arrays and skips
    # recording a node for every operation in the formula.
    array_backward = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("_"):
            if cls.__name__ in Function.registry:
                raise TypeError(f"op {cls.__name__} is registered twice")
            Function.registry[cls.__name__] = cls

    @property
    def name(self) -> str:
        return type(self).__name__

    def forward(self, *arrays, **params):
        raise NotImplementedError

    def backward(self, *grads):
        raise NotImplementedError

    def save_for_backward(self, *arrays) -> None:
        self._to_save = arrays

    @property
    def saved_tensors(self) -> tuple:
        saved = self.__dict__.get("_saved")
        if saved is None:
            raise _freed_error(self)
        if self.__dict__.get("_on_arrays"):
            return tuple([s.unpack_array(self) if type(s) is SavedTensor else s for s in saved])
        return tuple([s.unpack(self) if type(s) is SavedTensor else s for s in saved])

    def register_prehook(self, output_nr: int, hook):
        hooks = self.__dict__.setdefault("pre_hooks", {})
        hooks.setdefault(output_nr, []).append(hook)
        return _HookHandle(hooks[output_nr], hook)

    def release(self) -> None:
        """Free everything the node holds (saved arrays, edges): the graph is spent."""
        if _profiler is not None:
            _profiler._release(self)
        self.__dict__.clear()
        self._freed = True

    def __repr__(self):
        return f"<{self.name}>"

    @classmethod
    def apply(cls, *inputs, **params):
        """Run the op on ``inputs`` and, when gradients are needed, record it.

        Every op in every step comes through here, so it is written for speed: one pass over the
        inputs, no generators, and the single-output case (almost every op) without a loop."""
        if _autocast is not None:
            inputs = _autocast(cls, inputs)
        arrays, needs, edges, record = [], [], [], False
        for x in inputs:
            if isinstance(x, Tensor):
                arrays.append(x.data)
                if x._requires_grad and _grad_enabled:
                    # where the gradient for x goes: (node or leaf, output_nr, shape, dtype)
                    target = x if x.grad_fn is None else x.grad_fn
                    edges.append((target, x._output_nr, x.data.shape, x.data.dtype))
                    needs.append(True)
                    record = True
                    continue
            else:
                arrays.append(x)
            needs.append(False)
            edges.append(None)
        if backend.cupy is not None and not backend.same_device(arrays):
            devices = ", ".join(backend.device_of(a) for a in arrays if backend.is_array(a))
            raise RuntimeError(f"{cls.__name__}: expected all tensors on one device, got {devices}")

        fn = cls.__new__(cls)
        fn.needs_input_grad = tuple(needs)
        try:
            out = fn.forward(*arrays, **params) if _profiler is None else _profiler._forward(fn, arrays, params)
        except (ValueError, IndexError, TypeError) as error:
            raise _op_error(cls.__name__, error, inputs) from error

        if type(out) is tuple:
            raw = out
            fn.n_outputs = len(raw)
            results = []
            for i, o in enumerate(raw):
                data = _as_output(o, inputs, cls.exact_dtype)
                grad = record and data.dtype.kind == "f"
                results.append(Tensor._make(data, grad, fn if grad else None, i))
        else:
            raw = (out,)
            # already what _as_output would give
            plain = type(out) is _NDARRAY and out.dtype is not _FLOAT64 and out.dtype is not _FLOAT16
            data = out if plain else _as_output(out, inputs, cls.exact_dtype)
            grad = record and data.dtype.kind == "f"
            results = (Tensor._make(data, grad, fn if grad else None, 0),)
        if cls.view:
            _link_view(results[0], inputs[0])

        to_save = fn.__dict__.pop("_to_save", None)
        if record:
            fn.next_edges = tuple(edges)
            if to_save is not None:
                fn._saved = tuple([_pack(a, inputs, arrays, raw, results) for a in to_save])
        if _anomaly_enabled:
            _check_forward(fn, inputs, params, [r.data for r in results])
        return results[0] if len(results) == 1 else tuple(results)


_NDARRAY, _FLOAT64, _FLOAT16 = backend.numpy.ndarray, backend.float64, backend.float16
_NUMBERS = (bool, int, float)


def _as_output(data, inputs, exact_dtype):
    """An op's raw result as an array of the dtype PyTorch would give."""
    if type(data) is not _NDARRAY and not backend.is_array(data):  # a NumPy scalar or a Python number
        data = backend.array_module(next((x.data for x in inputs if isinstance(x, Tensor)), None)).asarray(data)
    if (data.dtype is _FLOAT64 or data.dtype is _FLOAT16) and not exact_dtype:
        # NumPy widens an integer with a float16 or a Python float to float64, and gives a
        # bool's log in float16; PyTorch keeps the widest floating-point input's dtype, and
        # takes the default dtype when no input is floating point.
        floats = [x.data.dtype for x in inputs if isinstance(x, Tensor) and x.data.dtype.kind == "f"]
        if data.dtype not in floats:
            data = data.astype(max(floats, key=lambda d: d.itemsize) if floats else backend.get_default_dtype())
    return data


def _pack(array, inputs, arrays, raw_outputs, results):
    """Classify a saved array: one of the op's inputs, one of its outputs, or a constant."""
    if array is None or type(array) in _NUMBERS:  # kept as it is
        return array
    for x, a in zip(inputs, arrays):
        if a is array and isinstance(x, Tensor):
            return SavedTensor(x, None, -1, None, 0 if x._version is None else x._version.value)
    for i, raw in enumerate(raw_outputs):
        if raw is array:  # (a NumPy scalar output became a 0-d array in results)
            out = results[i]
            counter = out._version_counter()
            return SavedTensor(None, out.data, i, counter, counter.value)
    if not backend.is_array(array):  # a number of another type: kept as it is
        return array
    return SavedTensor(None, array)


def _link_view(out, base):
    """An output that shares memory with its input shares its version counter too."""
    if isinstance(base, Tensor) and backend.array_module(out.data).may_share_memory(out.data, base.data):
        out._version = base._version_counter()
        out._base = base if base._base is None else base._base


def _describe(inputs) -> str:
    parts = []
    for x in inputs:
        if isinstance(x, Tensor):
            parts.append(f"Tensor{tuple(x.shape)} {x.dtype}")
        elif backend.is_array(x):
            parts.append(f"array{tuple(x.shape)} {x.dtype}")
        else:
            parts.append(type(x).__name__)
    return ", ".join(parts)


def _op_error(name, error, inputs):
    message = f"{name}: {error} (inputs: {_describe(inputs)})"
    if isinstance(error, IndexError):
        return IndexError(message)
    if isinstance(error, TypeError):
        return TypeError(message)
    return RuntimeError(message)


def _freed_error(node):
    return RuntimeError(
        f"{node.name}: trying to backward through the graph a second time (or to read "
        "saved tensors after backward freed them); pass retain_graph=True to the first "
        "backward if you need to go through the graph again"
    )


class _HookHandle:
    def __init__(self, hooks: list, hook):
        self._hooks, self._hook = hooks, hook

    def remove(self) -> None:
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)


# id(leaf) -> hooks called with the leaf once backward has accumulated its gradient into .grad
# (Tensor.register_post_accumulate_grad_hook); the entry goes when the leaf does. Keyed by id:
# a Tensor's == is elementwise, so it cannot key a WeakKeyDictionary.
_post_accumulate_hooks: dict = {}
_final_callbacks: list = []


def register_post_accumulate_grad_hook(leaf, hook) -> _HookHandle:
    key = id(leaf)
    if key not in _post_accumulate_hooks:
        _post_accumulate_hooks[key] = []
        weakref.finalize(leaf, _post_accumulate_hooks.pop, key, None)
    hooks = _post_accumulate_hooks[key]
    hooks.append(hook)
    return _HookHandle(hooks, hook)


def queue_callback(callback) -> None:
    """Call ``callback()`` once the backward pass now running has finished (as PyTorch's
    ``Variable._execution_engine.queue_callback``): DDP checks there that every bucket was reduced."""
    _final_callbacks.append(callback)


def _pending_leaves(order):
    """For each leaf with post-accumulate hooks: [leaf, edges still to come in this backward, got a gradient]."""
    pending = {}
    for node in order:
        for edge in node.next_edges:
            if edge is not None and not isinstance(edge[0], Function) and _post_accumulate_hooks.get(id(edge[0])):
                entry = pending.setdefault(id(edge[0]), [edge[0], 0, False])
                entry[1] += 1
    return pending


def _edges_done(node, pending) -> None:
    """``node`` has run (or had no gradient to pass): its leaves whose every edge is done get their hooks."""
    for edge in node.next_edges:
        entry = None if edge is None else pending.get(id(edge[0]))
        if entry is not None:
            entry[1] -= 1
            if entry[1] == 0 and entry[2]:
                _post_accumulate(entry[0])


def _post_accumulate(leaf) -> None:
    for hook in list(_post_accumulate_hooks.get(id(leaf), ())):
        hook(leaf)


# --------------------------------------------------------------------------- engine
def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False) -> None:
    """Accumulate d(tensors)/d(leaf) into every leaf's ``.grad``."""
    tensors, grads = _roots(tensors, grad_tensors, "backward")
    _run(tensors, grads, retain_graph, create_graph, capture=None)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, allow_unused=False):
    """The gradients of ``outputs`` with respect to ``inputs``, returned, not accumulated."""
    outputs, grads = _roots(outputs, grad_outputs, "grad")
    single = isinstance(inputs, Tensor)
    inputs = (inputs,) if single else tuple(inputs)
    for i, x in enumerate(inputs):
        if not isinstance(x, Tensor) or not x._requires_grad:
            raise RuntimeError(f"grad: input {i} does not require grad")
    captured = _run(outputs, grads, retain_graph, create_graph, capture=inputs)
    result = []
    for i, x in enumerate(inputs):
        g = captured.get(_capture_key(x))
        if g is None and not allow_unused:
            raise RuntimeError(
                f"grad: input {i} was not used to compute the outputs; pass allow_unused=True to get None"
            )
        result.append(g)
    return tuple(result)


def _roots(tensors, grads, caller):
    tensors = (tensors,) if isinstance(tensors, Tensor) else tuple(tensors)
    if grads is None or isinstance(grads, Tensor):
        grads = (grads,) * len(tensors) if grads is None else (grads,)
    grads = tuple(grads)
    if len(grads) != len(tensors):
        raise RuntimeError(f"{caller}: got {len(tensors)} tensors but {len(grads)} gradients")
    seeds = []
    for i, (t, g) in enumerate(zip(tensors, grads)):
        if not t._requires_grad:
            raise RuntimeError(f"{caller}: tensor {i} does not require grad and has no grad_fn")
        if g is None:
            if t.data.size != 1:
                raise RuntimeError(
                    f"{caller}: a gradient can be created implicitly only for a scalar output; "
                    f"tensor {i} has shape {tuple(t.shape)}: pass gradient="
                )
            g = Tensor._make(backend.array_module(t.data).ones_like(t.data))
        else:
            if not isinstance(g, Tensor):
                g = Tensor._make(backend.as_array(g, t.dtype, t.device))
            if tuple(g.shape) != tuple(t.shape):
                raise RuntimeError(f"{caller}: gradient {i} has shape {tuple(g.shape)}, expected {tuple(t.shape)}")
        seeds.append(g)
    return tensors, seeds


def _capture_key(x):
    return ("leaf", id(x)) if x.grad_fn is None else (x.grad_fn, x._output_nr)


def _topological_order(roots):
    """Nodes reachable from ``roots``, each after every node that feeds it a gradient."""
    order, visited = [], set()
    for root in roots:
        if root in visited:
            continue
        visited.add(root)
        stack = [(root, iter(_edges_of(root)))]
        while stack:
            node, edges = stack[-1]
            for edge in edges:
                if edge is not None:
                    child = edge[0]
                    if child not in visited and isinstance(child, Function):
                        visited.add(child)
                        stack.append((child, iter(_edges_of(child))))
                        break
            else:
                stack.pop()
                order.append(node)
    order.reverse()
    return order


def _edges_of(node) -> tuple:
    if "_freed" in node.__dict__:
        raise _freed_error(node)
    return node.next_edges


def _run(roots, seeds, retain_graph, create_graph, capture):
    if retain_graph is None:
        retain_graph = create_graph
    capture_keys = None if capture is None else {_capture_key(x) for x in capture}
    captured = {}
    # Arrays handed out as gradients: a leaf's first gradient is copied when it could
    # share memory with another gradient or with a seed.
    handed_out = {id(s.data) for s in seeds}

    order = _topological_order([t.grad_fn for t in roots if t.grad_fn is not None])  # fails if freed
    buffers = {}
    for t, g in zip(roots, seeds):
        if t.grad_fn is None:
            _deliver_to_leaf(t, g, create_graph, capture_keys, captured, handed_out)
            if capture is None and id(t) in _post_accumulate_hooks:
                _post_accumulate(t)
        else:
            _accumulate(buffers, t.grad_fn, t._output_nr, g if create_graph else g.data)

    needed = _needed_nodes(order, capture_keys) if capture_keys is not None else None
    pending = _pending_leaves(order) if capture is None and _post_accumulate_hooks else None

    previous_mode, anomaly, autocast = _grad_enabled, (_anomaly_enabled, _anomaly_check_nan), _autocast
    _set_grad_enabled(create_graph)
    _set_autocast(None)  # backward runs each op in the dtypes its forward used
    if anomaly[0]:  # the ops inside backward formulas are checked as the node's gradients, not one by one
        _set_anomaly(False, anomaly[1])
    try:
        for node in order:
            grads = buffers.pop(node, None)
            if grads is not None:
                hooks = node.__dict__.get("pre_hooks")
                if hooks:
                    grads = _run_hooks(node, hooks, grads, create_graph)
                if capture_keys is not None:
                    for nr, g in enumerate(grads):
                        if (node, nr) in capture_keys and g is not None:
                            captured[(node, nr)] = g if create_graph else Tensor._make(g)
                if needed is None or node in needed:
                    args = (grads, buffers, create_graph, capture_keys, captured, handed_out, anomaly, pending)
                    if _profiler is None:
                        _run_node(node, *args)
                    else:
                        _profiler._backward(node, _run_node, *args)
            if pending:
                _edges_done(node, pending)
            if not retain_graph:
                node.release()
        while _final_callbacks:
            _final_callbacks.pop(0)()
    finally:
        _final_callbacks.clear()
        _set_grad_enabled(previous_mode)
        _set_anomaly(*anomaly)
        _set_autocast(autocast)
    return captured


def _run_node(node, grads, buffers, create_graph, capture_keys, captured, handed_out, anomaly, pending):
    """Call one node's backward and route each input's gradient along its edge.

    A recorded backward (``create_graph=True``) passes Tensors from node to node. Otherwise the
    gradients travel as raw arrays: an ``array_backward`` node takes and returns them as they are,
    any other node gets them wrapped in Tensors for its formula, and a leaf's ``.grad`` is the
    one Tensor made at the end of the edge."""
    try:
        if create_graph:
            input_grads = node.backward(*grads)
            if type(input_grads) is not tuple:
                input_grads = (input_grads,)
        elif node.array_backward:
            node._on_arrays = True
            arrays = node.backward(*grads)
            input_grads = arrays if type(arrays) is tuple else (arrays,)
        else:
            out = node.backward(*[None if g is None else Tensor._make(g) for g in grads])
            out = out if type(out) is tuple else (out,)
            input_grads = tuple(None if g is None else _unwrap(g, node) for g in out)
    except Exception:
        if anomaly[0]:  # as PyTorch: say where the failing op's forward ran, then let the error through
            warnings.warn(f"anomaly mode: error in {node.name}.backward. {_created_at(node)}", stacklevel=2)
        raise
    if anomaly[0] and anomaly[1]:
        _check_backward(node, input_grads)
    edges = node.next_edges
    if len(input_grads) != len(edges):
        raise RuntimeError(f"{node.name}.backward returned {len(input_grads)} gradients for {len(edges)} inputs")
    for edge, g in zip(edges, input_grads):
        if edge is None or g is None:
            continue
        target, nr, shape, dtype = edge
        if create_graph:
            if type(g) is not Tensor or g.data.shape != shape or g.data.dtype != dtype:
                g = _conform(g, shape, dtype, node)
        elif type(g) is not _NDARRAY or g.shape != shape or g.dtype != dtype:
            g = _conform_array(g, shape, dtype, node, grads)
        if isinstance(target, Function):
            _accumulate(buffers, target, nr, g)
        else:
            leaf_grad = g if create_graph else Tensor._make(g)
            _deliver_to_leaf(target, leaf_grad, create_graph, capture_keys, captured, handed_out)
            if pending and id(target) in pending:
                pending[id(target)][2] = True


def _conform_array(g, shape, dtype, node, grads):
    """``_conform`` for a raw gradient; a NumPy scalar or a number becomes an array first, on
    the device of the gradients the node was given."""
    if not backend.is_array(g):
        g = backend.array_module(next(x for x in grads if x is not None)).asarray(g)
    return _conform(Tensor._make(g), shape, dtype, node).data


def _unwrap(g, node, source="") -> object:
    """The array of a gradient that a Tensor formula (or a hook on ``node``) returned."""
    if not isinstance(g, Tensor):
        where = f"{source} {node.name}" if source else f"{node.name}.backward"
        raise TypeError(f"{where} returned a {type(g).__name__}, expected a Tensor")
    return g.data


def _accumulate(buffers, node, nr, g):
    slots = buffers.get(node)
    if slots is None:
        slots = buffers[node] = [None] * node.n_outputs
    slots[nr] = g if slots[nr] is None else slots[nr] + g


def _needed_nodes(order, capture_keys):
    """The nodes whose backward leads to a captured input (for ``grad``)."""
    needed = set()
    for node in reversed(order):  # children before parents
        for edge in node.next_edges:
            if edge is None:
                continue
            target, nr = edge[0], edge[1]
            if isinstance(target, Function):
                if target in needed or (target, nr) in capture_keys:
                    needed.add(node)
                    break
            elif ("leaf", id(target)) in capture_keys:
                needed.add(node)
                break
    return needed


def _run_hooks(node, hooks, grads, create_graph):
    """A node's pre-hooks on the gradients of its outputs (Tensors for the hooks, whatever the pass carries)."""
    grads = [g if create_graph or g is None else Tensor._make(g) for g in grads]
    for nr, fns in hooks.items():
        # retain_grad's hook runs last, so .grad shows what the other hooks made of it
        for fn in sorted(fns, key=lambda f: getattr(f, "retains_grad", False)):
            if grads[nr] is not None:
                replaced = fn(grads[nr])
                if replaced is not None:
                    grads[nr] = replaced
    return grads if create_graph else [None if g is None else _unwrap(g, node, "a hook on") for g in grads]


def _conform(g, shape, dtype, node):
    """Sum a gradient down to its input's shape (undo broadcasting) and cast its dtype."""
    if not isinstance(g, Tensor):
        raise TypeError(f"{node.name}.backward returned a {type(g).__name__}, expected a Tensor")
    if g.data.shape != shape:
        try:
            g = g.sum_to(shape)
        except RuntimeError as error:
            raise RuntimeError(
                f"{node.name}.backward returned a gradient of shape {tuple(g.shape)} "
                f"for an input of shape {tuple(shape)}"
            ) from error
    if g.data.dtype != dtype:
        g = g.to(dtype)
    return g


def _deliver_to_leaf(leaf, g, create_graph, capture_keys, captured, handed_out):
    for hook in leaf._hooks or ():
        replaced = hook(g)
        if replaced is not None:
            g = replaced
    if capture_keys is not None:
        key = ("leaf", id(leaf))
        if key in capture_keys:
            captured[key] = g if key not in captured else captured[key] + g
        return
    if leaf.grad is None:
        if g.data.base is not None or id(g.data) in handed_out:
            g = g.clone()
        handed_out.add(id(g.data))
        leaf.grad = g if create_graph else g.detach()
    else:
        leaf.grad = leaf.grad + g if create_graph else Tensor._make(leaf.grad.data + g.data)


def backward_through(composite, inputs, grads, needs_input_grad):
    """Gradients of ``composite(*inputs)``, recorded so they can be differentiated again.

    A fused op (batch norm, softmax + cross-entropy, attention, ...) computes its first
    backward with a fast formula on arrays. When backward is itself being recorded
    (``create_graph=True``: grad mode is on inside ``backward``), it calls this with the
    composition of primitive ops it replaces, the same function its tests compare it to,
    so double backward is exact by construction::

        def backward(self, grad):
            if mg.is_grad_enabled():
                return backward_through(reference_fn, self.saved_tensors, (grad,), self.needs_input_grad)
            ...fast path...
    """
    with enable_grad():
        outputs = composite(*inputs)
    outputs = outputs if isinstance(outputs, (tuple, list)) else (outputs,)
    wrt = [x for x, need in zip(inputs, needs_input_grad) if need]
    pairs = [(o, g) for o, g in zip(outputs, grads) if g is not None and o.requires_grad]
    if not pairs:
        return tuple(None for _ in needs_input_grad)
    found = iter(grad([o for o, _ in pairs], wrt, [g for _, g in pairs], create_graph=True, allow_unused=True))
    return tuple(next(found) if need else None for need in needs_input_grad)


def retain_grad_hook(tensor):
    """A hook that stores a non-leaf tensor's gradient in its ``.grad`` (weakly held)."""
    ref = weakref.ref(tensor)

    def hook(g):
        t = ref()
        if t is not None:
            t.grad = g if t.grad is None else t.grad + g

    hook.retains_grad = True
    return hook


from minigrad.autograd import functional  # noqa: E402,F401  (mg.autograd.functional, as in PyTorch)
from minigrad.tensor import Tensor  # noqa: E402  (Tensor builds on Function: import after it)
