"""nn.utils: gradient clipping and parameters <-> vector."""

import math

import numpy as np
import pytest

import minigrad as mg
import nn
from nn.utils import clip_grad_norm_, clip_grad_value_, parameters_to_vector, vector_to_parameters


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def with_grads(scale=1.0, lib=mg):
    rng = np.random.default_rng(0)
    params = []
    for shape in [(3, 4), (5,), (2, 2)]:
        p = (nn.Parameter if lib is mg else lib.nn.Parameter)(lib.zeros(*shape, dtype=lib.float64))
        p.grad = lib.tensor(scale * rng.standard_normal(shape))
        params.append(p)
    return params


@pytest.mark.parametrize("norm_type", [2.0, 1, 3.5, math.inf, "inf"])
@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_clip_grad_norm_matches_pytorch(torch, norm_type, max_norm):
    ours, theirs = with_grads(), with_grads(lib=torch)
    ours.append(nn.Parameter(mg.zeros(2)))  # no grad: ignored
    total = clip_grad_norm_(ours, max_norm, norm_type=float(norm_type))
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=float(norm_type))
    assert isinstance(total, mg.Tensor) and total.shape == ()
    np.testing.assert_allclose(total.detach().cpu().numpy(), expected.cpu().numpy(), rtol=1e-12)
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(p.grad.detach().cpu().numpy(), q.grad.cpu().numpy(), rtol=1e-12)


def test_clip_grad_norm_scales_to_the_max_norm():
    params = with_grads(scale=10.0)
    before = np.concatenate([p.grad.detach().cpu().numpy().ravel() for p in params])
    total = clip_grad_norm_(params, 1.0)
    after = np.concatenate([p.grad.detach().cpu().numpy().ravel() for p in params])
    assert float(total.data) == pytest.approx(np.linalg.norm(before))
    assert np.linalg.norm(after) == pytest.approx(1.0, rel=1e-5)
    np.testing.assert_allclose(after, before / (np.linalg.norm(before) + 1e-6))
    single = nn.Parameter(mg.zeros(2))
    single.grad = mg.tensor([3.0, 4.0])
    assert float(clip_grad_norm_(single, 10.0).data) == pytest.approx(5.0)
    np.testing.assert_allclose(single.grad.detach().cpu().numpy(), [3.0, 4.0])  # under the limit: unchanged
    assert float(clip_grad_norm_([nn.Parameter(mg.zeros(1))], 1.0).data) == 0.0


def test_clip_grad_norm_nonfinite():
    params = with_grads()
    params[1].grad.data[2] = np.inf
    with pytest.raises(RuntimeError, match="non-finite"):
        clip_grad_norm_(params, 1.0, error_if_nonfinite=True)
    assert np.isfinite(params[0].grad.detach().cpu().numpy()).all()  # the error comes before any scaling
    with np.errstate(invalid="ignore"):  # inf * 0 in the scaling, as in PyTorch
        assert math.isinf(float(clip_grad_norm_(params, 1.0).data))


def test_clip_grad_value_():
    params = with_grads(scale=3.0)
    originals = [p.grad.detach().cpu().numpy().copy() for p in params]
    clip_grad_value_(params, 1.5)
    for p, g in zip(params, originals):
        np.testing.assert_array_equal(p.grad.detach().cpu().numpy(), np.clip(g, -1.5, 1.5))


def test_parameters_to_vector_and_back():
    model = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1))
    vector = parameters_to_vector(model.parameters())
    assert vector.shape == (11,)
    np.testing.assert_array_equal(vector.detach().cpu().numpy()[:6], model[0].weight.detach().cpu().numpy().ravel())
    (vector * mg.arange(11).float()).sum().backward()  # differentiable: gradients reach the parameters
    np.testing.assert_array_equal(model[0].bias.grad.detach().cpu().numpy(), [6.0, 7.0])
    vector_to_parameters(mg.arange(11).float(), model.parameters())
    np.testing.assert_array_equal(model[0].weight.detach().cpu().numpy(), np.arange(6).reshape(2, 3))
    np.testing.assert_array_equal(model[1].bias.detach().cpu().numpy(), [10.0])
    assert isinstance(model[1].bias, nn.Parameter)
    with pytest.raises(RuntimeError, match=r"need \(11,\)"):
        vector_to_parameters(mg.zeros(10), model.parameters())
    with pytest.raises(TypeError, match="expected a Tensor"):
        vector_to_parameters(np.zeros(11), model.parameters())


def test_clip_grad_norm_nan_norm_makes_every_gradient_nan_as_pytorch():
    params = with_grads()
    params[1].grad.data[0] = np.nan
    with np.errstate(invalid="ignore"):
        assert math.isnan(float(clip_grad_norm_(params, 1.0, foreach=True).data))
    assert all(np.isnan(p.grad.detach().cpu().numpy()).all() for p in params)
