"""nn.init: gains, fans, and the statistics of every initialiser (tolerances from the sample size)."""

import math

import numpy as np
import pytest

import minigrad as mg
import nn
from nn import init


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def parameter(*shape, dtype=mg.float32):
    return nn.Parameter(mg.zeros(*shape, dtype=dtype))


def check_uniform(values, low, high):
    """Inside [low, high), reaching both ends, with mean and std within 5 standard errors."""
    values = np.asarray(values, dtype=np.float64).ravel()
    n, width = values.size, high - low
    assert values.min() >= low and values.max() <= high
    assert values.min() < low + 1e-3 * width and values.max() > high - 1e-3 * width
    assert abs(values.mean() - (low + high) / 2) < 5 * width / math.sqrt(12 * n)
    # the sample std of a uniform has a standard error of about 0.258 * half-width / sqrt(n)
    assert abs(values.std() - width / math.sqrt(12)) < 5 * 0.258 * (width / 2) / math.sqrt(n)


def check_normal(values, mean, std):
    values = np.asarray(values, dtype=np.float64).ravel()
    n = values.size
    assert abs(values.mean() - mean) < 5 * std / math.sqrt(n)
    assert abs(values.std() - std) < 5 * std / math.sqrt(2 * n)


def test_calculate_gain_matches_pytorch(torch):
    for name in ["linear", "conv1d", "conv2d", "conv_transpose2d", "sigmoid", "tanh", "relu", "leaky_relu", "selu"]:
        assert init.calculate_gain(name) == pytest.approx(torch.nn.init.calculate_gain(name), rel=1e-15)
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(torch.nn.init.calculate_gain("leaky_relu", 0.2))
    assert init.calculate_gain("leaky_relu", 0) == pytest.approx(math.sqrt(2.0))
    with pytest.raises(ValueError, match="Unsupported nonlinearity"):
        init.calculate_gain("swish")
    with pytest.raises(ValueError, match="not a valid number"):
        init.calculate_gain("leaky_relu", "0.1")


def test_fans_match_pytorch(torch):
    for shape in [(3, 4), (8, 3, 5, 5), (2, 3, 1), (6, 2, 3, 4, 5)]:
        ours = init._calculate_fan_in_and_fan_out(mg.zeros(*shape))
        assert ours == torch.nn.init._calculate_fan_in_and_fan_out(torch.zeros(*shape))
    assert init._calculate_fan_in_and_fan_out(mg.zeros(8, 3, 5, 5)) == (75, 200)
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init.xavier_uniform_(mg.zeros(5))
    with pytest.raises(ValueError, match="Mode fan_avg not supported"):
        init.kaiming_uniform_(mg.zeros(2, 2), mode="fan_avg")


def test_uniform_and_normal():
    check_uniform(init.uniform_(parameter(300, 200), -2.0, 3.0).detach().cpu().numpy(), -2.0, 3.0)
    check_uniform(init.uniform_(parameter(60000)).detach().cpu().numpy(), 0.0, 1.0)
    check_normal(init.normal_(parameter(300, 200), 1.0, 2.0).detach().cpu().numpy(), 1.0, 2.0)
    check_normal(init.normal_(parameter(60000, dtype=mg.float64)).detach().cpu().numpy(), 0.0, 1.0)


def test_xavier():
    w = parameter(300, 200)
    bound = 2.0 * math.sqrt(6.0 / 500)
    check_uniform(init.xavier_uniform_(w, gain=2.0).detach().cpu().numpy(), -bound, bound)
    check_normal(init.xavier_normal_(w).detach().cpu().numpy(), 0.0, math.sqrt(2.0 / 500))


def test_kaiming():
    w = parameter(64, 16, 8, 8)  # fan_in 1024, fan_out 4096
    bound = math.sqrt(2.0) * math.sqrt(3.0 / 1024)  # leaky_relu with a=0 by default
    check_uniform(init.kaiming_uniform_(w).detach().cpu().numpy(), -bound, bound)
    bound = math.sqrt(2.0 / (1 + 5)) * math.sqrt(3.0 / 1024)  # a=sqrt(5): Linear's and Conv's default
    check_uniform(init.kaiming_uniform_(w, a=math.sqrt(5)).detach().cpu().numpy(), -bound, bound)
    check_normal(
        init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu").detach().cpu().numpy(), 0.0, math.sqrt(2.0 / 4096)
    )
    check_normal(init.kaiming_normal_(w, nonlinearity="tanh").detach().cpu().numpy(), 0.0, 5.0 / 3 / math.sqrt(1024))
    with pytest.warns(UserWarning, match="zero-element"):
        init.kaiming_uniform_(parameter(0, 3))


def test_trunc_normal_stays_inside_and_has_the_truncated_moments():
    mean, std, a, b = 0.5, 1.0, -1.0, 1.5
    values = init.trunc_normal_(parameter(300, 200), mean, std, a, b).detach().cpu().numpy().astype(np.float64)
    assert values.min() >= a and values.max() <= b
    alpha, beta = (a - mean) / std, (b - mean) / std
    pdf = lambda x: math.exp(-x * x / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    cdf = lambda x: 0.5 * (1 + math.erf(x / math.sqrt(2)))  # noqa: E731
    z = cdf(beta) - cdf(alpha)
    expected_mean = mean + std * (pdf(alpha) - pdf(beta)) / z
    expected_var = std**2 * (1 + (alpha * pdf(alpha) - beta * pdf(beta)) / z - ((pdf(alpha) - pdf(beta)) / z) ** 2)
    n = values.size
    assert abs(values.mean() - expected_mean) < 5 * math.sqrt(expected_var / n)
    assert abs(values.var() - expected_var) < 5 * expected_var * math.sqrt(2 / n)
    defaults = init.trunc_normal_(parameter(20000)).detach().cpu().numpy()
    assert defaults.min() >= -2.0 and defaults.max() <= 2.0 and abs(defaults.mean()) < 5 / math.sqrt(20000)
    with pytest.raises(ValueError, match="a < b"):
        init.trunc_normal_(parameter(2), a=1.0, b=0.0)


@pytest.mark.parametrize("shape", [(10, 6), (6, 10), (4, 2, 3), (5, 5)])
def test_orthogonal(shape):
    w = init.orthogonal_(parameter(*shape, dtype=mg.float64), gain=2.0)
    flat = w.detach().cpu().numpy().reshape(shape[0], -1)
    gram = flat.T @ flat if flat.shape[0] >= flat.shape[1] else flat @ flat.T
    np.testing.assert_allclose(gram, 4.0 * np.eye(len(gram)), atol=1e-12)
    with pytest.raises(ValueError, match="2 or more dimensions"):
        init.orthogonal_(parameter(3))


def test_constant_zeros_ones_eye():
    w = parameter(3, 4)
    assert (init.constant_(w, 0.25).data == 0.25).all()
    assert (init.ones_(w).data == 1).all() and not init.zeros_(w).data.any()
    np.testing.assert_array_equal(init.eye_(w).detach().cpu().numpy(), np.eye(3, 4))
    with pytest.raises(ValueError, match="2 dimensions"):
        init.eye_(parameter(2, 2, 2))


@pytest.mark.parametrize(
    "fill",
    [
        lambda w: init.uniform_(w),
        lambda w: init.normal_(w),
        lambda w: init.trunc_normal_(w),
        lambda w: init.xavier_uniform_(w),
        lambda w: init.xavier_normal_(w),
        lambda w: init.kaiming_uniform_(w),
        lambda w: init.kaiming_normal_(w),
        lambda w: init.orthogonal_(w),
        lambda w: init.constant_(w, 2.0),
        lambda w: init.eye_(w),
    ],
)
def test_initialisers_work_in_place_outside_autograd_and_are_reproducible(fill):
    w = parameter(5, 4, dtype=mg.float64)
    version = w._version_value()
    mg.manual_seed(7)
    assert fill(w) is w
    assert w.is_leaf and w.requires_grad and w.grad_fn is None and w.dtype == mg.float64
    assert w._version_value() > version
    first = w.detach().cpu().numpy().copy()
    mg.manual_seed(7)
    fill(w)
    np.testing.assert_array_equal(w.detach().cpu().numpy(), first)
    assert mg.is_grad_enabled()
