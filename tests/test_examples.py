"""Every example runs in --quick mode, reports its figure, and its training loss falls."""

from __future__ import annotations

import math
import os

import pytest

from examples.__main__ import available
from minigrad import distributed

EXAMPLES = sorted(available())


def test_there_are_examples():
    assert "resnet" in EXAMPLES


def _falls(values) -> bool:
    values = [v[1] if isinstance(v, tuple) else v for v in values]
    quarter = max(len(values) // 4, 1)
    return sum(values[-quarter:]) / quarter < sum(values[:quarter]) / quarter


# On a GPU, weights and dropout draw from CuPy's generator, whose streams nothing here reproduces
# (the stand-in's are NumPy's, fixed by the seed, so there these runs are checked as everywhere):
# with other draws, these two short, noisy quick runs may end on a higher quarter of losses than
# they began.
_ON_A_GPU = os.environ.get("MINIGRAD_DEVICE") == "cuda" and os.environ.get("MINIGRAD_TEST_FAKE_CUPY") != "1"
_NOISY_ON_THE_DEVICE = {"efficientnet", "finetune"} if _ON_A_GPU else set()
# Curves that continue from an already trained model (fine-tuning after the linear probe, LP-FT)
# start near a minimum: a few quick steps need not lower them.
_CONTINUED = {"finetune": {"fine-tuned loss", "fine-tuned from SimCLR loss"}}


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=pytest.mark.xfail(reason="quick-run loss noise with the GPU's draws", strict=False))
        if n in _NOISY_ON_THE_DEVICE
        else n
        for n in EXAMPLES
    ],
)
def test_example_quick_run(name, tmp_path, capsys):
    import importlib

    if name == "ddp" and not (distributed.is_available() and distributed.find_mpiexec()):
        pytest.skip("ddp: needs mpi4py and an MPI launcher (pip install 'minigrad[distributed]')")
    module = importlib.import_module(f"examples.{name}")
    plot = tmp_path / "curves.png"
    result = module.main(["--quick", "--plot", str(plot)])
    assert math.isfinite(result.value)
    assert result.metric in capsys.readouterr().out
    losses = [values for key, values in result.curves.items() if "loss" in key and key not in _CONTINUED.get(name, ())]
    if losses:  # examples that train something
        assert all(_falls(values) for values in losses), f"{name}: the loss did not fall"
    if result.curves:
        assert plot.stat().st_size > 0


@pytest.mark.parametrize("name", ["resnet", "vit", "focal_loss"])
def test_same_seed_same_curves_bit_for_bit(name):
    """MODELS.md: seed 42 reproduces an example's loss curve exactly on the CPU; another seed does not."""
    import importlib

    module = importlib.import_module(f"examples.{name}")
    first, again = (module.main(["--quick", "--seed", "7"]) for _ in range(2))
    other = module.main(["--quick", "--seed", "8"])
    losses = [key for key in first.curves if "loss" in key]
    assert losses
    for key in losses:
        assert first.curves[key] == again.curves[key]
    assert any(first.curves[key] != other.curves[key] for key in losses)


@pytest.mark.parametrize(
    "name, options",
    [("resnet", []), ("transformer", ["--task", "dates", "--d-model", "32", "--dim-feedforward", "64"])],
)
def test_amp_quick_run_trains_without_nan_and_follows_float32(name, options):
    """--amp (autocast float16 + GradScaler) on the CPU: the loss stays finite, falls, and stays within
    a few hundredths of the float32 run's at every step."""
    import importlib

    module = importlib.import_module(f"examples.{name}")
    full, mixed = (module.main(["--quick", *options, *amp]) for amp in ([], ["--amp"]))
    losses = [key for key in full.curves if "loss" in key]
    assert losses
    for key in losses:
        assert all(math.isfinite(value) for value in mixed.curves[key])
        assert _falls(mixed.curves[key])
        assert max(abs(a - b) for a, b in zip(full.curves[key], mixed.curves[key], strict=True)) < 0.05


def test_double_descent_label_noise_and_interpolation_width():
    """20 % of the labels redrawn uniformly changes about 18 % of them; at interpolation_width the MLP
    has n x classes parameters."""
    import minigrad as mg
    from examples._common import parameters
    from examples.double_descent import CLASSES, interpolation_width, mlp, noisy

    mg.manual_seed(0)
    labels = mg.randint(0, CLASSES, (20000,))
    changed = (noisy(labels, 0.2) != labels).float().mean().item()
    assert abs(changed - 0.18) < 0.01
    width = interpolation_width(1000, 49)  # 7x7 pooled images
    assert parameters(mlp(49, math.floor(width))) <= 1000 * CLASSES <= parameters(mlp(49, math.ceil(width)))


def test_simsiam_collapse_measure():
    """The per-dimension std of z / ||z||: 0 for a collapsed output, about 1 / sqrt(d) for spread-out ones."""
    import minigrad as mg
    from examples.simsiam import output_std

    mg.manual_seed(0)
    assert output_std(mg.ones(64, 32)) == pytest.approx(0, abs=1e-6)
    assert output_std(mg.randn(4096, 32)) == pytest.approx(1 / math.sqrt(32), rel=0.05)


def test_cpc_predicts_every_step_against_the_other_signals():
    import minigrad as mg
    from examples.cpc import CPC, info_nce_per_step, register_signals

    mg.manual_seed(0)
    x, classes = register_signals(6, 256, 32, noise=0.1)
    assert x.shape == (6, 1, 256) and classes.shape == (6,)
    assert 0 <= classes.min().item() and classes.max().item() < 8
    per_step = info_nce_per_step(CPC(8, 8, steps=3), x, temperature=0.1)
    assert len(per_step) == 3
    # an untrained network picks its own signal's future about as often as chance: 1 in 6
    assert all(0 < loss.item() < 2 * math.log(6) for loss in per_step)


def test_simclr_views_are_drawn_alike_in_worker_processes():
    """simclr draws its two views in the DataLoader: two worker processes give, for the seed, the
    batches the main process gives, and in them the two views of each image differ."""
    import numpy as np

    from examples.simclr import fashion_views
    from minigrad.data import DataLoader, transforms

    views = fashion_views(transforms.Normalize([0.3], [0.35]), 48)

    def batches(num_workers: int) -> list:
        loader = DataLoader(views, batch_size=16, shuffle=True, seed=0, num_workers=num_workers)
        return [(a.numpy(), b.numpy(), y.numpy()) for (a, b), y in loader]

    reference = batches(0)
    assert len(reference) == 3
    for a, b, y in reference:
        assert a.shape == b.shape == (16, 1, 28, 28) and y.shape == (16,)
        assert all(not np.allclose(u, v) for u, v in zip(a, b))
    for got, expected in zip(batches(2), reference, strict=True):
        for g, e in zip(got, expected):
            np.testing.assert_array_equal(g, e)


def test_simclr_sweep_quick_run(capsys):
    """simclr --sweep probes one encoder per temperature (three) and per other batch size (two)."""
    from examples.simclr import main

    result = main(["--quick", "--sweep"])
    assert 0 < result.value <= 1 and len(result.extra) == 5
    assert result.metric in capsys.readouterr().out


def test_missing_examples_extra_is_named_before_anything_runs(monkeypatch):
    import importlib.util

    from examples.__main__ import main

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tqdm" else real(name, *a))
    with pytest.raises(SystemExit, match=r"tqdm not installed.*\.\[examples\]"):
        main(["basics", "--quick"])
