"""nn.utils.summary and the receptive-field tools."""

from __future__ import annotations

import pytest

import minigrad as mg
import nn
from nn.summary import conv_layers, empirical_receptive_field, measured_step_peak, receptive_field, summary


def test_summary_counts_parameters_flops_and_activations():
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 10))
    s = summary(model, mg.zeros(2, 1, 8, 8))
    assert s.params == (4 * 9 + 4) + (256 * 10 + 10)
    assert [layer.output_shape for layer in s.layers] == [(2, 4, 8, 8), (2, 4, 8, 8), (2, 256), (2, 10)]
    assert s.layers[0].flops == 2 * (2 * 4 * 8 * 8) * 9
    assert s.layers[3].flops == 2 * 2 * 10 * 256
    assert s.activations == 2 * (256 + 256 + 256 + 10)
    assert "total" in s.table()


def test_memory_formula_is_close_to_the_measured_peak():
    mg.manual_seed(0)
    model = nn.Sequential(nn.Linear(256, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))
    x, y = mg.randn(64, 256), mg.randint(0, 10, (64,))
    optimizer = nn.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    measured_step_peak(model, x, y, optimizer)  # the first step allocates the momentum buffers
    s = summary(model, x)
    predicted_step = 4 * (s.params + s.activations)  # gradients + activations: weights and state already exist
    measured = measured_step_peak(model, x, y, optimizer)
    assert 0.5 * predicted_step < measured < 2.5 * predicted_step


def test_analytic_receptive_field_of_a_conv_stack():
    # Three 3x3 convs: 7x7; with a stride-2 conv first: 3 + 2*2 + 2*2 = 11.
    assert receptive_field([(3, 1, 1)] * 3)[-1] == (7, 1)
    assert receptive_field([(3, 2, 1), (3, 1, 1), (3, 1, 1)])[-1] == (11, 2)
    assert receptive_field([(3, 1, 2)])[-1] == (5, 1)


@pytest.mark.parametrize(
    "layers",
    [
        [nn.Conv2d(1, 2, 3), nn.Conv2d(2, 2, 3), nn.Conv2d(2, 1, 3)],
        [nn.Conv2d(1, 2, 3, stride=2), nn.ReLU(), nn.Conv2d(2, 2, 3, dilation=2), nn.AvgPool2d(2), nn.Conv2d(2, 1, 3)],
    ],
)
def test_empirical_receptive_field_agrees_with_the_formula(layers):
    model = nn.Sequential(*layers)
    size, _ = receptive_field(conv_layers(model))[-1]
    assert empirical_receptive_field(model, (1, 1, 64, 64)) == (size, size)


def test_summary_of_a_single_layer():
    """A bare layer is its own only leaf: it is counted, not skipped as a container."""
    conv = nn.Conv2d(8, 16, 3, padding=1)
    info = summary(conv, mg.randn(2, 8, 10, 10))
    assert [layer.name for layer in info.layers] == ["Conv2d"]
    assert info.params == 16 * 8 * 9 + 16
    assert info.flops == 2 * (2 * 16 * 10 * 10) * 8 * 9


def test_summary_leaves_the_model_as_it_was():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU())
    before = {k: v.cpu().numpy().copy() for k, v in model.state_dict().items()}
    summary(model, mg.randn(1, 1, 3, 3))  # one value per channel: fine in eval mode
    assert model.training
    assert all((model.state_dict()[k].cpu().numpy() == v).all() for k, v in before.items())
