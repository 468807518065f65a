"""BERT: the paper's parameter count, padding that changes nothing, the tied MLM decoder, the
masked-LM loss and gradients against PyTorch, float64 gradients, BERT's initialisation, clear
errors, the 15 % / 80-10-10 masking recipe, and Sentence-BERT's mean pooling and Siamese encoder."""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg
import minigrad.functional as F
import nn
from minigrad.data.text import mask_tokens
from nn.models import (
    BertConfig,
    BertForMaskedLM,
    BertForPreTraining,
    BertForSequenceClassification,
    BertModel,
    SentenceEncoder,
    mean_pooling,
)

VOCAB = 23


def _tiny(**overrides) -> BertConfig:
    sizes = {"hidden_size": 8, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 12}
    return BertConfig(vocab_size=VOCAB, max_position_embeddings=16, **{**sizes, **overrides})


def _assert_close(actual: mg.Tensor, expected: mg.Tensor) -> None:
    np.testing.assert_allclose(actual.detach().cpu().numpy(), expected.detach().cpu().numpy(), rtol=1e-5, atol=1e-5)


def _ids(shape, seed=0, low=1):
    return mg.tensor(np.random.default_rng(seed).integers(low, VOCAB, shape))


def test_bert_base_has_the_papers_110m_parameters():
    model = nn.models.build("bert_base")
    assert sum(p.numel() for p in model.parameters()) == 109_482_240  # bert-base-uncased, pooler included
    assert model.config.num_hidden_layers == 12 and model.config.hidden_size == 768


def test_bert_small_shapes_and_heads():
    mg.manual_seed(0)
    model = nn.models.bert_small(VOCAB).eval()
    ids, segments = _ids((2, 6)), mg.tensor(np.array([[0, 0, 0, 1, 1, 1]] * 2))
    sequence_output, pooled = model(ids, mg.ones(2, 6, dtype=mg.int64), segments)
    assert sequence_output.shape == (2, 6, 256) and pooled.shape == (2, 256)
    assert np.abs(pooled.detach().cpu().numpy()).max() <= 1  # tanh
    config = BertConfig.small(VOCAB)
    mlm_logits, nsp_logits = BertForPreTraining(config)(ids)
    assert mlm_logits.shape == (2, 6, VOCAB) and nsp_logits.shape == (2, 2)
    assert BertForMaskedLM(config)(ids).shape == (2, 6, VOCAB)
    assert BertForSequenceClassification(config, num_labels=5)(ids).shape == (2, 5)


@pytest.mark.parametrize("head", ["model", "masked_lm"])
def test_padding_does_not_change_the_real_positions(head):
    mg.manual_seed(1)
    model = (BertModel(_tiny()) if head == "model" else BertForMaskedLM(_tiny())).eval()
    lengths = [5, 3]
    ids = _ids((2, 9), seed=2)  # positions past each length hold arbitrary (non-pad) ids
    mask = mg.tensor((np.arange(9)[None] < np.array(lengths)[:, None]).astype(np.int64))
    padded = model(ids, mask)
    padded = padded if head == "model" else (padded,)  # (sequence_output, pooled) or (logits,)
    for row, length in enumerate(lengths):
        alone = model(ids[row : row + 1, :length])
        alone = alone if head == "model" else (alone,)
        _assert_close(padded[0][row, :length], alone[0][0])
        if head == "model":
            _assert_close(padded[1][row], alone[1][0])


def test_decoder_weight_is_the_token_embedding_and_its_gradients_accumulate():
    mg.manual_seed(2)
    model = BertForMaskedLM(_tiny(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)).to(mg.float64)
    embedding = model.bert.embeddings.word_embeddings.weight
    assert model.predictions.decoder.weight is embedding
    assert sum(p is embedding for p in model.parameters()) == 1
    assert len(list(model.parameters())) == len({id(p) for p in model.parameters()})
    assert model.predictions.decoder.bias is not model.bert.embeddings.word_embeddings.weight
    ids, labels = _ids((2, 5), seed=3), _ids((2, 5), seed=4)

    def loss():
        return F.cross_entropy(model(ids).flatten(0, 1), labels.flatten())

    loss().backward()
    tied = embedding.grad.cpu().numpy().copy()
    untied = nn.Parameter(embedding.detach().clone())  # same values, a separate Parameter for the decoder
    model.predictions.decoder.weight = untied
    embedding.grad = None
    loss().backward()
    from_lookup, from_decoder = embedding.grad.cpu().numpy(), untied.grad.cpu().numpy()
    assert np.abs(from_lookup).sum() > 0 and np.abs(from_decoder).sum() > 0
    np.testing.assert_allclose(tied, from_lookup + from_decoder, rtol=1e-12, atol=1e-14)


def _torch_masked_lm(torch, weights: dict, ids, attention_mask, token_type_ids, config: BertConfig):
    """BertForMaskedLM's forward written out in PyTorch's functional ops, on our state_dict's tensors."""
    tf = torch.nn.functional
    h, eps = config.hidden_size, config.layer_norm_eps

    def norm(x, name):
        return tf.layer_norm(x, (h,), weights[f"{name}.weight"], weights[f"{name}.bias"], eps=eps)

    def linear(x, name):
        return x @ weights[f"{name}.weight"].T + weights[f"{name}.bias"]

    positions = weights["bert.embeddings.position_embeddings.weight"][: ids.shape[1]]
    x = weights["bert.embeddings.word_embeddings.weight"][ids] + positions
    x = norm(x + weights["bert.embeddings.token_type_embeddings.weight"][token_type_ids], "bert.embeddings.LayerNorm")
    for i in range(config.num_hidden_layers):
        layer = f"bert.layers.{i}"
        seq_first = x.transpose(0, 1)
        attended = tf.multi_head_attention_forward(
            seq_first, seq_first, seq_first, h, config.num_attention_heads,
            weights[f"{layer}.attention.in_proj_weight"], weights[f"{layer}.attention.in_proj_bias"], None, None,
            False, 0.0, weights[f"{layer}.attention.out_proj.weight"], weights[f"{layer}.attention.out_proj.bias"],
            key_padding_mask=attention_mask == 0, need_weights=False,
        )[0].transpose(0, 1)  # fmt: skip
        x = norm(x + attended, f"{layer}.attention_norm")
        x = norm(x + linear(tf.gelu(linear(x, f"{layer}.intermediate")), f"{layer}.output"), f"{layer}.output_norm")
    x = norm(tf.gelu(linear(x, "predictions.dense")), "predictions.LayerNorm")
    return x @ weights["bert.embeddings.word_embeddings.weight"].T + weights["predictions.decoder.bias"]


def test_masked_lm_loss_and_every_gradient_match_pytorch():
    """The whole masked-LM forward (padding, segments, the tied decoder) and the gradient of each
    parameter, against the same computation in PyTorch, on weights moved away from their init."""
    torch = pytest.importorskip("torch")
    mg.manual_seed(6)
    config = _tiny(num_attention_heads=4, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = BertForMaskedLM(config).to(mg.float64).eval()
    rng = np.random.default_rng(7)
    with mg.no_grad():
        for p in model.parameters():
            p += mg.tensor(rng.normal(0, 0.1, p.shape))
    ids = rng.integers(1, VOCAB, (3, 10))
    attention_mask = (np.arange(10)[None] < np.array([[10], [7], [4]])).astype(np.int64)  # 1 = real token
    token_type_ids = (np.arange(10)[None] >= 5).astype(np.int64).repeat(3, 0)
    labels = np.where((rng.random((3, 10)) < 0.4) & (attention_mask == 1), ids, -100)
    loss = F.cross_entropy(
        model(mg.tensor(ids), mg.tensor(attention_mask), mg.tensor(token_type_ids)).flatten(0, 1),
        mg.tensor(labels).flatten(),
    )
    loss.backward()
    weights = {k: torch.tensor(v.detach().cpu().numpy(), requires_grad=True) for k, v in model.state_dict().items()}
    logits = _torch_masked_lm(torch, weights, *map(torch.tensor, (ids, attention_mask, token_type_ids)), config)
    expected = torch.nn.functional.cross_entropy(logits.flatten(0, 1), torch.tensor(labels).flatten())
    expected.backward()
    np.testing.assert_allclose(loss.item(), expected.item(), rtol=1e-10)
    for name, p in model.named_parameters():
        expected_grad = weights[name].grad.numpy()
        np.testing.assert_allclose(p.grad.cpu().numpy(), expected_grad, rtol=1e-7, atol=1e-10, err_msg=name)


@pytest.mark.parametrize("cls", [BertForPreTraining, BertForSequenceClassification])
def test_gradcheck_float64(cls):
    mg.manual_seed(3)
    config = _tiny(num_hidden_layers=1, hidden_act="gelu")
    model = (cls(config) if cls is BertForPreTraining else cls(config, 3)).eval().to(mg.float64)
    ids = _ids((2, 4), seed=5)
    mask, segments = mg.tensor(np.array([[1, 1, 1, 1], [1, 1, 1, 0]])), mg.tensor(np.array([[0, 0, 1, 1]] * 2))
    params = [p for name, p in model.named_parameters() if "position" not in name]
    assert mg.gradcheck(lambda *_: model(ids, mask, segments), params, fast_mode=True)


def test_gradients_reach_every_parameter():
    mg.manual_seed(4)
    model = BertForPreTraining(_tiny()).train()
    ids = _ids((2, 16), seed=6)
    mlm_logits, nsp_logits = model(ids, token_type_ids=mg.tensor(np.repeat([[0] * 8 + [1] * 8], 2, 0)))
    loss = F.cross_entropy(mlm_logits.flatten(0, 1), ids.flatten()) + F.cross_entropy(nsp_logits, mg.tensor([0, 1]))
    loss.backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or not np.abs(p.grad.cpu().numpy()).sum()]
    assert missing == []


def test_initialisation_is_berts():
    mg.manual_seed(5)
    model = BertForPreTraining(BertConfig.small(2000, pad_token_id=3))
    for name, p in model.named_parameters():
        values = p.detach().cpu().numpy()
        if "norm" in name.lower():
            assert np.all(values == (1.0 if name.endswith("weight") else 0.0)), name
        elif name.endswith("bias"):
            assert np.all(values == 0), name
        else:
            if "word_embeddings" in name:
                assert np.all(values[3] == 0)  # the padding row
                values = np.delete(values, 3, axis=0)
            assert abs(values.mean()) < 3e-3 and values.std() == pytest.approx(0.02, rel=0.1), name


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda m: m(mg.tensor([[1, VOCAB]])), IndexError, rf"BertEmbeddings: input_ids contain id {VOCAB}.*{VOCAB}"),
        (lambda m: m(mg.tensor([[1, -1]])), IndexError, r"BertEmbeddings: input_ids contain id -1"),
        (
            lambda m: m(_ids((1, 17))),
            ValueError,
            r"BertEmbeddings: sequence length 17 .*max_position_embeddings \(16\)",
        ),
        (
            lambda m: m(_ids((1, 3)), token_type_ids=mg.tensor([[0, 2, 0]])),
            IndexError,
            r"token_type_ids contain id 2.*type_vocab_size = 2",
        ),
        (lambda m: m(_ids((1, 3)), mg.ones(1, 4)), ValueError, r"BertModel: attention_mask must have the shape"),
        (
            lambda m: m(_ids((2, 3)), token_type_ids=mg.zeros(2, 4, dtype=mg.int64)),
            ValueError,
            r"BertModel: token_type_ids must have the shape of input_ids \(2, 3\), got \(2, 4\)",
        ),
        (lambda m: m(mg.tensor([[1.0, 2.0]])), TypeError, r"BertEmbeddings: input_ids must be an integer tensor"),
    ],
)
def test_bad_input_names_the_module_the_value_and_the_limit(call, error, message):
    with pytest.raises(error, match=message):
        call(BertModel(_tiny()))


def test_bad_config():
    with pytest.raises(ValueError, match=r"hidden_size \(10\) must be divisible by num_attention_heads \(4\)"):
        BertConfig(hidden_size=10, num_attention_heads=4)
    with pytest.raises(ValueError, match="hidden_act must be one of"):
        BertConfig(hidden_act="swish")


# ------------------------------------------------------------------------ masking recipe
PAD, CLS, SEP, MASK = 0, 1, 2, 3


def _sentences(batch=400, length=128, vocab=1000, seed=0):
    """[CLS] tokens [SEP] then padding; lengths vary per row."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(4, vocab, (batch, length))
    lengths = rng.integers(length // 4, length, batch)
    ids[:, 0] = CLS
    ids[np.arange(batch), lengths - 1] = SEP
    ids[np.arange(length)[None] >= lengths[:, None]] = PAD
    return ids


@pytest.mark.parametrize("special_as", ["ids", "mask"])
def test_mask_tokens_proportions_and_special_positions(special_as):
    ids = _sentences()
    special_ids = (PAD, CLS, SEP, MASK)
    special = np.isin(ids, special_ids)
    specials = mg.tensor(special) if special_as == "mask" else special_ids
    masked, labels = mask_tokens(mg.tensor(ids), specials, MASK, 1000, generator=np.random.default_rng(1))
    masked, labels = masked.cpu().numpy(), labels.cpu().numpy()
    chosen = labels != -100
    assert masked.dtype == ids.dtype and labels.dtype == np.int64
    assert not (chosen & special).any()  # [CLS], [SEP] and padding are never chosen
    assert np.all(masked[special] == ids[special])
    np.testing.assert_array_equal(labels[chosen], ids[chosen])
    candidates, n = (~special).sum(), chosen.sum()  # about 30,000 candidates
    assert n / candidates == pytest.approx(0.15, abs=0.01)
    became_mask = (masked == MASK) & chosen
    unchanged = (masked == ids) & chosen
    random_token = chosen & ~became_mask & ~unchanged
    assert became_mask.sum() / n == pytest.approx(0.8, abs=0.02)
    # a random draw equal to the original token (1 in 1000) counts as unchanged
    assert random_token.sum() / n == pytest.approx(0.1, abs=0.015)
    assert unchanged.sum() / n == pytest.approx(0.1, abs=0.015)
    assert np.all(masked[~chosen] == ids[~chosen])


def test_mask_tokens_is_reproducible_from_the_seed_and_checks_its_input():
    ids = mg.tensor(_sentences(batch=8))
    mg.manual_seed(7)
    first = mask_tokens(ids, (PAD, CLS, SEP), MASK, 1000)
    mg.manual_seed(7)
    second = mask_tokens(ids, (PAD, CLS, SEP), MASK, 1000)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a.cpu().numpy(), b.cpu().numpy())
    with pytest.raises(ValueError, match=r"mask_tokens: probability must be in \[0, 1\], got 1.5"):
        mask_tokens(ids, (PAD,), MASK, 1000, probability=1.5)
    with pytest.raises(ValueError, match="mask_tokens: the special mask must have the shape"):
        mask_tokens(ids, mg.zeros(3, 3, dtype=mg.bool), MASK, 1000)


# ------------------------------------------------------------------------- Sentence-BERT
_MASK = np.array([[1, 1, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0]])


def test_mean_pooling_averages_the_real_tokens_only():
    hidden = np.random.default_rng(7).normal(size=(3, 4, 5))
    pooled = mean_pooling(mg.tensor(hidden), mg.tensor(_MASK.astype(bool))).cpu().numpy()
    np.testing.assert_allclose(pooled[0], hidden[0, :3].mean(0), rtol=1e-12)
    np.testing.assert_allclose(pooled[1], hidden[1, 0], rtol=1e-12)
    np.testing.assert_array_equal(pooled[2], 0)  # no real token: zeros, not a division by zero


def test_mean_pooling_gradcheck_float64():
    hidden = mg.tensor(np.random.default_rng(8).normal(size=(3, 4, 5)), requires_grad=True)
    assert mg.gradcheck(lambda h: mean_pooling(h, mg.tensor(_MASK)), (hidden,))
    assert mg.gradgradcheck(lambda h: mean_pooling(h, mg.tensor(_MASK)), (hidden,))


def test_mean_pooling_matches_pytorch():
    torch = pytest.importorskip("torch")
    hidden = np.random.default_rng(9).normal(size=(3, 4, 5))
    h, m = torch.tensor(hidden, requires_grad=True), torch.tensor(_MASK).unsqueeze(-1).double()
    expected = (h * m).sum(1) / m.sum(1).clamp(min=1)
    expected.square().sum().backward()
    ours = mg.tensor(hidden, requires_grad=True)
    pooled = mean_pooling(ours, mg.tensor(_MASK))
    (pooled * pooled).sum().backward()
    np.testing.assert_allclose(pooled.detach().cpu().numpy(), expected.detach().cpu().numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours.grad.cpu().numpy(), h.grad.cpu().numpy(), rtol=1e-12)


def test_mean_pooling_names_the_shapes():
    with pytest.raises(ValueError, match=r"mean_pooling.*\(2, 3, 4\) and \(2, 4\)"):
        mean_pooling(mg.zeros(2, 3, 4), mg.ones(2, 4))


def test_sentence_encoder_ignores_padding_and_gradchecks():
    mg.manual_seed(10)
    encoder = SentenceEncoder(_tiny(num_hidden_layers=1)).eval()
    ids = _ids((2, 6), seed=11)
    mask = mg.tensor(np.array([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]]))
    padded = encoder(ids, mask)
    assert padded.shape == (2, 8)
    _assert_close(padded[0], encoder(ids[:1, :4])[0])
    encoder.to(mg.float64)
    params = [p for name, p in encoder.named_parameters() if "position" not in name]
    assert mg.gradcheck(lambda *_: encoder(ids, mask), params, fast_mode=True)
