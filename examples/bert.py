"""BERT: masked-LM pre-training on Shakespeare and verses, then a small labelled task: fine-tuned, frozen, scratch.

1. A WordPiece vocabulary and a small BERT are trained on every Shakespeare speech except the test
   ones, and on the English side of the Bible verses, in batches of texts of similar length. BERT's
   recipe chooses tokens (80 % become [MASK], 10 % a random token, 10 % stay) and the model predicts
   them; the prediction head runs on the chosen positions only. A short pre-training learns more
   from 40 % chosen than from the paper's 15 % (Wettig et al., 2023) and without dropout; it sits
   near the unigram answer for its first few hundred steps, so it needs a couple of thousand.
   Masked-token accuracy is plotted per step and measured on the held-out speeches with 15 %
   chosen, next to always answering the most frequent token (the unigram baseline).
2. Downstream, a task made from the speeches with few labels (``--labelled`` speeches per play, 400
   in all, drawn ``--seeds`` times; pre-training saw all the text but the test speeches):
   - ``--task order`` (default): is a speech's opening as written, or its words shuffled? Only word
     order tells them apart, which is what a masked LM must learn and what few labels cannot teach;
   - ``--task play``: which of the eight plays the speech comes from (its speaker's name removed).
   The classifier is the encoder, its token states mean-pooled, and a linear head, trained three
   ways on the same labelled speeches:
   - fine-tuned: from the pre-trained weights, every weight trains;
   - frozen features: the pre-trained encoder stays fixed, a linear probe fits its pooled vectors;
   - from scratch: the same architecture, randomly initialised, every weight trains.
   Each accuracy is the mean over the draws, with its standard error.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import replace
from functools import partial
from typing import NamedTuple

import minigrad as mg
import minigrad.functional as F
import nn
from examples._common import Result, Timer, arguments, finish, optimizer_step, parameters, progress, setup
from minigrad.data import load_en_es
from minigrad.data.text import IGNORE_INDEX, BucketBatchSampler, mask_tokens, shakespeare_plays
from minigrad.text import Tokenizer
from nn.models import BertConfig, BertForMaskedLM, SentenceEncoder
from nn.utils import linear_probe

# A speech is a block whose first line names the speaker: "Ham." in most plays, "HERMIA" in one.
_SPEAKER = re.compile(r"^(?:[A-Z][A-Za-z' ]{0,24}\.|[A-Z][A-Z' ]{1,24})$")
_STAGE_DIRECTION = re.compile(r"\[[^\]]*\]")
_WORD = re.compile(r"[A-Za-z']+")


def speeches() -> tuple[list[str], list[int], list[str]]:
    """Every speech of the eight plays, the speaker's line removed and stage directions cut: its
    text, its play's index, and (the third list) the play titles."""
    texts, labels, titles = [], [], []
    for label, (title, play) in enumerate(shakespeare_plays().items()):
        titles.append(title)
        for block in play.split("\n\n"):
            lines = block.strip().split("\n")
            if len(lines) > 1 and _SPEAKER.match(lines[0]):
                text = " ".join(_STAGE_DIRECTION.sub("", " ".join(lines[1:])).split())
                if text:
                    texts.append(text)
                    labels.append(label)
    return texts, labels, titles


def split(texts, labels, min_words: int, test_per_play: int) -> tuple[list[int], list[list[int]]]:
    """Among the speeches of at least ``min_words`` words, ``test_per_play`` test speeches of each
    play drawn at random, and (per play) the others, shuffled: the pool that labelled ones come from."""
    test, pools = [], []
    order = [i for i in mg.randperm(len(labels)).tolist() if len(texts[i].split()) >= min_words]
    for play in sorted(set(labels)):
        members = [i for i in order if labels[i] == play]
        test += members[:test_per_play]
        pools.append(members[test_per_play:])
    return test, pools


def draw_labelled(pools: list[list[int]], per_play: int) -> list[int]:
    """``per_play`` speeches of each play, drawn at random from its pool."""
    return [pool[i] for pool in pools for i in mg.randperm(len(pool))[:per_play].tolist()]


class Downstream(NamedTuple):
    """A labelled task made from the speeches: texts and class indices to learn from and to test on."""

    train_texts: list[str]
    train_labels: list[int]
    test_texts: list[str]
    test_labels: list[int]
    classes: list[str]


def which_play(texts, plays, titles, labelled: list[int], test: list[int]) -> Downstream:
    """Which of the plays a speech comes from."""
    return Downstream(
        [texts[i] for i in labelled],
        [plays[i] for i in labelled],
        [texts[i] for i in test],
        [plays[i] for i in test],
        titles,
    )


def word_order(texts, plays, titles, labelled: list[int], test: list[int], words: int) -> Downstream:
    """Is this a speech's opening ``words`` words as written (0), or the same words shuffled (1)?
    Punctuation is dropped, so that only the order of the words tells."""

    def examples(indices: list[int]) -> tuple[list[str], list[int]]:
        shuffled = mg.randint(0, 2, (len(indices),)).tolist()
        out = []
        for i, shuffle in zip(indices, shuffled):
            opening = _WORD.findall(texts[i])[:words]
            if shuffle:
                opening = [opening[j] for j in mg.randperm(len(opening)).tolist()]
            out.append(" ".join(opening))
        return out, shuffled

    return Downstream(*examples(labelled), *examples(test), ["as written", "shuffled"])


def masked_lm_step(model: BertForMaskedLM, tokenizer: Tokenizer, texts: list[str], probability: float, max_length: int):
    """Mask ``texts`` the BERT way, a share ``probability`` of their tokens chosen; return the loss on
    the chosen tokens, and their predictions (N_chosen,) and targets (N_chosen,)."""
    ids, attention_mask, _ = tokenizer.encode_batch(texts, max_length=max_length)
    inputs, labels = mask_tokens(ids, tokenizer.special_ids, tokenizer.mask_id, len(tokenizer), probability)
    chosen = labels != IGNORE_INDEX  # (B, T), True where the model must predict the original token
    hidden = model.bert(inputs, attention_mask)[0]  # (B, T, H)
    logits = model.predictions(hidden[chosen])  # (N_chosen, vocab_size): the head only where it is scored
    targets = labels[chosen]
    return F.cross_entropy(logits, targets), logits.argmax(1), targets


def pretrain(model, tokenizer, texts, steps: int, batch_size: int, lr: float, probability: float, max_length: int):
    """Masked-LM training for ``steps`` batches of texts of similar length; AdamW, linear warm-up over
    the first 10 % of the steps, then linear decay. Returns the loss and masked-token accuracy per step."""
    optimizer = nn.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    warmup = max(steps // 10, 1)
    schedule = nn.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(steps - s, 0) / max(steps - warmup, 1))
    )
    sampler = BucketBatchSampler([len(t) for t in texts], batch_size, seed=mg.randint(0, 2**31, ()).item())
    curves = {"masked LM loss": [], "masked-token accuracy": []}
    model.train()
    epoch, batches = 0, iter(sampler)
    for _ in (bar := progress(range(steps), "pre-train (masked LM)")):
        indices = next(batches, None)
        if indices is None:
            epoch += 1
            sampler.set_epoch(epoch)
            batches = iter(sampler)
            indices = next(batches)
        batch = [texts[i] for i in indices]
        loss, predicted, targets = masked_lm_step(model, tokenizer, batch, probability, max_length)
        curves["masked LM loss"].append(optimizer_step(optimizer, loss, schedule, max_norm=1.0))
        curves["masked-token accuracy"].append((predicted == targets).float().mean().item())
        bar.set_postfix(loss=f"{curves['masked LM loss'][-1]:.3f}", acc=f"{curves['masked-token accuracy'][-1]:.3f}")
    return curves


@mg.no_grad()
def masked_accuracy(model, tokenizer, texts, most_frequent: int, batch_size: int, max_length: int) -> tuple:
    """Masked-token accuracy on ``texts`` (one draw of BERT's 15 % masks), in eval mode; and, on the
    same masked positions, the unigram baseline's: always the ``most_frequent`` token."""
    model.eval()
    right = baseline = chosen = 0
    for start in range(0, len(texts), batch_size):
        _, predicted, targets = masked_lm_step(model, tokenizer, texts[start : start + batch_size], 0.15, max_length)
        right += int((predicted == targets).sum().item())
        baseline += int((targets == most_frequent).sum().item())
        chosen += len(targets)
    return right / max(chosen, 1), baseline / max(chosen, 1)


class Classifier(nn.Module):
    """A SentenceEncoder (its BertModel's weights copied from ``pretrained`` when given) and a linear
    head on the pooled vector: (input_ids, attention_mask) (B, T) -> logits (B, num_classes)."""

    def __init__(self, config: BertConfig, num_classes: int, pretrained: BertForMaskedLM | None = None):
        super().__init__()
        self.encoder = SentenceEncoder(config)
        if pretrained is not None:
            self.encoder.bert.load_state_dict(pretrained.bert.state_dict())
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.head = nn.Linear(config.hidden_size, num_classes)

    def forward(self, input_ids: mg.Tensor, attention_mask: mg.Tensor) -> mg.Tensor:
        return self.head(self.dropout(self.encoder(input_ids, attention_mask)))


def fine_tune(
    model, tokenizer, texts, labels, epochs: int, batch_size: int, lr: float, max_length: int, desc: str
) -> list:
    """Every weight of ``model`` trains on the labelled speeches: AdamW, cosine-decayed learning rate."""
    steps = epochs * -(-len(texts) // batch_size)
    optimizer = nn.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    schedule = nn.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    targets = mg.tensor(labels)
    losses = []
    model.train()
    for index in progress((i for _ in range(epochs) for i in mg.randperm(len(texts)).split(batch_size)), desc, steps):
        ids, attention_mask, _ = tokenizer.encode_batch([texts[i] for i in index.tolist()], max_length=max_length)
        losses.append(optimizer_step(optimizer, F.cross_entropy(model(ids, attention_mask), targets[index]), schedule))
    return losses


@mg.no_grad()
def pooled(encoder: SentenceEncoder, tokenizer, texts, batch_size: int, max_length: int) -> mg.Tensor:
    """The encoder's mean-pooled vectors of ``texts`` (N, H), in eval mode."""
    encoder.eval()
    batches = (
        tokenizer.encode_batch(texts[s : s + batch_size], max_length=max_length)
        for s in range(0, len(texts), batch_size)
    )
    return mg.cat([encoder(ids, attention_mask) for ids, attention_mask, _ in batches])


@mg.no_grad()
def classify(model: Classifier, tokenizer, texts, labels, batch_size: int, max_length: int) -> float:
    """Accuracy of ``model`` on the speeches, in eval mode."""
    model.eval()
    logits = model.head(pooled(model.encoder, tokenizer, texts, batch_size, max_length))
    return (logits.argmax(1) == mg.tensor(labels)).float().mean().item()


def downstream(task: Downstream, config, model, tokenizer, epochs: int, lr: float, max_length: int) -> tuple:
    """The labelled task learned three ways; returns each regime's test accuracy and the loss curves
    of the two that train the encoder."""
    sizes = (64, max_length)
    encoder = Classifier(config, len(task.classes), model).encoder
    features = [
        (pooled(encoder, tokenizer, t, *sizes), mg.tensor(y))
        for t, y in ((task.train_texts, task.train_labels), (task.test_texts, task.test_labels))
    ]
    results, curves = {"frozen features": linear_probe(None, *features, weight_decay=1e-3)}, {}
    for regime, pretrained in (("fine-tuned", model), ("from scratch", None)):
        classifier = Classifier(config, len(task.classes), pretrained)
        curves[f"{regime} loss"] = fine_tune(
            classifier, tokenizer, task.train_texts, task.train_labels, epochs, 16, lr, max_length, regime
        )
        results[regime] = classify(classifier, tokenizer, task.test_texts, task.test_labels, *sizes)
    return results, curves


def standard_error(values: list[float]) -> float:
    """The standard error of the mean of ``values`` (0 for a single value)."""
    n = len(values)
    mean = sum(values) / n
    return (sum((v - mean) ** 2 for v in values) / (n - 1) / n) ** 0.5 if n > 1 else 0.0


def main(argv=None) -> Result:
    args = arguments(argv, task="order", vocab_size=2000, hidden_size=128, layers=2, heads=4, max_length=64,
                     steps=2000, batch_size=64, lr=2e-3, mask_probability=0.4, labelled=50, test_per_play=100,
                     min_words=12, words=24, finetune_epochs=15, finetune_lr=3e-4, seeds=3)  # fmt: skip
    setup(args)
    quick = args.quick
    vocab_size, hidden, layers, steps, seeds = (
        (1000, 32, 1, 40, 2) if quick else (args.vocab_size, args.hidden_size, args.layers, args.steps, args.seeds)
    )
    labelled_per_play, test_per_play, epochs = (
        (10, 10, 4) if quick else (args.labelled, args.test_per_play, args.finetune_epochs)
    )
    tasks = {"order": partial(word_order, words=args.words), "play": which_play}
    if args.task not in tasks:
        raise SystemExit(f"bert: --task must be one of {list(tasks)}, got {args.task!r}")

    texts, plays, titles = speeches()
    test, pools = split(texts, plays, args.min_words, test_per_play)
    held_out = set(test)
    verses = [english for english, _ in load_en_es()]
    corpus = [t for i, t in enumerate(texts) if i not in held_out] + (verses[:500] if quick else verses)
    print(f"{len(texts)} speeches in {len(titles)} plays; pre-training on {len(corpus)} texts (speeches and verses); "
          f"task {args.task!r}: {len(pools) * labelled_per_play} labelled speeches (drawn {seeds} times), "
          f"{len(test)} test speeches of >= {args.min_words} words")  # fmt: skip

    with Timer() as timer:
        # 1. Pre-train: a WordPiece vocabulary, then masked LM; scored on the held-out speeches.
        tokenizer = Tokenizer.train(corpus, vocab_size=vocab_size)
        counts = Counter(i for text in corpus for i in tokenizer.encode(text, add_special_tokens=False).ids)
        most_frequent = counts.most_common(1)[0][0]
        config = BertConfig(vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers,
                            num_attention_heads=args.heads, intermediate_size=4 * hidden,
                            max_position_embeddings=args.max_length)  # fmt: skip
        model = BertForMaskedLM(replace(config, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0))
        print(f"BERT: {layers} layers, hidden {hidden}, {args.heads} heads, vocabulary {len(tokenizer)}, "
              f"{parameters(model):,} parameters")  # fmt: skip
        curves = pretrain(model, tokenizer, corpus, steps, args.batch_size, args.lr, args.mask_probability,
                          args.max_length)  # fmt: skip
        accuracy, unigram = masked_accuracy(
            model, tokenizer, [texts[i] for i in test], most_frequent, 128, args.max_length
        )
        print(
            f"masked-token accuracy on the held-out speeches: {accuracy:.4f} "
            f"(always {tokenizer.id_to_token(most_frequent)!r}, the most frequent token: {unigram:.4f})",
            flush=True,
        )

        # 2. The downstream task, for each draw of the labelled speeches: the same examples, three ways.
        results = {"fine-tuned": [], "frozen features": [], "from scratch": []}
        for seed in range(args.seed, args.seed + seeds):
            mg.manual_seed(seed)
            labelled = draw_labelled(pools, labelled_per_play)
            task = tasks[args.task](texts, plays, titles, labelled, test)
            accuracies, losses = downstream(task, config, model, tokenizer, epochs, args.finetune_lr, args.max_length)
            for regime, value in accuracies.items():
                results[regime].append(value)
            print(f"seed {seed}: " + ", ".join(f"{r} {v:.4f}" for r, v in accuracies.items()), flush=True)
            if seed == args.seed:
                curves |= losses

    mean = {regime: sum(values) / seeds for regime, values in results.items()}
    error = {regime: standard_error(values) for regime, values in results.items()}
    extra = {"masked-token accuracy (held out)": accuracy, "most frequent token": unigram}
    extra |= {f"{regime} accuracy": f"{mean[regime]:.4f} ± {error[regime]:.4f}" for regime in results}
    extra["chance"] = 1 / len(task.classes)
    metric = f"fine-tuned {args.task} accuracy (mean of {seeds} seeds ± standard error)"
    result = Result(metric, mean["fine-tuned"], curves, extra, timer.seconds)
    title = f"BERT: masked LM, then {args.task!r} from {len(labelled)} labelled speeches"
    return finish(result, args, title)


if __name__ == "__main__":
    main()
