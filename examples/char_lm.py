"""Character language model on Shakespeare: RNN, GRU and LSTM by perplexity on a held-out play."""

from __future__ import annotations

import math

import minigrad as mg
import minigrad.functional as F
import nn
from examples._common import Result, Timer, arguments, finish, parameters, progress, setup
from minigrad.data import Vocab, shakespeare_chars
from nn.decoding import sample_next

CELLS = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}


class CharLM(nn.Module):
    """Embedding -> recurrent layers -> linear head: ids (B, T) -> next-character logits (B, T, V).
    ``dropout`` acts on the embeddings, between recurrent layers and before the head."""

    def __init__(self, cell: str, vocab_size: int, embed: int, hidden: int, layers: int, dropout: float = 0.0):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed)
        self.rnn = CELLS[cell](embed, hidden, layers, batch_first=True, dropout=dropout)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, vocab_size)

    def forward(self, ids: mg.Tensor, state=None):
        out, state = self.rnn(self.drop(self.embedding(ids)), state)  # out: (B, T, H)
        return self.head(self.drop(out)), state


def detach(state):
    """Cut the graph behind the carried state (truncated backpropagation through time)."""
    return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()


def streams(ids: mg.Tensor, batch_size: int) -> mg.Tensor:
    """Cut the text (N,) into ``batch_size`` contiguous streams (B, N // B): row b continues in
    each next window where it stopped, so the state carried between windows stays meaningful."""
    length = ids.shape[0] // batch_size
    return ids[: batch_size * length].reshape(batch_size, length)


def windows(rows: mg.Tensor, seq_len: int):
    """Consecutive (input, target) windows (B, T) of the streams, the target shifted by one."""
    for start in range(0, rows.shape[1] - 1, seq_len):
        stop = min(start + seq_len, rows.shape[1] - 1)
        yield rows[:, start:stop], rows[:, start + 1 : stop + 1]


def loss_of(logits: mg.Tensor, targets: mg.Tensor) -> mg.Tensor:
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


@mg.no_grad()
def perplexity(model: CharLM, ids: mg.Tensor, batch_size: int, seq_len: int) -> float:
    """exp(mean next-character cross-entropy) over the text, reading it in contiguous streams."""
    model.eval()
    state, total, count = None, 0.0, 0
    for inputs, targets in windows(streams(ids, batch_size), seq_len):
        logits, state = model(inputs, state)
        total += loss_of(logits, targets).item() * targets.numel()
        count += targets.numel()
    model.train()
    return math.exp(total / count)


@mg.no_grad()
def generate(model: CharLM, vocab: Vocab, prompt: str, length: int, temperature: float) -> str:
    """``length`` characters sampled one at a time after ``prompt``."""
    model.eval()
    logits, state = model(mg.tensor([vocab.encode(prompt)]))
    text = []
    for _ in range(length):
        token = sample_next(logits[:, -1], temperature)  # (1,)
        text.append(vocab.itos[token.item()])
        logits, state = model(token.reshape(1, 1), state)
    model.train()
    return "".join(text)


def train(model: CharLM, train_ids, valid_ids, args, epochs: int, desc: str) -> dict:
    """Truncated BPTT over contiguous windows with Adam, cosine learning-rate decay and gradient
    clipping; validation perplexity after each epoch."""
    rows = streams(train_ids, args.batch_size)
    steps_per_epoch = -(-(rows.shape[1] - 1) // args.seq_len)
    optimizer = nn.optim.Adam(model.parameters(), lr=args.lr)
    schedule = nn.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs * steps_per_epoch, eta_min=args.lr / 20)
    curves = {f"{desc} train loss": [], f"perplexity: {desc} valid": []}
    for epoch in range(epochs):
        state = None
        bar = progress(windows(rows, args.seq_len), f"{desc} {epoch + 1}/{epochs}", total=steps_per_epoch)
        for inputs, targets in bar:
            logits, state = model(inputs, state)
            state = detach(state)
            loss = loss_of(logits, targets)
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), args.clip)
            optimizer.step()
            schedule.step()
            curves[f"{desc} train loss"].append(loss.item())
            bar.set_postfix(loss=f"{loss.item():.3f}")
        ppl = perplexity(model, valid_ids, args.batch_size, args.seq_len)
        curves[f"perplexity: {desc} valid"].append((epoch + 1, ppl))
        print(f"{desc} epoch {epoch + 1}: train loss {loss.item():.3f}, validation perplexity {ppl:.2f}", flush=True)
    return curves


def main(argv=None) -> Result:
    args = arguments(argv, epochs=4, cell="all", layers=1, hidden=512, embed=64, seq_len=64, batch_size=32,
                     lr=3e-3, clip=1.0, dropout=0.2, temperature=0.8)  # fmt: skip
    setup(args)
    if args.cell not in ("all", *CELLS):
        raise SystemExit(f"char_lm: --cell must be one of all, {', '.join(CELLS)}; got {args.cell!r}")
    cells = list(CELLS) if args.cell == "all" else [args.cell]
    corpus = shakespeare_chars()
    train_ids, valid_ids = corpus.train, corpus.valid
    hidden, embed = args.hidden, args.embed
    if args.quick:  # a slice of the text and a small model
        train_ids, valid_ids, hidden, embed = train_ids[:20_000], valid_ids[:4_000], 64, 16
        args.batch_size, args.seq_len = 16, 32
    print(f"{len(corpus.vocab)} characters; training on 7 plays ({train_ids.shape[0]:,} characters), ", end="")
    print(f"validating on {corpus.valid_play} ({valid_ids.shape[0]:,})")

    curves, figures, models = {}, {}, {}
    with Timer() as timer:
        for cell in cells:
            mg.manual_seed(args.seed)
            model = CharLM(cell, len(corpus.vocab), embed, hidden, args.layers, dropout=args.dropout)
            print(f"{cell}: {args.layers} layer(s) of {hidden}, {parameters(model):,} parameters")
            curves.update(train(model, train_ids, valid_ids, args, args.epochs, cell))
            figures[f"{cell} ppl"] = curves[f"perplexity: {cell} valid"][-1][1]
            models[cell] = model
    sampler = "lstm" if "lstm" in models else cells[-1]
    print(f"--- 300 characters from the {sampler} (temperature {args.temperature}) ---")
    print(generate(models[sampler], corpus.vocab, "\n", 300, args.temperature))
    print("---")
    result = Result(f"{sampler} validation perplexity", figures[f"{sampler} ppl"], curves, figures, timer.seconds)
    return finish(result, args, "Character language models on Shakespeare")


if __name__ == "__main__":
    main()
