"""The workloads: each builds one step for minigrad and one for PyTorch from the same data."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from benchmarks.harness import Workload


def _chain(x, n_ops: int):
    """n_ops elementwise ops in a chain that also keeps reusing the input."""
    y = x
    for _ in range(n_ops // 3):
        y = (y * 0.9).tanh() + x
    return y.sum()


def op_overhead(n_ops: int = 300, size: int = 16) -> Workload:
    data = np.random.default_rng(0).standard_normal((size, size)).astype(np.float32)

    def minigrad_step(device):
        import minigrad as mg

        x = mg.tensor(data, device=device, requires_grad=True)
        return lambda: _chain(x, n_ops).backward()

    def torch_step(device):
        import torch

        x = torch.tensor(data, device=device, requires_grad=True)
        return lambda: _chain(x, n_ops).backward()

    return Workload(
        "op overhead",
        f"{n_ops} elementwise ops on {size}x{size}, then backward",
        minigrad_step,
        torch_step,
        target=1.5,
    )


# Training-step workloads. Both frameworks build the model from the same code (minigrad follows
# PyTorch's names), minigrad's copy gets PyTorch's initial weights, and one step is forward,
# cross-entropy, backward and an SGD update.


def _framework(name: str) -> SimpleNamespace:
    if name == "minigrad":
        import minigrad as mg
        import minigrad.functional as F
        import nn

        return SimpleNamespace(name=name, lib=mg, nn=nn, F=F, optim=nn.optim)
    import torch

    return SimpleNamespace(name=name, lib=torch, nn=torch.nn, F=torch.nn.functional, optim=torch.optim)


def _conv_bn(fw, c_in, c_out, kernel=3, stride=1, groups=1, relu=True):
    layers = [
        fw.nn.Conv2d(c_in, c_out, kernel, stride, padding=kernel // 2, groups=groups, bias=False),
        fw.nn.BatchNorm2d(c_out),
    ]
    return layers + [fw.nn.ReLU()] if relu else layers


def _basic_block(fw, channels):
    class BasicBlock(fw.nn.Module):
        def __init__(self):
            super().__init__()
            self.body = fw.nn.Sequential(
                *_conv_bn(fw, channels, channels), *_conv_bn(fw, channels, channels, relu=False)
            )

        def forward(self, x):
            return fw.F.relu(self.body(x) + x)

    return BasicBlock()


def _small_resnet(fw):
    return fw.nn.Sequential(
        *_conv_bn(fw, 3, 32),
        _basic_block(fw, 32),
        _basic_block(fw, 32),
        *_conv_bn(fw, 32, 64, stride=2),
        _basic_block(fw, 64),
        fw.nn.AdaptiveAvgPool2d(1),
        fw.nn.Flatten(),
        fw.nn.Linear(64, 10),
    )


def _depthwise_separable(fw):
    return fw.nn.Sequential(
        *_conv_bn(fw, 64, 64, groups=64),
        *_conv_bn(fw, 64, 128, kernel=1),
        *_conv_bn(fw, 128, 128, groups=128),
        fw.nn.Conv2d(128, 128, 1),
        fw.nn.AdaptiveAvgPool2d(1),
        fw.nn.Flatten(),
        fw.nn.Linear(128, 10),
    )


def _mlp(fw):
    return fw.nn.Sequential(
        fw.nn.Linear(784, 512), fw.nn.ReLU(), fw.nn.Linear(512, 512), fw.nn.ReLU(), fw.nn.Linear(512, 10)
    )


def _transformer(fw, d=256, heads=4, ffn=1024):
    class Classifier(fw.nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = fw.nn.TransformerEncoderLayer(
                d, heads, ffn, dropout=0.0, activation="gelu", batch_first=True, norm_first=True
            )
            self.head = fw.nn.Linear(d, 10)

        def forward(self, x):
            return self.head(self.layer(x).mean(dim=1))

    return Classifier()


def _lstm(fw, n_in=128, hidden=256, classes=1000):
    class Tagger(fw.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = fw.nn.LSTM(n_in, hidden, batch_first=True)
            self.head = fw.nn.Linear(hidden, classes)

        def forward(self, x):
            out, _ = self.lstm(x)
            return self.head(out).reshape(-1, classes)

    return Tagger()


def _transformer_seq2seq(fw, vocab=1000, d=128, heads=4, layers=3, ffn=512, max_len=64):
    """Token embeddings scaled by sqrt(d) plus a sinusoidal table, nn.Transformer (post-LN), a vocabulary head.
    Input x: (B, 2, T) token ids, the source and the teacher-forced target; output (B * T, vocab) logits."""
    position = np.arange(max_len)[:, None] / 10000 ** (np.arange(0, d, 2) / d)
    table = np.stack([np.sin(position), np.cos(position)], -1).reshape(max_len, d).astype(np.float32)

    class Seq2Seq(fw.nn.Module):
        def __init__(self):
            super().__init__()
            self.src_embed, self.tgt_embed = fw.nn.Embedding(vocab, d), fw.nn.Embedding(vocab, d)
            self.transformer = fw.nn.Transformer(d, heads, layers, layers, ffn, dropout=0.1, batch_first=True)
            self.generator = fw.nn.Linear(d, vocab)
            self.register_buffer("pe", fw.lib.tensor(table), persistent=False)

        def forward(self, x):
            src, tgt = x[:, 0], x[:, 1]
            length = tgt.shape[1]
            causal = fw.lib.ones(length, length, dtype=fw.lib.bool, device=x.device).triu(1)
            src_padding = src == 0
            out = self.transformer(
                self.src_embed(src) * d**0.5 + self.pe[: src.shape[1]],
                self.tgt_embed(tgt) * d**0.5 + self.pe[:length],
                tgt_mask=causal,
                src_key_padding_mask=src_padding,
                memory_key_padding_mask=src_padding,
            )
            return self.generator(out).reshape(-1, vocab)

    return Seq2Seq()


def _gru_lm(fw, vocab=65, embed=64, hidden=256):
    class CharModel(fw.nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = fw.nn.Embedding(vocab, embed)
            self.gru = fw.nn.GRU(embed, hidden, batch_first=True)
            self.head = fw.nn.Linear(hidden, vocab)

        def forward(self, ids):
            out, _ = self.gru(self.embedding(ids))
            return self.head(out).reshape(-1, vocab)

    return CharModel()


def _training_step(build, x, y, fw_name, device):
    """One SGD step of ``build(fw)`` on (x, y); minigrad's model starts from PyTorch's weights."""
    import torch

    torch.manual_seed(0)
    reference = build(_framework("torch"))
    fw = _framework(fw_name)
    if fw_name == "torch":
        model = reference.to(device)
    else:
        model = build(fw)
        model.load_state_dict({k: v.numpy() for k, v in reference.state_dict().items()})
        model.to(device)
    model.train()
    inputs, targets = fw.lib.tensor(x, device=device), fw.lib.tensor(y, device=device)
    optimizer = fw.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step():
        optimizer.zero_grad()
        loss = fw.F.cross_entropy(model(inputs), targets)
        loss.backward()
        optimizer.step()

    return step


def _conv_flops(n, c_in, c_out, size, kernel, stride=1, groups=1):
    out = size // stride
    return 2 * n * out * out * c_out * (c_in // groups) * kernel * kernel


def _workload(name, shape, build, x_shape, n_classes, flops, target, targets_shape=None, notes=(), token_ids=False):
    """``token_ids``: the inputs are ids in 0..n_classes-1 (a language model) instead of floats."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, n_classes, x_shape) if token_ids else rng.standard_normal(x_shape).astype(np.float32)
    y = rng.integers(0, n_classes, targets_shape or x_shape[:1])
    return Workload(
        name,
        shape,
        lambda device: _training_step(build, x, y, "minigrad", device),
        lambda device: _training_step(build, x, y, "torch", device),
        flops=3 * flops,  # backward costs about twice the forward
        target=target,
        notes=list(notes),
    )


def mlp(scale: int = 1) -> Workload:
    batch = 128 * scale
    flops = 2 * batch * (784 * 512 + 512 * 512 + 512 * 10)
    return _workload("MLP", f"784-512-512-10, ReLU, batch {batch}", _mlp, (batch, 784), 10, flops, 0.8)


def small_resnet(scale: int = 1) -> Workload:
    batch = 32 * scale
    convs = [(3, 32, 32, 1)] + [(32, 32, 32, 1)] * 4 + [(32, 64, 32, 2)] + [(64, 64, 16, 1)] * 2
    flops = sum(_conv_flops(batch, ci, co, s, 3, st) for ci, co, s, st in convs) + 2 * batch * 64 * 10
    shape = f"3x32x32, batch {batch}, conv+BN+ReLU, 2 blocks at 32, stride-2 conv to 64, 1 block at 64, pool, linear"
    return _workload("small ResNet", shape, _small_resnet, (batch, 3, 32, 32), 10, flops, 1.5)


def depthwise_separable(scale: int = 1) -> Workload:
    batch = 32 * scale
    flops = (
        _conv_flops(batch, 64, 64, 32, 3, groups=64)
        + _conv_flops(batch, 64, 128, 32, 1)
        + _conv_flops(batch, 128, 128, 32, 3, groups=128)
        + _conv_flops(batch, 128, 128, 32, 1)
    )
    shape = f"64x32x32, batch {batch}, dw3x3+BN+ReLU, pw 64->128+BN+ReLU, dw3x3+BN+ReLU, pw 128->128, pool, linear"
    return _workload("depthwise-separable", shape, _depthwise_separable, (batch, 64, 32, 32), 10, flops, 1.5)


def transformer_layer(scale: int = 1, seq: int = 128, d: int = 256, ffn: int = 1024) -> Workload:
    batch = 8 * scale
    tokens = batch * seq
    flops = 2 * tokens * (4 * d * d + 2 * d * ffn) + 2 * 2 * batch * seq * seq * d
    shape = f"pre-LN encoder layer, batch {batch}, seq {seq}, d {d}, 4 heads, FFN {ffn} GELU, mean-pool, linear"
    return _workload("transformer layer", shape, _transformer, (batch, seq, d), 10, flops, 1.15)


def lstm(scale: int = 1, seq: int = 35, n_in: int = 128, hidden: int = 256, classes: int = 1000) -> Workload:
    batch = 32 * scale
    flops = 2 * batch * seq * (4 * hidden * (n_in + hidden) + hidden * classes)
    shape = f"batch {batch}, seq {seq}, input {n_in}, hidden {hidden}, linear to {classes} classes every step"
    return _workload("LSTM", shape, _lstm, (batch, seq, n_in), classes, flops, 1.25, targets_shape=(batch * seq,))


def transformer_seq2seq(scale: int = 1, seq: int = 32, d: int = 128, ffn: int = 512, layers: int = 3) -> Workload:
    batch, vocab = 32 * scale, 1000
    tokens = batch * seq
    encoder = tokens * (4 * d * d + 2 * d * ffn) + 2 * batch * seq * seq * d
    decoder = tokens * (8 * d * d + 2 * d * ffn) + 4 * batch * seq * seq * d
    flops = 2 * (layers * (encoder + decoder) + tokens * d * vocab)
    rng = np.random.default_rng(0)
    x = rng.integers(1, vocab, (batch, 2, seq))  # no padding (id 0), but the padding masks are built and applied
    y = rng.integers(1, vocab, batch * seq)
    shape = (
        f"nn.Transformer {layers}+{layers} post-LN layers, batch {batch}, src/tgt {seq}, d {d}, 4 heads, FFN {ffn}, "
        f"vocab {vocab}, causal and padding masks, dropout 0.1"
    )
    return Workload(
        "Transformer seq2seq",
        shape,
        lambda device: _training_step(_transformer_seq2seq, x, y, "minigrad", device),
        lambda device: _training_step(_transformer_seq2seq, x, y, "torch", device),
        flops=3 * flops,
        target=1.5,
    )


def gru_lm(scale: int = 1, seq: int = 64, vocab: int = 65, embed: int = 64, hidden: int = 256) -> Workload:
    batch = 32 * scale
    flops = 2 * batch * seq * (3 * hidden * (embed + hidden) + hidden * vocab)
    shape = f"character LM: batch {batch}, seq {seq}, vocab {vocab}, embedding {embed}, 1-layer GRU {hidden}"
    return _workload(
        "GRU LM", shape, _gru_lm, (batch, seq), vocab, flops, 1.5, targets_shape=(batch * seq,), token_ids=True
    )


# Training steps take a batch multiplier (8 on a GPU); the op-overhead chain does not.
BATCHED = {"mlp", "resnet", "depthwise", "transformer", "lstm", "gru_lm", "transformer_seq2seq"}
WORKLOADS = {
    "mlp": mlp,
    "resnet": small_resnet,
    "depthwise": depthwise_separable,
    "transformer": transformer_layer,
    "lstm": lstm,
    "gru_lm": gru_lm,
    "transformer_seq2seq": transformer_seq2seq,
    "overhead": op_overhead,
}
