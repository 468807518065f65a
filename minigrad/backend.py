"""The one place that knows NumPy from CuPy.

Every op gets its array module with ``xp = array_module(x)`` and writes the same code
for both devices: ``"cpu"`` arrays are NumPy's, ``"cuda"`` arrays are CuPy's. No other
module imports NumPy or CuPy for array math.
"""

from __future__ import annotations

import os
import threading

# OpenBLAS's worker threads busy-wait after every GEMM for 2^28 cycles (about 0.1 s) before they
# sleep, holding the cores that minigrad's own threads need for the elementwise kernels between two
# GEMMs (GELU's forward takes twice as long beside a spinning thread). 2^20 cycles (a few tenths of
# a millisecond) still catches back-to-back GEMMs. OpenBLAS reads the setting when NumPy loads it,
# so it counts only where minigrad is imported before NumPy; a value in the environment wins.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "20")

import numpy  # noqa: E402

try:  # CuPy is the optional GPU extra: pip install "minigrad[gpu]"
    import cupy
except ImportError:  # pragma: no cover - depends on the machine
    cupy = None

# ----------------------------------------------------------------------------- dtypes
float16 = numpy.dtype("float16")
float32 = numpy.dtype("float32")
float64 = numpy.dtype("float64")
int32 = numpy.dtype("int32")
int64 = numpy.dtype("int64")
bool_ = numpy.dtype("bool")

_default_float = float32


def get_default_dtype() -> numpy.dtype:
    """The dtype Python floats become (float32 unless changed)."""
    return _default_float


def set_default_dtype(dtype) -> None:
    """Make Python floats (and float factories) produce ``dtype``: float16/32/64."""
    global _default_float
    dtype = numpy.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"set_default_dtype: expected a floating dtype, got {dtype}")
    _default_float = dtype


def check_dtype(dtype, op: str = "tensor") -> numpy.dtype:
    """``dtype`` as a NumPy dtype if minigrad supports it (bool, integers, float16/32/64), else a
    TypeError naming the op and the dtype (complex, float128, strings and objects are refused)."""
    try:
        dtype = numpy.dtype(dtype)
    except TypeError as error:
        raise TypeError(f"{op}: {dtype!r} is not a dtype") from error
    if dtype.kind not in "biuf" or dtype.itemsize > 8:
        raise TypeError(
            f"{op}: dtype {dtype} is not supported (use bool, an integer type, float16, float32 or float64)"
        )
    return dtype


def is_floating(dtype) -> bool:
    return dtype.kind == "f"


# ---------------------------------------------------------------------------- devices
DEVICES = ("cpu", "cuda")


def cuda_is_available() -> bool:
    """True when CuPy is installed and sees at least one GPU."""
    if cupy is None:
        return False
    try:
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # CuPy raises its own CUDA errors when no driver is present
        return False


def check_device(device) -> str:
    """Normalise a device name and fail clearly when it cannot be used."""
    name = str(device)
    if name.startswith("cuda:"):  # one GPU is supported: cuda:0 is cuda
        name = "cuda" if name == "cuda:0" else name
    if name not in DEVICES:
        raise ValueError(f"unknown device {device!r}: expected 'cpu' or 'cuda'")
    if name == "cuda" and cupy is None:
        raise RuntimeError(
            "device 'cuda' needs CuPy, which is not installed: "
            "pip install 'minigrad[gpu]' (or cupy-cuda12x matching your CUDA)"
        )
    if name == "cuda" and not cuda_is_available():
        raise RuntimeError("device 'cuda': CuPy is installed but finds no GPU")
    return name


_default_device = "cpu"


def get_default_device() -> str:
    return _default_device


def set_default_device(device) -> None:
    """Make factories create tensors on ``device`` unless told otherwise."""
    global _default_device
    _default_device = check_device(device)


if os.environ.get("MINIGRAD_DEVICE"):
    set_default_device(os.environ["MINIGRAD_DEVICE"])


def array_module(x):
    """``numpy`` for CPU arrays, ``cupy`` for GPU arrays (Chainer's get_array_module)."""
    if cupy is not None and isinstance(x, cupy.ndarray):
        return cupy
    return numpy


def module_for(device: str):
    return cupy if device == "cuda" else numpy


def device_of(x) -> str:
    if cupy is not None and isinstance(x, cupy.ndarray):
        return "cuda"
    return "cpu"


def same_device(arrays) -> bool:
    """Whether all arrays live on one device (always true without CuPy)."""
    if cupy is None:
        return True
    kinds = {isinstance(a, cupy.ndarray) for a in arrays if is_array(a)}  # NumPy scalars go with either
    return len(kinds) <= 1


def is_writeable(x) -> bool:
    """Whether writing into ``x`` is allowed: NumPy's flag; CuPy has none, so there a view with a
    zero stride along a dimension of more than one element (from ``expand``) is read-only too."""
    if isinstance(x, numpy.ndarray):
        return x.flags.writeable
    return all(stride or size <= 1 for stride, size in zip(x.strides, x.shape))


def to_device(x, device: str):
    """Move an array to ``device`` (a no-op when it is already there)."""
    if device == "cuda":
        return cupy.asarray(x)
    if cupy is not None and isinstance(x, cupy.ndarray):
        return cupy.asnumpy(x)
    return x


def to_numpy(x):
    return cupy.asnumpy(x) if cupy is not None and isinstance(x, cupy.ndarray) else numpy.asarray(x)


def is_array(x) -> bool:
    return isinstance(x, numpy.ndarray) or (cupy is not None and isinstance(x, cupy.ndarray))


def as_array(data, dtype=None, device: str = "cpu"):
    """Turn Python data or an array into an array on ``device``, as ``torch.tensor`` does:
    Python floats become the default dtype, arrays keep theirs unless ``dtype`` is given."""
    if dtype is not None:
        dtype = check_dtype(dtype)
    if is_array(data) or isinstance(data, numpy.generic):
        check_dtype(data.dtype)
        array = data
        if dtype is not None:
            array = array.astype(dtype, copy=False)
    else:
        array = _numeric_array(data)
        if dtype is not None:
            array = array.astype(dtype, copy=False)
        elif array.dtype == float64:
            array = array.astype(_default_float)
        elif array.dtype.kind in "iu":
            array = array.astype(int64, copy=False)
    xp = module_for(device)
    return xp.asarray(to_device(array, device))


def _numeric_array(data):
    """Python numbers (nested lists of them, of one length per level) as an array; anything
    else (strings, objects, None, ragged lists, complex numbers) is a clear error."""
    try:
        array = numpy.asarray(data)
    except ValueError as error:  # NumPy refuses nested lists of different lengths
        raise ValueError(
            f"tensor: expected numbers or nested sequences of one length per level, got a ragged "
            f"{type(data).__name__}: {_preview(data)}"
        ) from error
    if array.dtype.kind not in "biuf":
        what = {"U": "strings", "S": "bytes", "c": "complex numbers", "O": "objects"}.get(array.dtype.kind, "values")
        raise TypeError(
            f"tensor: expected numbers (bool, int or float), got {what} ({array.dtype}) in {_preview(data)}"
        )
    check_dtype(array.dtype)
    return array


def _preview(data) -> str:
    text = repr(data)
    return text if len(text) <= 60 else text[:57] + "..."


# ----------------------------------------------------------------------------- kernels
def scatter_add(target, index, values) -> None:
    """``target[index] += values`` with repeated indices accumulating."""
    xp = array_module(target)
    if xp is numpy:
        numpy.add.at(target, index, values)
    else:  # pragma: no cover - GPU only
        import cupyx

        cupyx.scatter_add(target, index, values)


def sliding_window_view(x, window_shape, axis):
    """A read-only strided view of every window of ``x`` (no copy)."""
    xp = array_module(x)
    if xp is numpy:
        return numpy.lib.stride_tricks.sliding_window_view(x, window_shape, axis=axis)
    return cupy.lib.stride_tricks.sliding_window_view(x, window_shape, axis=axis)  # pragma: no cover


def as_strided(x, shape, strides):
    xp = array_module(x)
    if xp is numpy:
        return numpy.lib.stride_tricks.as_strided(x, shape, strides, writeable=False)
    return cupy.lib.stride_tricks.as_strided(x, shape, strides)  # pragma: no cover


# -------------------------------------------------------------------- special functions
# W. J. Cody, "Rational Chebyshev approximations for the error function", Math. Comp. 23
# (1969) 631-637, with the coefficients of his CALERF routine (SPECFUN, 1990): a few ulp in
# float64 over the whole real line. erf(x) = x R1(x^2) for |x| <= 0.46875; otherwise
# erfc(|x|) = exp(-x^2) R(|x|), R = R2(|x|) up to 4 and (1/sqrt(pi) - R3(1/x^2) / x^2) / |x| beyond.
_ERF_SMALL = ((1.85777706184603153e-1, 3.16112374387056560e00, 1.13864154151050156e02,
               3.77485237685302021e02, 3.20937758913846947e03),
              (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03,
               2.84423683343917062e03))  # fmt: skip
_ERFC_MIDDLE = ((2.15311535474403846e-8, 5.64188496988670089e-1, 8.88314979438837594e00,
                 6.61191906371416295e01, 2.98635138197400131e02, 8.81952221241769090e02,
                 1.71204761263407058e03, 2.05107837782607147e03, 1.23033935479799725e03),
                (1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02,
                 1.62138957456669019e03, 3.29079923573345963e03, 4.36261909014324716e03,
                 3.43936767414372164e03, 1.23033935480374942e03))  # fmt: skip
_ERFC_LARGE = ((1.63153871373020978e-2, 3.05326634961232344e-1, 3.60344899949804439e-1,
                1.25781726111229246e-1, 1.60837851487422766e-2, 6.58749161529837803e-4),
               (2.56852019228982242e00, 1.87295284992346725e00, 5.27905102951428412e-1,
                6.05183413124413191e-2, 2.33520497626869185e-3))  # fmt: skip
# Phi(-u) = tau phi(u) Q(tau) with tau = k / (1 + u / 4): Q is smooth on the whole line u >= 0
# (tau between k and 0). Q is a degree-9 minimax fit of relative error (Lawson's iteration on 800
# Chebyshev nodes, 40-digit mpmath values), written monic in tau by the choice of k, whose value
# also makes the constant in front 1 / sqrt(2 pi), so that phi itself appears: relative error
# <= 3.6e-8 everywhere (0.6 of a float32 ulp) with one exp, where Cody needs three branches.
_NORMAL_TAIL_SCALE = 0.7405180566662357
_NORMAL_TAIL_FIT = (-3.0275515665084067, 2.649979969965178, -0.6510563412003246, 0.9682845686246735,
                    0.6638702858786795, 0.6802266546086873, 0.576950190494423, 0.45590300297066255,
                    0.3376014795290541)  # fmt: skip
_INV_SQRT_PI = 0.56418958354775628695
_INV_SQRT_2PI = 0.39894228040143267794
_SQRT_HALF = 0.70710678118654752440


def _rational(y, numerator, denominator):
    """Cody's form (n0 y^k + ... + nk) / (y^k + d0 y^(k-1) + ... + d(k-1)), by Horner."""
    num, den = numerator[0] * y, y + denominator[0]
    for n, d in zip(numerator[1:-1], denominator[1:]):
        num += n
        num *= y
        den *= y
        den += d
    return (num + numerator[-1]) / den


def _exp_minus_square(y, scale: float = 1.0):
    """exp(-scale y^2) for a power-of-two scale, with y^2 split into an exact part and a small
    one (Cody's trick): rounding y^2 would cost a relative error of y^2 ulp, 1e-13 at y = 30."""
    y = numpy.minimum(y, 64.0)  # the result is 0 long before; inf - inf would be nan
    head = numpy.trunc(y * 16) / 16  # 4 fractional bits: head^2 is exact
    return numpy.exp(-scale * head * head) * numpy.exp(-scale * (y - head) * (y + head))


def _erf_small(x):
    """erf(x) for |x| <= 0.46875 (other values are clipped to that range)."""
    y = numpy.clip(x, -0.46875, 0.46875)
    return y * _rational(y * y, *_ERF_SMALL)


def _half_erfc(y, exp_factor):
    """erfc(y) / 2 for y >= 0, given exp_factor = exp(-y^2) (unused where y <= 0.46875)."""
    middle = _rational(numpy.minimum(y, 4.0), *_ERFC_MIDDLE)
    large_y = numpy.maximum(y, 4.0)
    inv_square = 1 / (large_y * large_y)
    large = (_INV_SQRT_PI - inv_square * _rational(inv_square, *_ERFC_LARGE)) / large_y
    tail = 0.5 * exp_factor * numpy.where(y <= 4.0, middle, large)
    return numpy.where(y <= 0.46875, 0.5 - 0.5 * _erf_small(y), tail)


def _erf64(x):
    y = numpy.abs(x)
    return numpy.where(y <= 0.46875, _erf_small(x), numpy.copysign(1 - 2 * _half_erfc(y, _exp_minus_square(y)), x))


def _erfc64(x):
    y = numpy.abs(x)
    twice_half = 2 * _half_erfc(y, _exp_minus_square(y))
    return numpy.where(x < 0, 2 - twice_half, twice_half)


def _normal_cdf64(x, with_pdf: bool = False):
    u = numpy.abs(x)  # Phi(-u) = erfc(u / sqrt 2) / 2, with exp(-u^2 / 2) taken from u itself
    gaussian = _exp_minus_square(u, 0.5)
    lower = _half_erfc(u * _SQRT_HALF, gaussian)
    phi = numpy.where(x < 0, lower, 1 - lower)
    return (phi, gaussian * _INV_SQRT_2PI) if with_pdf else phi


def _normal_cdf_fit(x, with_pdf: bool = False):
    """Phi(x) in float64 arithmetic to 3.6e-8 (for float32 and float16 results), in as few
    passes over the data as the formula allows: the cost of GELU in float32."""
    u = numpy.abs(x, dtype=float64)
    tau = u * 0.25
    tau += 1
    numpy.divide(_NORMAL_TAIL_SCALE, tau, out=tau)
    lower = tau + _NORMAL_TAIL_FIT[0]
    for c in _NORMAL_TAIL_FIT[1:]:
        lower *= tau
        lower += c
    u *= u
    u *= -0.5
    density = numpy.exp(u, out=u)
    density *= _INV_SQRT_2PI
    lower *= density
    lower *= tau  # Phi(-|x|)
    phi = numpy.greater_equal(x, 0, out=tau, casting="unsafe")
    phi -= lower
    numpy.abs(phi, out=phi)  # Phi(x) = |[x >= 0] - Phi(-|x|)|: Phi(-|x|) itself for x < 0, however small
    return (phi, density) if with_pdf else phi


def _special(name, x, compute, dtype=None):
    """``compute`` (float64 arithmetic) on x, rounded once to ``dtype`` (x's by default), over
    cache-sized chunks on the CPU; CuPy's own kernel on the GPU."""
    xp = array_module(x)
    if xp is not numpy:  # pragma: no cover - GPU only
        import cupyx.scipy.special

        return getattr(cupyx.scipy.special, name)(x.astype(float64)).astype(dtype or x.dtype, copy=False)
    return in_chunks(compute, x, float64_work=True, dtype=dtype or x.dtype)


def _in_float64(fn):
    return lambda x: fn(x.astype(float64, copy=False))


def erf(x):
    """The error function, to a few ulp (computed in float64 for every float dtype)."""
    return _special("erf", x, _in_float64(_erf64))


def erfc(x):
    """1 - erf(x), keeping its relative accuracy in the right tail (erfc(26) = 5.7e-296)."""
    return _special("erfc", x, _in_float64(_erfc64))


def normal_cdf(x, dtype=None, exact: bool | None = None):
    """Phi(x), the standard normal CDF, computed in float64 with relative accuracy in the left
    tail and rounded once to ``dtype`` (x's by default). ``exact`` (the default for float64
    results): Cody's erfc, a few ulp; otherwise the fit above, 3.6e-8, enough for float32."""
    dtype = numpy.dtype(dtype or x.dtype)
    if exact if exact is not None else dtype == float64:
        return _special("ndtr", x, _in_float64(_normal_cdf64), dtype)
    return _special("ndtr", x, _normal_cdf_fit, dtype)


def normal_cdf_and_pdf(x, exact: bool):
    """Phi(x) and the density phi(x) = exp(-x^2 / 2) / sqrt(2 pi) of a float64 NumPy array, in
    float64, from one pass of the work (GELU needs both: gelu = x Phi, gelu' = Phi + x phi)."""
    return (_normal_cdf64 if exact else _normal_cdf_fit)(x, with_pdf=True)


# ------------------------------------------------------------------------------ random
class _Generators:
    """One seeded generator per device; ``manual_seed`` resets all of them. The GPU's is made
    on first use, from the seed last given."""

    def __init__(self, seed=None):
        self.seed(seed)

    def seed(self, seed) -> None:
        self._cpu = numpy.random.default_rng(seed)
        self._cuda, self._cuda_seed = None, seed

    def get(self, device: str):
        if device == "cpu":
            return self._cpu
        if self._cuda is None:
            self._cuda = cupy.random.default_rng(self._cuda_seed)
        return self._cuda

    def state(self):
        """What ``set_state`` puts back: the CPU generator's state, the GPU's generator and seed."""
        return self._cpu.bit_generator.state, self._cuda, self._cuda_seed

    def set_state(self, state) -> None:
        self._cpu.bit_generator.state, self._cuda, self._cuda_seed = state

    def reseed(self, seed) -> None:
        """Restart every device's generator from ``seed`` (a DataLoader batch's own seed)."""
        self._cpu.bit_generator.state = numpy.random.default_rng(seed).bit_generator.state
        self._cuda, self._cuda_seed = None, seed


generators = _Generators()


def manual_seed(seed: int) -> None:
    """Make every random factory, init and dropout reproducible from ``seed``."""
    generators.seed(int(seed))


def generator(device: str = "cpu"):
    return generators.get(device)


# ------------------------------------------------------------------------- CPU threads
# NumPy runs each call on one core, but it lets go of the GIL inside its loops: large array
# work split into disjoint slices runs on every core at once. Kernels whose passes over memory
# dominate a step (im2col, batch norm, elementwise chains) hand their slices to ``parallel``.
# The GEMMs need none of this: OpenBLAS threads them itself.
_PARALLEL_MIN = 1 << 17  # elements per thread below which handing out the work costs more than it saves
_BLOCK_BYTES = 1 << 19  # a few arrays of this size stay in one core's (2 MiB) L2 cache
_pool = None
_inside = threading.local()  # .active: this thread is running a part of a parallel call


def _default_threads() -> int:
    setting = os.environ.get("MINIGRAD_NUM_THREADS", "")
    if setting:
        if not setting.isdigit() or int(setting) < 1:
            raise ValueError(f"MINIGRAD_NUM_THREADS must be a positive int, got {setting!r}")
        return int(setting)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


_threads = _default_threads()


def get_num_threads() -> int:
    """Threads that ``parallel`` splits large CPU kernels over (all cores unless set)."""
    return _threads


def set_num_threads(n: int) -> None:
    """Split large CPU kernels over ``n`` threads (1: run them on the calling thread only)."""
    global _threads, _pool
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"set_num_threads: expected a positive int, got {n!r}")
    if _pool is not None:
        _pool.shutdown()
    _threads, _pool = n, None


def _forget_pool() -> None:  # a forked child has none of its parent's threads
    global _pool
    _pool = None


os.register_at_fork(after_in_child=_forget_pool)


def parallel(fn, size: int, like, cache_blocks: bool = False) -> None:
    """Call ``fn(start, stop)`` on contiguous parts of ``range(size)``, one per thread, at once.

    ``fn`` must write only its own part. ``like``: the largest array the call works through,
    ``size`` items of it; when it is a CuPy array, or each thread would get fewer than
    ``_PARALLEL_MIN`` of its elements, everything runs on the calling thread. With
    ``cache_blocks``, each thread calls ``fn`` on blocks of its part of about ``_BLOCK_BYTES`` of
    ``like``: a kernel that makes many passes over a block then finds it in cache."""
    global _pool
    on_cpu = isinstance(like, numpy.ndarray)
    parts = min(_threads, size, like.size // _PARALLEL_MIN) if on_cpu else 1
    step = max(1, _BLOCK_BYTES * size // max(like.nbytes, 1)) if cache_blocks and on_cpu else max(size, 1)

    def blocks(start, stop):
        for first in range(start, stop, step):
            fn(first, min(first + step, stop))

    def run(start, stop):
        _inside.active = True  # a parallel call from inside fn runs on its own thread (no waiting on itself)
        try:
            blocks(start, stop)
        finally:
            _inside.active = False

    if parts <= 1 or getattr(_inside, "active", False):
        blocks(0, size)
        return
    if _pool is None:
        from concurrent.futures import ThreadPoolExecutor

        _pool = ThreadPoolExecutor(_threads - 1, thread_name_prefix="minigrad")
    bounds = [size * k // parts for k in range(parts + 1)]
    others = [_pool.submit(run, start, stop) for start, stop in zip(bounds[1:-1], bounds[2:])]
    try:
        run(bounds[0], bounds[1])
    finally:
        for future in others:
            future.result()


def assign(out, x) -> None:
    """``out[...] = x`` for arrays of one shape (at least 1-D), copied by all threads."""

    def copy(start, stop):
        out[start:stop] = x[start:stop]

    parallel(copy, len(out), out)


def contiguous_copy(x):
    """A C-contiguous copy of the (strided, at least 1-D) array ``x``, copied by all threads."""
    out = array_module(x).empty(x.shape, dtype=x.dtype)
    assign(out, x)
    return out


_CHUNK = 1 << 17  # elements; a few arrays of this size stay in one core's cache


def in_chunks(fn, *arrays, float64_work: bool = False, dtype=None):
    """``fn(*arrays)`` for an elementwise chain ``fn`` of many passes over same-shaped arrays,
    run over flat chunks small enough to stay in cache, the chunks shared out over the threads:
    each pass then reads its chunk from cache instead of the whole array from memory (about
    twice as fast for a dozen passes). ``fn`` may return one array or a tuple of them;
    ``float64_work``: fn computes in float64 whatever the arrays' dtype (half-size chunks then stay
    in cache). ``dtype``: the results' dtype where fn returns another (float64 work rounded to
    float32, say), rounded once as the chunks are stored. CPU only; on the GPU, and for small
    arrays, ``fn`` runs once."""
    chunk = max(_CHUNK // 2, 1) if float64_work else _CHUNK
    if not isinstance(arrays[0], numpy.ndarray) or arrays[0].size <= 2 * chunk:
        results = fn(*arrays)
        if dtype is None:
            return results
        if isinstance(results, tuple):
            return tuple(r.astype(dtype, copy=False) for r in results)
        return results.astype(dtype, copy=False)
    flat = [a.reshape(-1) for a in arrays]
    count = -(-flat[0].size // chunk)

    def piece(k: int) -> slice:
        return slice(k * chunk, (k + 1) * chunk)

    probe = fn(*(f[:1] for f in flat))  # one element tells the results' dtypes
    single = not isinstance(probe, tuple)
    outs = tuple(numpy.empty(flat[0].size, dtype=dtype or part.dtype) for part in ((probe,) if single else probe))

    def run(start, stop):  # chunks start .. stop - 1
        for k in range(start, stop):
            parts = fn(*(f[piece(k)] for f in flat))
            for out, part in zip(outs, (parts,) if single else parts):
                out[piece(k)] = part

    parallel(run, count, outs[0])
    results = tuple(out.reshape(arrays[0].shape) for out in outs)
    return results[0] if single else results


def elementwise(fn, *arrays):
    """``fn(*arrays, out=...)``, one elementwise pass over same-shaped arrays, computed by all
    threads on flat parts. The result has the first array's dtype."""
    first = arrays[0]
    if not isinstance(first, numpy.ndarray) or first.size < 2 * _PARALLEL_MIN:
        return fn(*arrays, out=None)
    flat = [a.reshape(-1) for a in arrays]
    out = numpy.empty(first.size, dtype=first.dtype)
    parallel(lambda start, stop: fn(*(f[start:stop] for f in flat), out=out[start:stop]), first.size, out)
    return out.reshape(first.shape)


# --------------------------------------------------------------------------- memory
def keep_freed_memory() -> bool:
    """Let glibc keep freed arrays for the next allocation instead of returning them to the OS.

    By default glibc maps each large array fresh from the OS and unmaps it when freed; a training
    step frees and allocates the same hundred megabytes every time, so each step pays again for
    every page (a fault and zero-filling per 4 KiB: 3.8 ms for one 38 MB im2col buffer, more than
    the copy into it). With no array mapped on its own (``M_MMAP_MAX`` 0: even past the largest
    mmap threshold glibc allows, 32 MiB) and trimming only past 2 GiB of free heap, freed arrays
    stay in the heap and the next step reuses them; the process keeps its peak memory instead of
    giving it back between steps. Called at import unless ``MINIGRAD_MALLOC=system``; True when
    glibc accepted both settings."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (macOS, Windows, musl): nothing to tune
        return False
    m_trim_threshold, m_mmap_max = -1, -4
    largest = (1 << 31) - 1  # mallopt takes a C int
    return bool(libc.mallopt(m_mmap_max, 0)) and bool(libc.mallopt(m_trim_threshold, largest))


if os.environ.get("MINIGRAD_MALLOC") != "system":
    keep_freed_memory()
