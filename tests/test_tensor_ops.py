"""Exact checks of the Tensor's non-differentiable ops and dtype rules against PyTorch's semantics."""

from __future__ import annotations

import numpy as np

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
