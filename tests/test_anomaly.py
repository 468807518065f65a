"""Anomaly mode: the first op whose output holds NaN, or whose input gradient holds NaN/inf, raises,
naming the op, the input and the user's line that created it; off by default, and nothing changes then."""

from __future__ import annotations

import pytest

import minigrad as mg
import nn

# (NumPy warns about the NaNs these tests make on purpose)
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def test_nan_in_forward_names_the_op_and_the_line():
    x = mg.tensor([1.0, -1.0], requires_grad=True)
    with mg.autograd.detect_anomaly():
        with pytest.raises(RuntimeError) as error:
            mg.log(x)  # the line the error must point at
    message = str(error.value)
    assert "Log produced nan in output 0 (every input is finite)" in message
    assert "test_anomaly.py" in message and "mg.log(x)  # the line the error must point at" in message


def test_forward_names_the_input_that_carried_the_nan():
    x = mg.tensor([1.0, float("inf")])
    with (
        mg.autograd.detect_anomaly(),
        pytest.raises(RuntimeError, match=r"Mul produced nan in output 0 \(input 0 holds inf\)"),
    ):
        x * 0


def test_inf_made_on_purpose_in_forward_is_no_anomaly():
    """-inf masks (and log(0)) are values forward means to make: attention with a mask runs."""
    attention = nn.MultiheadAttention(4, 2, batch_first=True)
    x = mg.randn(1, 3, 4, requires_grad=True)
    causal = nn.Transformer.generate_square_subsequent_mask(3)
    with mg.autograd.detect_anomaly():
        attention(x, x, x, attn_mask=causal)[0].sum().backward()
        assert mg.log(mg.tensor([0.0])).item() == float("-inf")
    assert x.grad is not None


def test_nan_made_only_in_backward_names_the_op():
    x = mg.tensor([0.0, 1.0], requires_grad=True)
    with mg.autograd.detect_anomaly():
        y = mg.sqrt(x) * 0  # finite forward; d sqrt/dx at 0 is inf, times 0 is nan
        with pytest.raises(RuntimeError) as error:
            y.sum().backward()
    message = str(error.value)
    assert "Sqrt.backward returned nan in the gradient for input 0" in message
    assert "y = mg.sqrt(x) * 0" in message


def test_an_error_in_backward_is_told_where_the_op_was_created():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    with mg.autograd.detect_anomaly(check_nan=False):
        y = (x * 1).exp()
        y.mul_(2)  # Exp saved its output: backward must refuse
        with pytest.warns(UserWarning, match=r"anomaly mode: error in Exp.backward") as warned:
            with pytest.raises(RuntimeError, match="Exp: a tensor of shape"):
                y.sum().backward()
    assert "y = (x * 1).exp()" in str(warned[0].message)


def test_module_frames_are_kept_and_engine_frames_are_not():
    layer = nn.Linear(2, 2)
    with mg.no_grad():
        layer.weight.fill_(float("nan"))
    with mg.autograd.detect_anomaly(), pytest.raises(RuntimeError) as error:
        layer(mg.ones(1, 2))
    message = str(error.value)
    assert "holds nan" in message and "layer(mg.ones(1, 2))" in message
    assert "minigrad/ops" not in message and "minigrad/autograd" not in message


def test_nothing_raises_when_off():
    assert not mg.autograd.is_anomaly_enabled()
    x = mg.tensor([0.0, -1.0], requires_grad=True)
    y = mg.log(x) + mg.sqrt(x) * 0
    y.sum().backward()
    assert x.grad is not None


def test_context_and_setter_restore_the_previous_state():
    with mg.autograd.detect_anomaly():
        assert mg.autograd.is_anomaly_enabled()
        with mg.autograd.set_detect_anomaly(False):
            assert not mg.autograd.is_anomaly_enabled()
            mg.log(mg.tensor([-1.0]))  # off: no error
        assert mg.autograd.is_anomaly_enabled()
    assert not mg.autograd.is_anomaly_enabled()
    mg.autograd.set_detect_anomaly(True)
    try:
        assert mg.autograd.is_anomaly_enabled()
    finally:
        mg.autograd.set_detect_anomaly(False)
    assert not mg.autograd.is_anomaly_enabled()


def test_check_nan_false_records_without_raising():
    with mg.autograd.detect_anomaly(check_nan=False):
        assert not mg.autograd.is_anomaly_check_nan_enabled()
        y = mg.log(mg.tensor([-1.0], requires_grad=True))
    assert "test_anomaly.py" in "".join(str(f) for f in y.grad_fn._anomaly_stack)
    assert mg.autograd.is_anomaly_check_nan_enabled()
