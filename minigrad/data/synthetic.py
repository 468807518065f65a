"""Generated tasks, deterministic for a given seed: date normalisation and object scenes."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from minigrad import backend
from minigrad.data.datasets import EMBEDDED, load_digits, read_idx
from minigrad.tensor import Tensor

np = backend.numpy

# ------------------------------------------------------------------------------ dates
_MONTHS = ("January February March April May June July August September October November December").split()
_WEEKDAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()

# Human ways of writing a date, by field: weekday, month (names), day, month number, year.
# The numeric forms use one convention each (US month/day with slashes, day.month with dots),
# so that every string has exactly one reading.
_DATE_FORMATS = (
    "{weekday}, {month} {day}, {year}",  # Thursday, March 4, 1999
    "{month} {day}, {year}",  # March 4, 1999
    "{day} {month} {year}",  # 4 March 1999
    "{mon} {day}, {year}",  # Mar 4, 1999
    "{day:02d} {mon} {year}",  # 04 Mar 1999
    "{wd} {day} {mon} {year}",  # Thu 4 Mar 1999
    "{month_number:02d}/{day:02d}/{year}",  # 03/04/1999
    "{day}.{month_number}.{year}",  # 4.3.1999
    "{weekday} {day} {month} {year}",  # thursday 4 march 1999 (lower case)
    "{month} {day} {year}",  # MARCH 4 1999 (upper case)
    "{day:02d}-{mon}-{year}",  # 04-Mar-1999
    "{mon}. {day}, {year}",  # Mar. 4, 1999
)
_FIRST_DAY, _LAST_DAY = datetime.date(1900, 1, 1).toordinal(), datetime.date(2099, 12, 31).toordinal()


def format_date(date: datetime.date, style: int) -> str:
    """``date`` written in human format number ``style`` (0 to 11, see ``_DATE_FORMATS``)."""
    month, weekday = _MONTHS[date.month - 1], _WEEKDAYS[date.weekday()]
    text = _DATE_FORMATS[style].format(
        weekday=weekday,
        wd=weekday[:3],
        month=month,
        mon=month[:3],
        day=date.day,
        month_number=date.month,
        year=date.year,
    )
    return text.lower() if style == 8 else text.upper() if style == 9 else text


def date_pairs(days, rng) -> list[tuple[str, str]]:
    """(human-written date, ISO date) for each day ordinal in ``days``, each in a format drawn
    uniformly by ``rng`` from the twelve in ``_DATE_FORMATS``."""
    styles = rng.integers(len(_DATE_FORMATS), size=len(days))
    pairs = []
    for ordinal, style in zip(days.tolist(), styles.tolist()):
        date = datetime.date.fromordinal(ordinal)
        pairs.append((format_date(date, style), date.isoformat()))
    return pairs


def dates(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """``n`` pairs (human-written date, ISO date) such as ("Thursday, March 4, 1999", "1999-03-04"),
    days uniform over 1900-2099, formats uniform over the twelve in ``_DATE_FORMATS``."""
    rng = np.random.default_rng(seed)
    return date_pairs(rng.integers(_FIRST_DAY, _LAST_DAY + 1, size=n), rng)


def calendar_days() -> range:
    """The ordinals of every day that ``dates`` draws from (1900-01-01 to 2099-12-31)."""
    return range(_FIRST_DAY, _LAST_DAY + 1)


# ----------------------------------------------------------------------------- scenes
@dataclass(frozen=True)
class Scenes:
    """Generated scenes with everything a segmentation or detection model needs.

    ``images``: (n, 1, size, size) float in [0, 1]; ``semantic``: (n, size, size) int64, 0 for
    background and class + 1 on each object's pixels; ``instance``: (n, size, size) int64, 0 for
    background and k + 1 on the pixels of the image's object k; ``boxes``: n tensors (k_i, 4),
    float, (x1, y1, x2, y2) in pixel edges (the tight box of the object's mask: x2 and y2 are
    one past its last column and row); ``labels``: n tensors (k_i,) int64 classes in 0..9.
    """

    images: Tensor
    semantic: Tensor
    instance: Tensor
    boxes: list
    labels: list

    def __len__(self) -> int:
        return self.images.shape[0]

    def to(self, device) -> Scenes:
        """The scenes with every tensor on ``device`` (they are generated on the CPU)."""
        move = [t.to(device) for t in (self.images, self.semantic, self.instance)]
        return Scenes(*move, [b.to(device) for b in self.boxes], [y.to(device) for y in self.labels])


def _glyphs(source: str):
    """The object pool: images float (M, h, w) in [0, 1] and their labels (M,), leaving out the
    few too faint to give a mask."""
    if source == "digits":
        images, labels = (t.data for t in load_digits())
    else:  # the embedded subset, so that scenes are the same on every machine
        images = read_idx(EMBEDDED / "fashion-train-images-idx3-ubyte.gz").astype(backend.float32) / 255
        labels = read_idx(EMBEDDED / "fashion-train-labels-idx1-ubyte.gz")
    bright = images.max(axis=(1, 2)) >= 0.75
    return images[bright], labels[bright]


def _resize(image, side: int):
    """Bilinear resampling of image (h, w) to (side, side), pixel centres aligned as align_corners=False."""

    def taps(length):
        position = np.clip((np.arange(side) + 0.5) * length / side - 0.5, 0, length - 1)
        low = np.floor(position).astype(backend.int64)
        return low, np.minimum(low + 1, length - 1), position - low

    (r0, r1, fy), (c0, c1, fx) = taps(image.shape[0]), taps(image.shape[1])
    top = image[r0][:, c0] * (1 - fx) + image[r0][:, c1] * fx
    bottom = image[r1][:, c0] * (1 - fx) + image[r1][:, c1] * fx
    return top * (1 - fy[:, None]) + bottom * fy[:, None]


_MASK_LEVEL = 0.3  # a pasted pixel at least this bright belongs to its object's mask
_PLACEMENT_TRIES = 30


_SPLITS = ("all", "train", "test")


def scenes(
    n: int, seed: int = 0, size: int = 64, source: str = "digits", max_objects: int = 3, split: str = "all"
) -> Scenes:
    """``n`` canvases of ``size`` x ``size`` with 1 to ``max_objects`` digits (``source="digits"``) or
    Fashion-MNIST items (``"fashion"``) pasted at random positions, each scaled to a square of
    20 % to 45 % of the canvas side. Objects never overlap (an object that finds no free
    place is left out, so an image may hold fewer than drawn), so every mask is whole and
    every box is the tight box of its mask.

    ``split="train"`` draws objects from four fifths of the pool and ``"test"`` from the other
    fifth, so that held-out scenes show objects never seen in training; ``"all"`` uses the whole pool.
    """
    if source not in ("digits", "fashion"):
        raise ValueError(f"scenes: source must be 'digits' or 'fashion', got {source!r}")
    if split not in _SPLITS:
        raise ValueError(f"scenes: split must be one of {', '.join(_SPLITS)}, got {split!r}")
    if size < 16 or max_objects < 1:
        raise ValueError(f"scenes: need size >= 16 and max_objects >= 1, got size={size}, max_objects={max_objects}")
    pool, pool_labels = _glyphs(source)
    if split != "all":
        held_out = np.arange(len(pool)) % 5 == 0
        keep = held_out if split == "test" else ~held_out
        pool, pool_labels = pool[keep], pool_labels[keep]
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 1, size, size), dtype=backend.float32)
    semantic = np.zeros((n, size, size), dtype=backend.int64)
    instance = np.zeros((n, size, size), dtype=backend.int64)
    boxes, labels = [], []
    low, high = max(4, round(0.2 * size)), round(0.45 * size)
    for i in range(n):
        taken, image_boxes, image_labels = [], [], []
        for _ in range(int(rng.integers(1, max_objects + 1))):
            pick, side = int(rng.integers(len(pool))), int(rng.integers(low, high + 1))
            corners = rng.integers(0, size - side + 1, size=(_PLACEMENT_TRIES, 2))
            free = [(x, y) for x, y in corners.tolist() if all(_apart((x, y, side), t) for t in taken)]
            glyph = _resize(pool[pick], side)
            mask = glyph >= _MASK_LEVEL
            if not free or not mask.any():
                continue
            x, y = free[0]
            taken.append((x, y, side))
            images[i, 0, y : y + side, x : x + side] = glyph
            semantic[i, y : y + side, x : x + side][mask] = int(pool_labels[pick]) + 1
            instance[i, y : y + side, x : x + side][mask] = len(image_labels) + 1
            rows, cols = np.nonzero(mask)
            image_boxes.append([x + cols.min(), y + rows.min(), x + cols.max() + 1, y + rows.max() + 1])
            image_labels.append(int(pool_labels[pick]))
        boxes.append(Tensor._make(np.asarray(image_boxes, dtype=backend.float32).reshape(-1, 4)))
        labels.append(Tensor._make(np.asarray(image_labels, dtype=backend.int64)))
    return Scenes(Tensor._make(images), Tensor._make(semantic), Tensor._make(instance), boxes, labels)


def _apart(a: tuple, b: tuple) -> bool:
    """Whether squares (x, y, side) a and b leave at least one pixel between them."""
    (xa, ya, sa), (xb, yb, sb) = a, b
    return xa + sa < xb or xb + sb < xa or ya + sa < yb or yb + sb < ya
