"""Data: datasets, the DataLoader, transforms, and real and generated datasets (torch.utils.data's
and torchvision's names).

- ``Dataset TensorDataset Subset random_split DataLoader default_collate`` (dataset.py, loader.py)
- ``minigrad.data.transforms``: augmentation on images (C, H, W) and batches (N, C, H, W)
- ``MNIST FashionMNIST CIFAR10 read_idx read_cifar_batch download`` and the embedded
  ``load_digits load_shakespeare load_en_es`` with ``train_test_split`` (datasets.py)
- generated tasks ``dates scenes`` (synthetic.py)
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
from minigrad.data.synthetic import Scenes, dates, scenes

__all__ = [
    "transforms",
    "Dataset",
    "TensorDataset",
    "Subset",
    "random_split",
    "DataLoader",
    "default_collate",
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
]
