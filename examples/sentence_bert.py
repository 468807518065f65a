"""Sentence-BERT: a Siamese encoder retrieves the Spanish verse of an English one; ranking vs triplet loss vs TF-IDF.

English and Spanish verses go through one encoder (shared weights: a small BERT, its token states
mean-pooled over the real tokens) and one WordPiece vocabulary trained on both languages: with
one id space the encoder is truly shared, and names, numbers and cognates ("Israel", "Moisés" /
"Moses") share pieces from the start, which anchors the alignment when pairs are few. It trains
on 4,715 pairs, twice from the same initialisation:

- multiple-negatives ranking loss: each English verse must pick its translation among every
  Spanish verse of the batch (in-batch negatives, cross-entropy over scaled cosines);
- triplet loss: the English verse must lie closer to its translation than to the batch's
  hardest wrong Spanish verse, by a margin (batch-hard mining, Hermans et al., 2017), on
  L2-normalised vectors.

Each is scored by top-1 retrieval: for each of the 1,000 held-out English verses, is the most
cosine-similar of the 1,000 held-out Spanish verses its translation? The baseline scores the same
pairs with character n-gram (2 to 4) TF-IDF vectors, the idf counted on the training verses.
"""

from __future__ import annotations

import math
from collections import Counter
from functools import partial

import minigrad as mg
import minigrad.functional as F
import nn
from examples._common import Result, Timer, arguments, finish, optimizer_step, parameters, progress, setup
from minigrad.data.text import en_es_task
from minigrad.text import Tokenizer
from nn.models import BertConfig, SentenceEncoder


def embed(encoder: SentenceEncoder, tokenizer: Tokenizer, texts: list[str], max_length: int) -> mg.Tensor:
    """The encoder's mean-pooled vectors of ``texts``: (N, H)."""
    ids, attention_mask, _ = tokenizer.encode_batch(texts, max_length=max_length)
    return encoder(ids, attention_mask)


def batch_hard_triplet_loss(english: mg.Tensor, spanish: mg.Tensor, margin: float) -> mg.Tensor:
    """Triplet loss of L2-normalised (B, H) vectors, row i a pair: each English anchor, its translation
    as the positive, and as the negative the batch's other Spanish verse closest to the anchor."""
    english, spanish = F.normalize(english, dim=1), F.normalize(spanish, dim=1)
    with mg.no_grad():
        similarity = english @ spanish.mT  # (B, B)
        similarity = similarity - 4 * mg.eye(len(english), device=english.device)  # never one's own translation
        hardest = similarity.argmax(1)
    return nn.TripletMarginLoss(margin=margin)(english, spanish, spanish[hardest])


def train(encoder, tokenizer, pairs, loss_fn, epochs: int, batch_size: int, lr: float, max_length: int,
          desc: str) -> list:  # fmt: skip
    """``epochs`` over shuffled batches of (English, Spanish) ``pairs`` (the last partial batch dropped),
    ``loss_fn(english (B, H), spanish (B, H))`` on their vectors:
    AdamW, linear warm-up over the first 10 % of the steps, then cosine decay. Returns the loss per step."""
    steps = epochs * (len(pairs) // batch_size)
    optimizer = nn.optim.AdamW(encoder.parameters(), lr=lr, weight_decay=0.01)
    warmup = max(steps // 10, 1)
    schedule = nn.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, 0.5 * (1 + math.cos(math.pi * min(s / steps, 1))))
    )
    losses = []
    encoder.train()
    orders = (mg.randperm(len(pairs)).tolist() for _ in range(epochs))
    batches = (order[s : s + batch_size] for order in orders for s in range(0, len(order) - batch_size + 1, batch_size))
    for batch in (bar := progress(batches, desc, total=steps)):
        english = embed(encoder, tokenizer, [pairs[i][0] for i in batch], max_length)
        spanish = embed(encoder, tokenizer, [pairs[i][1] for i in batch], max_length)
        losses.append(optimizer_step(optimizer, loss_fn(english, spanish), schedule, max_norm=1.0))
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
    return losses


def top1(english: mg.Tensor, spanish: mg.Tensor) -> float:
    """The fraction of English rows (N, D) whose most cosine-similar Spanish row (N, D) is the same row."""
    similarity = F.normalize(english, dim=1) @ F.normalize(spanish, dim=1).mT  # (N, N)
    return (similarity.argmax(1) == mg.arange(len(english))).float().mean().item()


@mg.no_grad()
def retrieval_accuracy(encoder, tokenizer, pairs, max_length: int, batch_size: int = 250) -> float:
    """Top-1 accuracy of retrieving each pair's Spanish verse for its English one, among all ``pairs``."""
    encoder.eval()
    sides = [[p[side] for p in pairs] for side in (0, 1)]
    english, spanish = (
        mg.cat(
            [embed(encoder, tokenizer, texts[s : s + batch_size], max_length) for s in range(0, len(texts), batch_size)]
        )
        for texts in sides
    )
    return top1(english, spanish)


def char_ngrams(text: str, sizes: tuple = (2, 3, 4)) -> Counter:
    """Counts of the character n-grams of each lower-cased word padded with spaces (" de ": " d", "de", "e ", ...)."""
    counts = Counter()
    for word in text.lower().split():
        word = f" {word} "
        counts.update(word[i : i + n] for n in sizes for i in range(len(word) - n + 1))
    return counts


def tfidf_accuracy(train_texts: list[str], pairs: list[tuple[str, str]]) -> float:
    """Top-1 retrieval accuracy of character n-gram TF-IDF vectors, the idf counted on ``train_texts``.
    Only the n-grams both sides use can make two vectors similar; the others still count in the norms."""
    document_frequency = Counter(g for text in train_texts for g in char_ngrams(text))
    n = len(train_texts)

    def weights(text: str) -> dict:
        return {g: c * math.log((1 + n) / (1 + document_frequency[g])) for g, c in char_ngrams(text).items()}

    english, spanish = ([weights(p[side]) for p in pairs] for side in (0, 1))
    shared = sorted(set().union(*english) & set().union(*spanish))
    column = {g: j for j, g in enumerate(shared)}

    def matrix(vectors: list[dict]) -> mg.Tensor:
        """(N, len(shared)) rows of the shared n-grams' weights, divided by each vector's full norm."""
        row, col, value = [], [], []
        for i, vector in enumerate(vectors):
            norm = math.sqrt(sum(w * w for w in vector.values())) or 1.0
            kept = [(column[g], w / norm) for g, w in vector.items() if g in column]
            row += [i] * len(kept)
            col += [j for j, _ in kept]
            value += [w for _, w in kept]
        rows = mg.zeros(len(vectors), len(shared))
        rows[mg.tensor(row), mg.tensor(col)] = mg.tensor(value)
        return rows

    return top1(matrix(english), matrix(spanish))


def main(argv=None) -> Result:
    args = arguments(argv, epochs=3, batch_size=64, lr=1e-3, vocab_size=8000, hidden_size=128, layers=2, heads=4,
                     max_length=64, margin=0.3, held_out=1000)  # fmt: skip
    setup(args)
    quick = args.quick
    task = en_es_task(n_valid=0, n_test=args.held_out)
    train_pairs, test_pairs = (task.train[:512], task.test[:100]) if quick else (task.train, task.test)
    epochs, hidden, layers = (3, 32, 1) if quick else (args.epochs, args.hidden_size, args.layers)
    print(f"{len(train_pairs)} training pairs, {len(test_pairs)} held-out pairs")

    with Timer() as timer:
        train_texts = [text for pair in train_pairs for text in pair]
        tokenizer = Tokenizer.train(train_texts, vocab_size=1000 if quick else args.vocab_size)
        baseline = tfidf_accuracy(train_texts, test_pairs)
        print(f"character n-gram TF-IDF: top-1 {baseline:.4f}", flush=True)
        config = BertConfig(vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers,
                            num_attention_heads=args.heads, intermediate_size=4 * hidden,
                            max_position_embeddings=args.max_length)  # fmt: skip
        curves, results = {}, {}
        losses = {
            "ranking": nn.MultipleNegativesRankingLoss(),
            "triplet": partial(batch_hard_triplet_loss, margin=args.margin),
        }
        for name, loss_fn in losses.items():
            mg.manual_seed(args.seed)
            encoder = SentenceEncoder(config)
            if not results:
                print(f"shared encoder: {parameters(encoder):,} parameters, vocabulary {len(tokenizer)} (en + es)")
            curves[f"{name} loss"] = train(encoder, tokenizer, train_pairs, loss_fn, epochs, args.batch_size,
                                           args.lr, args.max_length, name)  # fmt: skip
            results[name] = retrieval_accuracy(encoder, tokenizer, test_pairs, args.max_length)
            print(f"{name} loss: top-1 {results[name]:.4f}", flush=True)

    extra = {"triplet top-1": results["triplet"], "TF-IDF top-1": baseline, "held-out pairs": len(test_pairs)}
    result = Result("ranking-loss top-1", results["ranking"], curves, extra, timer.seconds)
    return finish(result, args, f"English -> Spanish verse retrieval among {len(test_pairs)} held-out pairs")


if __name__ == "__main__":
    main()
