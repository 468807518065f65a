"""The named standard models have the papers' parameter counts, and the small ones run forward
and backward on 28x28 images."""

from __future__ import annotations

import pytest

import minigrad as mg
import nn
from nn import models

# Parameter counts of the published networks (as torchvision reports them).
PAPER_COUNTS = {
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "mobilenet_v2": 3_504_872,
    "efficientnet_b0": 5_288_548,
    "convnext_tiny": 28_589_128,
    "vit_b_16": 86_567_656,
}


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", sorted(PAPER_COUNTS))
def test_standard_models_match_the_papers_parameter_counts(name):
    with mg.no_grad():
        assert _count(models.build(name)) == PAPER_COUNTS[name]


def test_mobilenet_v1_parameter_count():
    # The paper's table 8: 4.2 million parameters at width 1.0, 1.3 million at 0.5.
    assert round(_count(models.mobilenet_v1()) / 1e6, 1) == 4.2
    assert round(_count(models.mobilenet_v1(width_mult=0.5)) / 1e6, 1) == 1.3


def test_efficientnet_compound_scaling():
    depth, width, resolution = models.compound_scaling(1)
    assert (depth, width, resolution) == pytest.approx((1.2, 1.1, 1.15))
    assert depth * width**2 * resolution**2 == pytest.approx(2.0, rel=0.1)
    assert models.efficientnet(1).resolution == 258


SMALL = {
    "resnet_small": {},
    "se_resnet_small": {},
    "plain_cnn_small": {},
    "inception_small": {"width": 8},
    "mobilenet_v1": {"num_classes": 10, "width_mult": 0.25, "in_channels": 1, "stem_stride": 1},
    "mobilenet_v2": {"num_classes": 10, "width_mult": 0.25, "in_channels": 1, "stem_stride": 1},
    "efficientnet_b0": {"num_classes": 10, "in_channels": 1, "width_mult": 0.25, "stem_stride": 1},
    "convnext_mini": {},
    "vit_tiny": {},
}


@pytest.mark.parametrize("name", sorted(SMALL))
def test_small_models_train_on_28x28(name):
    mg.manual_seed(0)
    kwargs = dict(SMALL[name])
    if name == "efficientnet_b0":
        model = models.EfficientNet(kwargs.pop("width_mult"), 1.0, **kwargs)
    else:
        model = models.build(name, **kwargs)
    x, y = mg.randn(2, 1, 28, 28), mg.tensor([1, 7])
    loss = mg.functional.cross_entropy(model(x), y)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_abn_branches_and_attention_map():
    mg.manual_seed(0)
    model = models.abn_resnet_small(10, width=4)
    x, y = mg.randn(3, 1, 28, 28), mg.tensor([1, 7, 2])
    perception, attention_logits, attention = model.branches(x)
    assert perception.shape == attention_logits.shape == (3, 10)
    assert attention.shape == (3, 1, 14, 14)  # one class-agnostic map at the feature resolution
    assert 0 < attention.min().item() and attention.max().item() < 1
    (mg.functional.cross_entropy(perception, y) + mg.functional.cross_entropy(attention_logits, y)).backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize(
    "name, kwargs, features",
    [("inception_small", {"width": 8, "stem_stride": 2}, 104), ("convnext_mini", {"width": 16}, 64)],
)
def test_small_model_options(name, kwargs, features):
    """The stem stride and width options the examples use: shapes, and a backward that reaches every weight."""
    mg.manual_seed(0)
    model = models.build(name, **kwargs)
    head = model.fc if name == "inception_small" else model.classifier[-1]
    assert head.in_features == features
    logits = model(mg.randn(2, 1, 28, 28))
    assert tuple(logits.shape) == (2, 10)
    mg.functional.cross_entropy(logits, mg.tensor([1, 7])).backward()
    assert all(p.grad is not None for p in model.parameters())


def test_unknown_model_name():
    with pytest.raises(ValueError, match="unknown model 'resnet7'"):
        models.build("resnet7")


def test_stargan_v2_small_shapes_and_r1_double_backward():
    mg.manual_seed(0)
    model = models.stargan_v2_small(num_domains=3, img_size=8)
    x, y = mg.randn(4, 1, 8, 8), mg.tensor([0, 2, 1, 2])
    style = model.mapping_network(mg.randn(4, model.latent_dim), y)
    assert style.shape == (4, model.style_dim)
    fake = model.generator(x, style)
    assert fake.shape == (4, 1, 8, 8)
    assert model.style_encoder(fake, y).shape == (4, model.style_dim)
    assert model.discriminator(fake, y).shape == (4,)
    # The R1 penalty: the gradient of D's output w.r.t. the real images, differentiated again.
    x_real = x.detach().requires_grad_()
    (grad,) = mg.grad(model.discriminator(x_real, y).sum(), x_real, create_graph=True)
    (grad.pow(2).sum() + model.style_encoder(fake, y).sum()).backward()
    # D is piecewise linear in x, so its biases do not change dD/dx: only its weights get a gradient.
    weights = [p for name, p in model.discriminator.named_parameters() if name.endswith("weight")]
    assert all(p.grad is not None and p.grad.abs().sum().item() > 0 for p in weights)
    assert all(p.grad is not None for p in model.generator.parameters())


def test_stargan_v2_discriminator_picks_each_images_own_domain():
    mg.manual_seed(0)
    model = models.stargan_v2_small(num_domains=3, img_size=16)
    x = mg.randn(2, 1, 16, 16)
    with mg.no_grad():
        every = [model.discriminator(x, mg.full((2,), d, dtype=mg.int64)) for d in range(3)]
        mixed = model.discriminator(x, mg.tensor([2, 0]))
    assert mixed.tolist() == pytest.approx([every[2][0].item(), every[0][1].item()])


def test_stargan_v2_paper_configuration_and_bad_size():
    with mg.no_grad():
        model = models.build("stargan_v2", num_domains=2, img_size=32, dim=8, max_dim=32, style_dim=8)
        assert model(mg.randn(1, 3, 32, 32), mg.tensor([1])).shape == (1, 3, 32, 32)
    with pytest.raises(ValueError, match="img_size must be a power of two"):
        models.stargan_v2_small(img_size=12)
