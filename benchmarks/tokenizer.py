"""How fast the WordPiece tokenizer encodes: all of the embedded Shakespeare in one call.

``python -m benchmarks.tokenizer [--vocab-size V] [--repeats N]``

Trains a WordPiece vocabulary on the plays, then times ``encode`` of the whole text (1.04 M
characters) ``--repeats`` times and prints the best time and characters per second. minigrad's
tokenizer is pure Python, so this is one core. If Hugging Face ``tokenizers`` is installed, the
same pipeline (BERT normaliser, BERT pre-tokenizer, WordPiece of the same size, trained on the
same text) is timed too, held to one thread. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import os
import time

from minigrad.data import load_shakespeare
from minigrad.text import SPECIAL_TOKENS, Tokenizer


def best_seconds(encode, text: str, repeats: int) -> tuple[float, int]:
    """The fastest of ``repeats`` calls of ``encode(text)`` and how many tokens it gave."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        n_tokens = len(encode(text))
        times.append(time.perf_counter() - start)
    return min(times), n_tokens


def huggingface_wordpiece(text: str, vocab_size: int):
    """The ``tokenizers`` pipeline that matches ``Tokenizer.train(model="wordpiece")``: encode -> ids."""
    os.environ["RAYON_NUM_THREADS"] = "1"
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import models, normalizers, pre_tokenizers, trainers

    tokenizer = HFTokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, min_frequency=2, special_tokens=list(SPECIAL_TOKENS))
    tokenizer.train_from_iterator([text], trainer)
    return lambda t: tokenizer.encode(t, add_special_tokens=False).ids


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vocab-size", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    text = load_shakespeare()
    tokenizer = Tokenizer.train(text, vocab_size=args.vocab_size, model="wordpiece")
    seconds, n_tokens = best_seconds(lambda t: tokenizer.encode(t, add_special_tokens=False).ids, text, args.repeats)
    print(
        f"minigrad WordPiece ({len(tokenizer)} tokens): {len(text):,} characters -> {n_tokens:,} tokens "
        f"in {seconds:.2f} s, {len(text) / seconds:,.0f} characters/s"
    )
    try:
        encode = huggingface_wordpiece(text, args.vocab_size)
    except ImportError:
        print("tokenizers is not installed: no comparison")
        return
    seconds_hf, n_tokens_hf = best_seconds(encode, text, args.repeats)
    print(
        f"tokenizers WordPiece: {n_tokens_hf:,} tokens in {seconds_hf:.2f} s, "
        f"{len(text) / seconds_hf:,.0f} characters/s ({seconds / seconds_hf:.1f}x faster than minigrad)"
    )


if __name__ == "__main__":
    main()
