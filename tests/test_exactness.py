"""Exact to the last bits in float64: erf, erfc and GELU against 50-digit references, float32
GELU within 2 ulp, PyTorch's conventions at removable 0/0 points, and what ``mg.tensor``
refuses (the registry in tests/op_db adds the forward, gradient and singular-point properties
of every op)."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigrad as mg
import minigrad.functional as F
import nn

mpmath = pytest.importorskip("mpmath", reason="the high-precision references need mpmath (the test extra)")
mpmath.mp.dps = 50

# Dense over [-40, 40], denser near 0 and through the tails' switch points.
GRID = np.unique(np.concatenate([np.linspace(-40, 40, 8001), np.linspace(-5, 5, 4001), [0.0, -0.0, 0.46875, 4.0]]))


def _reference(fn, xs):
    return np.array([float(fn(mpmath.mpf(float(x)))) for x in xs])


def _gelu_ref(x):
    return x * mpmath.ncdf(x)


FUNCTIONS = {  # name -> (minigrad, 50-digit reference)
    "erf": (mg.erf, mpmath.erf),
    "erfc": (mg.erfc, mpmath.erfc),
    "gelu": (F.gelu, _gelu_ref),
}


def _assert_close(got, want, rtol):
    # values below the smallest normal float64 keep no relative precision: compare those absolutely
    np.testing.assert_allclose(got, want, rtol=rtol, atol=np.finfo(np.float64).tiny)


@pytest.mark.skipif(
    os.environ.get("MINIGRAD_TEST_FAKE_CUPY") == "1",
    reason="on the device this measures CuPy's special-function kernels, which the stand-in does not emulate",
)
@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_float64_agrees_with_high_precision_over_the_line(name):
    fn, ref = FUNCTIONS[name]
    got = fn(mg.tensor(GRID, dtype=mg.float64)).cpu().numpy()
    _assert_close(got, _reference(ref, GRID), rtol=1e-13)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
@given(x=hnp.arrays(np.float64, st.integers(1, 20), elements=st.floats(-40, 40)))
def test_float64_agrees_with_high_precision_anywhere(name, x):
    fn, ref = FUNCTIONS[name]
    _assert_close(fn(mg.tensor(x, dtype=mg.float64)).cpu().numpy(), _reference(ref, x), rtol=1e-13)


def _ulps(got32, exact):
    """Distance in float32 ulps between float32 results and the float64-exact values rounded."""
    want = exact.astype(np.float32)
    return np.abs(got32.astype(np.float64) - want) / np.spacing(np.abs(want)).astype(np.float64)


@pytest.mark.parametrize("name", ["gelu", "erf", "erfc"])
def test_float32_within_two_ulp(name):
    fn, ref = FUNCTIONS[name]
    x32 = GRID.astype(np.float32)
    got = fn(mg.tensor(x32)).cpu().numpy()
    assert got.dtype == np.float32
    assert _ulps(got, _reference(ref, x32)).max() <= 2


@given(x=hnp.arrays(np.float32, st.integers(1, 50), elements=st.floats(-40, 40, width=32)))
def test_float32_gelu_within_two_ulp_anywhere(x):
    assert _ulps(F.gelu(mg.tensor(x)).cpu().numpy(), _reference(_gelu_ref, x)).max() <= 2


def test_special_values():
    x = mg.tensor([-np.inf, np.inf, np.nan, -0.0], dtype=mg.float64)
    np.testing.assert_array_equal(mg.erf(x).cpu().numpy(), [-1, 1, np.nan, -0.0])
    np.testing.assert_array_equal(mg.erfc(x).cpu().numpy(), [2, 0, np.nan, 1])
    np.testing.assert_array_equal(F.gelu(x[:3]).cpu().numpy(), [np.nan, np.inf, np.nan])  # as PyTorch: -inf * 0


def test_gelu_module_and_large_arrays_take_the_same_path():
    """nn.GELU, and arrays big enough to be split into cache-sized chunks, give the same bits."""
    for dtype in (mg.float32, mg.float64):
        x = mg.tensor(np.random.default_rng(0).uniform(-40, 40, 300_000), dtype=dtype)
        pieces = [F.gelu(x[i : i + 1000]).cpu().numpy() for i in range(0, 300_000, 1000)]
        np.testing.assert_array_equal(nn.GELU()(x).cpu().numpy(), np.concatenate(pieces))


# ------------------------------------------------------------- removable singularities
def test_std_gradient_is_zero_where_values_are_equal():
    """PyTorch's convention: d std / dx = (x - mean) / (n std) is 0/0 there, taken as 0."""
    cases = [([2.0], {"correction": 0}), ([[1.0, 1.0, 1.0], [0.5, 0.5, 0.5]], {"dim": 1}), (3.0, {"correction": 0})]
    for x, kwargs in cases:
        t = mg.tensor(x, dtype=mg.float64, requires_grad=True)
        t.std(**kwargs).sum().backward()
        np.testing.assert_array_equal(t.grad.cpu().numpy(), np.zeros(t.shape))


def test_pow_gradient_at_zero_to_the_zero():
    a = mg.tensor([0.0, 0.0, 2.0], dtype=mg.float64, requires_grad=True)
    b = mg.tensor([0.0, 2.0, 0.0], dtype=mg.float64, requires_grad=True)
    (a**b).sum().backward()
    np.testing.assert_array_equal(a.grad.cpu().numpy(), [0.0, 0.0, 0.0])
    np.testing.assert_allclose(b.grad.cpu().numpy(), [0.0, 0.0, np.log(2.0)])


def test_too_few_elements_give_nan_not_an_error():
    """var/std with count <= correction divide by 0, as PyTorch: nan, and no exception."""
    x = mg.tensor([1.0], dtype=mg.float64, requires_grad=True)
    assert np.isnan(x.var().item()) and np.isnan(x.std().item())


def test_reductions_over_an_empty_tuple_reduce_every_dim():
    x = mg.arange(8.0).reshape(2, 2, 2)
    for name in ("sum", "mean", "amax", "amin", "var", "std", "logsumexp"):
        assert getattr(x, name)(()).shape == (), name
    assert x.squeeze(()).shape == x.shape and x.flip(()).shape == x.shape  # shape ops: no dims


# -------------------------------------------------------------------- refused input
@given(st.lists(st.text(min_size=1), min_size=1, max_size=4))
def test_strings_are_refused(data):
    with pytest.raises(TypeError, match="expected numbers"):
        mg.tensor(data)


@given(st.lists(st.integers(0, 3), min_size=2, max_size=4).filter(lambda n: len(set(n)) > 1))
def test_ragged_lists_are_refused(lengths):
    with pytest.raises(ValueError, match="ragged"):
        mg.tensor([[1.0] * n for n in lengths])


@pytest.mark.parametrize("data", [None, object(), {"a": 1}, [1, "a"], b"ab", [1 + 2j], [None, 1.0]])
def test_non_numbers_are_refused(data):
    with pytest.raises(TypeError, match="tensor: expected numbers"):
        mg.tensor(data)


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128, np.longdouble, np.str_, object, "nonsense"])
def test_unsupported_dtypes_are_refused(dtype):
    if np.dtype(np.longdouble).itemsize == 8 and dtype is np.longdouble:
        pytest.skip("long double is float64 on this platform")
    with pytest.raises(TypeError, match="dtype|not a dtype"):
        mg.tensor([1.0], dtype=dtype)
    with pytest.raises(TypeError):
        mg.zeros(2, dtype=dtype)
    with pytest.raises(TypeError):
        mg.ones(2).to(dtype)


def test_supported_inputs_still_work():
    assert mg.tensor([True, False]).dtype == mg.bool
    assert mg.tensor([[1, 2], [3, 4]]).dtype == mg.int64
    assert mg.tensor(np.zeros(3, np.uint8)).dtype == np.uint8
    assert mg.tensor([]).shape == (0,) and mg.tensor([[]]).shape == (1, 0)
    assert mg.tensor(np.float16(1.5)).dtype == mg.float16
