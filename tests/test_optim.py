"""Optimizers and schedulers against PyTorch, step for step; state_dict round trips; errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

import minigrad as mg
import nn

torch = pytest.importorskip("torch")


def _models():
    theirs = torch.nn.Sequential(torch.nn.Linear(5, 6), torch.nn.Tanh(), torch.nn.Linear(6, 2)).double()
    ours = nn.Sequential(nn.Linear(5, 6), nn.Tanh(), nn.Linear(6, 2)).to(mg.float64)
    ours.load_state_dict({k: v.cpu().numpy() for k, v in theirs.state_dict().items()})
    return ours, theirs


def _groups(model, extra):
    """Two parameter groups: the first layer with the defaults, the last with ``extra`` options."""
    return [{"params": list(model[0].parameters())}, {"params": list(model[2].parameters()), **extra}]


def _step(model, optimizer, x, lib):
    optimizer.zero_grad()
    loss = (model(lib.tensor(x)) ** 2).mean()
    loss.backward()
    optimizer.step()


def _assert_same(ours, theirs):
    for a, b in zip(ours.parameters(), theirs.parameters()):
        np.testing.assert_allclose(a.detach().cpu().numpy(), b.detach().cpu().numpy(), rtol=1e-10, atol=1e-12)


CASES = [
    ("SGD", dict(lr=0.1), {}),
    ("SGD", dict(lr=0.1, momentum=0.9), dict(lr=0.05, dampening=0.3)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-2), dict(momentum=0.5)),
    ("SGD", dict(lr=0.1, maximize=True), {}),
    ("Adam", dict(lr=0.01), dict(betas=(0.8, 0.99))),
    ("Adam", dict(lr=0.01, weight_decay=0.1, amsgrad=True), dict(eps=1e-3)),
    ("AdamW", dict(lr=0.01), dict(weight_decay=0.5)),
    ("AdamW", dict(lr=0.01, amsgrad=True), {}),
    ("RMSprop", dict(lr=0.01), dict(alpha=0.9)),
    ("RMSprop", dict(lr=0.01, momentum=0.9, centered=True, weight_decay=0.1), {}),
]


@pytest.mark.parametrize("name, options, group_options", CASES)
def test_optimizer_matches_torch_step_for_step(name, options, group_options):
    ours, theirs = _models()
    mine = getattr(nn.optim, name)(_groups(ours, group_options), **options)
    reference = getattr(torch.optim, name)(_groups(theirs, group_options), **options)
    rng = np.random.default_rng(0)
    for _ in range(6):
        x = rng.standard_normal((4, 5))
        _step(ours, mine, x, mg)
        _step(theirs, reference, x, torch)
        _assert_same(ours, theirs)


@pytest.mark.parametrize(
    "name, options",
    [
        ("SGD", dict(lr=0.1, momentum=0.9)),
        ("Adam", dict(lr=0.01)),
        ("RMSprop", dict(lr=0.01, centered=True, momentum=0.5)),
    ],
)
def test_state_dict_round_trip_mid_training_gives_the_same_trajectory(name, options, tmp_path):
    rng = np.random.default_rng(1)
    xs = [rng.standard_normal((4, 5)) for _ in range(6)]
    ours, _ = _models()
    twin = nn.Sequential(nn.Linear(5, 6), nn.Tanh(), nn.Linear(6, 2)).to(mg.float64)
    twin.load_state_dict(ours.state_dict())
    first = getattr(nn.optim, name)(ours.parameters(), **options)
    for x in xs[:3]:
        _step(ours, first, x, mg)
    mg.save(first.state_dict(), tmp_path / "optimizer.safetensors")
    twin.load_state_dict(ours.state_dict())
    second = getattr(nn.optim, name)(twin.parameters(), **options)
    second.load_state_dict(mg.load(tmp_path / "optimizer.safetensors"))
    for x in xs[3:]:
        _step(ours, first, x, mg)
        _step(twin, second, x, mg)
    for a, b in zip(ours.parameters(), twin.parameters()):
        np.testing.assert_array_equal(a.detach().cpu().numpy(), b.detach().cpu().numpy())


def test_parameters_without_gradients_are_skipped():
    a, b = nn.Parameter(mg.ones(2)), nn.Parameter(mg.ones(2))
    optimizer = nn.optim.SGD([a, b], lr=1.0)
    (a * 2).sum().backward()
    optimizer.step()
    np.testing.assert_array_equal(a.detach().cpu().numpy(), [-1, -1])
    np.testing.assert_array_equal(b.detach().cpu().numpy(), [1, 1])


def test_optimizer_errors():
    with pytest.raises(ValueError, match="empty parameter list"):
        nn.optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="can only optimize Tensors"):
        nn.optim.SGD([np.zeros(2)], lr=0.1)
    with pytest.raises(ValueError, match="non-leaf"):
        nn.optim.Adam([mg.ones(2, requires_grad=True) * 2])
    with pytest.raises(ValueError, match="Invalid learning rate"):
        nn.optim.SGD(nn.Linear(2, 2).parameters(), lr=-1)
    with pytest.raises(ValueError, match="Nesterov"):
        nn.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="beta parameter at index 0"):
        nn.optim.Adam(nn.Linear(2, 2).parameters(), betas=(1.0, 0.9))
    p = nn.Parameter(mg.ones(2))
    with pytest.raises(ValueError, match="more than one parameter group"):
        nn.optim.SGD([{"params": [p]}, {"params": [p]}], lr=0.1)
    optimizer = nn.optim.SGD([p], lr=0.1)
    state = {"state": {7: {"momentum_buffer": mg.ones(2)}}, "param_groups": optimizer.state_dict()["param_groups"]}
    with pytest.raises(ValueError, match="parameter 7, which no parameter group lists"):
        optimizer.load_state_dict(state)


def test_a_step_invalidates_graphs_that_saved_the_old_weights():
    layer = nn.Linear(2, 2)
    optimizer = nn.optim.SGD(layer.parameters(), lr=0.1)
    out = (layer(mg.randn(3, 2, requires_grad=True)) ** 2).sum()
    out.backward(retain_graph=True)
    optimizer.step()
    with pytest.raises(RuntimeError, match="modified in place"):
        out.backward()


SCHEDULERS = [
    ("StepLR", dict(step_size=3, gamma=0.5)),
    ("MultiStepLR", dict(milestones=[2, 5, 9], gamma=0.3)),
    ("ExponentialLR", dict(gamma=0.9)),
    ("CosineAnnealingLR", dict(T_max=10, eta_min=0.001)),
    ("LinearLR", dict(start_factor=0.2, total_iters=6)),
    ("LambdaLR", dict(lr_lambda=lambda epoch: 0.95**epoch + 0.01 * epoch)),
    ("OneCycleLR", dict(max_lr=0.5, total_steps=20)),
    ("OneCycleLR", dict(max_lr=[0.5, 0.2], total_steps=20, three_phase=True, anneal_strategy="linear")),
]


def _optimizers(name):
    lin_ours, lin_theirs = nn.Linear(2, 2), torch.nn.Linear(2, 2)
    groups = lambda m: [{"params": [m.weight]}, {"params": [m.bias], "lr": 0.05}]  # noqa: E731
    return nn.optim.SGD(groups(lin_ours), lr=0.1, momentum=0.9), torch.optim.SGD(
        groups(lin_theirs), lr=0.1, momentum=0.9
    )


@pytest.mark.parametrize("name, options", SCHEDULERS, ids=[s[0] for s in SCHEDULERS])
def test_scheduler_matches_torch(name, options):
    ours_opt, theirs_opt = _optimizers(name)
    ours = getattr(nn.optim.lr_scheduler, name)(ours_opt, **options)
    theirs = getattr(torch.optim.lr_scheduler, name)(theirs_opt, **options)
    for _ in range(19):
        np.testing.assert_allclose(ours.get_last_lr(), theirs.get_last_lr(), rtol=1e-12)
        np.testing.assert_allclose(
            [g["momentum"] for g in ours_opt.param_groups], [g["momentum"] for g in theirs_opt.param_groups], rtol=1e-12
        )
        ours_opt.step()
        theirs_opt.step()
        ours.step()
        theirs.step()


def test_sequential_lr_matches_torch():
    ours_opt, theirs_opt = _optimizers("SequentialLR")

    def build(lib, optimizer):
        schedulers = lib.optim.lr_scheduler if lib is torch else nn.optim.lr_scheduler
        warmup = schedulers.LinearLR(optimizer, start_factor=0.1, total_iters=4)
        decay = schedulers.CosineAnnealingLR(optimizer, T_max=12)
        return schedulers.SequentialLR(optimizer, [warmup, decay], milestones=[4])

    ours, theirs = build(nn, ours_opt), build(torch, theirs_opt)
    for _ in range(16):
        np.testing.assert_allclose(ours.get_last_lr(), theirs.get_last_lr(), rtol=1e-10, atol=1e-14)
        ours_opt.step()
        theirs_opt.step()
        ours.step()
        theirs.step()


def test_reduce_lr_on_plateau_matches_torch():
    ours_opt, theirs_opt = _optimizers("ReduceLROnPlateau")
    ours = nn.optim.lr_scheduler.ReduceLROnPlateau(ours_opt, patience=2, factor=0.5, cooldown=1)
    theirs = torch.optim.lr_scheduler.ReduceLROnPlateau(theirs_opt, patience=2, factor=0.5, cooldown=1)
    for metric in [1.0, 0.9, 0.9, 0.9, 0.9, 0.95, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8]:
        ours.step(metric)
        theirs.step(metric)
        assert [g["lr"] for g in ours_opt.param_groups] == pytest.approx([g["lr"] for g in theirs_opt.param_groups])


def test_one_cycle_refuses_to_step_past_its_end():
    optimizer, _ = _optimizers("OneCycleLR")
    schedule = nn.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, total_steps=3)
    schedule.step()
    schedule.step()
    schedule.step()
    with pytest.raises(ValueError, match="total steps is 3"):
        schedule.step()


@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf])
def test_clip_grad_norm_matches_torch(norm_type):
    ours, theirs = _models()
    x = np.random.default_rng(2).standard_normal((4, 5))
    (ours(mg.tensor(x)) ** 2).sum().backward()
    (theirs(torch.tensor(x)) ** 2).sum().backward()
    total = nn.utils.clip_grad_norm_(ours.parameters(), 0.5, norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs.parameters(), 0.5, norm_type)
    assert total.item() == pytest.approx(expected.item(), rel=1e-10)
    for a, b in zip(ours.parameters(), theirs.parameters()):
        np.testing.assert_allclose(a.grad.cpu().numpy(), b.grad.cpu().numpy(), rtol=1e-10)


def test_parameters_to_vector_and_back():
    layer = nn.Linear(3, 2)
    vector = nn.utils.parameters_to_vector(layer.parameters())
    assert vector.shape == (8,)
    nn.utils.vector_to_parameters(vector * 0 + 1, layer.parameters())
    assert float(layer.weight.sum().item()) == 6.0


# ------------------------------------------------------------------ foreach (flat buffers)
FOREACH_CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.3, weight_decay=0.01)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01, maximize=True)),
    ("Adam", dict(lr=0.01, weight_decay=0.1)),
    ("Adam", dict(lr=0.01, amsgrad=True, maximize=True)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, amsgrad=True, weight_decay=0.5)),
    ("RMSprop", dict(lr=0.01, momentum=0.9, centered=True, weight_decay=0.1)),
]
SHAPES = [((3, 4), mg.float32), ((4,), mg.float64), ((2, 3, 2), mg.float32), ((), mg.float64), ((5,), mg.float32)]
SHAPES += [((2, 2), mg.float64), ((7,), mg.float32)]


def _parameters():
    rng = np.random.default_rng(0)
    return [nn.Parameter(mg.tensor(rng.standard_normal(shape), dtype=dtype)) for shape, dtype in SHAPES]


def _optimizer(name, options, params, foreach):
    """Two groups with different learning rates, each with float32 and float64 parameters."""
    groups = [{"params": params[:4]}, {"params": params[4:], "lr": options["lr"] / 3}]
    return getattr(nn.optim, name)(groups, **options, foreach=foreach)


def _train(pairs, steps, first_step=0):
    """Give every (params, optimizer) the same gradients and step it; from the second step on,
    a changing third of the parameters has no gradient (not updated, its state not advanced)."""
    for step in range(first_step, first_step + steps):
        for params, optimizer in pairs:
            rng = np.random.default_rng(100 + step)
            for i, p in enumerate(params):
                grad = rng.standard_normal(p.shape)
                p.grad = None if step and (i + step) % 3 == 0 else mg.tensor(grad, dtype=p.dtype)
            optimizer.step()


def _assert_identical(pair, other):
    (params, optimizer), (params_other, optimizer_other) = pair, other
    for a, b in zip(params, params_other):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a.detach().cpu().numpy(), b.detach().cpu().numpy())
    mine, theirs = optimizer.state_dict(), optimizer_other.state_dict()
    assert mine["state"].keys() == theirs["state"].keys()
    for index, state in mine["state"].items():
        assert state.keys() == theirs["state"][index].keys()
        for name, value in state.items():
            if isinstance(value, mg.Tensor):
                assert value.shape == params[index].shape and value.dtype == params[index].dtype
                np.testing.assert_array_equal(value.cpu().numpy(), theirs["state"][index][name].cpu().numpy())
            else:
                assert value == theirs["state"][index][name]
    strip = lambda groups: [{k: v for k, v in g.items() if k != "foreach"} for g in groups]  # noqa: E731
    assert strip(mine["param_groups"]) == strip(theirs["param_groups"])


@pytest.mark.parametrize("name, options", FOREACH_CASES)
def test_foreach_gives_the_same_bits_as_one_parameter_at_a_time(name, options):
    flat, single = _parameters(), _parameters()
    pairs = [(flat, _optimizer(name, options, flat, True)), (single, _optimizer(name, options, single, False))]
    _train(pairs, 6)
    assert pairs[0][1]._flat and not pairs[1][1]._flat  # the flat path did run, the other did not
    _assert_identical(*pairs)


@pytest.mark.parametrize("name, options", [FOREACH_CASES[2], FOREACH_CASES[5], FOREACH_CASES[8]])
def test_foreach_state_dict_loads_into_the_other_path(name, options):
    flat, single = _parameters(), _parameters()
    pairs = [(flat, _optimizer(name, options, flat, True)), (single, _optimizer(name, options, single, False))]
    _train(pairs, 3)
    for (params, optimizer), foreach in zip(list(pairs), (False, True)):
        twin = _parameters()
        for p, q in zip(twin, params):
            p.data = q.data.copy()
        loaded = _optimizer(name, options, twin, foreach)
        loaded.load_state_dict(optimizer.state_dict())
        assert all(g["foreach"] is foreach for g in loaded.param_groups)  # how to compute is not state
        pairs.append((twin, loaded))
    checkpoint = pairs[0][1].state_dict(), [p.data.copy() for p in flat]
    _train(pairs[:1], 2, first_step=50)  # steps to undo: the flat buffers must take the loaded state
    pairs[0][1].load_state_dict(checkpoint[0])
    for p, data in zip(flat, checkpoint[1]):
        p.data[...] = data
    _train(pairs, 4, first_step=3)
    for pair in pairs[1:]:
        _assert_identical(pairs[0], pair)


@pytest.mark.parametrize("name, options", [FOREACH_CASES[3], FOREACH_CASES[7]])
def test_foreach_follows_a_replaced_parameter_array(name, options):
    flat, single = _parameters(), _parameters()
    pairs = [(flat, _optimizer(name, options, flat, True)), (single, _optimizer(name, options, single, False))]
    _train(pairs, 2)
    for params, _ in pairs:
        params[1].data = params[1].data * 2  # a new array: the flat buffer no longer holds this parameter
        params[5].data[...] = 0.5  # written in place: still the flat buffer's
    _train(pairs, 3, first_step=2)
    _assert_identical(*pairs)
    assert not np.array_equal(flat[1].detach().cpu().numpy(), 2 * _parameters()[1].detach().cpu().numpy())


@pytest.mark.parametrize(
    "name, options, schedule",
    [
        ("SGD", dict(lr=0.1, momentum=0.9), dict(max_lr=0.5, total_steps=8)),
        ("AdamW", dict(lr=0.01), dict(max_lr=[0.05, 0.02], total_steps=8, anneal_strategy="linear")),
    ],
)
def test_foreach_follows_lr_schedulers(name, options, schedule):
    """OneCycleLR changes the learning rates and the momenta (betas) of each group at each step."""
    flat, single = _parameters(), _parameters()
    pairs = [(flat, _optimizer(name, options, flat, True)), (single, _optimizer(name, options, single, False))]
    schedulers = [nn.optim.lr_scheduler.OneCycleLR(optimizer, **schedule) for _, optimizer in pairs]
    for step in range(7):
        _train(pairs, 1, first_step=step)
        for scheduler in schedulers:
            scheduler.step()
    _assert_identical(*pairs)


def test_foreach_default_flattens_groups_of_several_parameters():
    params = _parameters()
    optimizer = nn.optim.Adam([{"params": params[:1]}, {"params": params[1:]}])
    assert optimizer.param_groups[0]["foreach"] is None
    _train([(params, optimizer)], 1)
    assert [group_id for group_id in optimizer._flat] == [id(optimizer.param_groups[1])]
