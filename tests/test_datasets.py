"""File formats (IDX, CIFAR-10 batches), checked downloads, embedded datasets and generated tasks."""

import datetime
import gzip
import hashlib
import io
import itertools
import pickle
import struct
import tarfile

import numpy as np
import pytest

import minigrad as mg
from minigrad.data import (
    CIFAR10,
    MNIST,
    DataLoader,
    FashionMNIST,
    datasets,
    dates,
    download,
    load_digits,
    load_en_es,
    load_shakespeare,
    read_cifar_batch,
    read_idx,
    scenes,
    synthetic,
    train_test_split,
)
from minigrad.data import transforms as T

IDX_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D, np.float64: 0x0E}


def idx_bytes(array) -> bytes:
    """The IDX encoding of ``array``, written independently of the reader."""
    header = struct.pack(">BBBB", 0, 0, IDX_CODES[array.dtype.type], array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_idx(path, array, gz=True):
    data = idx_bytes(array)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def no_full_copies(monkeypatch, tmp_path):
    """Make the loaders see neither a download cache nor a system-wide Fashion-MNIST."""
    monkeypatch.setenv("MINIGRAD_DATA", str(tmp_path / "cache"))
    monkeypatch.setattr(datasets, "SYSTEM_FASHION_MNIST", tmp_path / "no-system-copy")


# ------------------------------------------------------------------------------ IDX
@pytest.mark.parametrize("dtype", list(IDX_CODES))
@pytest.mark.parametrize("gz", [True, False])
def test_read_idx_every_dtype(tmp_path, dtype, gz):
    array = (np.arange(24).reshape(2, 3, 4) * 37 - 300).astype(dtype)
    out = read_idx(write_idx(tmp_path / "a.idx", array, gz))
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    np.testing.assert_array_equal(out, array)
    out[0, 0, 0] = 1  # a writable copy, not a view of the file's bytes


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda b: b[:-5], "truncated: a"),
        (lambda b: b + b"\x00", "trailing bytes"),
        (lambda b: b[:9], "truncated inside its header"),
        (lambda b: b"\x01" + b[1:], "not an IDX file"),
        (lambda b: b[:2] + b"\x0a" + b[3:], "unknown data type code 0x0a"),
        (lambda b: b"", "not an IDX file"),
    ],
)
def test_read_idx_damaged_files(tmp_path, damage, message):
    path = tmp_path / "bad.idx"
    path.write_bytes(damage(idx_bytes(np.zeros((3, 2, 2), np.uint8))))
    with pytest.raises(ValueError, match=message):
        read_idx(path)


def test_read_idx_damaged_gzip(tmp_path):
    packed = gzip.compress(idx_bytes(np.arange(1000, dtype=np.int32)))
    (tmp_path / "cut.gz").write_bytes(packed[: len(packed) // 2])
    with pytest.raises(ValueError, match="corrupt or truncated gzip"):
        read_idx(tmp_path / "cut.gz")
    (tmp_path / "noise.gz").write_bytes(packed[:12] + bytes(200))
    with pytest.raises(ValueError, match="corrupt or truncated gzip"):
        read_idx(tmp_path / "noise.gz")


def _mnist_folder(folder, n_train=5, n_test=3, gz=True):
    rng = np.random.default_rng(0)
    suffix = ".gz" if gz else ""
    for split, n in (("train", n_train), ("t10k", n_test)):
        write_idx(folder / f"{split}-images-idx3-ubyte{suffix}", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), gz)
        write_idx(folder / f"{split}-labels-idx1-ubyte{suffix}", rng.integers(0, 10, n).astype(np.uint8), gz)
    return folder


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_from_root(tmp_path, gz):
    root = _mnist_folder(tmp_path, gz=gz)
    train, test = MNIST(root), MNIST(root, train=False)
    assert len(train) == 5 and len(test) == 3
    image, label = train[2]
    pixels = read_idx(root / f"train-images-idx3-ubyte{'.gz' if gz else ''}")
    assert image.shape == (1, 28, 28) and image.dtype == mg.float32 and isinstance(label, int)
    np.testing.assert_array_equal(image.cpu().numpy()[0], pixels[2].astype(np.float32) / 255)
    assert train.data.dtype == np.uint8
    assert train.targets.dtype == mg.int64


def test_missing_files_say_how_to_get_them(tmp_path, no_full_copies):
    with pytest.raises(FileNotFoundError, match="download=True"):
        MNIST(tmp_path)
    with pytest.raises(FileNotFoundError, match="download=True"):
        MNIST()
    with pytest.raises(FileNotFoundError, match="download=True"):
        CIFAR10(tmp_path)


# ------------------------------------------------------------------------- download
def test_download_checks_sha256(tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(b"minigrad" * 1000)
    target = download(source.as_uri(), tmp_path / "out" / "copy.bin", sha256(source))
    assert target.read_bytes() == source.read_bytes()
    with pytest.raises(RuntimeError, match="SHA-256"):
        download(source.as_uri(), tmp_path / "out" / "bad.bin", "0" * 64)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["copy.bin"]  # nothing left of the bad one


def test_mnist_download_tries_mirrors_and_verifies(tmp_path, monkeypatch):
    (tmp_path / "server").mkdir()
    server = _mnist_folder(tmp_path / "server", n_train=4, n_test=2)
    monkeypatch.setattr(MNIST, "mirrors", ((tmp_path / "gone").as_uri() + "/", server.as_uri() + "/"))
    monkeypatch.setattr(MNIST, "sha256", {p.name: sha256(p) for p in server.iterdir()})
    root = tmp_path / "root"
    train = MNIST(root, download=True)
    assert len(train) == 4 and sorted(p.name for p in root.iterdir()) == [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
    ]
    assert len(MNIST(root, train=False, download=True)) == 2
    monkeypatch.setattr(MNIST, "sha256", dict.fromkeys(MNIST.sha256, "f" * 64))
    with pytest.raises(RuntimeError, match="SHA-256"):
        MNIST(tmp_path / "other", download=True)
    assert not list((tmp_path / "other").iterdir())


def test_official_checksums_are_sha256_hex():
    for table in (MNIST.sha256, FashionMNIST.sha256, {"cifar": CIFAR10.archive_sha256}):
        for digest in table.values():
            assert len(digest) == 64 and int(digest, 16) >= 0
    assert all(url.startswith("https://") for url in (*MNIST.mirrors, *FashionMNIST.mirrors, CIFAR10.url))


# ------------------------------------------------------------------------- CIFAR-10
class Py2Pickler(pickle._Pickler):
    """Writes bytes as Python 2 wrote its str (BINSTRING), as CIFAR-10's batch files were written."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_bytes(self, obj):
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_bytes


def cifar_batch(n, seed, py2=True) -> bytes:
    rng = np.random.default_rng(seed)
    batch = {
        b"batch_label": b"training batch 1 of 5",
        b"labels": rng.integers(0, 10, n).tolist(),
        b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        b"filenames": [b"img_%d.png" % i for i in range(n)],
    }
    if not py2:
        return pickle.dumps(batch, protocol=2)
    out = io.BytesIO()
    Py2Pickler(out, protocol=2).dump(batch)
    return out.getvalue()


@pytest.mark.parametrize("py2", [True, False])
def test_read_cifar_batch(tmp_path, py2):
    (tmp_path / "b").write_bytes(cifar_batch(4, 0, py2))
    images, labels = read_cifar_batch(tmp_path / "b")
    expected = pickle.loads(cifar_batch(4, 0, py2=False))
    assert images.shape == (4, 3, 32, 32) and images.dtype == np.uint8 and labels.dtype == np.int64
    np.testing.assert_array_equal(images.reshape(4, -1), expected[b"data"])
    assert labels.tolist() == expected[b"labels"]
    np.testing.assert_array_equal(images[1, 2], expected[b"data"][1, 2048:].reshape(32, 32))  # blue plane


class Exploit:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned",))


@pytest.mark.parametrize(
    "payload, message",
    [
        (pickle.dumps({b"data": Exploit()}, protocol=2), "refusing to load (posix|nt).system"),
        (cifar_batch(3, 1)[:-40], "corrupt or truncated"),
        (pickle.dumps([1, 2], protocol=2), "holds a list"),
        (pickle.dumps({b"data": np.zeros((2, 10), np.uint8), b"labels": [0, 1]}, protocol=2), "uint8 \\(N, 3072\\)"),
        (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 11]}, protocol=2), "labels"),
    ],
    ids=["code", "truncated", "not-a-dict", "bad-data", "bad-labels"],
)
def test_read_cifar_batch_refuses_bad_files(tmp_path, payload, message):
    (tmp_path / "b").write_bytes(payload)
    with pytest.raises(ValueError, match=message):
        read_cifar_batch(tmp_path / "b")


def _cifar_archive(path):
    with tarfile.open(path, "w:gz") as tar:
        names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
        for k, name in enumerate(names):
            data = cifar_batch(2, k)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        info = tarfile.TarInfo("../escape")  # a hostile member: must not be written anywhere
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    return path


def test_cifar10_download_and_read(tmp_path, monkeypatch):
    archive = _cifar_archive(tmp_path / "cifar-10-python.tar.gz")
    monkeypatch.setattr(CIFAR10, "url", archive.as_uri())
    monkeypatch.setattr(CIFAR10, "archive_sha256", sha256(archive))
    root = tmp_path / "root"
    train = CIFAR10(root, download=True, transform=T.RandomHorizontalFlip(p=1))
    test = CIFAR10(root, train=False)
    assert len(train) == 10 and len(test) == 2 and not (tmp_path / "escape").exists()
    assert train.data.shape == (10, 32, 32, 3) and train.targets.dtype == mg.int64
    image, label = test[1]
    raw = pickle.loads(cifar_batch(2, 5, py2=False))
    np.testing.assert_array_equal(image.cpu().numpy() * 255, raw[b"data"][1].reshape(3, 32, 32).astype(np.float32))
    assert label == raw[b"labels"][1]
    flipped, _ = train[0]
    np.testing.assert_allclose(flipped.cpu().numpy(), train.data.cpu().numpy()[0].transpose(2, 0, 1)[..., ::-1] / 255)
    monkeypatch.setattr(CIFAR10, "archive_sha256", "0" * 64)
    with pytest.raises(RuntimeError, match="SHA-256"):
        CIFAR10(tmp_path / "again", download=True)
    assert not (tmp_path / "again" / "cifar-10-python.tar.gz").exists()


# ------------------------------------------------------------------- embedded data
def test_embedded_fashion_mnist(no_full_copies):
    train, test = FashionMNIST(), FashionMNIST(train=False)
    assert len(train) == 6000 and len(test) == 1000
    assert train.data.shape == (6000, 28, 28) and train.data.dtype == np.uint8
    assert train.targets.dtype == mg.int64 and sorted(set(train.targets.tolist())) == list(range(10))
    image, label = train[0]
    assert image.shape == (1, 28, 28) and image.dtype == mg.float32 and 0 <= label <= 9
    assert image.cpu().numpy().min() >= 0 and image.cpu().numpy().max() == 1.0
    assert len(FashionMNIST.classes) == 10


def test_fashion_mnist_prefers_a_full_copy(tmp_path, monkeypatch, no_full_copies):
    system = tmp_path / "system"
    system.mkdir()
    monkeypatch.setattr(datasets, "SYSTEM_FASHION_MNIST", _mnist_folder(system, n_train=7, n_test=4))
    assert len(FashionMNIST()) == 7 and len(FashionMNIST(train=False)) == 4
    (system / "t10k-labels-idx1-ubyte.gz").unlink()  # an incomplete split is not mixed with another copy
    assert len(FashionMNIST(train=False)) == 1000 and len(FashionMNIST()) == 7


def test_fashion_mnist_download_goes_to_the_cache(tmp_path, monkeypatch, no_full_copies):
    server = tmp_path / "server"
    server.mkdir()
    _mnist_folder(server, n_train=6)
    monkeypatch.setattr(FashionMNIST, "mirrors", (server.as_uri() + "/",))
    monkeypatch.setattr(FashionMNIST, "sha256", {p.name: sha256(p) for p in server.iterdir()})
    assert len(FashionMNIST(download=True)) == 6  # not the embedded subset
    assert (tmp_path / "cache" / "fashion-mnist" / "train-images-idx3-ubyte.gz").is_file()
    assert len(FashionMNIST()) == 6  # a finished download is found again


def test_image_dataset_batches_equal_stacked_items(no_full_copies):
    train = FashionMNIST(transform=T.Normalize((0.5,), (0.25,)))
    indices = np.array([5, 0, 4242])
    batch = train.get_batch(indices)
    assert isinstance(batch, list)  # default_collate's (and PyTorch's) [images, labels]
    images, labels = batch
    items = [train[int(i)] for i in indices]
    np.testing.assert_array_equal(images.cpu().numpy(), np.stack([x.cpu().numpy() for x, _ in items]))
    assert labels.tolist() == [y for _, y in items]


def test_loader_over_fashion_with_augmentation_is_reproducible(no_full_copies):
    train = FashionMNIST(transform=T.Compose([T.RandomCrop(28, padding=2), T.RandomHorizontalFlip()]))
    assert train.batchable

    def first_batches():
        mg.manual_seed(42)
        loader = DataLoader(train, batch_size=64, shuffle=True)
        return [x.cpu().numpy() for x, _ in itertools.islice(loader, 2)]

    a, b = first_batches(), first_batches()
    assert a[0].shape == (64, 1, 28, 28)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_load_digits_and_split():
    images, labels = load_digits()
    assert images.shape == (1797, 8, 8) and images.dtype == mg.float32 and labels.dtype == mg.int64
    assert images.cpu().numpy().min() == 0 and images.cpu().numpy().max() == 1
    assert np.bincount(labels.cpu().numpy()).min() > 170  # ten balanced classes
    x_train, x_test, y_train, y_test, i_train, i_test = train_test_split(images, labels, mg.arange(1797), test_size=297)
    assert x_train.shape == (1500, 8, 8) and x_test.shape == (297, 8, 8) and y_test.shape == (297,)
    assert sorted(i_train.tolist() + i_test.tolist()) == list(range(1797))  # a partition
    np.testing.assert_array_equal(x_test.cpu().numpy(), images.cpu().numpy()[i_test.cpu().numpy()])  # rows stay aligned
    np.testing.assert_array_equal(y_train.cpu().numpy(), labels.cpu().numpy()[i_train.cpu().numpy()])
    again = train_test_split(images, labels, test_size=297)
    np.testing.assert_array_equal(again[1].cpu().numpy(), x_test.cpu().numpy())
    assert len(train_test_split(labels, test_size=0.1)[1]) == 180
    assert len(train_test_split(labels, test_size=np.int64(297))[1]) == 297  # a NumPy integer is a count too
    with pytest.raises(ValueError, match="samples"):
        train_test_split(images, labels[:5])


def test_text_datasets():
    text = load_shakespeare()
    assert 1_000_000 < len(text) < 1_100_000 and "HAMLET" in text and text.isascii()
    pairs = load_en_es()
    assert len(pairs) == 5715 and all(len(p) == 2 and 0 < len(p[0]) <= 80 and 0 < len(p[1]) <= 80 for p in pairs)
    assert pairs[0][0].startswith("In the beginning")


# ------------------------------------------------------------------------ generated
def test_dates_examples_and_determinism():
    assert synthetic.format_date(datetime.date(1999, 3, 4), 0) == "Thursday, March 4, 1999"
    assert synthetic.format_date(datetime.date(1999, 3, 4), 6) == "03/04/1999"
    assert synthetic.format_date(datetime.date(1999, 3, 4), 8) == "thursday 4 march 1999"
    first = dates(300, seed=1)
    assert first == dates(300, seed=1) and first != dates(300, seed=2)
    for human, iso in first:
        date = datetime.date.fromisoformat(iso)
        assert str(date.year) in human and str(date.day) in human
        assert 1900 <= date.year <= 2099
    shapes = {"".join("9" if c.isdigit() else "a" if c.isalpha() else c for c in h) for h, _ in first}
    assert len(shapes) >= 10  # many formats appear


def test_dates_weekdays_are_right():
    names = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
    checked = 0
    for human, iso in dates(200, seed=3):
        first = human.split()[0].rstrip(",").lower()
        if first in names or first in [n[:3] for n in names]:
            assert names[datetime.date.fromisoformat(iso).weekday()].startswith(first)
            checked += 1
    assert checked > 30


@pytest.mark.parametrize("source", ["digits", "fashion"])
def test_scenes_boxes_inside_and_matching_masks(source):
    s = scenes(40, seed=5, size=48, source=source, max_objects=3)
    assert len(s) == 40 and s.images.shape == (40, 1, 48, 48) and s.semantic.shape == (40, 48, 48)
    assert 0 <= s.images.cpu().numpy().min() and s.images.cpu().numpy().max() <= 1
    counts = [len(b) for b in s.boxes]
    assert min(counts) >= 1 and max(counts) == 3
    for i in range(40):
        boxes, labels, instance = s.boxes[i].cpu().numpy(), s.labels[i].cpu().numpy(), s.instance.cpu().numpy()[i]
        assert boxes.dtype == np.float32 and labels.dtype == np.int64 and len(boxes) == len(labels)
        assert (boxes >= 0).all() and (boxes <= 48).all() and (boxes[:, :2] < boxes[:, 2:]).all()
        assert instance.max() == len(boxes)
        for k, (box, label) in enumerate(zip(boxes, labels)):
            rows, cols = np.nonzero(instance == k + 1)
            assert box.tolist() == [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]
            assert (s.semantic.cpu().numpy()[i][instance == k + 1] == label + 1).all()
        assert ((s.semantic.cpu().numpy()[i] == 0) == (instance == 0)).all()


def test_scenes_are_deterministic():
    a, b, c = scenes(6, seed=9), scenes(6, seed=9), scenes(6, seed=10)
    np.testing.assert_array_equal(a.images.cpu().numpy(), b.images.cpu().numpy())
    assert [x.tolist() for x in a.boxes] == [x.tolist() for x in b.boxes]
    assert not np.array_equal(a.images.cpu().numpy(), c.images.cpu().numpy())
    with pytest.raises(ValueError, match="source"):
        scenes(1, source="cifar")


def test_scenes_splits_draw_from_disjoint_pools():
    train, test = scenes(30, seed=3, split="train"), scenes(30, seed=3, split="test")
    assert not np.array_equal(train.images.cpu().numpy(), test.images.cpu().numpy())
    # The same seed draws the same positions and sizes; only the pool (and so the glyph) differs.
    assert [len(b) for b in train.boxes] == [len(b) for b in test.boxes]
    with pytest.raises(ValueError, match="split"):
        scenes(1, split="valid")
