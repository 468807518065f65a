"""Transformer additions: positional encodings, mask checks, DeepNorm (constants and init), the decoder's
KV cache and TransformerSeq2Seq (teacher forcing == cached step-by-step decoding), float64 gradchecks."""

from __future__ import annotations

import math

import numpy as np
import pytest

import minigrad as mg
import nn
from nn.models.transformer_seq2seq import TransformerSeq2Seq


def _rng(seed=0):
    return np.random.default_rng(seed)


# ----------------------------------------------------------------------------- positional encodings
def test_sinusoidal_positional_encoding_values_and_offset():
    d, max_len = 6, 12
    pe = nn.PositionalEncoding(d, max_len).to(mg.float64)
    t = np.arange(max_len)[:, None]
    i = np.arange(0, d, 2)[None]
    want = np.zeros((max_len, d))
    want[:, 0::2], want[:, 1::2] = np.sin(t / 10000 ** (i / d)), np.cos(t / 10000 ** (i / d))
    x = mg.zeros(2, 5, d, dtype=mg.float64)
    np.testing.assert_allclose(pe(x).cpu().numpy()[1], want[:5], atol=1e-12)
    np.testing.assert_allclose(pe(x[:, :2], offset=3).cpu().numpy()[0], want[3:5], atol=1e-12)
    assert list(pe.state_dict()) == []  # the table is computed, not saved


def test_odd_d_model_keeps_the_last_sine():
    assert tuple(nn.PositionalEncoding(5, 7).pe.shape) == (7, 5)


@pytest.mark.parametrize("cls", [nn.PositionalEncoding, nn.LearnedPositionalEncoding])
def test_positional_encoding_errors_name_the_module_length_and_max_len(cls):
    pe = cls(4, 8)
    with pytest.raises(ValueError, match=rf"{cls.__name__}.*length 9.*max_len=8"):
        pe(mg.zeros(1, 9, 4))
    with pytest.raises(ValueError, match=rf"{cls.__name__}.*offset 6.*max_len=8"):
        pe(mg.zeros(1, 3, 4), offset=6)
    with pytest.raises(RuntimeError, match=rf"{cls.__name__}.*\(B, T, 4\).*\(1, 3, 5\)"):
        pe(mg.zeros(1, 3, 5))


def test_learned_positional_encoding_trains_its_rows():
    pe = nn.LearnedPositionalEncoding(4, 8)
    assert list(pe.state_dict()) == ["weight"] and tuple(pe.weight.shape) == (8, 4)
    pe(mg.randn(2, 3, 4)).sum().backward()
    grad = pe.weight.grad.cpu().numpy()
    np.testing.assert_allclose(grad[:3], 2.0)
    np.testing.assert_allclose(grad[3:], 0.0)


# ----------------------------------------------------------------------------- masks and embeddings
def _masks_model():
    mg.manual_seed(0)
    return nn.Transformer(8, 2, 1, 1, 16, dropout=0.0, batch_first=True).to(mg.float64)


def test_bool_and_float_masks_agree_everywhere():
    model = _masks_model()
    src, tgt = mg.tensor(_rng().standard_normal((2, 5, 8))), mg.tensor(_rng(1).standard_normal((2, 4, 8)))
    causal = mg.ones(4, 4, dtype=mg.bool).triu(1)
    memory_mask = mg.tensor(np.eye(4, 5, dtype=bool))  # True: may NOT attend
    src_pad = mg.tensor(np.array([[False] * 5, [False] * 3 + [True] * 2]))
    tgt_pad = mg.tensor(np.array([[False] * 4, [False] * 3 + [True]]))

    def additive(mask):
        return mg.zeros(*mask.shape, dtype=mg.float64).masked_fill(mask, float("-inf"))

    bools = dict(tgt_mask=causal, memory_mask=memory_mask, src_key_padding_mask=src_pad,
                 tgt_key_padding_mask=tgt_pad, memory_key_padding_mask=src_pad)  # fmt: skip
    floats = {name: additive(mask) for name, mask in bools.items()}
    with mg.no_grad():
        got_bool, got_float = model(src, tgt, **bools), model(src, tgt, **floats)
        src_mask = mg.tensor(np.triu(np.ones((5, 5), dtype=bool), 1))
        encoded = model.encoder(src, mask=src_mask, src_key_padding_mask=src_pad)
        encoded_float = model.encoder.layers[0](src, additive(src_mask), additive(src_pad))
    np.testing.assert_allclose(got_bool.cpu().numpy(), got_float.cpu().numpy(), atol=1e-12)
    assert np.isfinite(encoded.cpu().numpy()).all() and np.isfinite(encoded_float.cpu().numpy()).all()


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        (dict(tgt_mask=mg.ones(3, 3, dtype=mg.bool)), r"MultiheadAttention.*attn_mask.*\(4, 4\).*\(3, 3\)"),
        (dict(src_key_padding_mask=mg.ones(2, 4, dtype=mg.bool)), r"MultiheadAttention.*\(2, 5\).*\(2, 4\)"),
        (dict(memory_key_padding_mask=mg.ones(3, 5, dtype=mg.bool)), r"MultiheadAttention.*\(2, 5\).*\(3, 5\)"),
    ],
)
def test_a_mask_of_the_wrong_shape_names_the_module_and_both_shapes(kwargs, pattern):
    model = _masks_model()
    with pytest.raises(RuntimeError, match=pattern):
        model(mg.randn(2, 5, 8, dtype=mg.float64), mg.randn(2, 4, 8, dtype=mg.float64), **kwargs)


def test_a_mask_of_the_wrong_dtype_names_the_module_and_dtype():
    model = _masks_model()
    with pytest.raises(TypeError, match="MultiheadAttention.*attn_mask.*int64"):
        src, tgt = mg.randn(2, 5, 8, dtype=mg.float64), mg.randn(2, 4, 8, dtype=mg.float64)
        model(src, tgt, tgt_mask=mg.zeros(4, 4, dtype=mg.int64))


def test_embedding_rejects_a_bad_padding_idx_and_out_of_range_indices():
    with pytest.raises(ValueError, match="Embedding: padding_idx 10.*10"):
        nn.Embedding(10, 4, padding_idx=10)
    embedding = nn.Embedding(10, 4)
    with pytest.raises(IndexError, match=r"embedding.*\[0, 10\].*10 rows"):
        embedding(mg.tensor(np.array([0, 10])))
    with pytest.raises(IndexError, match=r"embedding.*\[-1, 3\]"):
        embedding(mg.tensor(np.array([-1, 3])))


# ----------------------------------------------------------------------------- DeepNorm
def test_deepnorm_constants_follow_the_paper():
    n, m = 6, 18
    assert nn.deepnorm_constants(n) == {"encoder": ((2 * n) ** 0.25, (8 * n) ** -0.25)}
    assert nn.deepnorm_constants(num_decoder_layers=m) == {"decoder": ((2 * m) ** 0.25, (8 * m) ** -0.25)}
    both = nn.deepnorm_constants(n, m)
    np.testing.assert_allclose(both["encoder"], (0.81 * (n**4 * m) ** (1 / 16), 0.87 * (n**4 * m) ** (-1 / 16)))
    np.testing.assert_allclose(both["decoder"], ((3 * m) ** 0.25, (12 * m) ** -0.25))
    with pytest.raises(ValueError, match="deepnorm_constants"):
        nn.deepnorm_constants(0, 0)


def test_deepnorm_alpha_per_architecture():
    encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, deepnorm=True), 4)
    decoder = nn.TransformerDecoder(nn.TransformerDecoderLayer(8, 2, 16, deepnorm=True), 3)
    model = nn.Transformer(8, 2, 4, 3, 16, deepnorm=True)
    assert all(layer.alpha == (2 * 4) ** 0.25 for layer in encoder.layers)
    assert all(layer.alpha == (2 * 3) ** 0.25 for layer in decoder.layers)
    constants = nn.deepnorm_constants(4, 3)
    assert all(layer.alpha == constants["encoder"][0] for layer in model.encoder.layers)
    assert all(layer.alpha == constants["decoder"][0] for layer in model.decoder.layers)
    assert nn.TransformerEncoderLayer(8, 2, 16).alpha == 1.0
    with pytest.raises(ValueError, match="TransformerEncoderLayer.*norm_first"):
        nn.TransformerEncoderLayer(8, 2, 16, deepnorm=True, norm_first=True)


def _xavier_std(weight, gain):
    fan_out, fan_in = weight.shape
    return gain * math.sqrt(2.0 / (fan_in + fan_out))


def test_deepnorm_init_scales_exactly_the_ffn_value_and_output_projections():
    mg.manual_seed(0)
    d, n, m = 128, 2, 3
    model = nn.Transformer(d, 4, n, m, 256, deepnorm=True)
    constants = nn.deepnorm_constants(n, m)
    checked = set()

    def check(name, weight, gain):
        std = float(weight.detach().cpu().numpy().std())
        assert std == pytest.approx(_xavier_std(weight, gain), rel=0.05), name
        checked.add(name)

    for stack in ("encoder", "decoder"):
        beta = constants[stack][1]
        for i, layer in enumerate(getattr(model, stack).layers):
            prefix = f"{stack}.layers.{i}."
            for attn in ("self_attn", "multihead_attn"):
                if hasattr(layer, attn):
                    weight = getattr(layer, attn).in_proj_weight
                    for j, (part, gain) in enumerate(zip("qkv", (1.0, 1.0, beta))):
                        check(f"{prefix}{attn}.in_proj_weight.{part}", weight[j * d : (j + 1) * d], gain)
                    check(f"{prefix}{attn}.out_proj.weight", getattr(layer, attn).out_proj.weight, beta)
            check(prefix + "linear1.weight", layer.linear1.weight, beta)
            check(prefix + "linear2.weight", layer.linear2.weight, beta)
    matrices = {name for name, p in model.named_parameters() if p.ndim > 1}
    assert {name.rsplit(".", 1)[0] if "in_proj" in name else name for name in checked} == matrices


def test_reset_deepnorm_changes_only_the_matrices_it_should():
    model = nn.Transformer(16, 2, 2, 2, 32)
    before = {name: p.detach().cpu().numpy().copy() for name, p in model.named_parameters()}
    for layer in (*model.encoder.layers, *model.decoder.layers):
        layer.reset_deepnorm(2.0, 0.5)
    changed = {
        name for name, p in model.named_parameters() if not np.array_equal(p.detach().cpu().numpy(), before[name])
    }
    ends = ("in_proj_weight", "out_proj.weight", "linear1.weight", "linear2.weight")
    assert changed == {name for name in before if name.endswith(ends) and ".layers." in name}


def test_deepnorm_layer_computes_norm_of_alpha_x_plus_block():
    mg.manual_seed(0)
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True, deepnorm=True).to(mg.float64)
    x = mg.tensor(_rng().standard_normal((2, 5, 8)))
    with mg.no_grad():
        h = layer.norm1(layer.alpha * x + layer.self_attn(x, x, x)[0])
        want = layer.norm2(layer.alpha * h + layer.linear2(mg.relu(layer.linear1(h))))
        np.testing.assert_allclose(layer(x).cpu().numpy(), want.cpu().numpy(), atol=1e-12)


def test_deepnorm_layers_gradcheck():
    mg.manual_seed(0)
    layer = nn.TransformerDecoderLayer(4, 2, 8, dropout=0.0, batch_first=True, deepnorm=True).to(mg.float64)
    tgt = mg.tensor(_rng().standard_normal((2, 3, 4)), requires_grad=True)
    memory = mg.tensor(_rng(1).standard_normal((2, 4, 4)), requires_grad=True)
    causal = mg.ones(3, 3, dtype=mg.bool).triu(1)
    params = [p for p in layer.parameters()]

    def fn(tgt, memory, *_):
        return layer(tgt, memory, tgt_mask=causal)

    assert mg.gradcheck(fn, (tgt, memory, *params), fast_mode=True)


def test_co_attention_layer_gradcheck_and_streams():
    mg.manual_seed(0)
    layer = nn.CoAttentionLayer(4, 6, 2, 8, dropout=0.0, batch_first=True).to(mg.float64)
    visual = mg.tensor(_rng().standard_normal((2, 3, 4)), requires_grad=True)
    text = mg.tensor(_rng(1).standard_normal((2, 5, 6)), requires_grad=True)
    padding = mg.tensor([[False] * 5, [False, False, False, True, True]])
    out_visual, out_text = layer(visual, text, text_key_padding_mask=padding)
    assert out_visual.shape == (2, 3, 4) and out_text.shape == (2, 5, 6)
    params = list(layer.parameters())

    def fn(visual, text, *_):
        return layer(visual, text, text_key_padding_mask=padding)

    assert mg.gradcheck(fn, (visual, text, *params), fast_mode=True)
    changed = text.detach().clone()
    changed[1, 3:] = 100.0  # padded text positions: the visual stream must not see them
    again = layer(visual, changed, text_key_padding_mask=padding)[0]
    np.testing.assert_allclose(again.detach().cpu().numpy(), out_visual.detach().cpu().numpy(), atol=1e-12)
    changed[1, 0] = 100.0  # a real text position: the visual stream sees it
    assert not np.allclose(layer(visual, changed, text_key_padding_mask=padding)[0][1].detach().cpu().numpy(),
                           out_visual[1].detach().cpu().numpy())  # fmt: skip


@pytest.mark.parametrize("batch_first", [True, False])
def test_co_attention_layer_names_streams_of_different_batch_sizes(batch_first):
    layer = nn.CoAttentionLayer(4, 6, 2, 8, batch_first=batch_first)
    visual, text = mg.randn(2, 3, 4), mg.randn(1, 5, 6) if batch_first else mg.randn(5, 1, 6)
    visual = visual if batch_first else visual.transpose(0, 1)
    with pytest.raises(RuntimeError, match=r"MultiheadAttention\(embed_dim=4, num_heads=2\): key .* must be batched"):
        layer(visual, text)
    with pytest.raises(RuntimeError, match="must be batched as query"):
        nn.MultiheadAttention(4, 2)(mg.randn(3, 4), mg.randn(5, 2, 4), mg.randn(5, 2, 4))


# ----------------------------------------------------------------------------- KV cache and TransformerSeq2Seq
def _seq2seq(**kwargs):
    mg.manual_seed(0)
    options = dict(d_model=16, nhead=2, num_encoder_layers=2, num_decoder_layers=2, dim_feedforward=32,
                   dropout=0.0, max_len=80)  # fmt: skip
    return TransformerSeq2Seq(11, 13, **{**options, **kwargs}).to(mg.float64).eval()


def _batch(seed=0, tgt_len=7):
    rng = _rng(seed)
    src = rng.integers(4, 11, (3, 6))
    lengths = np.array([6, 4, 5])
    src[1, 4:], src[2, 5:] = 0, 0
    tgt = np.c_[np.ones((3, 1), int), rng.integers(4, 13, (3, tgt_len - 1))]
    return mg.tensor(src), mg.tensor(lengths), mg.tensor(tgt)


@pytest.mark.parametrize("options", [{}, {"norm_first": True}, {"deepnorm": True}])
def test_teacher_forced_logits_equal_cached_step_by_step_logits(options):
    model = _seq2seq(**options)
    src, lengths, tgt = _batch()
    with mg.no_grad():
        full = model(src, lengths, tgt).cpu().numpy()
        state, steps = model.encode(src, lengths), []
        for t in range(tgt.shape[1]):
            logits, state = model.decode_step(tgt[:, t], state)
            steps.append(logits.cpu().numpy())
    np.testing.assert_allclose(np.stack(steps, 1), full, rtol=1e-10, atol=1e-12)
    assert state["step"] == tgt.shape[1] and tuple(state["cache"][0]["self"]["k"].shape) == (3, 2, 7, 8)


def test_decoder_forward_step_with_several_new_positions_matches_the_full_decoder():
    model = _seq2seq()
    decoder = model.transformer.decoder
    rng = _rng(2)
    tgt, memory = mg.tensor(rng.standard_normal((2, 6, 16))), mg.tensor(rng.standard_normal((2, 5, 16)))
    with mg.no_grad():
        full = decoder(tgt, memory, tgt_mask=mg.ones(6, 6, dtype=mg.bool).triu(1)).cpu().numpy()
        cache = [{} for _ in decoder.layers]
        parts = [decoder.forward_step(tgt[:, a:b], memory, cache).cpu().numpy() for a, b in ((0, 4), (4, 5), (5, 6))]
    np.testing.assert_allclose(np.concatenate(parts, 1), full, atol=1e-12)


def test_decode_step_keeps_the_given_state_and_reorder_state_selects_rows():
    model = _seq2seq()
    src, lengths, tgt = _batch()
    index = mg.tensor(np.array([2, 0, 0]))
    with mg.no_grad():
        state = model.encode(src, lengths)
        _, state = model.decode_step(tgt[:, 0], state)
        first, _ = model.decode_step(tgt[:, 1], state)
        again, _ = model.decode_step(tgt[:, 1], state)  # the same state twice: the same logits
        reordered, _ = model.decode_step(tgt[:, 1][index], model.reorder_state(state, index))
    np.testing.assert_allclose(first.cpu().numpy(), again.cpu().numpy(), atol=0)
    np.testing.assert_allclose(reordered.cpu().numpy(), first.cpu().numpy()[[2, 0, 0]], atol=1e-12)


def greedy_cached(model, src, lengths, steps, bos=1):
    state, tokens, out = model.encode(src, lengths), mg.full((src.shape[0],), bos, dtype=mg.int64), []
    for _ in range(steps):
        logits, state = model.decode_step(tokens, state)
        tokens = logits.argmax(-1)
        out.append(tokens.cpu().numpy())
    return np.stack(out, 1)


def greedy_uncached(model, src, lengths, steps, bos=1):
    prefix = np.full((src.shape[0], 1), bos)
    for _ in range(steps):
        logits = model(src, lengths, mg.tensor(prefix))[:, -1]
        prefix = np.c_[prefix, logits.argmax(-1).cpu().numpy()]
    return prefix[:, 1:]


def test_cached_and_uncached_greedy_decoding_give_the_same_tokens():
    model = _seq2seq()
    src, lengths, _ = _batch()
    with mg.no_grad():
        cached, uncached = greedy_cached(model, src, lengths, 20), greedy_uncached(model, src, lengths, 20)
    np.testing.assert_array_equal(cached, uncached)


def test_padding_does_not_change_a_row():
    model = _seq2seq()
    src, lengths, tgt = _batch()
    with mg.no_grad():
        padded = model(src, lengths, tgt).cpu().numpy()[1]
        alone = model(src[1:2, :4], lengths[1:2], tgt[1:2]).cpu().numpy()[0]
    np.testing.assert_allclose(padded, alone, atol=1e-12)


def test_transformer_seq2seq_gradcheck():
    model = _seq2seq(d_model=4, num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=8, max_len=8).train()
    src, lengths, tgt = _batch(tgt_len=4)
    params = list(model.parameters())

    def fn(*_):
        return model(src, lengths, tgt)

    assert mg.gradcheck(fn, params, fast_mode=True)


def test_teacher_forcing_matches_pytorch():
    torch = pytest.importorskip("torch")
    model = _seq2seq()
    theirs = torch.nn.Transformer(16, 2, 2, 2, 32, dropout=0.0, batch_first=True).double().eval()
    theirs.load_state_dict({k: torch.tensor(v.cpu().numpy()) for k, v in model.transformer.state_dict().items()})
    src, lengths, tgt = _batch()
    with mg.no_grad():
        ours = model(src, lengths, tgt).cpu().numpy()
        pad = model._src_padding(src, lengths)
        embed = [model._embed(e, t).cpu().numpy() for e, t in ((model.src_embed, src), (model.tgt_embed, tgt))]
    out = theirs(
        *(torch.tensor(e) for e in embed),
        tgt_mask=torch.triu(torch.ones(7, 7, dtype=torch.bool), 1),
        src_key_padding_mask=torch.tensor(pad.cpu().numpy()),
        tgt_key_padding_mask=torch.tensor((tgt == 0).cpu().numpy()),
        memory_key_padding_mask=torch.tensor(pad.cpu().numpy()),
    )
    want = (
        out.detach().cpu().numpy() @ model.generator.weight.detach().cpu().numpy().T
        + model.generator.bias.detach().cpu().numpy()
    )
    np.testing.assert_allclose(ours, want, rtol=1e-8, atol=1e-10)
