"""sort, topk, cumprod, roll and tile: PyTorch's semantics and errors, cumprod's gradient at
zeros, and (where torch is installed) the same results and gradients as PyTorch."""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg

TIES = np.array([[3.0, 1.0, 3.0, 2.0, 1.0], [0.0, 0.0, 5.0, -1.0, 5.0]])


def _np(x):
    return x.detach().cpu().numpy()


@pytest.mark.parametrize(
    "values", [[2.0, 0.0, 3.0, -1.5], [0.0, 1.5, 0.0, 2.0], [0.0, 0.0, 0.0], [1.5, -2.0, 0.5, 0.0]]
)
def test_cumprod_gradient_exact_with_zeros(values):
    """One zero, several, all: the gradient is the product of the other factors, not out / x."""
    x = mg.tensor(np.array([values, values[::-1]]), requires_grad=True)
    for dim in (0, 1):
        assert mg.gradcheck(lambda a: mg.cumprod(a, dim), [x])
        assert mg.gradgradcheck(lambda a: mg.cumprod(a, dim), [x])


def test_cumprod_gradient_at_a_zero_is_the_product_of_the_others():
    x = mg.tensor([2.0, 0.0, 3.0], requires_grad=True)
    mg.cumprod(x, 0).sum().backward()
    # d/dx1 of (2 + 2 x1 + 2 x1 3) = 2 + 6; x2 only appears beside x1 = 0
    np.testing.assert_allclose(_np(x.grad), [1.0, 8.0, 0.0])


def test_sort_and_topk_return_named_values_and_indices():
    x = mg.tensor(TIES)
    out = x.sort(descending=True)
    assert out.values.shape == out.indices.shape == (2, 5) and out.indices.dtype == mg.int64
    np.testing.assert_array_equal(out.indices.cpu().numpy(), [[0, 2, 3, 1, 4], [2, 4, 0, 1, 3]])
    values, indices = x.topk(2, dim=0, largest=False)
    np.testing.assert_array_equal(values.cpu().numpy(), [[0.0, 0.0, 3.0, -1.0, 1.0], [3.0, 1.0, 5.0, 2.0, 5.0]])
    np.testing.assert_array_equal(indices.cpu().numpy(), [[1, 1, 0, 1, 0], [0, 0, 1, 0, 1]])


def test_sort_puts_nan_last_ascending_and_first_descending():
    x = mg.tensor([1.0, float("nan"), 2.0])
    np.testing.assert_array_equal(mg.sort(x).indices.cpu().numpy(), [0, 2, 1])
    np.testing.assert_array_equal(mg.sort(x, descending=True).indices.cpu().numpy(), [1, 2, 0])
    np.testing.assert_array_equal(mg.topk(x, 1).indices.cpu().numpy(), [1])


def test_sort_gradient_goes_to_each_values_index():
    x = mg.tensor([3.0, 1.0, 2.0], requires_grad=True)
    values, _ = mg.topk(x, 2)
    (values * mg.tensor([10.0, 1.0])).sum().backward()
    np.testing.assert_array_equal(x.grad.cpu().numpy(), [10.0, 0.0, 1.0])


def test_zero_dim_and_empty_tensors():
    scalar = mg.tensor(3.0)
    assert mg.sort(scalar).values.item() == 3.0 and mg.topk(scalar, 1).indices.item() == 0
    assert mg.roll(scalar, 2).item() == 3.0 and mg.cumprod(scalar, 0).item() == 3.0
    empty = mg.zeros(0, 3)
    assert mg.sort(empty, 0).values.shape == (0, 3) and mg.topk(empty, 0, 0).indices.shape == (0, 3)
    assert mg.roll(empty, 1, 0).shape == (0, 3) and mg.tile(empty, (2,)).shape == (0, 6)


def test_tile_pads_short_dims_with_ones():
    x = mg.arange(6).reshape(2, 3)
    assert mg.tile(x, (2,)).shape == (2, 6)
    assert x.tile(2, 1, 1).shape == (2, 2, 3)
    np.testing.assert_array_equal(mg.tile(x, (2,)).cpu().numpy(), np.tile(np.arange(6).reshape(2, 3), 2))


def test_roll_without_dims_rolls_the_flattened_tensor():
    x = mg.arange(6).reshape(2, 3)
    np.testing.assert_array_equal(x.roll(1).cpu().numpy(), [[5, 0, 1], [2, 3, 4]])
    np.testing.assert_array_equal(mg.roll(x, (1, -1), (0, 1)).cpu().numpy(), [[4, 5, 3], [1, 2, 0]])


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda x: mg.topk(x, 6), RuntimeError, "topk: selected index k out of range"),
        (lambda x: mg.topk(x, -1), RuntimeError, "topk: selected index k out of range"),
        (lambda x: mg.roll(x, (1, 2), 0), RuntimeError, "roll: shifts and dimensions must align. shifts: 2, dims: 1"),
        (lambda x: mg.roll(x, (1, 2)), RuntimeError, "roll: shifts and dimensions must align. shifts: 2, dims: 0"),
        (lambda x: mg.roll(x, 1, 2), IndexError, "roll: dim 2 is out of range"),
        (lambda x: mg.roll(x, 1.5), TypeError, "roll: shifts must be ints"),
        (lambda x: mg.topk(x, 2.0), TypeError, "topk: k must be an int, got float"),
        (lambda x: mg.tile(x, (2, -1)), RuntimeError, "tile: dims must be non-negative, got (2, -1)"),
        (lambda x: mg.sort(x, 2), IndexError, "sort: dim 2 is out of range"),
        (lambda x: mg.cumprod(x, -3), IndexError, "cumprod: dim -3 is out of range"),
    ],
)
def test_errors_name_the_op(call, error, message):
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        call(mg.tensor(TIES))


def test_matches_pytorch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    data = rng.integers(-2, 3, size=(3, 4, 5)).astype(np.float64)
    grad = rng.standard_normal((3, 4, 5))
    for dim in (0, 1, -1):
        for descending in (False, True):
            got, want = (
                mg.sort(mg.tensor(data), dim, descending),
                torch.sort(torch.tensor(data), stable=True, dim=dim, descending=descending),
            )
            np.testing.assert_array_equal(got.values.cpu().numpy(), want.values.numpy())
            np.testing.assert_array_equal(got.indices.cpu().numpy(), want.indices.numpy())
        for k in (0, 2, data.shape[dim]):
            for largest in (True, False):
                got = mg.topk(mg.tensor(data), k, dim, largest).values.cpu().numpy()
                np.testing.assert_array_equal(got, torch.topk(torch.tensor(data), k, dim, largest).values.numpy())
        x, tx = mg.tensor(data, requires_grad=True), torch.tensor(data, requires_grad=True)
        mg.cumprod(x, dim).backward(mg.tensor(grad))
        torch.cumprod(tx, dim).backward(torch.tensor(grad))
        np.testing.assert_allclose(_np(mg.cumprod(x, dim)), torch.cumprod(tx, dim).detach().numpy())
        np.testing.assert_allclose(x.grad.cpu().numpy(), tx.grad.numpy(), rtol=1e-12, atol=1e-12)
    for shifts, dims in [(3, None), (-7, None), (2, 1), ((1, -2), (0, 2)), ((1, 1), (1, 1))]:
        want = torch.roll(torch.tensor(data), shifts, dims).numpy()
        np.testing.assert_array_equal(mg.roll(mg.tensor(data), shifts, dims).cpu().numpy(), want)
    for reps in [(2,), (1, 2), (2, 1, 1, 2), ()]:
        np.testing.assert_array_equal(
            mg.tile(mg.tensor(data), reps).cpu().numpy(), torch.tile(torch.tensor(data), reps)
        )
