"""Exact checks of the Tensor's non-differentiable ops and dtype rules against PyTorch's semantics."""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg


def test_logical_ops_treat_nonzero_as_true_and_return_bool():
    a, b = mg.tensor([0, 1, 2, -3]), mg.tensor([0, 0, 4, 1])
    for fn, expected in (
        (mg.logical_and, [False, False, True, True]),
        (mg.logical_or, [False, True, True, True]),
    ):
        out = fn(a, b)
        assert out.dtype == mg.bool
        np.testing.assert_array_equal(out.cpu().numpy(), expected)
    np.testing.assert_array_equal(mg.logical_not(a).cpu().numpy(), [True, False, False, False])
    np.testing.assert_array_equal(mg.logical_or(mg.tensor([0.0, 0.5]), 0.0).cpu().numpy(), [False, True])


def test_bitwise_operators_on_integers_and_bools():
    a, b = mg.tensor([12, 5]), mg.tensor([10, 3])
    np.testing.assert_array_equal((a & b).cpu().numpy(), [8, 1])
    np.testing.assert_array_equal((a | b).cpu().numpy(), [14, 7])
    np.testing.assert_array_equal((a ^ b).cpu().numpy(), [6, 6])
    np.testing.assert_array_equal((~a).cpu().numpy(), [-13, -6])
    mask = mg.tensor([True, False])
    assert (~mask).dtype == mg.bool
    np.testing.assert_array_equal((~mask).cpu().numpy(), [False, True])


def test_argsort_is_stable_both_ways_and_takes_pytorchs_arguments():
    x = mg.tensor([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 1.0, 2.0]])
    np.testing.assert_array_equal(mg.argsort(x, dim=1, stable=True).cpu().numpy(), [[3, 0, 1, 2], [2, 0, 1, 3]])
    descending = mg.argsort(x, dim=1, descending=True, stable=True)
    np.testing.assert_array_equal(descending.cpu().numpy(), [[1, 2, 0, 3], [0, 1, 3, 2]])
    np.testing.assert_array_equal(mg.argsort(x, dim=0, descending=True).cpu().numpy(), [[1, 0, 0, 1], [0, 1, 1, 0]])
    smallest = np.iinfo(np.int64).min
    np.testing.assert_array_equal(mg.argsort(mg.tensor([3, smallest, 1]), descending=True).cpu().numpy(), [0, 2, 1])
    np.testing.assert_array_equal(mg.argsort(mg.tensor([True, False, True]), descending=True).cpu().numpy(), [0, 2, 1])
    with_nan = mg.tensor([1.0, float("nan"), 0.0])  # NaN sorts as the largest value
    np.testing.assert_array_equal(mg.argsort(with_nan).cpu().numpy(), [2, 0, 1])
    np.testing.assert_array_equal(mg.argsort(with_nan, descending=True).cpu().numpy(), [1, 0, 2])
    assert mg.argsort(mg.tensor(2.0), descending=True).shape == ()


def test_result_dtypes_follow_pytorchs_promotion():
    ints, half, flags = mg.tensor([3, -4]), mg.tensor([1.0, 2.0], dtype=mg.float16), mg.tensor([True, False])
    assert (ints + half).dtype == mg.float16  # a floating-point tensor's dtype wins over integers
    assert (ints.to(mg.int32) * half).dtype == mg.float16
    assert (half / ints).dtype == mg.float16
    assert mg.tensor([True]).log().dtype == mg.get_default_dtype()  # not NumPy's float16
    assert flags.exp().dtype == mg.get_default_dtype()
    assert (ints // 2.5).dtype == mg.get_default_dtype()  # not NumPy's float64
    assert (ints % 2.5).dtype == mg.get_default_dtype()
    assert (ints // half).dtype == mg.float16


def test_reflected_floor_divide_and_remainder():
    x = mg.tensor([2, -3])
    np.testing.assert_array_equal((7 // x).cpu().numpy(), [3, -3])
    np.testing.assert_array_equal((7 % x).cpu().numpy(), [1, -2])
    np.testing.assert_array_equal((7.5 // mg.tensor([2.0])).cpu().numpy(), [3.0])


def test_setitem_with_a_value_that_does_not_broadcast_names_the_op_and_shapes():
    x = mg.zeros(3, 4)
    with pytest.raises(RuntimeError, match=r"__setitem__: a value of shape \(5,\) cannot be written into \(3, 4\)"):
        x[0] = mg.ones(5)
    assert x._version_value() == 0 and not x.cpu().numpy().any()


def test_flip_copies_as_pytorchs_does():
    x = mg.arange(6.0).reshape(2, 3)
    for dims in ((0,), (0, 1), ()):
        flipped = x.flip(dims)
        flipped[0, 0] = -1.0
        assert x[0, 0].item() == 0.0


def test_a_one_operand_einsum_does_not_alias_its_operand():
    # a write to the result must not change the operand behind autograd's back
    x = mg.ones(2, 2, requires_grad=True)
    y = x * 1
    z = (y * y).sum()
    with mg.no_grad():
        for equation in ("ij->ji", "ii->i", "ij->ij"):
            mg.einsum(equation, y).mul_(3)
    z.backward()
    np.testing.assert_array_equal(y.detach().cpu().numpy(), np.ones((2, 2)))
    np.testing.assert_array_equal(x.grad.cpu().numpy(), np.full((2, 2), 2.0))


def test_float16_cumsum_var_and_std_accumulate_in_float32():
    ones = mg.ones(4096, dtype=mg.float16)
    assert ones.cumsum(0).dtype == mg.float16
    assert ones.cumsum(0)[-1].item() == 4096.0  # float16 alone stalls at 2048
    x = mg.arange(100.0).to(mg.float16)  # the sum of squared deviations overflows float16
    assert x.var().dtype == mg.float16 and x.std().dtype == mg.float16
    np.testing.assert_allclose(x.var().item(), np.arange(100.0).var(ddof=1), rtol=1e-3)
    np.testing.assert_allclose(x.std().item(), np.arange(100.0).std(ddof=1), rtol=1e-3)
    assert mg.tensor([True, False, True]).cumsum(0).dtype == mg.int64
