"""Winograd F(2x2, 3x3) (minigrad/ops/conv.py) forced on for every convolution it applies to.

The op registry's samples are small, below the channel threshold, and few of them are 3x3 stride 1:
here Winograd runs at every size, and the registry's properties (forward against the NumPy
reference, gradcheck, gradgradcheck) are checked again on the registry's own conv samples and on
samples that all take it (odd sizes, padding 0 to 2, batch 1), whole and with every
kernel split over threads. Its float32 error on the small ResNet's layers is bounded against a
float64 direct convolution.
"""

from __future__ import annotations

import contextlib
import dataclasses

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
import minigrad.testing as mgt
from minigrad.ops import conv
from minigrad.ops._windows import Geometry
from tests import test_ops
from tests.op_db import OPS, Sample
from tests.test_threads import every_kernel_split

_REGISTRY = {info.name: info for info in OPS if info.name in ("conv2d", "conv_transpose2d", "conv2d_weight_grad")}


@contextlib.contextmanager
def winograd_everywhere(split: bool = False):
    """Winograd for every 3x3 stride-1 convolution, whatever its size and threads; ``split``: and
    every kernel split over threads."""
    saved = conv._WINOGRAD
    conv._WINOGRAD = True
    try:
        with every_kernel_split() if split else contextlib.nullcontext():
            yield
    finally:
        conv._WINOGRAD = saved


# ------------------------------------------------------------------- samples that take it
def _size(draw, padding: int):
    """A side that leaves at least one output of a 3x3 window with ``padding`` on both ends."""
    return draw(st.integers(max(1, 3 - 2 * padding), 7))


@st.composite
def _conv_samples(draw):
    n, channels, out_channels, padding = (draw(st.integers(1, k)) for k in (2, 3, 3, 3))
    padding -= 1  # 0, 1 or 2
    size = (_size(draw, padding), _size(draw, padding))
    x = draw(mgt.tensors((n, channels, *size)))
    weight = draw(mgt.tensors((out_channels, channels, 3, 3)))
    bias = draw(st.one_of(st.none(), mgt.tensors((out_channels,))))
    return Sample((x, weight, bias), {"padding": padding})


@st.composite
def _conv_transpose_samples(draw):
    """Its input gradient is a forward convolution (and so Winograd) where it has no more input
    than output channels: drawn so."""
    n, channels, extra, padding = (draw(st.integers(1, k)) for k in (2, 3, 2, 3))
    padding -= 1
    size = tuple(draw(st.integers(max(1, 2 * padding - 1), 6)) for _ in range(2))
    x = draw(mgt.tensors((n, channels, *size)))
    weight = draw(mgt.tensors((channels, channels + extra - 1, 3, 3)))
    bias = draw(st.one_of(st.none(), mgt.tensors((channels + extra - 1,))))
    return Sample((x, weight, bias), {"padding": padding})


@st.composite
def _weight_grad_samples(draw):
    """Padding that differs between height and width."""
    n, channels, out_channels = (draw(st.integers(1, k)) for k in (2, 3, 3))
    pads = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    size = tuple(_size(draw, p) for p in pads)
    out_size = tuple(s + 2 * p - 2 for s, p in zip(size, pads))
    geometry = Geometry((3, 3), (1, 1), (pads[0], pads[0], pads[1], pads[1]), (1, 1), size, out_size)
    x = draw(mgt.tensors((n, channels, *size)))
    grad = draw(mgt.tensors((n, out_channels, *out_size)))
    return Sample((x, grad), {"geometry": geometry})


_TAKING_IT = [
    dataclasses.replace(_REGISTRY["conv2d"], samples=_conv_samples()),
    dataclasses.replace(_REGISTRY["conv_transpose2d"], samples=_conv_transpose_samples()),
    dataclasses.replace(_REGISTRY["conv2d_weight_grad"], samples=_weight_grad_samples()),
]
_CASES = [
    pytest.param(info, split, id=f"{kind}-{info.name}{'-split' if split else ''}")
    for kind, infos in (("registry", list(_REGISTRY.values())), ("winograd", _TAKING_IT))
    for info in infos
    for split in (False, True)
]


@pytest.mark.parametrize(("info", "split"), _CASES)
@given(data=st.data())
def test_forward_matches_numpy(info, split, data):
    with winograd_everywhere(split):
        test_ops.test_forward_matches_numpy.hypothesis.inner_test(info, data)


@pytest.mark.parametrize(("info", "split"), _CASES)
@given(data=st.data())
def test_gradcheck(info, split, data):
    with winograd_everywhere(split):
        test_ops.test_gradcheck.hypothesis.inner_test(info, data)


@pytest.mark.parametrize("info", _TAKING_IT, ids=lambda info: info.name)
@given(data=st.data())
def test_gradgradcheck(info, data):
    with winograd_everywhere():
        test_ops.test_gradgradcheck.hypothesis.inner_test(info, data)


def test_the_samples_take_it(monkeypatch):
    """The samples above do run the Winograd kernels (forward and weight gradient)."""
    calls = []
    for name in ("_winograd_conv", "_winograd_weight"):
        kernel = getattr(conv, name)
        monkeypatch.setattr(conv, name, lambda *args, kernel=kernel, name=name: calls.append(name) or kernel(*args))
    x = mg.randn(1, 2, 5, 3, dtype=mg.float64, requires_grad=True)
    weight = mg.randn(2, 2, 3, 3, dtype=mg.float64, requires_grad=True)
    with winograd_everywhere():
        mg.functional.conv2d(x, weight, padding=1).sum().backward()
    assert sorted(calls) == ["_winograd_conv", "_winograd_conv", "_winograd_weight"]  # forward, input grad, weight grad


# ------------------------------------------------------------------------ float32 error
def _relative_errors(got, want) -> tuple:
    """(max |error| / max |want|, relative RMS error)."""
    error = got.astype(np.float64) - want
    return np.abs(error).max() / np.abs(want).max(), np.sqrt(np.mean(error**2) / np.mean(want**2))


@pytest.mark.parametrize(("channels", "size"), [(32, 32), (64, 16)], ids=["32ch-32px", "64ch-16px"])
def test_float32_error_on_the_resnet_layers(channels, size):
    """Forward, input and weight gradients in float32 against float64, on N(0, 1) inputs and
    He-initialised weights: Winograd's errors (rel RMS about 2e-7 forward, 6e-7 for the weight
    gradient) stay within 3 times those of the float32 im2col kernels and under 2e-6."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, channels, size, size))
    weight = rng.standard_normal((channels, channels, 3, 3)) * np.sqrt(2 / (9 * channels))
    grad = rng.standard_normal((32, channels, size, size))
    geometry = Geometry((3, 3), (1, 1), (1, 1, 1, 1), (1, 1), (size, size), (size, size))

    def directions(x, weight, grad):
        return (
            conv.convolve(x, weight, geometry),
            conv.convolve_transpose(grad, weight, geometry),
            conv.convolve_weight(x, grad, geometry),
        )

    saved = conv._WINOGRAD
    try:
        conv._WINOGRAD = False
        exact = directions(x, weight, grad)
        single = [a.astype(np.float32) for a in (x, weight, grad)]
        im2col = directions(*single)
    finally:
        conv._WINOGRAD = saved
    with winograd_everywhere():
        winograd = directions(*single)
    for name, want, old, new in zip(("forward", "input grad", "weight grad"), exact, im2col, winograd):
        (old_max, old_rms), (new_max, new_rms) = _relative_errors(old, want), _relative_errors(new, want)
        assert new_rms < 2e-6 and new_rms <= 3 * old_rms, f"{name}: rel RMS {new_rms:.2e} (im2col {old_rms:.2e})"
        assert new_max <= 3 * old_max, f"{name}: max error {new_max:.2e} (im2col {old_max:.2e})"


def test_where_it_runs_unforced():
    """Forward on one CPU thread from 32 channels and 1024 output tiles; not with more threads, nor
    on float16, nor for the weight gradient."""
    geometry = Geometry((3, 3), (1, 1), (1, 1, 1, 1), (1, 1), (16, 16), (16, 16))

    def takes_it(n=16, channels=32, out_channels=32, dtype="float32", geometry=geometry, weight_grad=False):
        return conv._winograd(geometry, np.zeros((n, channels, 16, 16), dtype=dtype), out_channels, weight_grad)

    with every_kernel_split(threads=1):
        assert takes_it()
        assert not takes_it(weight_grad=True)  # measured slower than im2col
        assert not takes_it(channels=16) and not takes_it(out_channels=16)
        assert not takes_it(n=15)  # 960 tiles
        assert not takes_it(dtype="float16")
        assert not takes_it(n=64, geometry=geometry._replace(stride=(2, 2), out_size=(8, 8)))
    with every_kernel_split(threads=2):
        assert not takes_it()
