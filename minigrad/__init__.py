"""minigrad: a small, readable, tape-based reverse-mode autodiff engine on NumPy/CuPy."""

from minigrad import autograd  # noqa: F401  (first: the Tensor builds on it)
from minigrad.autograd import Function, enable_grad, grad, is_grad_enabled, no_grad, set_grad_enabled
from minigrad.backend import (
    bool_ as bool,
    float16,
    float32,
    float64,
    get_default_dtype,
    get_num_threads,
    int32,
    int64,
    manual_seed,
    set_default_dtype,
    set_num_threads,
)
from minigrad.factories import (
    arange,
    empty,
    empty_like,
    eye,
    from_numpy,
    full,
    full_like,
    linspace,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randn,
    randn_like,
    randperm,
    tensor,
    zeros,
    zeros_like,
)
from minigrad.ops.elementwise import (
    abs,
    add,
    ceil,
    clamp,
    clone,
    cos,
    div,
    erf,
    erfc,
    exp,
    floor,
    log,
    maximum,
    minimum,
    mul,
    neg,
    pow,
    relu,
    round,
    rsqrt,
    sigmoid,
    sign,
    sin,
    sqrt,
    sub,
    tanh,
    where,
)
from minigrad.ops.index import gather, index_select, masked_fill, scatter_add, sort, topk
from minigrad.ops.linalg import bmm, einsum, matmul, mm
from minigrad.ops.nondiff import (
    argmax,
    argmin,
    argsort,
    eq,
    ge,
    gt,
    isfinite,
    isinf,
    isnan,
    le,
    logical_and,
    logical_not,
    logical_or,
    lt,
    ne,
)
from minigrad.ops.reduce import amax, amin, cumprod, cumsum, logsumexp, max, mean, min, prod, std, sum, sum_to, var
from minigrad.ops.shape import (
    cat,
    chunk,
    concat,
    contiguous,
    expand,
    flatten,
    flip,
    movedim,
    permute,
    repeat,
    reshape,
    roll,
    split,
    squeeze,
    stack,
    transpose,
    tile,
    tril,
    triu,
    unbind,
    unsqueeze,
    view,
)
from minigrad.tensor import Tensor
from minigrad import cuda  # noqa: E402
from minigrad.gradcheck import gradcheck, gradgradcheck  # noqa: E402

clip = clamp
__version__ = "0.1.0"
from minigrad import functional  # noqa: E402,F401  (registers every op family)
from minigrad.serialization import load, save  # noqa: E402
from minigrad import profiler, viz  # noqa: E402,F401  (mg.profiler.profile, mg.viz.graph)
from minigrad import amp  # noqa: E402  (after the ops: its autocast lists name them)
from minigrad.amp import autocast  # noqa: E402
