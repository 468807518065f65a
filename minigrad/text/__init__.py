"""Subword tokenisation trained from raw text, in Hugging Face ``tokenizers``' pipeline:
``normalizers`` -> ``pre_tokenizers`` -> ``models`` (WordPiece, BPE) -> ``processors``, put
together by ``tokenizer.Tokenizer``."""

from minigrad.text.models import BPE, WordPiece, learn_merges
from minigrad.text.normalizers import Normalizer
from minigrad.text.pre_tokenizers import BertPreTokenizer
from minigrad.text.processors import Encoding
from minigrad.text.tokenizer import SPECIAL_TOKENS, BatchEncoding, Tokenizer

__all__ = [
    "BPE",
    "SPECIAL_TOKENS",
    "BatchEncoding",
    "BertPreTokenizer",
    "Encoding",
    "Normalizer",
    "Tokenizer",
    "WordPiece",
    "learn_merges",
]
