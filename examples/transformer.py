"""Transformer encoder-decoder (sinusoidal positions, masks, KV-cached decoding): dates to ISO, English to Spanish."""

from __future__ import annotations

import itertools
import math

import minigrad as mg
import minigrad.functional as F
import nn
from examples._common import MixedPrecision, Result, arguments, parameters, progress, setup
from examples._seq import run_tasks
from minigrad.data.text import Vocab
from nn.models import TransformerSeq2Seq

# Per task: default epochs and dropout (the dates set is large enough to need none).
EPOCHS = {"dates": 4, "en-es": 10}
DROPOUT = {"dates": 0.0, "en-es": 0.1}


def train(model, task, steps: int, batch_size: int, lr: float, warmup: int, desc: str, after_step=None,
          amp: bool = False) -> list:  # fmt: skip
    """Teacher-forced cross-entropy (padding ignored) with Adam (betas 0.9, 0.98): the learning rate rises
    linearly over ``warmup`` steps (none if 0), then decays by a cosine to lr / 20. ``after_step(model)``,
    if given, runs after each update; ``amp``: mixed precision (``MixedPrecision``) on the default device.
    Stops early once the loss is not finite. Returns the loss per step."""
    optimizer = nn.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.98))
    precision = MixedPrecision(mg.backend.get_default_device(), amp)

    def factor(step):
        if step < warmup:
            return (step + 1) / warmup
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(steps - warmup, 1)))

    schedule = nn.optim.lr_scheduler.LambdaLR(optimizer, factor)
    batches = itertools.chain.from_iterable(task.batches("train", batch_size, seed=e) for e in itertools.count())
    losses = []
    for batch in (bar := progress(itertools.islice(batches, steps), desc, total=steps)):
        model.train()
        with precision.autocast:
            logits = model(batch.src, batch.src_lengths, batch.tgt_in)  # (B, T, V)
            loss = F.cross_entropy(logits.flatten(0, 1), batch.tgt_out.flatten(), ignore_index=Vocab.pad_id)
        precision.step(loss, optimizer)
        schedule.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{losses[-1]:.3f}", **(after_step(model) if after_step else {}))
        if not math.isfinite(losses[-1]):
            break
    return losses


def main(argv=None) -> Result:
    args = arguments(argv, task="both", epochs=None, batch_size=64, lr=3e-3, warmup=100, d_model=64, nhead=4,
                     layers=2, dim_feedforward=256, dropout=None, beam_width=1, amp=False)  # fmt: skip
    setup(args)

    def fit(name, task):
        model = TransformerSeq2Seq(
            len(task.src_vocab), len(task.tgt_vocab), args.d_model, args.nhead, args.layers, args.layers,
            args.dim_feedforward, DROPOUT[name] if args.dropout is None else float(args.dropout), max_len=128,
        )  # fmt: skip
        epochs = 1 if args.quick else args.epochs or EPOCHS[name]
        steps = epochs * -(-len(task.train) // args.batch_size)
        warmup = min(args.warmup, steps // 4)
        print(f"{name}: {len(task.train)} training pairs, {epochs} epochs, {parameters(model):,} parameters")
        return model, train(model, task, steps, args.batch_size, args.lr, warmup, name, amp=args.amp)

    # scored by greedy or beam search through decode_step, which reuses the KV cache
    return run_tasks(args, "Transformer seq2seq", fit)


if __name__ == "__main__":
    main()
