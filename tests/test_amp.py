"""Mixed precision on the CPU with float16 arrays: autocast's op lists and GradScaler's dynamic loss scale."""

import math

import numpy as np
import pytest

import minigrad as mg
import minigrad.functional as F
import nn

DEVICE = mg.backend.get_default_device()  # autocast acts on the device the tensors are on


def _inputs(*shape, dtype=mg.float32):
    return mg.randn(*shape).to(dtype)


# ------------------------------------------------------------------------------ autocast
def test_linear_runs_in_float16_and_its_gradients_reach_float32_parameters_as_float32():
    mg.manual_seed(0)
    layer = nn.Linear(8, 4)
    x = _inputs(3, 8)
    with mg.autocast(DEVICE):
        y = layer(x)
    assert y.dtype == mg.float16
    y.float().sum().backward()
    assert layer.weight.grad.dtype == mg.float32 and layer.bias.grad.dtype == mg.float32
    expected = x.detach().cpu().numpy().T.astype(np.float16).astype(np.float32) @ np.ones((3, 4), np.float32)
    np.testing.assert_allclose(layer.weight.grad.detach().cpu().numpy(), expected.T, rtol=1e-2, atol=1e-2)


def test_matrix_products_and_convolutions_run_in_float16():
    a, b = _inputs(2, 3, 4), _inputs(2, 4, 5)
    image, kernel = _inputs(1, 2, 5, 5), _inputs(3, 2, 3, 3)
    q = _inputs(1, 2, 3, 4)
    with mg.autocast(DEVICE):
        assert mg.matmul(a, b).dtype == mg.float16
        assert mg.einsum("bij,bjk->bik", a, b).dtype == mg.float16
        assert F.conv2d(image, kernel).dtype == mg.float16
        assert mg.bmm(a, b).dtype == mg.float16 and mg.mm(a[0], b[0]).dtype == mg.float16
        assert (a @ b).dtype == mg.float16
        assert F.linear(a, b[0].T).dtype == mg.float16
        assert F.conv1d(image[:, :, 0], kernel[:, :, 0]).dtype == mg.float16
        assert F.conv_transpose2d(image, kernel.transpose(0, 1)).dtype == mg.float16
        assert F.scaled_dot_product_attention(q, q, q).dtype == mg.float16


def test_softmax_norms_losses_reductions_and_exp_log_run_in_float32():
    logits = _inputs(4, 5, dtype=mg.float16)
    targets = mg.tensor([0, 1, 2, 3])
    with mg.autocast(DEVICE):
        assert F.softmax(logits, dim=-1).dtype == mg.float32
        assert F.log_softmax(logits, dim=-1).dtype == mg.float32
        assert F.cross_entropy(logits, targets).dtype == mg.float32
        assert F.mse_loss(logits, logits.detach() * 0.5).dtype == mg.float32
        assert F.layer_norm(logits, (5,)).dtype == mg.float32
        assert F.batch_norm(logits, None, None, training=True).dtype == mg.float32
        assert F.group_norm(logits.reshape(4, 5, 1), 5).dtype == mg.float32
        assert logits.sum().dtype == mg.float32 and logits.mean(dim=0).dtype == mg.float32
        assert mg.exp(logits).dtype == mg.float32 and mg.log(logits.abs() + 1).dtype == mg.float32


def test_other_ops_follow_their_inputs_promotion():
    half, single, double = _inputs(3, dtype=mg.float16), _inputs(3), _inputs(3, dtype=mg.float64)
    with mg.autocast(DEVICE):
        assert F.relu(half).dtype == mg.float16
        assert (half + half).dtype == mg.float16
        assert (half * single).dtype == mg.float32
        assert mg.matmul(double, double).dtype == mg.float64  # float64 is never cast
        assert F.softmax(double, dim=0).dtype == mg.float64


def test_nested_disabled_autocast_other_devices_and_the_decorator():
    a = _inputs(2, 2)
    with mg.autocast(DEVICE):
        with mg.autocast(DEVICE, enabled=False):
            assert mg.matmul(a, a).dtype == mg.float32
            assert not mg.amp.is_autocast_enabled(DEVICE)
        assert mg.matmul(a, a).dtype == mg.float16
    assert mg.matmul(a, a).dtype == mg.float32
    with mg.autocast("cpu" if DEVICE == "cuda" else "cuda"):  # the tensors' device is not autocast's business there
        assert mg.matmul(a, a).dtype == mg.float32

    @mg.autocast(DEVICE)
    def product(x):
        return mg.matmul(x, x)

    assert product(a).dtype == mg.float16
    assert mg.matmul(a, a).dtype == mg.float32


def test_backward_runs_in_the_forward_dtypes_even_inside_autocast():
    mg.manual_seed(0)
    layer = nn.Linear(6, 3)
    x = _inputs(4, 6)
    grads = []
    for backward_inside in (False, True):
        layer.zero_grad()
        with mg.autocast(DEVICE):
            loss = F.cross_entropy(layer(x), mg.tensor([0, 1, 2, 0]))
            if backward_inside:
                loss.backward()
        if not backward_inside:
            loss.backward()
        grads.append(layer.weight.grad.detach().cpu().numpy().copy())
    np.testing.assert_array_equal(grads[0], grads[1])


def test_autocast_arguments_are_checked():
    with pytest.raises(ValueError, match="device_type"):
        mg.autocast("tpu")
    with pytest.raises(ValueError, match="float16"):
        mg.autocast("cpu", dtype=mg.float64)


# ---------------------------------------------------------------------------- GradScaler
def _model_with_gradient(value: float):
    """A one-parameter model whose gradient after ``scaler.scale(loss).backward()`` is ``value`` (times the scale)."""
    p = nn.Parameter(mg.ones(2))
    return p, nn.optim.SGD([p], lr=0.1), lambda: (p * value).sum()


def _iteration(scaler, value: float):
    p, optimizer, loss = _model_with_gradient(value)
    scaler.scale(loss()).backward()
    scaler.step(optimizer)
    scaler.update()
    return p


def test_a_step_with_an_inf_gradient_is_skipped_and_the_scale_backs_off():
    scaler = nn.amp.GradScaler(init_scale=1024.0, backoff_factor=0.25)
    for bad in (float("inf"), float("nan")):
        before = scaler.get_scale()
        p = _iteration(scaler, bad)
        np.testing.assert_array_equal(p.detach().cpu().numpy(), np.ones(2, np.float32))
        assert scaler.get_scale() == before * 0.25


def test_a_clean_step_is_taken_on_unscaled_gradients_and_clean_runs_grow_the_scale():
    scaler = nn.amp.GradScaler(init_scale=8.0, growth_factor=2.0, growth_interval=3)
    p = _iteration(scaler, 2.0)
    np.testing.assert_allclose(
        p.detach().cpu().numpy(), 1 - 0.1 * 2.0
    )  # the step saw the true gradient, not 8 times it
    scales = [scaler.get_scale()]
    for _ in range(5):
        _iteration(scaler, 2.0)
        scales.append(scaler.get_scale())
    assert scales == [8.0, 8.0, 16.0, 16.0, 16.0, 32.0]
    _iteration(scaler, float("inf"))
    assert scaler.get_scale() == 16.0 and scaler.state_dict()["_growth_tracker"] == 0


def test_unscale_twice_or_step_twice_raises():
    scaler = nn.amp.GradScaler()
    p, optimizer, loss = _model_with_gradient(1.0)
    scaler.scale(loss()).backward()
    scaler.unscale_(optimizer)
    np.testing.assert_allclose(p.grad.detach().cpu().numpy(), 1.0)
    with pytest.raises(RuntimeError, match="already called"):
        scaler.unscale_(optimizer)
    scaler.step(optimizer)
    with pytest.raises(RuntimeError, match="already called"):
        scaler.step(optimizer)
    with pytest.raises(RuntimeError, match="after step"):
        scaler.unscale_(optimizer)
    scaler.update()
    scaler.unscale_(optimizer)  # a new iteration may unscale again


@pytest.mark.filterwarnings("ignore:overflow encountered")  # the scaled gradient overflows float16: the point
def test_float16_gradients_are_refused_and_update_needs_a_step():
    scaler = nn.amp.GradScaler()
    p = nn.Parameter(mg.ones(2).half())
    optimizer = nn.optim.SGD([p], lr=0.1)
    scaler.scale(p.sum()).backward()
    with pytest.raises(ValueError, match="float16 gradient"):
        scaler.unscale_(optimizer)
    with pytest.raises(RuntimeError, match="no optimizer"):
        nn.amp.GradScaler().update()


@pytest.mark.filterwarnings("ignore:overflow encountered")
def test_a_refused_unscale_leaves_every_gradient_scaled():
    scaler = nn.amp.GradScaler(init_scale=4.0)
    full, half = nn.Parameter(mg.ones(2)), nn.Parameter(mg.ones(2).half())
    optimizer = nn.optim.SGD([full, half], lr=0.1)
    scaler.scale(full.sum() + half.sum().float()).backward()
    with pytest.raises(ValueError, match="float16 gradient"):
        scaler.unscale_(optimizer)
    np.testing.assert_array_equal(full.grad.detach().cpu().numpy(), 4.0)


def test_a_disabled_scaler_ignores_a_loaded_state_as_pytorch():
    off = nn.amp.GradScaler(enabled=False)
    off.load_state_dict(nn.amp.GradScaler().state_dict())
    assert off.state_dict() == {} and off.get_scale() == 1.0


def test_state_dict_round_trip_and_new_scale():
    scaler = nn.amp.GradScaler(init_scale=4.0, growth_interval=5)
    for _ in range(3):
        _iteration(scaler, 1.0)
    other = nn.amp.GradScaler()
    other.load_state_dict(scaler.state_dict())
    assert (
        other.state_dict()
        == scaler.state_dict()
        == {
            "scale": 4.0,
            "growth_factor": 2.0,
            "backoff_factor": 0.5,
            "growth_interval": 5,
            "_growth_tracker": 3,
        }
    )
    other.update(new_scale=128.0)
    assert other.get_scale() == 128.0
    with pytest.raises(RuntimeError, match="empty"):
        other.load_state_dict({})


def test_scaled_float16_loss_is_float32_and_disabled_scaler_passes_through():
    scaler = nn.amp.GradScaler()
    loss = mg.tensor(2.0).half()
    scaled = scaler.scale(loss)
    assert scaled.dtype == mg.float32 and scaled.item() == 2.0 * 2**16  # would overflow float16
    off = nn.amp.GradScaler(enabled=False)
    assert off.scale(loss) is loss and off.get_scale() == 1.0 and off.state_dict() == {}
    p = _iteration(off, 1.0)
    np.testing.assert_allclose(p.detach().cpu().numpy(), 0.9)


def test_training_with_autocast_and_grad_scaler_follows_float32_training():
    def train(amp: bool) -> float:
        mg.manual_seed(0)
        x, y = mg.randn(64, 10), mg.randint(0, 3, (64,))
        model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 3))
        optimizer = nn.optim.SGD(model.parameters(), lr=0.2)
        scaler = nn.amp.GradScaler(enabled=amp)
        for _ in range(30):
            optimizer.zero_grad()
            with mg.autocast(DEVICE, enabled=amp):
                loss = F.cross_entropy(model(x), y)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        assert all(p.dtype == mg.float32 for p in model.parameters())
        return F.cross_entropy(model(x), y).item()

    full, mixed = train(False), train(True)
    assert full < 0.9  # it learned something
    assert abs(mixed - full) < 0.01


def test_scale_sequence_matches_torch_on_the_same_inf_pattern():
    torch = pytest.importorskip("torch")
    pattern = [1.0, 1.0, float("inf"), 1.0, 1.0, 1.0, float("nan"), float("inf"), 1.0, 1.0, 1.0, 1.0]
    ours = nn.amp.GradScaler(init_scale=256.0, growth_factor=4.0, backoff_factor=0.25, growth_interval=2)
    theirs = torch.amp.GradScaler("cpu", init_scale=256.0, growth_factor=4.0, backoff_factor=0.25, growth_interval=2)
    ours_scales, theirs_scales = [], []
    for value in pattern:
        _iteration(ours, value)
        ours_scales.append(ours.get_scale())
        p = torch.nn.Parameter(torch.ones(2))
        optimizer = torch.optim.SGD([p], lr=0.1)
        theirs.scale((p * value).sum()).backward()
        theirs.step(optimizer)
        theirs.update()
        theirs_scales.append(theirs.get_scale())
    assert ours_scales == theirs_scales
    assert ours.state_dict() == theirs.state_dict()


def test_composite_losses_run_in_float32_where_float16_would_overflow():
    big, target = mg.full((4,), 300.0).half(), mg.zeros(4).half()  # 300^2 is past float16's 65504
    with mg.autocast(DEVICE):
        assert F.mse_loss(big, target).item() == 90000.0
        assert F.huber_loss(big, target, delta=400.0).item() == 45000.0
        for loss in (
            F.l1_loss(big, target),
            F.smooth_l1_loss(big, target),
            F.binary_cross_entropy_with_logits(big, target),
            F.kl_div(big, mg.full((4,), 0.25)),
            F.cosine_similarity(big, big, dim=0),
            F.cosine_embedding_loss(big[None], big[None], mg.tensor([1])),
            F.margin_ranking_loss(big, target, mg.ones(4)),
            F.triplet_margin_loss(big[None], target[None], big[None]),
        ):
            assert loss.dtype == mg.float32 and math.isfinite(loss.item())


@pytest.mark.parametrize("cell", [nn.LSTM, nn.GRU])
def test_recurrent_layers_run_in_float16_and_their_gradients_are_float32(cell):
    mg.manual_seed(0)
    rnn = cell(5, 7, batch_first=True)
    x = _inputs(2, 3, 5)
    with mg.autocast(DEVICE):
        output = rnn(x)[0]
        assert output.dtype == mg.float16
        loss = output.sum()
    loss.backward()
    assert all(p.grad is not None and p.grad.dtype == mg.float32 for p in rnn.parameters())
    reference = rnn(x)[0]
    np.testing.assert_allclose(output.float().detach().cpu().numpy(), reference.detach().cpu().numpy(), atol=2e-2)
