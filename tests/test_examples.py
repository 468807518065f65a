"""Every example runs in --quick mode, reports its figure, and its training loss falls."""

from __future__ import annotations

import math

import pytest

from examples.__main__ import available

EXAMPLES = sorted(available())


def test_there_are_examples():
    assert "resnet" in EXAMPLES


def _falls(values) -> bool:
    values = [v[1] if isinstance(v, tuple) else v for v in values]
    quarter = max(len(values) // 4, 1)
    return sum(values[-quarter:]) / quarter < sum(values[:quarter]) / quarter


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_quick_run(name, tmp_path, capsys):
    import importlib

    module = importlib.import_module(f"examples.{name}")
    plot = tmp_path / "curves.png"
    result = module.main(["--quick", "--plot", str(plot)])
    assert math.isfinite(result.value)
    assert result.metric in capsys.readouterr().out
    losses = [values for key, values in result.curves.items() if "loss" in key]
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
