"""Convolution, unfold/fold: PyTorch's semantics for every option, the depthwise path against the
general grouped one, conv_transpose as conv's adjoint, fold(unfold(x)) and error messages."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

import minigrad as mg
import minigrad.functional as F
import nn

rng = np.random.default_rng(0)


def _randn(*shape):
    return rng.standard_normal(shape)


def _leaf(array):
    return mg.tensor(array, requires_grad=True)


def _np(t):
    return t.detach().cpu().numpy()


# --------------------------------------------------------------- against PyTorch
CONV2D_CASES = [
    # (x shape, weight shape, kwargs)
    ((2, 3, 7, 6), (4, 3, 3, 3), {}),
    ((2, 3, 7, 6), (4, 3, 3, 2), {"stride": (2, 1), "padding": (1, 0)}),
    ((1, 4, 8, 8), (6, 2, 3, 3), {"groups": 2, "dilation": 2, "padding": 2}),
    ((2, 4, 6, 7), (4, 1, 3, 3), {"groups": 4, "padding": 1}),  # depthwise
    ((2, 3, 6, 7), (6, 1, 3, 3), {"groups": 3, "stride": 2}),  # depthwise, channel multiplier 2
    ((2, 2, 6, 6), (3, 2, 2, 2), {"padding": "same"}),  # even kernel: uneven padding
    ((2, 2, 6, 7), (3, 2, 4, 3), {"padding": "same", "dilation": (1, 2)}),
    ((2, 2, 6, 7), (3, 2, 3, 3), {"padding": "valid"}),
    ((3, 7, 6), (2, 3, 3, 3), {"padding": 1}),  # unbatched
    ((1, 1, 3, 3), (1, 1, 3, 3), {}),
]


def _compare_with_torch(torch, fn, torch_fn, arrays, kwargs, atol=1e-10):
    """Forward and every input's gradient against PyTorch, in float64."""
    ours = [_leaf(a) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*ours, **kwargs)
    with warnings.catch_warnings():  # PyTorch warns that its "same" padding may copy the input
        warnings.simplefilter("ignore")
        expected = torch_fn(*theirs, **kwargs)
    np.testing.assert_allclose(_np(out), expected.detach().cpu().numpy(), atol=atol)
    seed = _randn(*expected.shape)
    out.backward(mg.tensor(seed))
    expected.backward(torch.tensor(seed))
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.grad.cpu().numpy(), b.grad.cpu().numpy(), atol=atol)


@pytest.mark.parametrize("x_shape, w_shape, kwargs", CONV2D_CASES)
def test_conv2d_matches_torch(x_shape, w_shape, kwargs):
    torch = pytest.importorskip("torch")
    arrays = [_randn(*x_shape), _randn(*w_shape), _randn(w_shape[0])]
    _compare_with_torch(torch, F.conv2d, torch.nn.functional.conv2d, arrays, kwargs)


@pytest.mark.parametrize(
    "x_shape, w_shape, kwargs",
    [
        ((2, 3, 9), (4, 3, 3), {"stride": 2, "padding": 1}),
        ((2, 4, 9), (4, 2, 2), {"groups": 2, "padding": "same", "dilation": 3}),
        ((2, 3, 9), (6, 1, 3), {"groups": 3}),
        ((3, 9), (2, 3, 3), {}),
    ],
)
def test_conv1d_matches_torch(x_shape, w_shape, kwargs):
    torch = pytest.importorskip("torch")
    arrays = [_randn(*x_shape), _randn(*w_shape), _randn(w_shape[0])]
    _compare_with_torch(torch, F.conv1d, torch.nn.functional.conv1d, arrays, kwargs)


@pytest.mark.parametrize(
    "x_shape, w_shape, kwargs",
    [
        ((2, 3, 4, 5), (3, 2, 3, 3), {}),
        ((2, 4, 4, 5), (4, 3, 3, 2), {"stride": 2, "padding": 1, "output_padding": 1, "groups": 2}),
        ((1, 2, 3, 4), (2, 2, 3, 3), {"stride": (2, 3), "output_padding": (1, 2), "dilation": 2}),
        ((2, 3, 4, 4), (3, 1, 3, 3), {"groups": 3, "padding": 1}),  # depthwise
        ((1, 2, 3, 3), (2, 2, 3, 3), {"stride": 1, "dilation": 3, "output_padding": 2}),  # output_padding < dilation
        ((2, 3, 4), (2, 3, 2, 2), {"stride": 2}),  # unbatched
    ],
)
def test_conv_transpose2d_matches_torch(x_shape, w_shape, kwargs):
    torch = pytest.importorskip("torch")
    groups = kwargs.get("groups", 1)
    arrays = [_randn(*x_shape), _randn(*w_shape), _randn(w_shape[1] * groups)]
    _compare_with_torch(torch, F.conv_transpose2d, torch.nn.functional.conv_transpose2d, arrays, kwargs)


def test_conv_transpose1d_matches_torch():
    torch = pytest.importorskip("torch")
    arrays = [_randn(2, 4, 5), _randn(4, 3, 3), _randn(6)]
    kwargs = {"stride": 2, "padding": 1, "output_padding": 1, "groups": 2, "dilation": 1}
    _compare_with_torch(torch, F.conv_transpose1d, torch.nn.functional.conv_transpose1d, arrays, kwargs)


@pytest.mark.parametrize(
    "kwargs", [{"kernel_size": 3}, {"kernel_size": (2, 3), "dilation": (2, 1), "padding": 1, "stride": (1, 2)}]
)
def test_unfold_and_fold_match_torch(kwargs):
    torch = pytest.importorskip("torch")
    x = _randn(2, 3, 7, 6)
    _compare_with_torch(torch, F.unfold, torch.nn.functional.unfold, [x], kwargs)
    columns = torch.nn.functional.unfold(torch.tensor(x), **kwargs).cpu().numpy()
    fold = lambda c, **kw: F.fold(c, (7, 6), **kw)  # noqa: E731
    torch_fold = lambda c, **kw: torch.nn.functional.fold(c, (7, 6), **kw)  # noqa: E731
    _compare_with_torch(torch, fold, torch_fold, [_randn(*columns.shape)], kwargs)


def test_double_backward_matches_torch():
    """An R1 penalty: the gradient norm of a conv net's output with respect to its input, trained."""
    torch = pytest.importorskip("torch")
    x, w1, w2 = _randn(2, 2, 7, 7), _randn(4, 2, 3, 3), _randn(4, 1, 3, 3)

    def penalty(lib, fn, x, w1, w2):
        h = fn.conv2d(x, w1, stride=2, padding=1).tanh()
        out = fn.conv2d(h, w2, padding=1, groups=4).sum()
        (grad,) = lib.autograd.grad(out, x, create_graph=True) if lib is torch else mg.grad(out, x, create_graph=True)
        return (grad * grad).sum()

    ours = [_leaf(a) for a in (x, w1, w2)]
    theirs = [torch.tensor(a, requires_grad=True) for a in (x, w1, w2)]
    penalty(mg, F, *ours).backward()
    penalty(torch, torch.nn.functional, *theirs).backward()
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.grad.cpu().numpy(), b.grad.cpu().numpy(), atol=1e-9)


def test_float32_stays_float32():
    x = mg.randn(2, 3, 6, 6, requires_grad=True)
    w = mg.randn(4, 3, 3, 3, requires_grad=True)
    out = F.conv2d(x, w, padding=1)
    out.sum().backward()
    assert out.dtype == mg.float32 and x.grad.dtype == mg.float32 and w.grad.dtype == mg.float32


# ------------------------------------------------------------------- structure
@pytest.mark.parametrize("multiplier, stride, padding", [(1, 1, 1), (2, 2, 0), (3, 1, 2)])
def test_depthwise_path_matches_general_grouped_path(multiplier, stride, padding):
    """groups == channels runs its own kernels: the same conv with a block-diagonal dense weight
    (groups=1, the general GEMM path) must agree, forward and backward."""
    channels = 3
    x, w = _randn(2, channels, 7, 6), _randn(channels * multiplier, 1, 3, 3)
    dense = np.zeros((channels * multiplier, channels, 3, 3))
    for o in range(channels * multiplier):
        dense[o, o // multiplier] = w[o, 0]
    xs, ws, xd, wd = _leaf(x), _leaf(w), _leaf(x), _leaf(dense)
    depthwise = F.conv2d(xs, ws, stride=stride, padding=padding, groups=channels)
    general = F.conv2d(xd, wd, stride=stride, padding=padding)
    np.testing.assert_allclose(_np(depthwise), _np(general), atol=1e-12)
    seed = mg.tensor(_randn(*depthwise.shape))
    depthwise.backward(seed)
    general.backward(seed)
    np.testing.assert_allclose(xs.grad.cpu().numpy(), xd.grad.cpu().numpy(), atol=1e-12)
    picked = np.stack([wd.grad.cpu().numpy()[o, o // multiplier] for o in range(channels * multiplier)])[:, None]
    np.testing.assert_allclose(ws.grad.cpu().numpy(), picked, atol=1e-12)


@pytest.mark.parametrize(
    "groups, stride, padding, dilation, size",
    [(1, 1, 0, 1, (6, 5)), (2, 2, 1, 1, (7, 6)), (4, 2, 1, 2, (8, 7)), (1, 3, 2, 1, (8, 8))],
)
def test_conv_transpose_is_the_adjoint_of_conv(groups, stride, padding, dilation, size):
    """<conv2d(x, w), y> == <x, conv_transpose2d(y, w)>, with output_padding making the shapes match."""
    x, w = _randn(2, 4, *size), _randn(6 if groups != 4 else 4, 4 // groups, 3, 3)
    y = F.conv2d(mg.tensor(x), mg.tensor(w), stride=stride, padding=padding, dilation=dilation, groups=groups)
    y_array = _randn(*y.shape)
    natural = [(s - 1) * stride - 2 * padding + dilation * 2 + 1 for s in y.shape[2:]]
    output_padding = tuple(s - n for s, n in zip(size, natural))
    back = F.conv_transpose2d(mg.tensor(y_array), mg.tensor(w), None, stride, padding, output_padding, groups, dilation)
    assert back.shape == x.shape
    np.testing.assert_allclose((y.cpu().numpy() * y_array).sum(), (x * back.cpu().numpy()).sum(), rtol=1e-12)


@pytest.mark.parametrize("kernel, stride, padding, dilation", [(3, 1, 0, 1), (3, 2, 1, 1), (2, 1, 1, 2), (3, 3, 0, 1)])
def test_fold_of_unfold_counts_overlaps(kernel, stride, padding, dilation):
    """fold(unfold(x)) is x times the number of windows covering each pixel: a product over the two
    dims of #{(o, i): o * stride + i * dilation - padding == h}."""
    height, width = 7, 6
    x = _randn(2, 3, height, width)

    def coverage(size):
        out = (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
        return np.array(
            [
                sum(o * stride + i * dilation - padding == h for o in range(out) for i in range(kernel))
                for h in range(size)
            ]
        )

    args = {"kernel_size": kernel, "stride": stride, "padding": padding, "dilation": dilation}
    round_trip = F.fold(F.unfold(mg.tensor(x), **args), (height, width), **args)
    np.testing.assert_allclose(round_trip.cpu().numpy(), x * np.outer(coverage(height), coverage(width)), atol=1e-12)


# ------------------------------------------------------------------------ errors
def test_wrong_channel_count_names_op_and_shapes():
    x, w = mg.zeros(8, 4, 32, 32), mg.zeros(16, 3, 3, 3)
    message = (
        "conv2d: expected input with 3 channels (weight (16, 3, 3, 3), groups=1), got input of shape (8, 4, 32, 32)"
    )
    with pytest.raises(RuntimeError, match=re.escape(message)):
        F.conv2d(x, w)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (
            lambda: F.conv2d(mg.zeros(1, 4, 5, 5), mg.zeros(6, 2, 3, 3), groups=3),
            RuntimeError,
            "groups=3 does not divide",
        ),
        (lambda: F.conv2d(mg.zeros(1, 4, 5, 5), mg.zeros(3, 2, 3, 3), groups=2), RuntimeError, "3 output channels"),
        (lambda: F.conv2d(mg.zeros(1, 1, 2, 5), mg.zeros(1, 1, 3, 3)), RuntimeError, "larger than the padded input"),
        (lambda: F.conv2d(mg.zeros(1, 1, 5, 5), mg.zeros(1, 1, 3, 3), stride=0), ValueError, "stride must be positive"),
        (lambda: F.conv2d(mg.zeros(1, 1, 5, 5), mg.zeros(1, 1, 3, 3), padding=-1), ValueError, "non-negative"),
        (lambda: F.conv2d(mg.zeros(1, 1, 5, 5), mg.zeros(1, 1, 3, 3), padding="full"), ValueError, "'valid' or 'same'"),
        (
            lambda: F.conv2d(mg.zeros(1, 1, 5, 5), mg.zeros(1, 1, 3, 3), stride=2, padding="same"),
            ValueError,
            "stride 1",
        ),
        (lambda: F.conv2d(mg.zeros(5, 5), mg.zeros(1, 1, 3, 3)), RuntimeError, r"4-D input .* got shape \(5, 5\)"),
        (lambda: F.conv2d(mg.zeros(1, 1, 5, 5), mg.zeros(1, 3, 3)), RuntimeError, "4-D weight"),
        (
            lambda: F.conv2d(mg.zeros(1, 1, 5, 5), mg.zeros(2, 1, 3, 3), mg.zeros(3)),
            RuntimeError,
            r"bias of shape \(2,\)",
        ),
        (
            lambda: F.conv2d(mg.zeros(1, 1, 5, 5, dtype=mg.float64), mg.zeros(1, 1, 3, 3)),
            RuntimeError,
            "float64 but weight is float32",
        ),
        (
            lambda: F.conv1d(mg.zeros(1, 2, 5), mg.zeros(1, 3, 3)),
            RuntimeError,
            "conv1d: expected input with 3 channels",
        ),
        (
            lambda: F.conv_transpose2d(mg.zeros(1, 2, 5, 5), mg.zeros(3, 1, 3, 3)),
            RuntimeError,
            "conv_transpose2d: expected input with 3 channels",
        ),
        (
            lambda: F.conv_transpose2d(mg.zeros(1, 2, 5, 5), mg.zeros(2, 1, 3, 3), output_padding=1),
            ValueError,
            "output_padding",
        ),
        (lambda: F.fold(mg.zeros(1, 9, 10), (5, 5), 3), RuntimeError, "has 9 sliding blocks"),
        (lambda: F.fold(mg.zeros(1, 8, 9), (5, 5), 3), RuntimeError, "divisible"),
        (lambda: F.unfold(mg.zeros(1, 1, 2, 2), 3), RuntimeError, "larger than the padded input"),
    ],
)
def test_bad_arguments_raise_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


# ----------------------------------------------------------------------- pooling
def _compare_pool_with_torch(torch, fn, torch_fn, x, kwargs):
    """Values, indices (when returned) and the input's gradient against PyTorch."""
    ours, theirs = _leaf(x), torch.tensor(x, requires_grad=True)
    out, expected = fn(ours, **kwargs), torch_fn(theirs, **kwargs)
    if isinstance(expected, tuple):
        np.testing.assert_array_equal(out[1].cpu().numpy(), expected[1].cpu().numpy())
        out, expected = out[0], expected[0]
    np.testing.assert_allclose(_np(out), expected.detach().cpu().numpy(), atol=1e-12)
    seed = _randn(*expected.shape)
    out.backward(mg.tensor(seed))
    expected.backward(torch.tensor(seed))
    np.testing.assert_allclose(ours.grad.cpu().numpy(), theirs.grad.cpu().numpy(), atol=1e-12)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kernel_size": 2},
        {"kernel_size": 3, "stride": 2, "padding": 1},
        {"kernel_size": (2, 3), "stride": (1, 2), "padding": 1, "dilation": (2, 1)},
        {"kernel_size": 3, "stride": 2, "ceil_mode": True},
        {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True, "return_indices": True},
    ],
)
def test_max_pool2d_matches_torch(kwargs):
    torch = pytest.importorskip("torch")
    _compare_pool_with_torch(torch, F.max_pool2d, torch.nn.functional.max_pool2d, _randn(2, 3, 7, 8), kwargs)


def test_max_pool_gives_ties_to_the_first_maximum():
    """PyTorch's rule: the first maximum of a window in row-major order gets the gradient and the index."""
    x = mg.tensor([[[[1.0, 1.0, 0.0], [1.0, 1.0, 1.0], [0.0, 1.0, 1.0]]]], requires_grad=True)
    out, indices = F.max_pool2d(x, 2, stride=1, return_indices=True)
    out.sum().backward()
    np.testing.assert_array_equal(indices.cpu().numpy(), [[[[0, 1], [3, 4]]]])
    np.testing.assert_array_equal(x.grad.cpu().numpy(), [[[[1, 1, 0], [1, 1, 0], [0, 0, 0]]]])
    nan = F.max_pool2d(mg.tensor([[[[1.0, float("nan")], [2.0, 0.0]]]]), 2)
    assert np.isnan(nan.item())


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kernel_size": 2},
        {"kernel_size": 3, "stride": 2, "padding": 1},
        {"kernel_size": 3, "stride": 2, "padding": 1, "count_include_pad": False},
        {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True},
        {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True, "count_include_pad": False},
        {"kernel_size": 2, "stride": 1, "divisor_override": 3},
    ],
)
def test_avg_pool2d_matches_torch(kwargs):
    torch = pytest.importorskip("torch")
    _compare_pool_with_torch(torch, F.avg_pool2d, torch.nn.functional.avg_pool2d, _randn(2, 3, 7, 8), kwargs)


@pytest.mark.parametrize("size", [1, (3, 4), (5, 3), (None, 3), (7, 8), 6, (2, 1)])
def test_adaptive_pools_match_torch(size):
    torch = pytest.importorskip("torch")
    x = _randn(2, 3, 7, 8)
    _compare_pool_with_torch(
        torch, F.adaptive_avg_pool2d, torch.nn.functional.adaptive_avg_pool2d, x, {"output_size": size}
    )
    kwargs = {"output_size": size, "return_indices": True}
    _compare_pool_with_torch(torch, F.adaptive_max_pool2d, torch.nn.functional.adaptive_max_pool2d, x, kwargs)
    ties = np.round(_randn(3, 7, 8))  # unbatched, with ties
    _compare_pool_with_torch(torch, F.adaptive_max_pool2d, torch.nn.functional.adaptive_max_pool2d, ties, kwargs)


def test_pool1d_matches_torch():
    torch = pytest.importorskip("torch")
    x = _randn(2, 3, 9)
    kwargs = {"kernel_size": 3, "stride": 2, "padding": 1, "return_indices": True}
    _compare_pool_with_torch(torch, F.max_pool1d, torch.nn.functional.max_pool1d, x, kwargs)
    kwargs = {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True, "count_include_pad": False}
    _compare_pool_with_torch(torch, F.avg_pool1d, torch.nn.functional.avg_pool1d, x, kwargs)


def test_pooling_double_backward_matches_torch():
    torch = pytest.importorskip("torch")
    x = _randn(2, 2, 6, 6)

    def penalty(lib, fn, x):
        h = fn.max_pool2d(x.tanh(), 3, 2, 1) * 2
        out = (fn.avg_pool2d(h * h, 2, 1) + fn.adaptive_avg_pool2d(h, (2, 3)).sum()).sum()
        (grad,) = lib.autograd.grad(out, x, create_graph=True) if lib is torch else mg.grad(out, x, create_graph=True)
        return (grad * grad).sum()

    ours, theirs = _leaf(x), torch.tensor(x, requires_grad=True)
    penalty(mg, F, ours).backward()
    penalty(torch, torch.nn.functional, theirs).backward()
    np.testing.assert_allclose(ours.grad.cpu().numpy(), theirs.grad.cpu().numpy(), atol=1e-10)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: F.max_pool2d(mg.zeros(1, 1, 5, 5), 3, padding=2), ValueError, "at most half"),
        (lambda: F.max_pool2d(mg.zeros(1, 1, 2, 2), 3), RuntimeError, "output size"),
        (lambda: F.max_pool2d(mg.zeros(5, 5), 2), RuntimeError, r"max_pool2d: expected a 4-D input"),
        (lambda: F.avg_pool2d(mg.zeros(1, 1, 4, 4), 2, stride=0), ValueError, "stride must be positive"),
        (lambda: F.avg_pool2d(mg.zeros(1, 1, 4, 4), 2, divisor_override=0), ValueError, "divisor_override"),
        (lambda: F.adaptive_avg_pool2d(mg.zeros(1, 1, 4, 4), 0), ValueError, "output_size"),
        (lambda: F.adaptive_max_pool2d(mg.zeros(1, 1, 4, 4), (1, 2, 3)), ValueError, "output_size"),
    ],
)
def test_bad_pool_arguments_raise_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


# ----------------------------------------------------------------------- padding
@pytest.mark.parametrize(
    "shape, pad, mode, value",
    [
        ((2, 3, 5, 6), (1, 2, 3, 0), "constant", 1.5),
        ((2, 3, 5, 6), (-1, 2, 3, -2), "constant", None),  # negative pads crop
        ((2, 3, 5, 6), (1, 2, 3, 0, 1, 1, 0, 2), "constant", None),
        ((2, 3, 5, 6), (1, 2, 3, 0), "reflect", None),
        ((2, 3, 5), (4, 1), "reflect", None),
        ((3, 5, 6), (-2, 1), "reflect", None),
        ((2, 3, 5, 6), (5, 6, 2, 1), "replicate", None),
        ((2, 3, 4, 5, 6), (1, 2, 3, 0, 2, 1), "replicate", None),
        ((2, 3, 5, 6), (5, 6, 2, 1), "circular", None),
        ((3, 5, 6), (-2, -3), "circular", None),
        ((2, 3, 4, 5, 6), (1, 2, 3, 0, 2, 1), "circular", None),
    ],
)
def test_pad_matches_torch(shape, pad, mode, value):
    torch = pytest.importorskip("torch")
    x = _randn(*shape)
    kwargs = {"pad": pad, "mode": mode, **({} if value is None else {"value": value})}
    _compare_pool_with_torch(torch, F.pad, torch.nn.functional.pad, x, kwargs)


def test_border_pad_gradient_reaches_the_edge_once_per_copy():
    """replicate copies the edge into every padded cell: its gradient is the sum over them."""
    x = mg.tensor([[1.0, 2.0, 3.0]], requires_grad=True)
    F.pad(x, (2, 1), mode="replicate").sum().backward()
    np.testing.assert_array_equal(x.grad.cpu().numpy(), [[3.0, 1.0, 2.0]])


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: F.pad(mg.zeros(1, 2, 3), (1, 1), mode="mirror"), ValueError, "mode must be one of"),
        (lambda: F.pad(mg.zeros(1, 2, 3), (1, 1, 1)), ValueError, "even number"),
        (lambda: F.pad(mg.zeros(3), (1, 1, 1, 1)), ValueError, "pads 2 dims"),
        (lambda: F.pad(mg.zeros(1, 2, 3), (1, 3), mode="reflect"), RuntimeError, "at most 2"),
        (lambda: F.pad(mg.zeros(1, 2, 3), (1, 4), mode="circular"), RuntimeError, "at most 3"),
        (lambda: F.pad(mg.zeros(1, 2, 3), (-2, -2)), RuntimeError, "negative"),
        (lambda: F.pad(mg.zeros(1, 1, 2, 3), (1, 1), mode="reflect"), ValueError, "last 1, 2 or 3 dims"),
        (lambda: F.pad(mg.zeros(1, 2, 3), (1, 1), mode="reflect", value=2.0), ValueError, "takes no value"),
    ],
)
def test_bad_pad_arguments_raise_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize(
    "make",
    [
        lambda: nn.Conv2d(4, 6, 3, padding=1),
        lambda: nn.Conv2d(4, 6, 3, stride=2, groups=2),
        lambda: nn.Conv2d(4, 4, 3, groups=4),  # depthwise
        lambda: nn.Conv2d(4, 8, 3, groups=4, padding="same"),
        lambda: nn.Conv2d(4, 6, 1),  # pointwise
        lambda: nn.Conv2d(4, 6, 3, padding=1, padding_mode="reflect"),
        lambda: nn.ConvTranspose2d(4, 6, 3, stride=2),
        lambda: nn.ConvTranspose2d(4, 4, 3, groups=4),
    ],
)
def test_an_empty_batch_gives_an_empty_output_and_zero_weight_gradients(make):
    """As PyTorch: N = 0 images give (0, O, OH, OW), and the weight and bias gradients are zeros."""
    conv = make()
    x = mg.randn(0, 4, 7, 8, requires_grad=True)
    y = conv(x)
    assert tuple(y.shape) == (0, *conv(mg.randn(1, 4, 7, 8)).shape[1:])
    y.sum().backward()
    assert tuple(x.grad.shape) == (0, 4, 7, 8)
    assert not conv.weight.grad.cpu().numpy().any() and not conv.bias.grad.cpu().numpy().any()
