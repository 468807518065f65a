"""Convolution: PyTorch's results and errors, the adjoint identity, and the depthwise path."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
import minigrad.functional as F
import minigrad.testing as mgt


@given(data=st.data(), stride=st.integers(1, 3), padding=st.integers(0, 2), dilation=st.integers(1, 2),
       groups=st.sampled_from([1, 2]))  # fmt: skip
def test_conv_transpose_is_the_adjoint_of_conv(data, stride, padding, dilation, groups):
    """<conv(x, W), y> == <conv_transpose(y, W), x> for every x and y of the right shapes."""
    k = data.draw(st.integers(1, 3))
    size = data.draw(st.integers(dilation * (k - 1) + 1, 7))
    x = data.draw(mgt.tensors((2, 2 * groups, size, size), requires_grad=False))
    w = data.draw(mgt.tensors((2 * groups, 2, k, k), requires_grad=False))
    y_shape = F.conv2d(x, w, stride=stride, padding=padding, dilation=dilation, groups=groups).shape
    y = data.draw(mgt.tensors(tuple(y_shape), requires_grad=False))
    out_h = (y_shape[2] - 1) * stride - 2 * padding + dilation * (k - 1) + 1
    extra = size - out_h  # the rows the last window does not reach: output_padding
    back = F.conv_transpose2d(y, w, stride=stride, padding=padding, output_padding=extra, groups=groups,
                              dilation=dilation)  # fmt: skip
    lhs = (F.conv2d(x, w, stride=stride, padding=padding, dilation=dilation, groups=groups) * y).sum().item()
    assert lhs == pytest.approx((back * x).sum().item(), rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("multiplier", [1, 2])
def test_depthwise_path_equals_a_block_diagonal_dense_conv(multiplier):
    rng = np.random.default_rng(0)
    c, k = 4, 3
    x = rng.standard_normal((2, c, 7, 7))
    w = rng.standard_normal((c * multiplier, 1, k, k))
    dense = np.zeros((c * multiplier, c, k, k))
    for o in range(c * multiplier):
        dense[o, o // multiplier] = w[o, 0]
    xs, ws, ds = mg.tensor(x, requires_grad=True), mg.tensor(w, requires_grad=True), mg.tensor(dense)
    out = F.conv2d(xs, ws, stride=2, padding=1, groups=c)
    np.testing.assert_allclose(out.detach().numpy(), F.conv2d(mg.tensor(x), ds, stride=2, padding=1).numpy(),
                               rtol=1e-12, atol=1e-12)  # fmt: skip
    xd = mg.tensor(x, requires_grad=True)
    F.conv2d(xd, ds, stride=2, padding=1).sum().backward()
    out.sum().backward()
    np.testing.assert_allclose(xs.grad.numpy(), xd.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_matches_torch_in_float32():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal((4, 8, 16, 16)), rng.standard_normal((16, 4, 3, 3)), rng.standard_normal(16)
    x, w, b = (a.astype(np.float32) for a in (x, w, b))
    ours = F.conv2d(mg.tensor(x), mg.tensor(w), mg.tensor(b), stride=2, padding=1, groups=2)
    theirs = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w), torch.tensor(b), stride=2, padding=1,
                                        groups=2)  # fmt: skip
    assert ours.dtype == mg.float32
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-4, atol=1e-4)


def test_errors_name_the_op_and_the_shapes():
    x = mg.randn(8, 4, 32, 32)
    with pytest.raises(RuntimeError, match=r"conv2d: expected input with 3 channels \(weight \(16, 3, 3, 3\), "
                                           r"groups=1\), got input of shape \(8, 4, 32, 32\)"):  # fmt: skip
        F.conv2d(x, mg.randn(16, 3, 3, 3))
    with pytest.raises(ValueError, match="divisible by groups"):
        F.conv2d(x, mg.randn(6, 1, 3, 3), groups=4)
    with pytest.raises(RuntimeError, match="larger than the padded input"):
        F.conv2d(mg.randn(1, 4, 2, 2), mg.randn(2, 4, 3, 3))
    with pytest.raises(ValueError, match="'same' is not supported for strided"):
        F.conv2d(x, mg.randn(2, 4, 3, 3), stride=2, padding="same")
    with pytest.raises(RuntimeError, match="4-D input"):
        F.conv2d(mg.randn(4, 32, 32), mg.randn(2, 4, 3, 3))
    with pytest.raises(ValueError, match="output_padding"):
        F.conv_transpose2d(mg.randn(1, 2, 4, 4), mg.randn(2, 2, 3, 3), stride=2, output_padding=2)
