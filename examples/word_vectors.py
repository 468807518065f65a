"""Word vectors on Shakespeare: skip-gram with negative sampling over words and their character n-grams (fastText)."""

from __future__ import annotations

import zlib
from collections import Counter

import minigrad as mg
import minigrad.functional as F
import nn
from examples._common import Result, Timer, arguments, finish, progress, setup
from minigrad.data import load_shakespeare, word_tokenize

SUFFIXES = ("eth", "est", "ness", "ly")
IN_VOCABULARY = ("king", "love", "night", "sword", "father", "blood", "death", "heaven")
OUT_OF_VOCABULARY = ("kingg", "lovve", "fathr", "swords", "murtherous", "bloodily", "kingliness", "heavenest")


def char_ngrams(word: str, n_min: int = 3, n_max: int = 6) -> list[str]:
    """fastText's subwords: every n-gram (n_min <= n <= n_max) of ``<word>``, the whole ``<word>`` left out."""
    marked = f"<{word}>"
    grams = [marked[i : i + n] for n in range(n_min, n_max + 1) for i in range(len(marked) - n + 1)]
    return [g for g in grams if g != marked]


class SubwordSkipGram(nn.Module):
    """A word's input vector is the mean of its own row (if in the vocabulary) and its n-grams' hashed rows;
    its output (context) vector is a plain row. Rows: V words, then ``buckets`` n-gram rows, then padding."""

    def __init__(self, words: list[str], buckets: int, dim: int, max_subwords: int):
        super().__init__()
        self.vocab_size, self.buckets, self.max_subwords = len(words), buckets, max_subwords
        self.pad = len(words) + buckets
        self.bag = nn.EmbeddingBag(self.pad + 1, dim, mode="mean", padding_idx=self.pad)
        nn.init.uniform_(self.bag.weight, -1 / dim, 1 / dim)  # fastText's init; the padding row is left out of bags
        self.context = nn.Embedding(len(words), dim)
        nn.init.zeros_(self.context.weight)
        self.register_buffer("vocab_subwords", self.subwords(words, in_vocabulary=True))  # (V, S)

    def subwords(self, words: list[str], in_vocabulary: bool) -> mg.Tensor:
        """Row ids of each word's bag, padded: (len(words), S). Out-of-vocabulary words get their n-grams only."""
        rows = []
        for i, word in enumerate(words):
            grams = [self.vocab_size + zlib.crc32(g.encode()) % self.buckets for g in char_ngrams(word)]
            ids = ([i] if in_vocabulary else []) + grams
            rows.append((ids + [self.pad] * self.max_subwords)[: self.max_subwords])
        return mg.tensor(rows)

    def forward(self, centers: mg.Tensor, targets: mg.Tensor) -> mg.Tensor:
        """centers (B,) word ids, targets (B, 1 + K) context ids (the true one first) -> scores (B, 1 + K)."""
        v = self.bag(self.vocab_subwords[centers])  # (B, C)
        u = self.context(targets)  # (B, 1 + K, C)
        return (u @ v.unsqueeze(-1)).squeeze(-1)

    @mg.no_grad()
    def vectors(self, subwords: mg.Tensor) -> mg.Tensor:
        """Unit-length input vectors of bags (N, S) -> (N, C)."""
        return F.normalize(self.bag(subwords), dim=1)


def corpus(min_count: int) -> tuple:
    """The embedded plays as lower-cased alphabetic words: (vocabulary by frequency, counts, token ids of the
    in-vocabulary words in order, every word seen)."""
    words = [w for w in word_tokenize(load_shakespeare()) if w.isalpha()]
    counts = Counter(words)
    vocab = [w for w, c in sorted(counts.items(), key=lambda wc: (-wc[1], wc[0])) if c >= min_count]
    index = {w: i for i, w in enumerate(vocab)}
    ids = mg.tensor([index[w] for w in words if w in index])
    return vocab, mg.tensor([counts[w] for w in vocab], dtype=mg.float32), ids, set(counts)


def skipgram_pairs(ids: mg.Tensor, keep: mg.Tensor, window: int) -> tuple:
    """(center, context) pairs of one epoch: frequent words dropped with word2vec's subsampling (kept with
    probability ``keep[id]``), then every pair within a window drawn per center from 1..window. -> (P,), (P,)"""
    ids = ids[mg.rand(len(ids)) < keep[ids]]
    reach = mg.randint(1, window + 1, (len(ids),))
    centers, contexts = [], []
    for d in range(1, window + 1):
        left, right = ids[:-d], ids[d:]
        forward, backward = reach[:-d] >= d, reach[d:] >= d
        centers += [left[forward], right[backward]]
        contexts += [right[forward], left[backward]]
    centers, contexts = mg.cat(centers), mg.cat(contexts)
    order = mg.randperm(len(centers))
    return centers[order], contexts[order]


def noise_table(counts: mg.Tensor, size: int) -> mg.Tensor:
    """word2vec's unigram^0.75 table: word i fills a share of ``size`` slots proportional to count_i^0.75."""
    ends = ((counts**0.75).cumsum(0) / (counts**0.75).sum() * size).long()
    slots = mg.zeros(size, dtype=mg.int64)
    slots[ends[:-1][ends[:-1] < size]] = 1
    return slots.cumsum(0)


def neighbours(model, query: mg.Tensor, vocab: list[str], k: int, exclude: str | None = None) -> list[str]:
    """The k vocabulary words nearest (cosine) to a unit vector (C,)."""
    similarity = model.vectors(model.vocab_subwords) @ query
    order = mg.argsort(similarity, descending=True)[: k + 1].tolist()
    return [vocab[i] for i in order if vocab[i] != exclude][:k]


def inflections(vocab: list[str], seen: set, limit: int) -> list[tuple[str, str]]:
    """(stem, stem + suffix) for in-vocabulary stems of 4+ letters whose inflected form never occurs."""
    forms = [(stem, stem + s) for stem in vocab if len(stem) >= 4 for s in SUFFIXES if stem + s not in seen]
    step = max(len(forms) // limit, 1)
    return forms[::step][:limit]


def stem_hit_rate(model, vocab: list[str], forms: list[tuple[str, str]], k: int) -> float:
    """How often the stem is among the k nearest vocabulary words of its unseen inflection's n-gram vector."""
    vectors = model.vectors(model.subwords([form for _, form in forms], in_vocabulary=False))
    similarity = vectors @ model.vectors(model.vocab_subwords).T  # (N, V)
    top = mg.argsort(similarity, dim=1, descending=True)[:, :k]
    stems = mg.tensor([vocab.index(stem) for stem, _ in forms])
    return (top == stems.unsqueeze(1)).float().sum(1).mean().item()


def main(argv=None) -> Result:
    args = arguments(argv, epochs=2, batch_size=1024, lr=5e-3, dim=64, buckets=1 << 16, window=5, negatives=5,
                     min_count=3, k=10)  # fmt: skip
    setup(args)
    vocab, counts, ids, seen = corpus(args.min_count)
    epochs = 1 if args.quick else args.epochs
    if args.quick:
        ids = ids[:20_000]
    max_subwords = 1 + max(len(char_ngrams(w)) for w in vocab)
    model = SubwordSkipGram(vocab, args.buckets, args.dim, max_subwords)
    frequency = counts / counts.sum()
    keep = ((1e-4 / frequency).sqrt() + 1e-4 / frequency).clamp(max=1.0)  # word2vec's subsampling
    noise = noise_table(counts, 1_000_000)
    forms = inflections(vocab, seen, 500)
    chance = args.k / len(vocab)
    untrained = stem_hit_rate(model, vocab, forms, args.k)
    print(f"{len(ids):,} tokens, vocabulary {len(vocab):,}, {args.buckets:,} n-gram buckets, {len(forms)} unseen forms")

    optimizer = nn.optim.Adam(model.parameters(), lr=args.lr)
    curves = {"train loss": []}
    with Timer() as timer:
        for epoch in range(epochs):
            centers, contexts = skipgram_pairs(ids, keep, args.window)
            steps = len(centers) // args.batch_size
            if args.quick:
                steps = min(steps, 60)
            bar = progress(range(steps), f"epoch {epoch + 1}/{epochs}")
            for step in bar:
                batch = slice(step * args.batch_size, (step + 1) * args.batch_size)
                negatives = noise[mg.randint(0, len(noise), (args.batch_size, args.negatives))]
                targets = mg.cat([contexts[batch].unsqueeze(1), negatives], 1)  # (B, 1 + K)
                labels = mg.zeros(targets.shape)
                labels[:, 0] = 1.0
                scores = model(centers[batch], targets)
                loss = F.binary_cross_entropy_with_logits(scores, labels, reduction="sum") / args.batch_size
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                curves["train loss"].append(loss.item())
                bar.set_postfix(loss=f"{loss.item():.3f}")

    known = [w for w in IN_VOCABULARY if w in vocab]
    unseen = [w for w in OUT_OF_VOCABULARY if w not in seen]
    lists = {
        "in vocabulary": (known, model.vocab_subwords[mg.tensor([vocab.index(w) for w in known])]),
        "unseen": (unseen, model.subwords(unseen, in_vocabulary=False)),
    }
    for title, (words, subwords) in lists.items():
        print(f"nearest neighbours ({title}):")
        for word, vector in zip(words, model.vectors(subwords)):
            print(f"  {word:>12}: {', '.join(neighbours(model, vector, vocab, 6, exclude=word))}")
    hits = stem_hit_rate(model, vocab, forms, args.k)
    extra = {"chance (k/V)": round(chance, 4), "untrained n-grams": round(untrained, 4), "forms": len(forms)}
    result = Result(f"stem in top-{args.k} of unseen inflections", hits, curves, extra, timer.seconds)
    return finish(result, args, "Skip-gram with character n-grams on Shakespeare")


if __name__ == "__main__":
    main()
