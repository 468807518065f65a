"""Image transforms for augmentation (torchvision.transforms' names and arguments).

Every transform takes one image ``(C, H, W)`` or a batch ``(N, C, H, W)`` and returns the same
layout; in a batch each image gets its own random draw, and the whole batch is transformed
by vectorised array code (no loop over images). Random parameters come from minigrad's CPU
generator, so ``mg.manual_seed`` (or the ``DataLoader``'s per-batch seeding) reproduces them.
Transforms work on the raw arrays and return tensors outside the autograd graph.
"""

from __future__ import annotations

import numbers

from minigrad import backend
from minigrad import functional as F
from minigrad.autograd import no_grad
from minigrad.tensor import Tensor

np = backend.numpy

_GRAY = (0.2989, 0.587, 0.114)  # ITU-R 601-2 luma, as torchvision's rgb_to_grayscale


class Transform:
    """An image transform that also takes batches: subclasses implement ``transform(x)`` on
    an array ``x: (N, C, H, W)``."""

    needs_float = False  # True where pixel values are computed on, not just moved

    def __call__(self, image):
        x = image.data if isinstance(image, Tensor) else image
        if x.ndim not in (3, 4):
            raise ValueError(
                f"{type(self).__name__}: expected an image (C, H, W) or a batch (N, C, H, W), got shape {x.shape}"
            )
        if self.needs_float and x.dtype.kind != "f":
            raise TypeError(f"{type(self).__name__}: expected floating-point pixels (see ToTensor), got {x.dtype}")
        out = self.transform(x if x.ndim == 4 else x[None])
        return Tensor._make(out if x.ndim == 4 else out[0])

    def transform(self, x):
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


def batchable(transform) -> bool:
    """Whether ``transform`` takes a batch (N, C, H, W) as well as one image (C, H, W)."""
    if isinstance(transform, (Compose, RandomApply)):
        return all(batchable(t) for t in transform.transforms)
    if isinstance(transform, TwoViews):
        return batchable(transform.transform)
    return transform is None or isinstance(transform, (Transform, ToTensor))


class Compose:
    """Apply ``transforms`` one after the other."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, image):
        for t in self.transforms:
            image = t(image)
        return image

    def __repr__(self) -> str:
        return "Compose(" + ", ".join(repr(t) for t in self.transforms) + ")"


def _draw(n: int):
    """``n`` uniform draws on [0, 1) from minigrad's CPU generator (the same draws on every device)."""
    return backend.generator("cpu").random(n)


def _uniform(low: float, high: float, n: int):
    return low + (high - low) * _draw(n)


def _per_image(values, x):
    """A length-N vector of parameters as an array on ``x``'s device, shaped (N, 1, 1, 1) against it."""
    return backend.to_device(values.astype(x.dtype), backend.device_of(x)).reshape(-1, 1, 1, 1)


class ToTensor:
    """A uint8 image or batch to float in [0, 1], channels first.

    Takes H x W, H x W x C or C x H x W (and batches N x H x W x C or N x C x H x W): a 3-D image
    whose last dimension has 1, 3 or 4 entries and whose first has not is read as H x W x C,
    as NumPy images usually are. Float input keeps its values and only moves the channels.
    """

    def __call__(self, image):
        x = image.data if isinstance(image, Tensor) else backend.numpy.asarray(image)
        if x.ndim == 2:
            x = x[None]
        elif x.ndim in (3, 4) and x.shape[-1] in (1, 3, 4) and x.shape[-3] not in (1, 3, 4):
            x = backend.array_module(x).moveaxis(x, -1, -3)
        elif x.ndim not in (3, 4):
            raise ValueError(f"ToTensor: expected an image of 2 or 3 dimensions or a batch of 4, got shape {x.shape}")
        if x.dtype == backend.numpy.uint8:
            return Tensor._make(x.astype(backend.get_default_dtype(), order="C") / 255)
        if x.dtype.kind != "f":
            raise TypeError(f"ToTensor: expected uint8 or floating-point pixels, got {x.dtype}")
        return Tensor._make(backend.array_module(x).ascontiguousarray(x))

    def __repr__(self) -> str:
        return "ToTensor()"


class Normalize(Transform):
    """``(x - mean[c]) / std[c]`` for each channel c."""

    needs_float = True

    def __init__(self, mean, std):
        self.mean, self.std = tuple(float(m) for m in mean), tuple(float(s) for s in std)
        if len(self.mean) != len(self.std):
            raise ValueError(
                f"Normalize: mean and std must have equal lengths, got {len(self.mean)} and {len(self.std)}"
            )
        if any(s == 0 for s in self.std):
            raise ValueError(f"Normalize: std must not contain zeros, got {self.std}")

    def transform(self, x):
        if x.shape[1] != len(self.mean) and len(self.mean) != 1:
            raise RuntimeError(f"Normalize: {len(self.mean)} means for an image of {x.shape[1]} channels")
        xp = backend.array_module(x)
        mean = xp.asarray(self.mean, dtype=x.dtype).reshape(-1, 1, 1)
        std = xp.asarray(self.std, dtype=x.dtype).reshape(-1, 1, 1)
        return (x - mean) / std


def _pair(size, name: str) -> tuple:
    if isinstance(size, numbers.Number):
        return int(size), int(size)
    if len(size) == 1:
        return int(size[0]), int(size[0])
    if len(size) != 2:
        raise ValueError(f"{name}: expected an int or a pair (h, w), got {size!r}")
    return int(size[0]), int(size[1])


class RandomCrop(Transform):
    """A random ``size`` (h, w) window, after padding the borders by ``padding``.

    ``padding``: an int (all sides), (left/right, top/bottom) or (left, top, right, bottom);
    ``padding_mode``: "constant" (with ``fill``), "edge", "reflect" or "symmetric".
    ``pad_if_needed`` pads images smaller than ``size`` up to it.
    """

    def __init__(self, size, padding=None, pad_if_needed: bool = False, fill: float = 0, padding_mode="constant"):
        self.size = _pair(size, "RandomCrop")
        if isinstance(padding, numbers.Number):
            padding = (padding,) * 4
        elif padding is not None and len(padding) == 2:
            padding = (padding[0], padding[1]) * 2
        if padding is not None and (len(padding) != 4 or min(padding) < 0):
            raise ValueError(f"RandomCrop: padding must be non-negative, given as 1, 2 or 4 ints, got {padding!r}")
        if padding_mode not in ("constant", "edge", "reflect", "symmetric"):
            raise ValueError(f"RandomCrop: unknown padding_mode {padding_mode!r}")
        self.padding, self.pad_if_needed, self.fill, self.padding_mode = padding, pad_if_needed, fill, padding_mode

    def transform(self, x):
        xp = backend.array_module(x)
        h, w = self.size
        left, top, right, bottom = self.padding or (0, 0, 0, 0)
        if self.pad_if_needed:
            right += max(0, w - (x.shape[3] + left + right))
            bottom += max(0, h - (x.shape[2] + top + bottom))
        if left or top or right or bottom:
            extra = {"constant_values": self.fill} if self.padding_mode == "constant" else {}
            x = xp.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), mode=self.padding_mode, **extra)
        n, _, height, width = x.shape
        if height < h or width < w:
            raise ValueError(f"RandomCrop: crop size {(h, w)} is larger than the (padded) image {(height, width)}")
        rows = (_draw(n) * (height - h + 1)).astype(backend.int64)
        cols = (_draw(n) * (width - w + 1)).astype(backend.int64)
        windows = backend.sliding_window_view(x, (h, w), axis=(2, 3))  # (N, C, H-h+1, W-w+1, h, w)
        pick = [backend.to_device(a, backend.device_of(x)) for a in (np.arange(n), rows, cols)]
        return xp.ascontiguousarray(windows[pick[0], :, pick[1], pick[2]])


class _RandomFlip(Transform):
    axis: int

    def __init__(self, p: float = 0.5):
        if not 0 <= p <= 1:
            raise ValueError(f"{type(self).__name__}: p must be in [0, 1], got {p}")
        self.p = p

    def transform(self, x):
        xp = backend.array_module(x)
        flip = _per_image(_draw(x.shape[0]) < self.p, x).astype(bool)
        return xp.where(flip, xp.flip(x, self.axis), x)


class RandomHorizontalFlip(_RandomFlip):
    """Mirror left-right with probability ``p``."""

    axis = 3


class RandomVerticalFlip(_RandomFlip):
    """Mirror top-bottom with probability ``p``."""

    axis = 2


def _range(value, name: str, center: float = 0.0, low: float | None = None) -> tuple | None:
    """A number v means [center - v, center + v]; a pair is the range itself."""
    if value is None:
        return None
    if isinstance(value, numbers.Number):
        if value < 0:
            raise ValueError(f"{name} must be non-negative when given as a single number, got {value}")
        lo, hi = center - value, center + value
        return (lo if low is None else max(low, lo), hi)
    if len(value) != 2 or value[0] > value[1]:
        raise ValueError(f"{name} must be a number or a pair (min, max), got {value!r}")
    if low is not None and value[0] < low:
        raise ValueError(f"{name} must be a pair of values at least {low}, got {value!r}")
    return float(value[0]), float(value[1])


class RandomAffine(Transform):
    """A random rotation, translation, scale and shear about the image centre.

    ``degrees``: rotation in [-d, d] (or a range), clockwise on screen as torchvision's affine;
    ``translate=(a, b)``: shifts up to a * W and b * H pixels; ``scale=(lo, hi)``;
    ``shear``: x-shear in [-s, s] degrees, a range (x only), or 4 numbers (x range, y range).
    Sampled with ``F.affine_grid`` and ``F.grid_sample`` (bilinear, zero outside the image);
    the matrix is built in pixel units, so non-square images are not distorted.
    """

    needs_float = True

    def __init__(self, degrees, translate=None, scale=None, shear=None, interpolation: str = "bilinear"):
        self.degrees = _range(degrees, "RandomAffine: degrees")
        if translate is not None and (len(translate) != 2 or not all(0 <= t <= 1 for t in translate)):
            raise ValueError(f"RandomAffine: translate must be a pair of fractions in [0, 1], got {translate!r}")
        if scale is not None and (len(scale) != 2 or not 0 < scale[0] <= scale[1]):
            raise ValueError(f"RandomAffine: scale must be a pair 0 < min <= max, got {scale!r}")
        if shear is not None and not isinstance(shear, numbers.Number) and len(shear) == 4:
            shear = (_range(shear[:2], "RandomAffine: shear"), _range(shear[2:], "RandomAffine: shear"))
        elif shear is not None:
            shear = (_range(shear, "RandomAffine: shear"), None)
        self.translate, self.scale, self.shear, self.interpolation = translate, scale, shear, interpolation

    def transform(self, x):
        n, _, height, width = x.shape
        angle = np.radians(_uniform(*self.degrees, n))
        shift_x, shift_y = np.zeros(n), np.zeros(n)
        if self.translate is not None:
            shift_x = np.round(_uniform(-self.translate[0] * width, self.translate[0] * width, n))
            shift_y = np.round(_uniform(-self.translate[1] * height, self.translate[1] * height, n))
        scale = _uniform(*self.scale, n) if self.scale is not None else np.ones(n)
        shear_x = shear_y = np.zeros(n)
        if self.shear is not None:
            shear_x = np.radians(_uniform(*self.shear[0], n))
            if self.shear[1] is not None:
                shear_y = np.radians(_uniform(*self.shear[1], n))
        theta = affine_theta(angle, (shift_x, shift_y), scale, (shear_x, shear_y), (height, width))
        return _warp(x, theta, self.interpolation)


def affine_theta(angle, translate, scale, shear, size) -> np.ndarray:
    """The (N, 2, 3) matrices ``F.affine_grid`` needs for the image warps ``p -> A p + t``.

    ``A = R(angle) S(scale) ShY(shear_y) ShX(shear_x)`` acts on pixel coordinates centred on the
    image (x right, y down); ``t = translate`` in pixels. ``affine_grid`` maps each output point
    to the input point it samples, so the matrix is the inverse warp, in normalised coordinates
    (``align_corners=False``: a centred pixel offset u is 2 u / W).
    """
    (tx, ty), (sx, sy), (height, width) = translate, shear, size
    cos, sin = np.cos(angle), np.sin(angle)
    shear_x, shear_y = np.tan(sx), np.tan(sy)
    # R @ [[1, 0], [shear_y, 1]] @ [[1, shear_x], [0, 1]], times the scale
    a = scale * (cos - sin * shear_y)
    b = scale * ((cos - sin * shear_y) * shear_x - sin)
    c = scale * (sin + cos * shear_y)
    d = scale * ((sin + cos * shear_y) * shear_x + cos)
    det = a * d - b * c
    inverse = np.stack([np.stack([d, -b], -1), np.stack([-c, a], -1)], -2) / det[:, None, None]
    shift = -np.einsum("nij,nj->ni", inverse, np.stack([tx, ty], -1))
    to_normal = np.array([2.0 / width, 2.0 / height])  # pixel offsets -> normalised, per axis
    theta = np.empty((len(angle), 2, 3))
    theta[:, :, :2] = inverse * to_normal[None, :, None] / to_normal[None, None, :]
    theta[:, :, 2] = shift * to_normal
    return theta


@no_grad()
def _warp(x, theta, mode: str, size: tuple | None = None, padding_mode: str = "zeros"):
    """Sample ``x: (N, C, H, W)`` through ``theta: (N, 2, 3)`` onto a grid of ``size`` (h, w), else (H, W)."""
    theta = Tensor._make(backend.to_device(theta.astype(x.dtype), backend.device_of(x)))
    grid = F.affine_grid(theta, [*x.shape[:2], *(size or x.shape[2:])], align_corners=False)
    return F.grid_sample(Tensor._make(x), grid, mode=mode, padding_mode=padding_mode, align_corners=False).data


class ColorJitter(Transform):
    """Random brightness, contrast and saturation changes of images with values in [0, 1].

    Each argument b gives a factor drawn from [max(0, 1 - b), 1 + b] (or a range given as a pair):
    brightness scales the pixels, contrast blends with the image's mean grey level, saturation
    with its greyscale version (a no-op on one-channel images). Results are clamped to [0, 1].
    Applied in that fixed order (torchvision draws a random order per call).
    """

    needs_float = True

    def __init__(self, brightness=0, contrast=0, saturation=0):
        self.brightness = _range(brightness, "ColorJitter: brightness", center=1.0, low=0.0)
        self.contrast = _range(contrast, "ColorJitter: contrast", center=1.0, low=0.0)
        self.saturation = _range(saturation, "ColorJitter: saturation", center=1.0, low=0.0)

    def transform(self, x):
        xp = backend.array_module(x)
        n = x.shape[0]
        if self.brightness != (1.0, 1.0):
            x = xp.clip(x * _per_image(_uniform(*self.brightness, n), x), 0, 1)
        if self.contrast != (1.0, 1.0):
            mean = _grey(x).mean(axis=(1, 2, 3), keepdims=True)
            x = _blend(x, mean, _per_image(_uniform(*self.contrast, n), x))
        if self.saturation != (1.0, 1.0) and x.shape[1] > 1:
            x = _blend(x, _grey(x), _per_image(_uniform(*self.saturation, n), x))
        return x


def _grey(x):
    """x: (N, C, H, W) -> (N, 1, H, W) luma (the image itself when C is 1)."""
    if x.shape[1] == 1:
        return x
    if x.shape[1] != 3:
        raise RuntimeError(f"ColorJitter: contrast and saturation need 1 or 3 channels, got {x.shape[1]}")
    weights = backend.array_module(x).asarray(_GRAY, dtype=x.dtype).reshape(1, 3, 1, 1)
    return (x * weights).sum(axis=1, keepdims=True)


def _blend(x, other, factor):
    return backend.array_module(x).clip(factor * x + (1 - factor) * other, 0, 1)


class RandomResizedCrop(Transform):
    """A random crop resized to ``size`` (h, w): SimCLR's main augmentation.

    The crop covers a fraction of the image's area drawn from ``scale`` and has an aspect
    ratio (w / h) drawn log-uniformly from ``ratio``. As in torchvision, each image gets ten
    tries for a box that fits inside it, else the central crop with its ratio clamped into
    ``ratio``. Resized by bilinear sampling (``F.grid_sample``; torchvision also antialiases
    when shrinking).
    """

    needs_float = True
    tries = 10

    def __init__(self, size, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), interpolation: str = "bilinear"):
        self.size = _pair(size, "RandomResizedCrop")
        for name, value in (("scale", scale), ("ratio", ratio)):
            if len(value) != 2 or not 0 < value[0] <= value[1]:
                raise ValueError(f"RandomResizedCrop: {name} must be a pair 0 < min <= max, got {value!r}")
        if scale[1] > 1:
            raise ValueError(f"RandomResizedCrop: scale is a fraction of the image's area, at most 1, got {scale!r}")
        self.scale, self.ratio, self.interpolation = tuple(scale), tuple(ratio), interpolation

    def transform(self, x):
        n, _, height, width = x.shape
        top, left, h, w = self.boxes(n, height, width)
        # affine_grid's output points u in [-1, 1] sample the input at a u + b: the box, in normalised units
        theta = np.zeros((n, 2, 3))
        theta[:, 0, 0], theta[:, 0, 2] = w / width, (2 * left + w) / width - 1
        theta[:, 1, 1], theta[:, 1, 2] = h / height, (2 * top + h) / height - 1
        # "border": samples within half a pixel of the image's edge take the edge pixel, as resizing does
        return _warp(x, theta, self.interpolation, self.size, padding_mode="border")

    def boxes(self, n: int, height: int, width: int) -> tuple:
        """Crop boxes ``(top, left, h, w)`` in pixels, each an (N,) array."""
        area = _uniform(*self.scale, n * self.tries).reshape(n, self.tries) * (height * width)
        log_ratio = _uniform(np.log(self.ratio[0]), np.log(self.ratio[1]), n * self.tries).reshape(n, self.tries)
        w = np.round(np.sqrt(area * np.exp(log_ratio)))
        h = np.round(np.sqrt(area / np.exp(log_ratio)))
        fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)
        first = fits.argmax(axis=1)  # the first try that fits (0 where none does)
        w, h, found = w[np.arange(n), first], h[np.arange(n), first], fits.any(axis=1)
        fallback_w = min(width, round(height * self.ratio[1]))
        fallback_h = min(height, round(width / self.ratio[0]))
        w, h = np.where(found, w, fallback_w), np.where(found, h, fallback_h)
        top = np.where(found, np.floor(_draw(n) * (height - h + 1)), (height - h) // 2)
        left = np.where(found, np.floor(_draw(n) * (width - w + 1)), (width - w) // 2)
        return top, left, h, w


class GaussianBlur(Transform):
    """Blur with a Gaussian kernel of ``kernel_size`` (odd; an int or (h, w)) and a standard
    deviation drawn per image from ``sigma`` (a range, or one number), borders reflected."""

    needs_float = True

    def __init__(self, kernel_size, sigma=(0.1, 2.0)):
        self.kernel_size = _pair(kernel_size, "GaussianBlur")
        if any(k <= 0 or k % 2 == 0 for k in self.kernel_size):
            raise ValueError(f"GaussianBlur: kernel_size must be positive and odd, got {kernel_size!r}")
        sigma = (sigma, sigma) if isinstance(sigma, numbers.Number) else tuple(sigma)
        if len(sigma) != 2 or not 0 < sigma[0] <= sigma[1]:
            raise ValueError(f"GaussianBlur: sigma must be positive, a number or a pair (min, max), got {sigma!r}")
        self.sigma = (float(sigma[0]), float(sigma[1]))

    def transform(self, x):
        xp = backend.array_module(x)
        n, _, height, width = x.shape
        if self.kernel_size[0] // 2 >= height or self.kernel_size[1] // 2 >= width:
            raise ValueError(
                f"GaussianBlur: kernel_size {self.kernel_size} needs an image larger than its half-width, "
                f"got {(height, width)}"
            )
        sigma = _uniform(*self.sigma, n)
        for axis, k in ((2, self.kernel_size[0]), (3, self.kernel_size[1])):
            offsets = np.arange(k) - k // 2
            kernel = np.exp(-0.5 * (offsets[None, :] / sigma[:, None]) ** 2)  # (N, k)
            kernel = backend.to_device((kernel / kernel.sum(1, keepdims=True)).astype(x.dtype), backend.device_of(x))
            padding = [(0, 0)] * 4
            padding[axis] = (k // 2, k // 2)
            windows = backend.sliding_window_view(xp.pad(x, padding, mode="reflect"), k, axis=axis)  # (N, C, H, W, k)
            x = xp.einsum("nchwk,nk->nchw", windows, kernel)
        return x


class RandomApply:
    """Apply ``transforms`` (a list, in order) with probability ``p``, drawn per image.

    On a batch the transforms run on every image, and each image keeps the result with
    probability ``p``; the transforms must then keep the batch's shape.
    """

    def __init__(self, transforms, p: float = 0.5):
        if not 0 <= p <= 1:
            raise ValueError(f"RandomApply: p must be in [0, 1], got {p}")
        self.transforms, self.p = list(transforms), p
        self.apply = Compose(self.transforms)

    def __call__(self, image):
        x = image.data if isinstance(image, Tensor) else image
        chosen = _draw(x.shape[0] if x.ndim == 4 else 1) < self.p
        if x.ndim != 4:
            return self.apply(image) if chosen[0] else image
        out = self.apply(image).data
        if out.shape != x.shape:
            raise RuntimeError(f"RandomApply: on a batch the transforms must keep its shape {x.shape}, got {out.shape}")
        return Tensor._make(backend.array_module(x).where(_per_image(chosen, x).astype(bool), out, x))

    def __repr__(self) -> str:
        return f"RandomApply([{', '.join(repr(t) for t in self.transforms)}], p={self.p})"


class TwoViews:
    """Two independent draws of ``transform`` of the same image (or batch): the pair of views
    that SimCLR, SimSiam and other self-supervised methods compare."""

    def __init__(self, transform):
        self.transform = transform

    def __call__(self, image) -> tuple:
        return self.transform(image), self.transform(image)

    def __repr__(self) -> str:
        return f"TwoViews({self.transform!r})"


__all__ = [
    "Compose",
    "ToTensor",
    "Normalize",
    "RandomCrop",
    "RandomHorizontalFlip",
    "RandomVerticalFlip",
    "RandomAffine",
    "ColorJitter",
    "RandomResizedCrop",
    "GaussianBlur",
    "RandomApply",
    "TwoViews",
    "batchable",
    "affine_theta",
]
