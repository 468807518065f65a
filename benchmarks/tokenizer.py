"""How fast the WordPiece tokenizer encodes: all of the embedded Shakespeare in one call.

``python -m benchmarks.tokenizer [--vocab-size V] [--repeats N]``

Trains a WordPiece vocabulary on the plays, then times ``encode`` of the whole text (1.04 M
characters) ``--repeats`` times and prints the first call's time (minigrad's word cache empty) and
the best one's (the cache warm), in seconds and characters per second. minigrad's tokenizer is pure
Python, so this is one core. If Hugging Face ``tokenizers`` is installed, the
same pipeline (BERT normaliser, BERT pre-tokenizer, WordPiece of the same size, trained on the
same text) is timed too, held to one thread. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import os
import time

from minigrad.data import load_shakespeare
from minigrad.text import SPECIAL_TOKENS, Tokenizer


def timings(encode, text: str, repeats: int) -> tuple[float, float, int]:
    """The first and the fastest of ``repeats`` calls of ``encode(text)``, in seconds, and how many
    tokens it gave."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        n_tokens = len(encode(text))
        times.append(time.perf_counter() - start)
    return times[0], min(times), n_tokens


def line(name: str, n_characters: int, first: float, best: float, n_tokens: int) -> str:
    return (
        f"{name}: {n_characters:,} characters -> {n_tokens:,} tokens; first call {first:.2f} s "
        f"({n_characters / first:,.0f} characters/s), best {best:.2f} s ({n_characters / best:,.0f} characters/s)"
    )


def huggingface_wordpiece(text: str, vocab_size: int):
    """The ``tokenizers`` pipeline that matches ``Tokenizer.train(model="wordpiece")``: encode -> ids."""
    os.environ["RAYON_NUM_THREADS"] = "1"
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import models, normalizers, pre_tokenizers, trainers

    tokenizer = HFTokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size, min_frequency=2, special_tokens=list(SPECIAL_TOKENS), show_progress=False
    )
    tokenizer.train_from_iterator([text], trainer)
    return lambda t: tokenizer.encode(t, add_special_tokens=False).ids


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vocab-size", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    text = load_shakespeare()
    tokenizer = Tokenizer.train(text, vocab_size=args.vocab_size, model="wordpiece")
    mine = timings(lambda t: tokenizer.encode(t, add_special_tokens=False).ids, text, args.repeats)
    print(line(f"minigrad WordPiece ({len(tokenizer)} tokens)", len(text), *mine))
    try:
        encode = huggingface_wordpiece(text, args.vocab_size)
    except ImportError:
        print("tokenizers is not installed: no comparison")
        return
    theirs = timings(encode, text, args.repeats)
    print(line("tokenizers WordPiece", len(text), *theirs))
    print(f"minigrad / tokenizers time: first call {mine[0] / theirs[0]:.2f}, best {mine[1] / theirs[1]:.2f}")


if __name__ == "__main__":
    main()
