"""Real datasets: the standard files (MNIST IDX, CIFAR-10 batches), their checked downloads, and
the small datasets embedded in the package so that every example runs offline.

Reading never runs code from a file: IDX files are parsed by hand and CIFAR-10's pickled
batches go through an unpickler that admits only the few harmless constructors they need.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import math
import numbers
import os
import pickle
import struct
import tarfile
import urllib.request
import zlib
from pathlib import Path

from minigrad import backend
from minigrad.data import transforms as T
from minigrad.data.dataset import Dataset
from minigrad.tensor import Tensor

np = backend.numpy

EMBEDDED = Path(__file__).with_name("embedded")
SYSTEM_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist package


def default_root() -> Path:
    """Where downloads go unless a ``root`` is given: ``$MINIGRAD_DATA`` or ``~/.cache/minigrad``."""
    return Path(os.environ.get("MINIGRAD_DATA") or Path.home() / ".cache" / "minigrad")


# ------------------------------------------------------------------------------ files
def _read_bytes(path) -> bytes:
    """The file's bytes, gunzipped when they start with gzip's magic number."""
    raw = Path(path).read_bytes()
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as error:
        raise ValueError(f"{path}: corrupt or truncated gzip data ({error})") from None


def download(url: str, path, sha256: str) -> Path:
    """Fetch ``url`` into ``path`` and check its SHA-256; on a mismatch delete it and raise.

    The data goes to ``path.part`` first, so an interrupted download never leaves a file
    that looks complete. Any URL urllib opens works (``https://``, ``file://``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(partial, "wb") as out:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    if digest.hexdigest() != sha256.lower():
        partial.unlink()
        raise RuntimeError(
            f"download: {url} has SHA-256 {digest.hexdigest()}, expected {sha256.lower()}; the file was deleted"
        )
    partial.replace(path)
    return path


def _download_any(urls: list, path, sha256: str) -> Path:
    """``download`` from the first of several mirrors that works."""
    errors = []
    for url in urls:
        try:
            return download(url, path, sha256)
        except (OSError, RuntimeError) as error:  # URLError is an OSError
            errors.append(f"{url}: {error}")
    raise RuntimeError(f"download: every mirror failed for {Path(path).name}:\n" + "\n".join(errors))


# -------------------------------------------------------------------------------- IDX
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path):
    """The array in an IDX file (MNIST's format), gzipped or raw, in native byte order.

    The header is two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
    0x0D float32, 0x0E float64), the number of dimensions, then each size as a big-endian
    uint32; the big-endian data follow. Raises ValueError on a truncated or corrupt file.
    """
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"read_idx: {path} is not an IDX file (magic number {raw[:4].hex() or 'missing'})")
    code, ndim = raw[2], raw[3]
    if code not in _IDX_DTYPES:
        raise ValueError(f"read_idx: {path} has unknown data type code 0x{code:02x}")
    start = 4 + 4 * ndim
    if len(raw) < start:
        raise ValueError(f"read_idx: {path} is truncated inside its header ({len(raw)} of {start} bytes)")
    shape = struct.unpack(f">{ndim}I", raw[4:start])
    dtype = np.dtype(_IDX_DTYPES[code])
    expected = math.prod(shape) * dtype.itemsize
    if len(raw) - start != expected:
        problem = "is truncated" if len(raw) - start < expected else "has trailing bytes"
        raise ValueError(
            f"read_idx: {path} {problem}: a {shape} array of {dtype.name} needs {expected} bytes "
            f"of data, the file has {len(raw) - start}"
        )
    return np.frombuffer(raw, dtype, offset=start).reshape(shape).astype(dtype.newbyteorder("="))


class _ImageDataset(Dataset):
    """Images in ``data`` (uint8, N x H x W or N x H x W x C) and labels in ``targets`` (int64, N).

    ``dataset[i]`` is ``(image, label)``: the image float in [0, 1], channels first, through
    ``transform`` when given; the label a Python int. Batches are gathered with one index.
    """

    data: Tensor
    targets: Tensor
    transform = None

    @property
    def batchable(self) -> bool:
        return T.batchable(self.transform)

    def __len__(self) -> int:
        return self.data.shape[0]

    def __getitem__(self, index):
        image = Tensor._make(_as_float_images(self.data.data[index][None])[0])
        return (self.transform(image) if self.transform is not None else image), int(self.targets.data[index])

    def get_batch(self, indices):
        images = Tensor._make(_as_float_images(self.data.data[indices]))
        return [self.transform(images) if self.transform is not None else images, self.targets[indices]]


def _as_float_images(pixels):
    """uint8 (N, H, W) or (N, H, W, C) -> float (N, C, H, W) in [0, 1]."""
    pixels = pixels[..., None] if pixels.ndim == 3 else pixels
    return pixels.transpose(0, 3, 1, 2).astype(backend.get_default_dtype(), order="C") / 255


class _IDXImages(_ImageDataset):
    """MNIST-format datasets: four IDX files, looked for in ``root``, downloaded there when asked."""

    mirrors: tuple = ()  # base URLs
    sha256: dict = {}  # file name -> SHA-256
    folder = ""  # default folder under default_root()
    classes: tuple = ()

    def __init__(self, root=None, train: bool = True, transform=None, download: bool = False):
        self.train, self.transform = train, transform
        split = "train" if train else "t10k"
        names = (f"{split}-images-idx3-ubyte.gz", f"{split}-labels-idx1-ubyte.gz")
        images, labels = (read_idx(path) for path in self._find(names, root, download))
        if images.ndim != 3 or labels.shape != images.shape[:1]:
            raise ValueError(
                f"{type(self).__name__}: expected images (N, H, W) and labels (N,), "
                f"got {images.shape} and {labels.shape}"
            )
        self.data = Tensor._make(images.astype(np.uint8, copy=False))
        self.targets = Tensor._make(labels.astype(backend.int64))

    def _download_folder(self, root) -> Path:
        return Path(root) if root is not None else default_root() / self.folder

    def _search_path(self, root, download: bool) -> list:
        """(folder, file-name prefix) pairs to look in, in order."""
        return [(self._download_folder(root), "")]

    def _find(self, names, root, download: bool) -> list:
        """The paths of ``names``, all from the first place that has every one of them (so that
        images and labels always match), after downloading the missing ones when asked."""
        places = self._search_path(root, download)
        for folder, prefix in places:
            paths = [_existing(folder / (prefix + name)) for name in names]
            if all(paths):
                return paths
        if download:
            folder = self._download_folder(root)
            return [
                _existing(folder / name)
                or _download_any([m + name for m in self.mirrors], folder / name, self.sha256[name])
                for name in names
            ]
        looked = ", ".join(str(folder) for folder, _ in places)
        raise FileNotFoundError(
            f"{type(self).__name__}: {' and '.join(names)} not found (looked in {looked}); "
            "pass download=True to fetch them"
        )


def _existing(path: Path) -> Path | None:
    """``path``, or the same file gunzipped (without its .gz), if either exists."""
    for candidate in (path, path.with_name(path.name.removesuffix(".gz"))):
        if candidate.is_file():
            return candidate
    return None


class MNIST(_IDXImages):
    """The MNIST handwritten digits (60000 train / 10000 test, 28 x 28, labels 0-9).

    Read from ``root`` (default ``~/.cache/minigrad/mnist``), which holds the four IDX files,
    gzipped or not; ``download=True`` fetches the missing ones there, checking each SHA-256.
    MNIST has no offline copy: the embedded digits are ``load_digits`` and ``FashionMNIST``.
    """

    mirrors = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/")
    sha256 = {
        "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    }
    folder = "mnist"
    classes = tuple(str(d) for d in range(10))


class FashionMNIST(_IDXImages):
    """Zalando's Fashion-MNIST (28 x 28 grey images of 10 kinds of clothing).

    With ``root=None`` and no download: the full 60000/10000 set from ``~/.cache/minigrad/
    fashion-mnist`` (an earlier download) or ``/usr/share/datasets/fashion-mnist`` (Debian's
    dataset-fashion-mnist) when there, else the embedded subset: the first 6000 training and
    1000 test images. With ``root``: the IDX files in that folder; ``download=True`` fetches
    the missing ones there (default the cache folder), checking each SHA-256.
    """

    mirrors = ("https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",)
    sha256 = {
        "train-images-idx3-ubyte.gz": "08dc20ab1689590a0bcd66e874647b6ee8464e2d501b5a3f1f78831db19a3fdc",
        "train-labels-idx1-ubyte.gz": "b0197879cbda89f3dc7b894f9fd52b858e68ea4182b6947c9d8c2b67e5f18dcc",
        "t10k-images-idx3-ubyte.gz": "78dcbbfb5a27efaf1b6c1d616caca68560be8766c5bffcb2791df9273a534229",
        "t10k-labels-idx1-ubyte.gz": "42bd18137a62d5998cdeae52bf3a0676ac6b706f5cf8439b47bb5b151ae3dccf",
    }
    folder = "fashion-mnist"
    classes = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")

    def _search_path(self, root, download: bool) -> list:
        if root is not None or download:
            return [(self._download_folder(root), "")]
        return [(self._download_folder(None), ""), (SYSTEM_FASHION_MNIST, ""), (EMBEDDED, "fashion-")]


# --------------------------------------------------------------------------- CIFAR-10
class _Refused(pickle.UnpicklingError):
    """A pickle asked for something a CIFAR batch does not contain."""


class _BatchUnpickler(pickle.Unpickler):
    """Admits only what CIFAR's pickled batches are made of: ndarray and dtype reconstruction
    and, for pickles written by Python 3 at protocol 2, ``_codecs.encode`` (bytes as latin-1 text)."""

    def find_class(self, module: str, name: str):
        if (module, name) in (("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct")):
            return _empty_ndarray
        if (module, name) == ("numpy", "ndarray"):
            return np.ndarray
        if (module, name) == ("numpy", "dtype"):
            return np.dtype
        if (module, name) == ("_codecs", "encode"):
            return _latin1_encode
        raise _Refused(f"refusing to load {module}.{name} (not part of a CIFAR batch)")


def _empty_ndarray(subtype, shape, dtype):
    """NumPy's ``_reconstruct`` for plain arrays: an empty array whose state ``__setstate__`` fills in next."""
    if subtype is not np.ndarray:
        raise _Refused(f"refusing to build a {subtype!r}")
    return np.ndarray(shape, np.dtype(dtype))


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    if encoding not in ("latin1", "latin-1"):
        raise _Refused(f"refusing to encode text as {encoding!r}")
    return text.encode("latin1")


def read_cifar_batch(path):
    """One batch file of CIFAR-10's Python version -> (images uint8 (N, 3, 32, 32), labels int64 (N,)).

    The file is a pickle of a dict with ``data`` (uint8 N x 3072, each row the red, green, then
    blue 32 x 32 plane) and ``labels``; it is read with an unpickler that cannot run code.
    """
    try:
        batch = _BatchUnpickler(io.BytesIO(_read_bytes(path)), encoding="latin1").load()
    except _Refused as error:
        raise ValueError(f"read_cifar_batch: {path}: {error}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, struct.error) as error:
        raise ValueError(f"read_cifar_batch: {path} is corrupt or truncated ({error})") from None
    if not isinstance(batch, dict):
        raise ValueError(f"read_cifar_batch: {path} holds a {type(batch).__name__}, expected a dict")
    batch = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in batch.items()}
    data, labels = batch.get("data"), batch.get("labels")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        got = getattr(data, "shape", type(data).__name__)
        raise ValueError(f"read_cifar_batch: {path}: expected 'data' as a uint8 (N, 3072) array, got {got}")
    labels = np.asarray(labels if labels is not None else [], dtype=backend.int64)
    if labels.shape != (data.shape[0],) or (labels.size and not 0 <= labels.min() <= labels.max() <= 9):
        raise ValueError(f"read_cifar_batch: {path}: expected {data.shape[0]} 'labels' in 0..9")
    return data.reshape(-1, 3, 32, 32), labels


class CIFAR10(_ImageDataset):
    """CIFAR-10: 32 x 32 colour images of 10 classes (50000 train / 10000 test).

    ``root`` (default ``~/.cache/minigrad/cifar10``) holds ``cifar-10-batches-py/``;
    ``download=True`` fetches cifar-10-python.tar.gz there, checks its SHA-256 and unpacks the
    batch files (nothing else from the archive). ``data`` is uint8 (N, 32, 32, 3) as in
    torchvision; items are (image float (3, 32, 32) in [0, 1], label).
    """

    url = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
    archive_sha256 = "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"
    folder = "cifar-10-batches-py"
    classes = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

    def __init__(self, root=None, train: bool = True, transform=None, download: bool = False):
        self.train, self.transform = train, transform
        root = Path(root) if root is not None else default_root() / "cifar10"
        names = [f"data_batch_{i}" for i in range(1, 6)] if train else ["test_batch"]
        directory = root / self.folder
        if download and not all((directory / name).is_file() for name in names):
            self._download(root)
        missing = [name for name in names if not (directory / name).is_file()]
        if missing:
            raise FileNotFoundError(
                f"CIFAR10: {', '.join(missing)} not found in {directory}; pass download=True to fetch them"
            )
        images, labels = zip(*(read_cifar_batch(directory / name) for name in names))
        self.data = Tensor._make(np.ascontiguousarray(np.concatenate(images).transpose(0, 2, 3, 1)))
        self.targets = Tensor._make(np.concatenate(labels))

    def _download(self, root: Path) -> None:
        archive = download(self.url, root / "cifar-10-python.tar.gz", self.archive_sha256)
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar.getmembers():
                name = Path(member.name)
                if member.isfile() and name.parent == Path(self.folder) and name.name != "readme.html":
                    (root / self.folder).mkdir(parents=True, exist_ok=True)
                    (root / self.folder / name.name).write_bytes(tar.extractfile(member).read())


# --------------------------------------------------------------------- embedded data
def load_digits() -> tuple[Tensor, Tensor]:
    """The UCI optdigits test set: images float (1797, 8, 8) in [0, 1] (the 0..16 counts / 16),
    labels int64 (1797,) in 0..9."""
    table = np.loadtxt(io.BytesIO(_read_bytes(EMBEDDED / "digits.csv.gz")), delimiter=",", dtype=backend.int64)
    images = (table[:, :64].reshape(-1, 8, 8) / 16).astype(backend.get_default_dtype())
    return Tensor._make(images), Tensor._make(table[:, 64])


def train_test_split(*tensors, test_size: float | int = 0.25, seed: int = 0) -> list:
    """Shuffle samples (the first dimension) with ``seed`` and split them, as scikit-learn's function:
    returns ``[a_train, a_test, b_train, b_test, ...]``. ``test_size``: a fraction or a count.

    ``train_test_split(*load_digits(), test_size=297)`` is the 1500/297 split of the data README.
    """
    n = len(tensors[0])
    if any(len(t) != n for t in tensors):
        raise ValueError(f"train_test_split: all inputs must have {n} samples, got {[len(t) for t in tensors]}")
    count = int(test_size) if isinstance(test_size, numbers.Integral) else math.ceil(test_size * n)
    if not 0 <= count <= n:
        raise ValueError(f"train_test_split: test_size must be in [0, {n}] samples or [0, 1], got {test_size}")
    order = np.random.default_rng(seed).permutation(n)
    train, test = order[: n - count], order[n - count :]
    return [part for t in tensors for part in (t[train], t[test])]


def load_shakespeare() -> str:
    """Eight whole plays (Hamlet, Macbeth, Romeo and Juliet, Othello, Lear, Julius Caesar, The
    Tempest, A Midsummer Night's Dream): 1.04 M ASCII characters."""
    return _read_bytes(EMBEDDED / "shakespeare.txt.gz").decode("ascii")


def load_en_es() -> list[tuple[str, str]]:
    """5715 verse-aligned (english, spanish) pairs, both at most 80 characters (World English
    Bible and Reina-Valera 1909)."""
    lines = _read_bytes(EMBEDDED / "bible_en_es.tsv.gz").decode("utf-8").splitlines()
    return [tuple(line.split("\t")) for line in lines]
