"""Data: datasets, the DataLoader, transforms, and real and generated datasets (torch.utils.data's
and torchvision's names).

- ``Dataset TensorDataset Subset random_split DataLoader default_collate`` (dataset.py, loader.py)
- ``DistributedSampler``: each process's share of a dataset in data-parallel training (sampler.py)
- ``minigrad.data.transforms``: augmentation on images (C, H, W) and batches (N, C, H, W)
- ``MNIST FashionMNIST CIFAR10 read_idx read_cifar_batch download`` and the embedded
  ``load_digits load_shakespeare load_en_es`` with ``train_test_split`` (datasets.py)
- generated tasks ``dates scenes`` (synthetic.py)
- text: ``Vocab char_tokenize word_tokenize detokenize BucketBatchSampler Seq2SeqTask Batch
  dates_task en_es_task shakespeare_plays shakespeare_chars CharCorpus mask_tokens`` (text.py)
"""

from minigrad.data import transforms
from minigrad.data.dataset import Dataset, Subset, TensorDataset, random_split
from minigrad.data.datasets import (
    CIFAR10,
    MNIST,
    FashionMNIST,
    download,
    load_digits,
    load_en_es,
    load_shakespeare,
    read_cifar_batch,
    read_idx,
    train_test_split,
)
from minigrad.data.loader import DataLoader, default_collate
from minigrad.data.sampler import DistributedSampler
from minigrad.data.synthetic import Scenes, dates, scenes
from minigrad.data.text import (
    Batch,
    BucketBatchSampler,
    CharCorpus,
    Seq2SeqTask,
    Vocab,
    char_tokenize,
    dates_task,
    detokenize,
    en_es_task,
    mask_tokens,
    shakespeare_chars,
    shakespeare_plays,
    word_tokenize,
)

__all__ = [
    "transforms",
    "Dataset",
    "TensorDataset",
    "Subset",
    "random_split",
    "DataLoader",
    "default_collate",
    "DistributedSampler",
    "MNIST",
    "FashionMNIST",
    "CIFAR10",
    "read_idx",
    "read_cifar_batch",
    "download",
    "load_digits",
    "load_shakespeare",
    "load_en_es",
    "train_test_split",
    "dates",
    "scenes",
    "Scenes",
    "Vocab",
    "char_tokenize",
    "word_tokenize",
    "detokenize",
    "BucketBatchSampler",
    "Seq2SeqTask",
    "Batch",
    "dates_task",
    "en_es_task",
    "shakespeare_plays",
    "shakespeare_chars",
    "CharCorpus",
    "mask_tokens",
]
