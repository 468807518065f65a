"""BERT (Devlin et al., 2019): a bidirectional Transformer encoder pre-trained as a masked LM.

Token, position and segment embeddings are summed and normalised; post-LN encoder layers with
GELU run over the whole sequence (every token sees every real token; padding is masked out of
the keys); the pooler turns the [CLS] state into a sentence vector. Pre-training predicts masked
tokens through a head whose output matrix is the input embedding matrix (tied weights), and
optionally whether the second segment follows the first (next sentence prediction).
``SentenceEncoder`` is Sentence-BERT's (Reimers and Gurevych, 2019) Siamese encoder: one BertModel
whose token states are mean-pooled over the real tokens into one vector per text.
Names follow the paper and Hugging Face's ``BertConfig``; ``bert_base`` has the paper's 110 M
parameters (109,482,240 with the pooler, as bert-base-uncased). The masking recipe (15 %;
80/10/10) is ``minigrad.data.text.mask_tokens``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import minigrad as mg
import minigrad.functional as F
import nn

_ACTIVATIONS = {"gelu": F.gelu, "gelu_new": partial(F.gelu, approximate="tanh"), "relu": F.relu}


@dataclass(frozen=True)
class BertConfig:
    """Hyper-parameters by the paper's (and Hugging Face's) names; the defaults are BERT-Base."""

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    initializer_range: float = 0.02

    def __post_init__(self):
        if self.hidden_act not in _ACTIVATIONS:
            raise ValueError(f"BertConfig: hidden_act must be one of {sorted(_ACTIVATIONS)}, got {self.hidden_act!r}")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"BertConfig: hidden_size ({self.hidden_size}) must be divisible by "
                f"num_attention_heads ({self.num_attention_heads})"
            )

    @classmethod
    def base(cls, vocab_size: int = 30522, **overrides) -> BertConfig:
        """BERT-Base: 12 layers, hidden 768, 12 heads, intermediate 3072."""
        return cls(vocab_size=vocab_size, **overrides)

    @classmethod
    def small(cls, vocab_size: int, **overrides) -> BertConfig:
        """A small BERT for a CPU: 4 layers, hidden 256, 4 heads, intermediate 1024."""
        sizes = {"hidden_size": 256, "num_hidden_layers": 4, "num_attention_heads": 4, "intermediate_size": 1024}
        return cls(vocab_size=vocab_size, **{**sizes, **overrides})


def _check_ids(module: str, what: str, ids: mg.Tensor, limit: int, limit_name: str) -> None:
    """``ids`` hold integers in [0, limit)."""
    if ids.dtype.kind not in "iu":
        raise TypeError(f"{module}: {what} must be an integer tensor, got {ids.dtype}")
    if ids.numel() and not 0 <= ids.min().item() <= ids.max().item() < limit:
        bad = ids.max().item() if ids.max().item() >= limit else ids.min().item()
        raise IndexError(f"{module}: {what} contain id {bad}, outside [0, {limit}) ({limit_name} = {limit})")


class BertEmbeddings(nn.Module):
    """input_ids, token_type_ids: (B, T) -> (B, T, H): token + learned position + segment, LayerNorm, dropout."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids: mg.Tensor, token_type_ids: mg.Tensor) -> mg.Tensor:
        c = self.config
        t = input_ids.shape[1]
        if t > c.max_position_embeddings:
            raise ValueError(
                f"BertEmbeddings: sequence length {t} is longer than max_position_embeddings "
                f"({c.max_position_embeddings})"
            )
        _check_ids("BertEmbeddings", "input_ids", input_ids, c.vocab_size, "vocab_size")
        _check_ids("BertEmbeddings", "token_type_ids", token_type_ids, c.type_vocab_size, "type_vocab_size")
        positions = mg.arange(t, device=input_ids.device)
        tokens, segments = self.word_embeddings(input_ids), self.token_type_embeddings(token_type_ids)
        return self.dropout(self.LayerNorm(tokens + self.position_embeddings(positions) + segments))


class BertLayer(nn.Module):
    """x: (B, T, H) -> (B, T, H). Post-LN: x = LN(x + attention(x)); x = LN(x + W2 act(W1 x)).

    Not ``nn.TransformerEncoderLayer``: BERT has no dropout between the two feed-forward matrices
    and its attention-probability dropout has its own rate.
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        h = config.hidden_size
        self.attention = nn.MultiheadAttention(
            h, config.num_attention_heads, dropout=config.attention_probs_dropout_prob, batch_first=True
        )
        self.attention_dropout = nn.Dropout(config.hidden_dropout_prob)
        self.attention_norm = nn.LayerNorm(h, eps=config.layer_norm_eps)
        self.intermediate = nn.Linear(h, config.intermediate_size)
        self.activation = _ACTIVATIONS[config.hidden_act]
        self.output = nn.Linear(config.intermediate_size, h)
        self.output_dropout = nn.Dropout(config.hidden_dropout_prob)
        self.output_norm = nn.LayerNorm(h, eps=config.layer_norm_eps)

    def forward(self, x: mg.Tensor, padding_mask: mg.Tensor | None = None) -> mg.Tensor:
        """padding_mask: (B, T), True where the key is padding (never attended to)."""
        attended = self.attention(x, x, x, key_padding_mask=padding_mask, need_weights=False)[0]
        x = self.attention_norm(x + self.attention_dropout(attended))
        return self.output_norm(x + self.output_dropout(self.output(self.activation(self.intermediate(x)))))


class BertPooler(nn.Module):
    """(B, T, H) -> (B, H): tanh(W h_[CLS] + b), the sentence vector for classification."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden_states: mg.Tensor) -> mg.Tensor:
        return self.dense(hidden_states[:, 0]).tanh()


def _init_bert_weights(module: nn.Module, std: float) -> None:
    """BERT's initialisation: weights N(0, std), biases 0, LayerNorm 1 and 0, the padding row 0."""
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, std=std)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.MultiheadAttention):
        nn.init.normal_(module.in_proj_weight, std=std)
        nn.init.zeros_(module.in_proj_bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, std=std)
        if module.padding_idx is not None:
            with mg.no_grad():
                module.weight[module.padding_idx] = 0
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


class BertModel(nn.Module):
    """The encoder: ``forward(input_ids, attention_mask, token_type_ids) -> (sequence_output, pooled)``."""

    def __init__(self, config: BertConfig, add_pooling_layer: bool = True):
        super().__init__()
        self.config = config
        self.embeddings = BertEmbeddings(config)
        self.layers = nn.ModuleList(BertLayer(config) for _ in range(config.num_hidden_layers))
        self.pooler = BertPooler(config) if add_pooling_layer else None
        self.apply(partial(_init_bert_weights, std=config.initializer_range))

    def forward(
        self,
        input_ids: mg.Tensor,
        attention_mask: mg.Tensor | None = None,
        token_type_ids: mg.Tensor | None = None,
    ) -> tuple[mg.Tensor, mg.Tensor | None]:
        """input_ids: (B, T) token ids; attention_mask: (B, T), 1 (or True) for a real token and 0
        for padding (default: all real); token_type_ids: (B, T), the segment of each token
        (default: all 0). Returns sequence_output (B, T, H) and pooled (B, H) (None without a pooler)."""
        if input_ids.ndim != 2:
            raise ValueError(f"BertModel: input_ids must have shape (B, T), got {tuple(input_ids.shape)}")
        for name, tensor in (("attention_mask", attention_mask), ("token_type_ids", token_type_ids)):
            if tensor is not None and tuple(tensor.shape) != tuple(input_ids.shape):
                raise ValueError(
                    f"BertModel: {name} must have the shape of input_ids {tuple(input_ids.shape)}, "
                    f"got {tuple(tensor.shape)}"
                )
        if token_type_ids is None:
            token_type_ids = mg.zeros(*input_ids.shape, dtype=mg.int64, device=input_ids.device)
        padding_mask = None if attention_mask is None else attention_mask == 0
        x = self.embeddings(input_ids, token_type_ids)
        for layer in self.layers:
            x = layer(x, padding_mask)
        return x, self.pooler(x) if self.pooler is not None else None


class BertLMPredictionHead(nn.Module):
    """(B, T, H) -> (B, T, vocab_size): dense, activation, LayerNorm, then the decoder, whose weight
    is the input token embedding matrix (tied; one Parameter) and whose bias is its own."""

    def __init__(self, config: BertConfig, word_embeddings: nn.Embedding):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.activation = _ACTIVATIONS[config.hidden_act]
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size)
        self.apply(partial(_init_bert_weights, std=config.initializer_range))
        self.decoder.weight = word_embeddings.weight

    def forward(self, hidden_states: mg.Tensor) -> mg.Tensor:
        return self.decoder(self.LayerNorm(self.activation(self.dense(hidden_states))))


class BertForMaskedLM(nn.Module):
    """Masked-LM pre-training: ``forward(input_ids, attention_mask, token_type_ids) -> (B, T, vocab_size)``
    logits; train with ``F.cross_entropy(logits.flatten(0, 1), labels.flatten())``, labels -100
    at the unmasked positions (``mask_tokens`` makes both)."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.bert = BertModel(config, add_pooling_layer=False)
        self.predictions = BertLMPredictionHead(config, self.bert.embeddings.word_embeddings)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None) -> mg.Tensor:
        return self.predictions(self.bert(input_ids, attention_mask, token_type_ids)[0])


def mean_pooling(hidden_states: mg.Tensor, attention_mask: mg.Tensor) -> mg.Tensor:
    """The mean of each sequence's real token states: hidden_states (B, T, H), attention_mask
    (B, T), 1 (or True) for a real token and 0 for padding -> (B, H). A row without real tokens
    pools to zeros."""
    if hidden_states.ndim != 3 or tuple(attention_mask.shape) != tuple(hidden_states.shape[:2]):
        raise ValueError(
            f"mean_pooling: expected hidden_states (B, T, H) and attention_mask (B, T), got "
            f"{tuple(hidden_states.shape)} and {tuple(attention_mask.shape)}"
        )
    weights = (attention_mask != 0).to(hidden_states.dtype).unsqueeze(2)  # (B, T, 1)
    return (hidden_states * weights).sum(1) / weights.sum(1).clamp(min=1.0)


class SentenceEncoder(nn.Module):
    """Sentence-BERT's Siamese encoder: ``forward(input_ids, attention_mask) -> (B, H)``, the
    BertModel's token states mean-pooled over the real tokens. Both texts of a pair go through
    this one module, so they share every weight."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.bert = BertModel(config, add_pooling_layer=False)

    def forward(self, input_ids: mg.Tensor, attention_mask: mg.Tensor | None = None) -> mg.Tensor:
        """input_ids, attention_mask: (B, T) as BertModel takes them (default mask: all real)."""
        if attention_mask is None:
            attention_mask = mg.ones(*input_ids.shape, dtype=mg.int64, device=input_ids.device)
        return mean_pooling(self.bert(input_ids, attention_mask)[0], attention_mask)


class BertForPreTraining(nn.Module):
    """The paper's two pre-training tasks: ``forward(...) -> (mlm_logits (B, T, vocab_size),
    nsp_logits (B, 2))``, the second whether segment B follows segment A (class 0) or not."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.bert = BertModel(config)
        self.predictions = BertLMPredictionHead(config, self.bert.embeddings.word_embeddings)
        self.seq_relationship = nn.Linear(config.hidden_size, 2)
        _init_bert_weights(self.seq_relationship, config.initializer_range)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None) -> tuple[mg.Tensor, mg.Tensor]:
        sequence_output, pooled = self.bert(input_ids, attention_mask, token_type_ids)
        return self.predictions(sequence_output), self.seq_relationship(pooled)


class BertForSequenceClassification(nn.Module):
    """Fine-tuning on a sentence (pair) task: ``forward(...) -> (B, num_labels)`` logits from the
    pooled [CLS] vector. Start from pre-trained weights with
    ``model.bert.load_state_dict(pretrained.bert.state_dict(), strict=False)``."""

    def __init__(self, config: BertConfig, num_labels: int):
        super().__init__()
        self.config, self.num_labels = config, num_labels
        self.bert = BertModel(config)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size, num_labels)
        _init_bert_weights(self.classifier, config.initializer_range)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None) -> mg.Tensor:
        return self.classifier(self.dropout(self.bert(input_ids, attention_mask, token_type_ids)[1]))


def bert_small(vocab_size: int, **overrides) -> BertModel:
    """4 layers, hidden 256, 4 heads, intermediate 1024 (``BertConfig.small``); ``overrides``
    change any ``BertConfig`` field."""
    return BertModel(BertConfig.small(vocab_size, **overrides))


def bert_base(vocab_size: int = 30522, **overrides) -> BertModel:
    """BERT-Base: 12 layers, hidden 768, 12 heads, 110 M parameters at the default vocabulary."""
    return BertModel(BertConfig.base(vocab_size, **overrides))
