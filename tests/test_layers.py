"""nn layers against PyTorch: the same state_dict keys and shapes, the same outputs and gradients
from the same weights, and clear errors on bad input."""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg
import nn

torch = pytest.importorskip("torch")


def _pair(name: str, *args, **kwargs):
    """The layer in both frameworks, minigrad's loaded from PyTorch's state_dict (in float64)."""
    theirs = getattr(torch.nn, name)(*args, **kwargs).double()
    ours = getattr(nn, name)(*args, **kwargs).to(mg.float64)
    state = {k: v.detach().cpu().numpy() for k, v in theirs.state_dict().items()}
    assert list(ours.state_dict()) == list(state), f"{name}: state_dict keys differ"
    for key, value in ours.state_dict().items():
        assert tuple(value.shape) == state[key].shape, f"{name}.{key}: shape {tuple(value.shape)}"
    ours.load_state_dict(state)
    return ours, theirs


def _outputs(result):
    if isinstance(result, (tuple, list)):
        return [o for r in result for o in _outputs(r)]
    return [] if result is None else [result]


def _compare(ours, theirs, *inputs, train=False, call=None, rtol=1e-7, atol=1e-9):
    """Forward and backward of both layers on the same float64 inputs; outputs and all gradients agree."""
    ours.train(train)
    theirs.train(train)
    call = call or (lambda layer, *xs: layer(*xs))
    ours_in = [mg.tensor(x, requires_grad=x.dtype.kind == "f") if isinstance(x, np.ndarray) else x for x in inputs]
    theirs_in = [torch.tensor(x, requires_grad=x.dtype.kind == "f") if isinstance(x, np.ndarray) else x for x in inputs]
    got, want = _outputs(call(ours, *ours_in)), _outputs(call(theirs, *theirs_in))
    assert len(got) == len(want)
    rng = np.random.default_rng(1)
    weights = [rng.standard_normal(tuple(w.shape)) for w in want]
    sum(((g * mg.tensor(w)).sum() for g, w in zip(got, weights)), mg.tensor(0.0, dtype=mg.float64)).backward()
    sum((t * torch.tensor(w)).sum() for t, w in zip(want, weights)).backward()
    for g, w in zip(got, want):
        np.testing.assert_allclose(g.detach().cpu().numpy(), w.detach().cpu().numpy(), rtol=rtol, atol=atol)
    for a, b in zip(ours_in, theirs_in):
        if isinstance(a, mg.Tensor) and a.requires_grad:
            np.testing.assert_allclose(a.grad.cpu().numpy(), b.grad.cpu().numpy(), rtol=rtol, atol=atol)
    theirs_params = dict(theirs.named_parameters())
    for key, p in ours.named_parameters():
        np.testing.assert_allclose(
            p.grad.cpu().numpy(), theirs_params[key].grad.cpu().numpy(), rtol=rtol, atol=atol, err_msg=key
        )
    for key, b in ours.state_dict().items():  # running statistics too
        np.testing.assert_allclose(
            b.cpu().numpy(), theirs.state_dict()[key].cpu().numpy(), rtol=rtol, atol=atol, err_msg=key
        )


def _x(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


CASES = [
    ("Conv1d", (3, 4, 3), dict(stride=2, padding=1), [_x(2, 3, 9)]),
    ("Conv2d", (3, 4, 3), dict(padding=1, bias=False), [_x(2, 3, 6, 6)]),
    ("Conv2d", (4, 8, 3), dict(stride=2, groups=2, dilation=2, padding=2), [_x(2, 4, 9, 9)]),
    ("Conv2d", (4, 8, 3), dict(groups=4, padding="same"), [_x(2, 4, 6, 6)]),
    ("Conv2d", (3, 4, 3), dict(padding=(1, 2), padding_mode="reflect"), [_x(2, 3, 6, 7)]),
    ("Conv2d", (3, 4, (2, 3)), dict(padding=2, stride=2, padding_mode="replicate"), [_x(2, 3, 6, 7)]),
    ("Conv2d", (3, 4, 4), dict(padding="same", dilation=(1, 2), padding_mode="circular"), [_x(2, 3, 6, 7)]),
    ("Conv1d", (3, 4, 3), dict(padding=2, padding_mode="circular"), [_x(2, 3, 9)]),
    ("Conv1d", (3, 4, 4), dict(padding="same", padding_mode="reflect"), [_x(2, 3, 9)]),
    ("ConvTranspose2d", (4, 3, 3), dict(stride=2, padding=1, output_padding=1), [_x(2, 4, 5, 5)]),
    ("BatchNorm1d", (5,), {}, [_x(4, 5)]),
    ("BatchNorm2d", (3,), dict(momentum=0.2), [_x(4, 3, 5, 5)]),
    ("LayerNorm", ((4, 5),), {}, [_x(3, 4, 5)]),
    ("GroupNorm", (2, 6), {}, [_x(3, 6, 4, 4)]),
    ("InstanceNorm2d", (3,), dict(affine=True), [_x(2, 3, 4, 5)]),
    ("Embedding", (10, 4), dict(padding_idx=0), [np.array([[0, 3, 9], [3, 3, 1]])]),
    (
        "Embedding",
        (10, 4),
        dict(scale_grad_by_freq=True, max_norm=1.0, norm_type=1.0),
        [np.array([[0, 3, 9], [3, 3, 1]])],
    ),
    ("EmbeddingBag", (10, 4), dict(mode="sum"), [np.array([[0, 3, 9], [3, 3, 1]])]),
    ("EmbeddingBag", (10, 4), dict(padding_idx=3), [np.array([[0, 3, 9], [3, 3, 3]])]),
    ("EmbeddingBag", (10, 4), {}, [np.array([2, 5, 5, 7, 1]), np.array([0, 1, 1, 4])]),
    ("EmbeddingBag", (10, 4), dict(include_last_offset=True), [np.array([2, 5, 5, 7]), np.array([0, 3, 4])]),
    ("Linear", (5, 3), {}, [_x(2, 4, 5)]),
    ("MaxPool2d", (3,), dict(stride=2, padding=1), [_x(2, 3, 7, 7)]),
    ("AvgPool2d", (2,), {}, [_x(2, 3, 6, 6)]),
    ("AdaptiveAvgPool2d", ((3, 2),), {}, [_x(2, 3, 7, 5)]),
    ("Upsample", (), dict(scale_factor=2, mode="bilinear", align_corners=False), [_x(1, 2, 3, 4)]),
    ("PixelShuffle", (2,), {}, [_x(1, 8, 3, 3)]),
    ("GELU", (), dict(approximate="tanh"), [_x(3, 4)]),
    ("SiLU", (), {}, [_x(3, 4)]),
    ("LeakyReLU", (0.2,), {}, [_x(3, 4)]),
    ("Softmax", (), dict(dim=1), [_x(3, 4)]),
    ("RNN", (3, 4), dict(num_layers=2, nonlinearity="relu"), [_x(5, 2, 3)]),
    ("LSTM", (3, 4), dict(num_layers=2, bidirectional=True, batch_first=True), [_x(2, 5, 3)]),
    ("GRU", (3, 4), dict(bidirectional=True), [_x(5, 2, 3)]),
    ("GRU", (3, 4), {}, [_x(5, 3)]),  # unbatched
    ("InstanceNorm2d", (3,), dict(affine=True), [_x(3, 4, 5)]),  # unbatched
    ("MaxPool2d", (2,), {}, [_x(0, 3, 6, 6)]),  # an empty batch
    ("AvgPool2d", (2,), {}, [_x(0, 3, 6, 6)]),
    ("RNNCell", (3, 4), {}, [_x(2, 3), _x(2, 4, seed=1)]),
    ("LSTMCell", (3, 4), {}, [_x(2, 3)]),
    ("GRUCell", (3, 4), {}, [_x(2, 3), _x(2, 4, seed=1)]),
]


@pytest.mark.parametrize("name, args, kwargs, inputs", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("train", [True, False])
def test_layer_matches_torch(name, args, kwargs, inputs, train):
    ours, theirs = _pair(name, *args, **kwargs)
    _compare(ours, theirs, *inputs, train=train)


def test_lstm_with_initial_state():
    ours, theirs = _pair("LSTM", 3, 4, num_layers=2)
    h0, c0 = _x(2, 2, 4, seed=1), _x(2, 2, 4, seed=2)
    _compare(ours, theirs, _x(5, 2, 3), h0, c0, call=lambda layer, x, h, c: layer(x, (h, c)))


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("need_weights, average", [(True, True), (True, False), (False, True)])
def test_multihead_attention_matches_torch(batch_first, need_weights, average):
    ours, theirs = _pair("MultiheadAttention", 8, 2, batch_first=batch_first)
    shape = (2, 5, 8) if batch_first else (5, 2, 8)
    key_shape = (2, 3, 8) if batch_first else (3, 2, 8)
    padding = np.array([[False, False, True], [False, False, False]])
    float_mask = _x(5, 3, seed=4)

    def call(layer, q, k, v):
        as_tensor = mg.tensor if isinstance(layer, nn.Module) else torch.tensor
        return layer(
            q,
            k,
            v,
            key_padding_mask=as_tensor(padding),
            attn_mask=as_tensor(float_mask),
            need_weights=need_weights,
            average_attn_weights=average,
        )

    _compare(ours, theirs, _x(*shape), _x(*key_shape, seed=2), _x(*key_shape, seed=3), call=call)


def test_multihead_self_attention_with_a_bool_causal_mask():
    ours, theirs = _pair("MultiheadAttention", 8, 4)
    mask = np.triu(np.ones((5, 5), dtype=bool), 1)

    def call(layer, x):
        as_tensor = mg.tensor if isinstance(layer, nn.Module) else torch.tensor
        return layer(x, x, x, attn_mask=as_tensor(mask))

    _compare(ours, theirs, _x(5, 2, 8), call=call)


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("layer", ["TransformerEncoderLayer", "TransformerDecoderLayer"])
def test_transformer_layers_match_torch(layer, norm_first):
    ours, theirs = _pair(
        layer, 8, 2, dim_feedforward=16, dropout=0.0, norm_first=norm_first, batch_first=True, activation="gelu"
    )
    if layer == "TransformerEncoderLayer":
        _compare(ours, theirs, _x(2, 5, 8), train=True, rtol=1e-6, atol=1e-7)  # GELU: erf to ~1e-8
    else:
        mask = np.triu(np.full((5, 5), -np.inf), 1)

        def call(m, tgt, memory):
            as_tensor = mg.tensor if isinstance(m, nn.Module) else torch.tensor
            return m(tgt, memory, tgt_mask=as_tensor(mask))

        _compare(ours, theirs, _x(2, 5, 8), _x(2, 3, 8, seed=1), train=True, call=call, rtol=1e-6, atol=1e-7)


def test_transformer_matches_torch():
    ours, theirs = _pair("Transformer", 8, 2, 2, 2, 16, dropout=0.0, batch_first=True)
    mask = np.triu(np.full((4, 4), -np.inf), 1)

    def call(m, src, tgt):
        as_tensor = mg.tensor if isinstance(m, nn.Module) else torch.tensor
        return m(src, tgt, tgt_mask=as_tensor(mask))

    _compare(ours, theirs, _x(2, 5, 8), _x(2, 4, 8, seed=1), call=call)


@pytest.mark.parametrize(
    "name, args, kwargs",
    [
        ("CrossEntropyLoss", (), dict(label_smoothing=0.1, ignore_index=2)),
        ("NLLLoss", (), {}),
        ("MSELoss", (), dict(reduction="sum")),
        ("L1Loss", (), {}),
        ("SmoothL1Loss", (), dict(beta=0.5)),
        ("BCEWithLogitsLoss", (), {}),
        ("KLDivLoss", (), dict(reduction="batchmean")),
    ],
)
def test_loss_modules_match_torch(name, args, kwargs):
    ours, theirs = getattr(nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)
    x = _x(4, 5)
    if name in ("CrossEntropyLoss", "NLLLoss"):
        target = np.array([0, 2, 4, 1])
    elif name == "BCEWithLogitsLoss":
        target = (np.random.default_rng(3).random((4, 5)) > 0.5).astype(np.float64)
    elif name == "KLDivLoss":
        x = x - np.log(np.exp(x).sum(1, keepdims=True))
        target = np.random.default_rng(3).dirichlet(np.ones(5), size=4)
    else:
        target = _x(4, 5, seed=3)
    got = ours(mg.tensor(x, requires_grad=True), mg.tensor(target))
    want = theirs(torch.tensor(x), torch.tensor(target))
    np.testing.assert_allclose(got.item(), want.item(), rtol=1e-10)


@pytest.mark.parametrize(
    "name, args, bound",
    [
        ("Conv2d", (16, 32, 3), 1 / 12),
        ("Linear", (64, 32), 1 / 8),
        ("LSTM", (8, 16), 1 / 4),
        ("GRUCell", (8, 16), 1 / 4),
    ],
)
def test_default_initialisation_is_pytorchs_uniform(name, args, bound):
    """Every weight and bias U(-b, b) with PyTorch's b (1/sqrt(fan_in), or 1/sqrt(hidden) for recurrent layers)."""
    mg.manual_seed(0)
    for key, p in getattr(nn, name)(*args).named_parameters():
        values = p.detach().cpu().numpy()
        assert np.abs(values).max() <= bound, key
        assert np.abs(values).max() > 0.8 * bound, key  # at least 32 draws each: P(failure) < 1e-3, seeded
        assert abs(values.mean()) < 4 * bound / np.sqrt(3 * values.size), key


def test_embedding_initialisation_is_standard_normal_with_a_zero_padding_row():
    mg.manual_seed(0)
    weight = nn.Embedding(1000, 8, padding_idx=3).weight.detach().cpu().numpy()
    assert abs(weight.std() - 1) < 0.05 and abs(weight.mean()) < 0.05
    assert not weight[3].any()


def test_embedding_bag_per_sample_weights_match_torch():
    ours, theirs = _pair("EmbeddingBag", 10, 4, mode="sum", padding_idx=0)
    inputs, offsets = np.array([2, 0, 5, 7, 1, 1]), np.array([0, 2, 2, 5])
    _compare(ours, theirs, inputs, offsets, _x(6), call=lambda layer, *xs: layer(*xs))


def test_from_pretrained_takes_the_constructors_options():
    weight = mg.tensor(_x(6, 3))
    bag = nn.EmbeddingBag.from_pretrained(weight, mode="sum", include_last_offset=True, padding_idx=2)
    assert (bag.mode, bag.include_last_offset, bag.padding_idx, bag.weight.requires_grad) == ("sum", True, 2, False)
    expected = weight.cpu().numpy()[[1, 4]].sum(0)
    np.testing.assert_allclose(bag(mg.tensor([1, 2, 4]), mg.tensor([0, 3])).cpu().numpy()[0], expected)
    embedding = nn.Embedding.from_pretrained(weight, freeze=False, max_norm=1.0, norm_type=1.0, scale_grad_by_freq=True)
    assert (embedding.max_norm, embedding.norm_type, embedding.scale_grad_by_freq) == (1.0, 1.0, True)
    with pytest.raises(ValueError, match=r"EmbeddingBag.from_pretrained: embeddings must be 2-D, got \(6,\)"):
        nn.EmbeddingBag.from_pretrained(mg.ones(6))
    with pytest.raises(NotImplementedError, match="Embedding: sparse gradients"):
        nn.Embedding(6, 3, sparse=True)


def test_embedding_bag_of_no_bags():
    weight = mg.randn(6, 3)
    assert mg.functional.embedding_bag(mg.tensor([], dtype=mg.int64), weight, mg.tensor([], dtype=mg.int64)).shape == (
        0,
        3,
    )
    with pytest.raises(ValueError, match="offsets hold no bag but the input has 2 entries"):
        mg.functional.embedding_bag(mg.tensor([1, 2]), weight, mg.tensor([], dtype=mg.int64))


def test_embedding_bag_gradcheck():
    weight = mg.randn(6, 3, dtype=mg.float64, requires_grad=True)
    scales = mg.randn(7, dtype=mg.float64, requires_grad=True)
    inputs, offsets = mg.tensor([1, 4, 4, 0, 5, 2, 1]), mg.tensor([0, 3, 3, 6])
    assert mg.gradcheck(
        lambda w, s: mg.functional.embedding_bag(inputs, w, offsets, mode="sum", per_sample_weights=s, padding_idx=2),
        (weight, scales),
    )
    assert mg.gradcheck(lambda w: mg.functional.embedding_bag(inputs.reshape(1, 7), w, padding_idx=4), (weight,))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda bag: bag(mg.tensor([1, 2, 3])), "1-D integer offsets"),
        (lambda bag: bag(mg.tensor([1, 2, 3]), mg.tensor([1, 2])), "start at 0"),
        (lambda bag: bag(mg.tensor([[1, 2]]), mg.tensor([0])), "offsets must be None"),
        (lambda bag: bag(mg.tensor([1, 2]), mg.tensor([0]), mg.ones(3)), r"per_sample_weights.*\(3,\).*\(2,\)"),
        (lambda bag: bag(mg.tensor([[1, 12]])), r"embedding: index out of range.*12.*10 rows"),
    ],
)
def test_embedding_bag_names_the_problem(call, message):
    with pytest.raises((ValueError, IndexError), match=message):
        call(nn.EmbeddingBag(10, 4, mode="sum"))
    with pytest.raises(NotImplementedError, match="mode must be 'sum' or 'mean'"):
        nn.EmbeddingBag(10, 4, mode="max")


def test_conv_layer_names_the_layer_and_shapes_on_wrong_channels():
    conv = nn.Conv2d(3, 8, 3)
    with pytest.raises(RuntimeError, match=r"Conv2d\(3, 8.*3 channels.*\(2, 4, 9, 9\)"):
        conv(mg.randn(2, 4, 9, 9))


def test_conv_padding_mode_is_checked():
    with pytest.raises(ValueError, match=r"Conv2d: padding_mode must be one of .*'reflection'"):
        nn.Conv2d(3, 8, 3, padding_mode="reflection")
    with pytest.raises(ValueError, match=r"ConvTranspose2d: padding_mode must be one of \('zeros',\)"):
        nn.ConvTranspose2d(3, 8, 3, padding_mode="reflect")
    assert "padding_mode='circular'" in repr(nn.Conv1d(3, 8, 3, padding=1, padding_mode="circular"))


def test_linear_names_the_layer_on_wrong_features():
    with pytest.raises(RuntimeError, match=r"5.*7|7.*5"):
        nn.Linear(5, 3)(mg.randn(2, 7))


def test_batchnorm_raises_on_one_value_per_channel_in_training():
    bn = nn.BatchNorm1d(4)
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        bn(mg.randn(1, 4))
    bn.eval()
    assert bn(mg.randn(1, 4)).shape == (1, 4)


def test_batchnorm_wrong_features():
    with pytest.raises(RuntimeError, match=r"BatchNorm2d\(3.*\(2, 5, 4, 4\)"):
        nn.BatchNorm2d(3)(mg.randn(2, 5, 4, 4))


def test_adain_matches_the_formula():
    mg.manual_seed(0)
    adain = nn.AdaIN(style_dim=4, num_features=3)
    x, style = np.random.default_rng(0).standard_normal((2, 3, 5, 5)), np.random.default_rng(1).standard_normal((2, 4))
    out = adain(mg.tensor(x), mg.tensor(style)).detach().cpu().numpy()
    h = style @ adain.fc.weight.detach().cpu().numpy().T + adain.fc.bias.detach().cpu().numpy()
    gamma, beta = h[:, :3, None, None], h[:, 3:, None, None]
    mean, var = x.mean(axis=(2, 3), keepdims=True), x.var(axis=(2, 3), keepdims=True)
    np.testing.assert_allclose(out, (1 + gamma) * (x - mean) / np.sqrt(var + 1e-5) + beta, rtol=1e-5, atol=1e-5)


def test_adain_wrong_style_batch():
    with pytest.raises(RuntimeError, match=r"AdaIN.*style \(N=2, style_dim\), got \(3, 4\)"):
        nn.AdaIN(4, 3)(mg.randn(2, 3, 5, 5), mg.randn(3, 4))


def test_instance_norm_wrong_features():
    with pytest.raises(RuntimeError, match=r"InstanceNorm2d\(3.*\(2, 5, 4, 4\)"):
        nn.InstanceNorm2d(3)(mg.randn(2, 5, 4, 4))


def test_lstm_wrong_input_size():
    with pytest.raises(RuntimeError, match="Expected 3, got 5"):
        nn.LSTM(3, 4)(mg.randn(6, 2, 5))


def test_dropout_modules_follow_train_and_eval():
    drop = nn.Dropout(0.5)
    x = mg.ones(1000)
    y = drop(x)
    assert 350 < int((y == 0).sum().item()) < 650
    drop.eval()
    np.testing.assert_array_equal(drop(x).cpu().numpy(), x.cpu().numpy())


def test_transformer_encoder_copies_are_independent():
    layer = nn.TransformerEncoderLayer(8, 2, 16)
    encoder = nn.TransformerEncoder(layer, 3)
    weights = [id(m.linear1.weight) for m in encoder.layers]
    assert len(set(weights)) == 3
    assert len(list(encoder.parameters())) == 3 * len(list(layer.parameters()))
