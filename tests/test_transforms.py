"""Transforms: shapes, ranges, exact results, per-image draws and reproducibility."""

import numpy as np
import pytest

import minigrad as mg
import minigrad.functional as F
from minigrad.data import transforms as T


def _images(*shape, seed=0):
    return mg.tensor(np.random.default_rng(seed).random(shape).astype(np.float32))


def _window_offsets(crop, padded, h, w):
    """Every (top, left) at which ``crop`` (C, h, w) equals a window of ``padded`` (C, H, W)."""
    return [
        (top, left)
        for top in range(padded.shape[1] - h + 1)
        for left in range(padded.shape[2] - w + 1)
        if np.array_equal(padded[:, top : top + h, left : left + w], crop)
    ]


# ---------------------------------------------------------------------- conversions
def test_to_tensor_layouts_and_scale():
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    out = T.ToTensor()(gray)
    assert out.shape == (1, 3, 4) and out.dtype == mg.float32
    np.testing.assert_array_equal(out.cpu().numpy()[0], gray.astype(np.float32) / 255)
    hwc = np.random.default_rng(0).integers(0, 256, (5, 6, 3), dtype=np.uint8)
    chw = T.ToTensor()(hwc)
    assert chw.shape == (3, 5, 6)
    np.testing.assert_array_equal(chw.cpu().numpy(), hwc.transpose(2, 0, 1).astype(np.float32) / 255)
    assert T.ToTensor()(hwc.transpose(2, 0, 1).copy()).shape == (3, 5, 6)  # already channels first
    batch = T.ToTensor()(np.stack([hwc, hwc]))
    assert batch.shape == (2, 3, 5, 6) and 0 <= batch.cpu().numpy().min() and batch.cpu().numpy().max() <= 1
    assert T.ToTensor()(mg.tensor(hwc)).shape == (3, 5, 6)
    with pytest.raises(TypeError, match="ToTensor"):
        T.ToTensor()(np.zeros((2, 2), dtype=np.int16))
    with pytest.raises(ValueError, match="ToTensor"):
        T.ToTensor()(np.zeros((1, 1, 1, 1, 1), dtype=np.uint8))


def test_normalize_is_exact_for_images_and_batches():
    x = _images(4, 3, 5, 5)
    mean, std = (0.1, 0.2, 0.3), (0.5, 0.25, 2.0)
    expected = (x.cpu().numpy() - np.array(mean, np.float32)[:, None, None]) / np.array(std, np.float32)[:, None, None]
    np.testing.assert_array_equal(T.Normalize(mean, std)(x).cpu().numpy(), expected)
    np.testing.assert_array_equal(T.Normalize(mean, std)(x[1]).cpu().numpy(), expected[1])
    with pytest.raises(RuntimeError, match="channels"):
        T.Normalize((0.5, 0.5), (1.0, 1.0))(x)
    with pytest.raises(ValueError, match="zeros"):
        T.Normalize((0.5,), (0.0,))
    with pytest.raises(TypeError, match="floating-point"):
        T.Normalize((0.5,), (1.0,))(mg.zeros(1, 2, 2, dtype=mg.int64))


# -------------------------------------------------------------------------- crops
def test_random_crop_with_padding_is_a_window_of_the_padded_image():
    x = _images(16, 2, 6, 7)
    mg.manual_seed(3)
    out = T.RandomCrop((5, 6), padding=2)(x)
    assert out.shape == (16, 2, 5, 6)
    padded = np.pad(x.cpu().numpy(), ((0, 0), (0, 0), (2, 2), (2, 2)))
    offsets = [_window_offsets(out.cpu().numpy()[i], padded[i], 5, 6) for i in range(16)]
    assert all(len(o) == 1 for o in offsets)  # exactly one window matches (random data)
    assert len({o[0] for o in offsets}) > 4  # each image draws its own offset
    mg.manual_seed(3)
    np.testing.assert_array_equal(T.RandomCrop((5, 6), padding=2)(x).cpu().numpy(), out.cpu().numpy())


def test_random_crop_padding_modes_and_single_images():
    x = _images(2, 5, 5)
    out = T.RandomCrop(4, padding=(1, 2, 0, 3), padding_mode="reflect")(x)  # left, top, right, bottom
    padded = np.pad(x.cpu().numpy(), ((0, 0), (2, 3), (1, 0)), mode="reflect")
    assert out.shape == (2, 4, 4) and _window_offsets(out.cpu().numpy(), padded, 4, 4)
    grown = T.RandomCrop(7, pad_if_needed=True, fill=0.5)(x)
    assert grown.shape == (2, 7, 7) and (grown.cpu().numpy() == 0.5).sum() == 2 * (49 - 25)
    with pytest.raises(ValueError, match="larger"):
        T.RandomCrop(6)(x)


# -------------------------------------------------------------------------- flips
def test_flips_are_exact():
    x = _images(3, 2, 4, 5)
    np.testing.assert_array_equal(T.RandomHorizontalFlip(p=1)(x).cpu().numpy(), x.cpu().numpy()[..., ::-1])
    np.testing.assert_array_equal(T.RandomVerticalFlip(p=1)(x).cpu().numpy(), x.cpu().numpy()[..., ::-1, :])
    np.testing.assert_array_equal(T.RandomHorizontalFlip(p=0)(x).cpu().numpy(), x.cpu().numpy())
    np.testing.assert_array_equal(T.RandomHorizontalFlip(p=1)(x[0]).cpu().numpy(), x.cpu().numpy()[0, ..., ::-1])


def test_flip_draws_per_image_and_is_reproducible():
    x = _images(32, 1, 3, 3)
    mg.manual_seed(0)
    out = T.RandomHorizontalFlip()(x).cpu().numpy()
    flipped = [np.array_equal(o, xi[..., ::-1]) for o, xi in zip(out, x.cpu().numpy())]
    kept = [np.array_equal(o, xi) for o, xi in zip(out, x.cpu().numpy())]
    assert all(f != k for f, k in zip(flipped, kept)) and 5 < sum(flipped) < 27
    mg.manual_seed(0)
    np.testing.assert_array_equal(T.RandomHorizontalFlip()(x).cpu().numpy(), out)


# ------------------------------------------------------------------------- affine
def _torch_affine_ops(monkeypatch):
    """F.affine_grid and F.grid_sample computed by PyTorch (to check the matrices and the wiring)."""
    torch = pytest.importorskip("torch")

    def affine_grid(theta, size, align_corners=None):
        return mg.tensor(
            torch.nn.functional.affine_grid(torch.from_numpy(theta.cpu().numpy()), size, align_corners).cpu().numpy()
        )

    def grid_sample(input, grid, mode="bilinear", padding_mode="zeros", align_corners=None):
        out = torch.nn.functional.grid_sample(
            torch.from_numpy(input.cpu().numpy()),
            torch.from_numpy(grid.cpu().numpy()),
            mode,
            padding_mode,
            align_corners,
        )
        return mg.tensor(out.cpu().numpy())

    monkeypatch.setattr(F, "affine_grid", affine_grid, raising=False)
    monkeypatch.setattr(F, "grid_sample", grid_sample, raising=False)


def test_affine_theta_identity():
    n = 3
    zeros = np.zeros(n)
    theta = T.affine_theta(zeros, (zeros, zeros), np.ones(n), (zeros, zeros), (5, 7))
    np.testing.assert_array_equal(theta, np.tile([[1.0, 0, 0], [0, 1, 0]], (n, 1, 1)))


def test_random_affine_rotation_translation_and_scale(monkeypatch):
    _torch_affine_ops(monkeypatch)
    x = _images(1, 1, 6, 6)
    quarter = T.RandomAffine(degrees=(90, 90))(x).cpu().numpy()  # clockwise on screen, as torchvision's affine
    np.testing.assert_allclose(quarter, np.rot90(x.cpu().numpy(), k=-1, axes=(2, 3)), atol=1e-5)
    wide = _images(2, 1, 4, 9)  # non-square: a half turn is exact, with no distortion
    np.testing.assert_allclose(
        T.RandomAffine(degrees=(180, 180))(wide).cpu().numpy(), wide.cpu().numpy()[..., ::-1, ::-1], atol=1e-5
    )
    shifted = T.RandomAffine(degrees=0, translate=(0.5, 0))(x).cpu().numpy()  # integer shifts in [-3, 3] pixels
    matches = [
        k
        for k in range(-3, 4)
        if np.allclose(
            shifted[..., max(k, 0) : 6 + min(k, 0)], x.cpu().numpy()[..., max(-k, 0) : 6 - max(k, 0)], atol=1e-5
        )
    ]
    assert matches
    small = T.RandomAffine(degrees=0, scale=(0.5, 0.5))(_images(1, 1, 8, 8)).cpu().numpy()
    assert np.abs(small[..., :2, :]).max() == 0 and np.abs(small[..., 6:, :]).max() == 0  # zeros outside


def test_random_affine_draws_per_image_and_never_holds_the_graph(monkeypatch):
    _torch_affine_ops(monkeypatch)
    x = _images(4, 1, 8, 8).requires_grad_()
    mg.manual_seed(1)
    out = T.RandomAffine(degrees=30, translate=(0.1, 0.1), scale=(0.9, 1.1), shear=10)(x)
    assert out.shape == (4, 1, 8, 8) and not out.requires_grad and out.grad_fn is None
    assert not np.allclose(out.cpu().numpy()[0], out.cpu().numpy()[1])
    mg.manual_seed(1)
    again = T.RandomAffine(degrees=30, translate=(0.1, 0.1), scale=(0.9, 1.1), shear=10)(x)
    np.testing.assert_array_equal(again.cpu().numpy(), out.cpu().numpy())


def test_random_affine_identity_with_minigrad_ops():
    """Needs F.affine_grid and F.grid_sample (minigrad/ops/sample.py)."""
    x = _images(3, 2, 5, 7)
    np.testing.assert_allclose(T.RandomAffine(degrees=0)(x).cpu().numpy(), x.cpu().numpy(), atol=1e-6)
    np.testing.assert_allclose(T.RandomAffine(degrees=0)(x[0]).cpu().numpy(), x.cpu().numpy()[0], atol=1e-6)


def test_random_affine_argument_errors():
    with pytest.raises(ValueError, match="translate"):
        T.RandomAffine(0, translate=(2, 0))
    with pytest.raises(ValueError, match="scale"):
        T.RandomAffine(0, scale=(0, 1))
    with pytest.raises(ValueError, match="degrees"):
        T.RandomAffine(-5)


# -------------------------------------------------------------------------- colour
def test_color_jitter_brightness_scales_each_image_by_one_factor():
    x = mg.tensor(np.random.default_rng(0).uniform(0.1, 0.5, (6, 3, 4, 4)).astype(np.float32))
    out = T.ColorJitter(brightness=0.5)(x).cpu().numpy()
    ratio = out / x.cpu().numpy()
    per_image = ratio.reshape(6, -1)
    np.testing.assert_allclose(per_image, per_image[:, :1].repeat(per_image.shape[1], 1), rtol=1e-5)
    assert 0.5 <= per_image.min() and per_image.max() <= 1.5 and per_image[:, 0].std() > 0


def test_color_jitter_contrast_and_saturation():
    gray = mg.tensor(np.random.default_rng(1).uniform(0.4, 0.6, (5, 1, 6, 6)).astype(np.float32))
    out = T.ColorJitter(contrast=0.5)(gray).cpu().numpy()  # blending with the mean keeps the mean
    np.testing.assert_allclose(out.mean(axis=(1, 2, 3)), gray.cpu().numpy().mean(axis=(1, 2, 3)), atol=1e-6)
    np.testing.assert_array_equal(T.ColorJitter(saturation=0.9)(gray).cpu().numpy(), gray.cpu().numpy())
    rgb = _images(2, 3, 4, 4)
    desaturated = T.ColorJitter(saturation=(0.0, 0.0))(rgb).cpu().numpy()
    luma = np.tensordot(np.array([0.2989, 0.587, 0.114], np.float32), rgb.cpu().numpy(), axes=([0], [1]))
    np.testing.assert_allclose(desaturated, np.repeat(luma[:, None], 3, axis=1), atol=1e-6)
    bright = T.ColorJitter(brightness=(3, 3), contrast=(2, 2))(rgb).cpu().numpy()
    assert bright.min() >= 0 and bright.max() <= 1


def test_color_jitter_refuses_negative_factors_as_torchvision():
    for bad in ({"brightness": (-1.0, 2.0)}, {"contrast": (-0.5, 0.5)}, {"saturation": (-2, -1)}):
        with pytest.raises(ValueError, match="ColorJitter: .* must be a pair of values at least 0"):
            T.ColorJitter(**bad)


# ---------------------------------------------------------------------------- misc
def test_compose_shapes_graph_and_reproducibility():
    pipeline = T.Compose(
        [T.RandomCrop(8, padding=2), T.RandomHorizontalFlip(), T.ColorJitter(0.2, 0.2), T.Normalize((0.5,), (0.5,))]
    )
    assert T.batchable(pipeline) and T.batchable(T.Compose([T.ToTensor(), pipeline]))
    assert not T.batchable(T.Compose([lambda x: x]))
    x = _images(5, 1, 8, 8).requires_grad_()
    mg.manual_seed(4)
    out = pipeline(x)
    assert out.shape == (5, 1, 8, 8) and out.grad_fn is None and not out.requires_grad
    assert -1 <= out.cpu().numpy().min() and out.cpu().numpy().max() <= 1
    mg.manual_seed(4)
    np.testing.assert_array_equal(pipeline(x).cpu().numpy(), out.cpu().numpy())
    assert pipeline(x[0]).shape == (1, 8, 8)
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        T.RandomHorizontalFlip()(mg.zeros(3, 3))


# ------------------------------------------------------ self-supervised augmentations
def test_random_resized_crop_shapes_ranges_and_boxes():
    crop = T.RandomResizedCrop((6, 8))
    assert crop.scale == (0.08, 1.0) and crop.ratio == (3 / 4, 4 / 3)  # torchvision's defaults
    x = _images(5, 3, 20, 24)
    out = crop(x).cpu().numpy()
    assert out.shape == (5, 3, 6, 8) and crop(x[0]).shape == (3, 6, 8)
    assert 0 <= out.min() and out.max() <= 1
    mg.manual_seed(0)
    top, left, h, w = crop.boxes(200, 20, 24)
    assert (top >= 0).all() and (left >= 0).all() and (top + h <= 20).all() and (left + w <= 24).all()
    area = h * w / (20 * 24)
    assert area.min() >= 0.08 - 0.05 and area.max() <= 1.0 and area.std() > 0.1  # within scale, up to rounding
    assert (w / h).min() >= 3 / 4 - 0.1 and (w / h).max() <= 4 / 3 + 0.1


def test_random_resized_crop_of_the_whole_image_is_a_bilinear_resize():
    torch = pytest.importorskip("torch")
    x = _images(2, 3, 20, 24)
    for size in ((10, 12), (40, 48)):  # shrinking and enlarging
        out = T.RandomResizedCrop(size, scale=(1.0, 1.0), ratio=(1.2, 1.2))(x).cpu().numpy()
        resized = torch.nn.functional.interpolate(torch.tensor(x.cpu().numpy()), size=size, mode="bilinear")
        np.testing.assert_allclose(out, resized.cpu().numpy(), atol=1e-5)


def test_random_resized_crop_falls_back_to_the_central_crop():
    top, left, h, w = T.RandomResizedCrop(4, scale=(0.9, 1.0), ratio=(4.0, 4.0)).boxes(3, 8, 8)  # never fits
    np.testing.assert_array_equal(np.stack([top, left, h, w]), [[3] * 3, [0] * 3, [2] * 3, [8] * 3])


def test_gaussian_blur_matches_a_reflect_padded_convolution():
    torch = pytest.importorskip("torch")
    x = _images(2, 3, 9, 10).cpu().numpy().astype(np.float64)
    out = T.GaussianBlur((5, 3), sigma=1.3)(mg.tensor(x)).cpu().numpy()
    kernels = [np.exp(-0.5 * (np.arange(k) - k // 2) ** 2 / 1.3**2) for k in (5, 3)]
    kernel = np.outer(kernels[0] / kernels[0].sum(), kernels[1] / kernels[1].sum())
    padded = torch.nn.functional.pad(torch.tensor(x), (1, 1, 2, 2), mode="reflect")
    weight = torch.tensor(kernel).expand(3, 1, 5, 3)
    np.testing.assert_allclose(out, torch.nn.functional.conv2d(padded, weight, groups=3).cpu().numpy(), atol=1e-12)


def test_gaussian_blur_keeps_constants_and_draws_sigma_per_image():
    np.testing.assert_allclose(T.GaussianBlur(3)(mg.full((2, 1, 5, 5), 0.3)).cpu().numpy(), 0.3, rtol=1e-6)
    x = mg.tensor(np.repeat(_images(1, 1, 12, 12).cpu().numpy(), 4, axis=0))
    mg.manual_seed(0)
    out = T.GaussianBlur(7, sigma=(0.5, 2.0))(x).cpu().numpy()
    assert out.shape == x.shape and 0 <= out.min() and out.max() <= 1
    assert len({round(float(image.std()), 6) for image in out}) == 4  # four different sigmas
    with pytest.raises(ValueError, match="GaussianBlur: kernel_size must be positive and odd"):
        T.GaussianBlur(4)
    with pytest.raises(ValueError, match="GaussianBlur: kernel_size"):
        T.GaussianBlur(9)(mg.zeros(1, 3, 3))


def test_color_jitter_on_grayscale_images_stays_in_range():
    gray = _images(6, 1, 8, 8)
    out = T.ColorJitter(brightness=0.4, contrast=0.4)(gray).cpu().numpy()
    assert out.shape == (6, 1, 8, 8) and 0 <= out.min() and out.max() <= 1 and not np.allclose(out, gray.cpu().numpy())


def test_random_apply_chooses_per_image():
    x = _images(32, 1, 6, 6)
    flip = T.RandomHorizontalFlip(p=1.0)
    np.testing.assert_array_equal(T.RandomApply([flip], p=0.0)(x).cpu().numpy(), x.cpu().numpy())
    np.testing.assert_array_equal(T.RandomApply([flip], p=1.0)(x).cpu().numpy(), flip(x).cpu().numpy())
    out = T.RandomApply([flip], p=0.5)(x).cpu().numpy()
    flipped = [np.array_equal(o, f) for o, f in zip(out, flip(x).cpu().numpy())]
    kept = [np.array_equal(o, i) for o, i in zip(out, x.cpu().numpy())]
    assert all(f or k for f, k in zip(flipped, kept)) and 0 < sum(flipped) < 32
    assert T.RandomApply([flip], p=1.0)(x[0]).shape == (1, 6, 6)
    assert not T.batchable(T.RandomApply([lambda image: image]))
    with pytest.raises(RuntimeError, match="RandomApply: on a batch the transforms must keep its shape"):
        T.RandomApply([T.RandomCrop(4)], p=1.0)(x)


def _simclr_views(size=8):
    return T.TwoViews(
        T.Compose(
            [
                T.RandomResizedCrop(size),
                T.RandomHorizontalFlip(),
                T.RandomApply([T.ColorJitter(0.4, 0.4)], p=0.8),
                T.RandomApply([T.GaussianBlur(3)], p=0.5),
            ]
        )
    )


def test_two_views_differ_and_repeat_with_the_seed():
    views = _simclr_views()
    assert T.batchable(views)
    x = _images(4, 3, 12, 12)
    mg.manual_seed(5)
    a, b = views(x)
    assert a.shape == b.shape == (4, 3, 8, 8) and 0 <= min(a.cpu().numpy().min(), b.cpu().numpy().min())
    assert max(a.cpu().numpy().max(), b.cpu().numpy().max()) <= 1
    assert all(not np.allclose(u, v) for u, v in zip(a.cpu().numpy(), b.cpu().numpy()))
    mg.manual_seed(5)
    again = views(x)
    np.testing.assert_array_equal(again[0].cpu().numpy(), a.cpu().numpy())
    np.testing.assert_array_equal(again[1].cpu().numpy(), b.cpu().numpy())
    single = views(x[0])
    assert isinstance(single, tuple) and single[0].shape == (3, 8, 8)


class _Images(mg.data.Dataset):
    """Images (N, C, H, W) and labels, one sample at a time through ``transform``."""

    def __init__(self, images, transform):
        self.images, self.transform = images, transform

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        return self.transform(mg.tensor(self.images[index])), index


@pytest.mark.parametrize("num_workers", [0, 2])
def test_two_view_pipeline_in_the_data_loader(num_workers):
    images = np.random.default_rng(6).random((10, 1, 12, 12)).astype(np.float32)
    dataset = _Images(images, _simclr_views())

    def batches(workers):
        loader = mg.data.DataLoader(dataset, batch_size=4, shuffle=True, seed=3, num_workers=workers)
        return [((a.cpu().numpy(), b.cpu().numpy()), y.cpu().numpy()) for (a, b), y in loader]

    reference = batches(0)
    assert [y.shape for _, y in reference] == [(4,), (4,), (2,)]
    for (a, b), _ in reference:
        assert a.shape[1:] == (1, 8, 8) and not np.allclose(a, b)
    for ((a, b), y), ((c, d), z) in zip(reference, batches(num_workers), strict=True):
        np.testing.assert_array_equal(y, z)
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)
