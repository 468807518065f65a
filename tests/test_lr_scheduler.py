"""Learning-rate schedulers: the exact sequences of PyTorch's, over many steps."""

import math

import numpy as np
import pytest

import minigrad as mg
import nn
from nn.optim import lr_scheduler


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def optimizer(lib, name="SGD"):
    """Two groups with different learning rates, as lib (mg/nn or torch) builds them."""
    if lib is nn:
        a, b = nn.Parameter(mg.zeros(1)), nn.Parameter(mg.zeros(1))
    else:
        a, b = lib.nn.Parameter(lib.zeros(1)), lib.nn.Parameter(lib.zeros(1))
    kwargs = dict(momentum=0.9) if name == "SGD" else {}
    return getattr(lib.optim, name)([{"params": [a]}, {"params": [b], "lr": 0.01}], lr=0.1, **kwargs)


SCHEDULES = [
    ("StepLR", dict(step_size=7, gamma=0.5)),
    ("MultiStepLR", dict(milestones=[3, 8, 8, 20], gamma=0.3)),
    ("ExponentialLR", dict(gamma=0.9)),
    ("CosineAnnealingLR", dict(T_max=10, eta_min=0.001)),
    ("CosineAnnealingLR", dict(T_max=7)),
    ("LinearLR", dict()),
    ("LinearLR", dict(start_factor=0.5, end_factor=0.1, total_iters=12)),
    ("LambdaLR", dict(lr_lambda=lambda epoch: 0.95**epoch + 0.01 * epoch)),
    ("OneCycleLR", dict(max_lr=[1.0, 0.1], total_steps=40)),
    ("OneCycleLR", dict(max_lr=0.5, epochs=4, steps_per_epoch=10, pct_start=0.25, anneal_strategy="linear")),
    ("OneCycleLR", dict(max_lr=0.5, total_steps=40, three_phase=True, div_factor=10.0, final_div_factor=100.0)),
]


def run(lib, name, kwargs, steps, optimizer_name="SGD"):
    opt = optimizer(lib, optimizer_name)
    module = lr_scheduler if lib is nn else lib.optim.lr_scheduler
    scheduler = getattr(module, name)(opt, **kwargs)
    lrs = [scheduler.get_last_lr()]
    momenta = [[g.get("momentum", g.get("betas", (None,))[0]) for g in opt.param_groups]]
    for _ in range(steps):
        opt.step()
        scheduler.step()
        lrs.append(scheduler.get_last_lr())
        momenta.append([g.get("momentum", g.get("betas", (None,))[0]) for g in opt.param_groups])
        assert lrs[-1] == [g["lr"] for g in opt.param_groups]
    return np.array(lrs, dtype=float), np.array(momenta, dtype=float)


@pytest.mark.parametrize("name, kwargs", SCHEDULES)
def test_schedules_match_pytorch(torch, name, kwargs):
    steps = 39 if name == "OneCycleLR" else 45
    ours, our_momenta = run(nn, name, kwargs, steps)
    theirs, their_momenta = run(torch, name, kwargs, steps)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(our_momenta, their_momenta, rtol=1e-12)


def test_one_cycle_cycles_adams_beta1(torch):
    kwargs = dict(max_lr=0.3, total_steps=20)
    ours, our_betas = run(nn, "OneCycleLR", kwargs, 19, "Adam")
    theirs, their_betas = run(torch, "OneCycleLR", kwargs, 19, "Adam")
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    np.testing.assert_allclose(our_betas, their_betas, rtol=1e-12)
    assert our_betas.min() == pytest.approx(0.85) and our_betas.max() == pytest.approx(0.95)


def test_sequential_lr_matches_pytorch(torch):
    def build(lib):
        opt = optimizer(lib)
        module = lr_scheduler if lib is nn else lib.optim.lr_scheduler
        warmup = module.LinearLR(opt, start_factor=0.1, total_iters=5)
        decay = module.CosineAnnealingLR(opt, T_max=20, eta_min=1e-4)
        steps = module.StepLR(opt, step_size=3, gamma=0.5)
        return opt, module.SequentialLR(opt, [warmup, decay, steps], milestones=[5, 25])

    (our_opt, ours), (their_opt, theirs) = build(nn), build(torch)
    for _ in range(40):
        assert ours.get_last_lr() == pytest.approx(theirs.get_last_lr(), rel=1e-12)
        for opt, scheduler in ((our_opt, ours), (their_opt, theirs)):
            opt.step()
            scheduler.step()


def test_reduce_lr_on_plateau_matches_pytorch(torch):
    metrics = [1.0, 0.9, 0.9, 0.9, 0.95, 0.899, 0.9, 0.9, 0.9, 0.9, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.4] * 2
    configs = [
        dict(patience=2),
        dict(mode="max", factor=0.5, patience=1, threshold=0.01, threshold_mode="abs", cooldown=2, min_lr=[0.02, 0]),
        dict(patience=0, cooldown=1, min_lr=0.005, eps=1e-3),
    ]
    for kwargs in configs:
        sequences = []
        for lib in (nn, torch):
            opt = optimizer(lib)
            module = lr_scheduler if lib is nn else lib.optim.lr_scheduler
            scheduler = module.ReduceLROnPlateau(opt, **kwargs)
            lrs = []
            for metric in metrics:
                scheduler.step(metric if lib is nn else torch.tensor(metric))
                lrs.append(scheduler.get_last_lr())
            sequences.append(lrs)
        np.testing.assert_allclose(sequences[0], sequences[1], rtol=1e-12, err_msg=str(kwargs))


def test_closed_form_step_with_an_epoch(torch):
    for name, kwargs in SCHEDULES[:7]:
        values = []
        for lib in (nn, torch):
            opt = optimizer(lib)
            module = lr_scheduler if lib is nn else lib.optim.lr_scheduler
            scheduler = getattr(module, name)(opt, **kwargs)
            with pytest.warns(UserWarning) if lib is torch else _nothing():
                scheduler.step(13)
            values.append(scheduler.get_last_lr())
        assert values[0] == pytest.approx(values[1], rel=1e-12), name


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_state_dict_resumes_the_schedule():
    opt = optimizer(nn)
    scheduler = lr_scheduler.CosineAnnealingLR(opt, T_max=10)
    for _ in range(4):
        scheduler.step()
    state = scheduler.state_dict()
    assert "optimizer" not in state and state["last_epoch"] == 4
    expected = []
    for _ in range(4):
        scheduler.step()
        expected.append(scheduler.get_last_lr())
    resumed_opt = optimizer(nn)
    resumed = lr_scheduler.CosineAnnealingLR(resumed_opt, T_max=10)
    resumed.load_state_dict(state)
    for group, lr in zip(resumed_opt.param_groups, state["_last_lr"]):
        group["lr"] = lr
    got = []
    for _ in range(4):
        resumed.step()
        got.append(resumed.get_last_lr())
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_lambda_lr_state_dict_skips_functions():
    class Warmup:
        def __init__(self):
            self.factor = 2.0

        def __call__(self, epoch):
            return self.factor * epoch

    scheduler = lr_scheduler.LambdaLR(optimizer(nn), [lambda e: 1.0, Warmup()])
    state = scheduler.state_dict()
    assert state["lr_lambdas"] == [None, {"factor": 2.0}]
    state["lr_lambdas"][1]["factor"] = 3.0
    scheduler.load_state_dict(state)
    assert scheduler.lr_lambdas[1].factor == 3.0


def test_scheduler_errors():
    opt = optimizer(nn)
    with pytest.raises(TypeError, match="is not an Optimizer"):
        lr_scheduler.StepLR("sgd", step_size=1)
    with pytest.raises(KeyError, match="initial_lr"):
        lr_scheduler.StepLR(opt, step_size=1, last_epoch=3)
    with pytest.raises(ValueError, match="Starting multiplicative factor"):
        lr_scheduler.LinearLR(opt, start_factor=0)
    with pytest.raises(ValueError, match="either total_steps"):
        lr_scheduler.OneCycleLR(opt, max_lr=0.1)
    with pytest.raises(ValueError, match="Factor should be < 1.0"):
        lr_scheduler.ReduceLROnPlateau(opt, factor=1.0)
    with pytest.raises(ValueError, match="Expected 2 lr_lambdas"):
        lr_scheduler.LambdaLR(opt, [lambda e: 1.0])
    one_cycle = lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=2)
    one_cycle.step()
    one_cycle.step()
    with pytest.raises(ValueError, match="Tried to step 3 times"):
        one_cycle.step()
    with pytest.raises(ValueError, match="number of milestone points"):
        lr_scheduler.SequentialLR(opt, [lr_scheduler.ExponentialLR(opt, 0.9)], milestones=[3])


def test_cosine_schedule_by_formula():
    opt = optimizer(nn)
    scheduler = lr_scheduler.CosineAnnealingLR(opt, T_max=8, eta_min=0.0)
    for epoch in range(1, 9):
        scheduler.step()
        assert scheduler.get_last_lr()[0] == pytest.approx(0.05 * (1 + math.cos(math.pi * epoch / 8)), abs=1e-12)
