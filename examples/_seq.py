"""What the sequence-to-sequence examples share: the tasks, the training loop, decoding a split,
exact match and BLEU, and attention maps."""

from __future__ import annotations

import itertools

import minigrad as mg
import minigrad.functional as F
import nn
from examples._common import Result, Timer, finish, progress
from minigrad.data.text import Vocab, dates_task, en_es_task
from nn.decoding import beam_search, greedy_search
from nn.models import Seq2Seq, Seq2SeqAttention

# Per task: the figure reported, the default epochs, and the sizes of a quick run (train pairs, test pairs).
METRICS = {"dates": "exact match", "en-es": "BLEU"}
EPOCHS = {"dates": 2, "en-es": 20}
QUICK = {"dates": (640, 50), "en-es": (320, 30)}


def load_task(name: str, quick: bool):
    """The Seq2SeqTask ``name`` ("dates" or "en-es"); --quick keeps a few hundred pairs."""
    task = dates_task() if name == "dates" else en_es_task()
    if quick:
        n_train, n_test = QUICK[name]
        task.train, task.test = task.train[:n_train], task.test[:n_test]
    return task


def build(kind: str, task, args):
    """A "plain" (Seq2Seq) or "attention" (Seq2SeqAttention) GRU encoder-decoder for ``task``, sized
    by args.embed_size, num_hiddens, num_layers and dropout (16 and 32 wide with --quick)."""
    model = {"plain": Seq2Seq, "attention": Seq2SeqAttention}[kind]
    embed_size, num_hiddens = (16, 32) if args.quick else (args.embed_size, args.num_hiddens)
    return model(len(task.src_vocab), len(task.tgt_vocab), embed_size, num_hiddens, args.num_layers, args.dropout)


def train(model, task, epochs: int, batch_size: int, lr: float, desc: str) -> list:
    """Teacher-forced cross-entropy on the train split (padding ignored), Adam with the learning rate
    decayed by a cosine over the run, gradients clipped to norm 1. Returns the loss per step."""
    steps = epochs * -(-len(task.train) // batch_size)
    optimizer = nn.optim.Adam(model.parameters(), lr=lr)
    schedule = nn.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps, eta_min=lr / 20)
    batches = itertools.chain.from_iterable(task.batches("train", batch_size, seed=e) for e in range(epochs))
    losses = []
    model.train()
    for batch in (bar := progress(batches, desc, total=steps)):
        logits = model(batch.src, batch.src_lengths, batch.tgt_in)
        loss = F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), batch.tgt_out.reshape(-1), ignore_index=Vocab.pad_id
        )
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{loss.item():.3f}")
    return losses


def source_batches(task, split: str, batch_size: int):
    """The split's sources in order, as padded (src (B, S), src_lengths (B,)) batches."""
    sources, _ = task.encode(split)
    for start in range(0, len(sources), batch_size):
        rows = sources[start : start + batch_size]
        width = max(map(len, rows))
        src = mg.tensor([row + [Vocab.pad_id] * (width - len(row)) for row in rows], dtype=mg.int64)
        yield src, mg.tensor([len(row) for row in rows], dtype=mg.int64)


def translate(model, task, split: str = "test", beam_width: int = 1, max_len: int = 40, batch_size: int = 100):
    """The model's outputs for every source of the split, as text, in order (greedy for beam_width 1)."""
    model.eval()
    vocab, outputs = task.tgt_vocab, []
    for src, lengths in source_batches(task, split, batch_size):
        if beam_width == 1:
            ids = greedy_search(model, src, lengths, vocab.bos_id, vocab.eos_id, max_len)
        else:
            ids = beam_search(model, src, lengths, vocab.bos_id, vocab.eos_id, max_len, beam_width)
        outputs += [task.detokenize(vocab.decode(row)) for row in ids]
    return outputs


def score(task_name: str, outputs: list, task, split: str = "test") -> float:
    """Exact match (dates) or corpus BLEU (en-es; sacrebleu, lower-cased as en_es_task's words are)
    against the split's target texts."""
    references = [target for _, target in task.split(split)]
    if task_name == "dates":
        return sum(out == ref for out, ref in zip(outputs, references)) / len(references)
    import sacrebleu

    return sacrebleu.corpus_bleu(outputs, [references], lowercase=True).score


def evaluate(name: str, model, task, beam_width: int = 1) -> float:
    """The test-split figure of ``model`` on task ``name`` (exact match or BLEU); prints three translations."""
    outputs = translate(model, task, beam_width=beam_width)
    for (source, target), output in list(zip(task.test, outputs))[:3]:
        print(f"  {source!r} -> {output!r} (reference {target!r})")
    return score(name, outputs, task)


@mg.no_grad()
def save_attention_map(model, task, index: int, path: str, title: str = "") -> None:
    """The attention weights (output token x source token) of the model's greedy output for one test pair."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    src_ids = task.src_vocab.encode(task.src_tokenize(task.test[index][0]), eos=True)
    src, lengths = mg.tensor([src_ids], dtype=mg.int64), mg.tensor([len(src_ids)], dtype=mg.int64)
    vocab = task.tgt_vocab
    model.eval()
    ids = greedy_search(model, src, lengths, vocab.bos_id, vocab.eos_id, max_len=40)[0]
    model(src, lengths, mg.tensor([[vocab.bos_id] + ids], dtype=mg.int64))  # its own output, teacher-forced
    weights = model.attention_weights.cpu().numpy()[0]  # (T, S): step t emits ids[t], the last one <eos>
    rows, columns = [vocab.itos[i] for i in ids] + ["<eos>"], [task.src_vocab.itos[i] for i in src_ids]
    fig, ax = plt.subplots(figsize=(0.3 * len(columns) + 2, 0.3 * len(rows) + 1.5))
    ax.imshow(weights, cmap="Reds", vmin=0, vmax=1)
    ax.set_xticks(range(len(columns)), columns, rotation=90)
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel("source")
    ax.set_ylabel("output")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_tasks(args, title: str, fit) -> Result:
    """One model per task of ``args.task`` ("dates", "en-es" or "both"): ``fit(name, task)`` builds and
    trains it and returns (model, losses per step); each is then scored on its test split."""
    names = ["dates", "en-es"] if args.task == "both" else [args.task]
    curves, extra = {}, {}
    with Timer() as timer:
        for name in names:
            task = load_task(name, args.quick)
            model, curves[f"{name} train loss"] = fit(name, task)
            extra[f"{name} {METRICS[name]}"] = evaluate(name, model, task, args.beam_width)
    first = f"{names[0]} {METRICS[names[0]]}"
    return finish(Result(first, extra.pop(first), curves, extra, timer.seconds), args, title)
