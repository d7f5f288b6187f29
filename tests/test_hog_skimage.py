"""torch_backend.hog_skimage.skimage_hog against scikit-image's own ``skimage.feature.hog``."""
import itertools
import warnings

import numpy as np
import pytest
import torch

skimage = pytest.importorskip("skimage")
from skimage import data  # noqa: E402
from skimage.feature import hog as reference_hog  # noqa: E402

from torch_backend.hog_skimage import skimage_hog  # noqa: E402

BLOCK_NORMS = ("L1", "L1-sqrt", "L2", "L2-Hys")
# scikit-image sums each cell in a float32 accumulator; everything else is float64 on both sides.
TOLERANCE = 1e-6


def _images():
    rng = np.random.default_rng(20151007)
    astronaut = data.astronaut()
    return {
        # 8-bit values (gradients are integers, many exactly on 45/90 degree bin edges).
        "camera_uint8": data.camera()[100:181, 150:243],
        "astronaut_gray_float": astronaut[20:119, 170:301].mean(axis=-1) / 255.0,
        "random_gray": rng.random((53, 67)),
        "astronaut_rgb_float": astronaut[40:107, 200:291].astype(np.float64) / 255.0,
        "astronaut_rgb_uint8": astronaut[150:211, 90:173],
        "random_rgb": rng.random((45, 58, 3)),
    }


IMAGES = _images()
# (orientations, pixels_per_cell, cells_per_block): edges at 45/90 degrees (4, 6, 12 bins),
# non-square cells and blocks, image sizes that are not multiples of the cell.
GEOMETRIES = [
    (9, (8, 8), (3, 3)),
    (4, (6, 5), (2, 2)),
    (6, (4, 4), (1, 2)),
    (7, (5, 7), (2, 1)),
    (12, (8, 8), (2, 2)),
]


def _channel_axis(image):
    return -1 if image.ndim == 3 else None


@pytest.mark.parametrize("block_norm", BLOCK_NORMS)
@pytest.mark.parametrize("name", sorted(IMAGES))
def test_equals_skimage(name, block_norm):
    image = IMAGES[name]
    worst = 0.0
    for orientations, cell, block in GEOMETRIES:
        for transform_sqrt in (False, True):
            kwargs = dict(
                orientations=orientations,
                pixels_per_cell=cell,
                cells_per_block=block,
                block_norm=block_norm,
                transform_sqrt=transform_sqrt,
                channel_axis=_channel_axis(image),
            )
            expected = reference_hog(image, **kwargs)
            got = skimage_hog(image, **kwargs)
            assert got.dtype == torch.float64
            assert tuple(got.shape) == expected.shape
            worst = max(worst, float(np.abs(got.numpy() - expected).max()))
    assert worst <= TOLERANCE, f"{name} {block_norm}: max abs diff {worst:.3g}"


@pytest.mark.parametrize("block_norm", BLOCK_NORMS)
def test_feature_vector_false_layout(block_norm):
    image = IMAGES["astronaut_rgb_float"]
    kwargs = dict(
        pixels_per_cell=(6, 7), cells_per_block=(2, 3), block_norm=block_norm, feature_vector=False
    )
    expected = reference_hog(image, channel_axis=-1, **kwargs)
    got = skimage_hog(torch.from_numpy(image), channel_axis=-1, **kwargs)
    assert expected.ndim == 5 and tuple(got.shape) == expected.shape
    np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=TOLERANCE)


def test_channel_axis_first_and_torch_input():
    image = IMAGES["random_rgb"]
    expected = reference_hog(image, pixels_per_cell=(5, 5), cells_per_block=(2, 2), channel_axis=-1)
    channels_first = torch.from_numpy(np.moveaxis(image, -1, 0).copy())
    got = skimage_hog(channels_first, pixels_per_cell=(5, 5), cells_per_block=(2, 2), channel_axis=0)
    np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=TOLERANCE)


def test_float32_input_stays_float32_and_close():
    image = IMAGES["astronaut_gray_float"].astype(np.float32)
    expected = reference_hog(image, pixels_per_cell=(6, 6), cells_per_block=(2, 2), block_norm="L2")
    got = skimage_hog(torch.from_numpy(image), pixels_per_cell=(6, 6), cells_per_block=(2, 2),
                      block_norm="L2")
    assert got.dtype == torch.float32 and expected.dtype == np.float32
    np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize("orientations", [4, 9, 12])
def test_float32_8bit_values_on_bin_edges(orientations):
    # 8-bit values: many gradients lie exactly on the 45/90 degree edges, where float32 angles
    # must not decide the bin (scikit-image bins float32 gradients with float64 angles).
    image = IMAGES["astronaut_rgb_uint8"].astype(np.float32)
    kwargs = dict(orientations=orientations, pixels_per_cell=(5, 6), cells_per_block=(2, 2),
                  block_norm="L1", channel_axis=-1)
    expected = reference_hog(image, **kwargs)
    got = skimage_hog(torch.from_numpy(image), **kwargs)
    np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=TOLERANCE)


# Crops of the astronaut where torch's own sqrt / hypot / atan2 rounding once flipped
# scikit-image's discrete choices: channel ties between ``(a - b) / 255`` in two channels
# (rows 152-176), bin edges hit after ``sqrt`` (59.99999999999999 degrees, 12 bins), float32 sqrt.
REGRESSION_CROPS = {
    "rgb_ties": (slice(152, 184), slice(232, 272)),
    "sqrt_edges": (slice(168, 200), slice(132, 150)),
    "sqrt_gray": (slice(32, 64), slice(312, 496)),
}


@pytest.mark.parametrize("crop", sorted(REGRESSION_CROPS))
@pytest.mark.parametrize("dtype", ["uint8", "float32", "float64"])
@pytest.mark.parametrize("color", [False, True])
def test_rounding_sensitive_crops(crop, dtype, color):
    image = data.astronaut()[REGRESSION_CROPS[crop]]
    image = _as_dtype(image if color else image.mean(axis=-1).astype(np.uint8), dtype)
    for orientations, cell, block, norm, sqrt in [(9, (8, 8), (1, 1), "L1", True),
                                                   (9, (8, 8), (1, 1), "L1", False),
                                                   (12, (6, 6), (3, 3), "L2-Hys", True)]:
        kwargs = dict(orientations=orientations, pixels_per_cell=cell, cells_per_block=block,
                      block_norm=norm, transform_sqrt=sqrt, channel_axis=-1 if color else None)
        got = skimage_hog(image, **kwargs)
        assert got.dtype == (torch.float32 if dtype == "float32" else torch.float64)
        np.testing.assert_allclose(got.numpy(), reference_hog(image, **kwargs), rtol=0, atol=TOLERANCE)


def test_visualize_matches_skimage_picture():
    image = IMAGES["astronaut_gray_float"]
    for cell in [(8, 8), (6, 9), (5, 5)]:
        expected_features, expected_picture = reference_hog(
            image, orientations=7, pixels_per_cell=cell, cells_per_block=(2, 2), visualize=True
        )
        features, picture = skimage_hog(
            image, orientations=7, pixels_per_cell=cell, cells_per_block=(2, 2), visualize=True
        )
        np.testing.assert_allclose(features.numpy(), expected_features, rtol=0, atol=TOLERANCE)
        assert tuple(picture.shape) == expected_picture.shape
        np.testing.assert_allclose(picture.numpy(), expected_picture, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("channel_axis", [None, -1])
def test_batch_equals_per_image_calls(channel_axis):
    rng = np.random.default_rng(1)
    shape = (3, 29, 34) + (() if channel_axis is None else (3,))
    images = torch.from_numpy(rng.random(shape))
    kwargs = dict(pixels_per_cell=(5, 6), cells_per_block=(2, 2), block_norm="L1-sqrt",
                  channel_axis=channel_axis)
    batched = skimage_hog(images, **kwargs)
    single = torch.stack([skimage_hog(image, **kwargs) for image in images])
    assert batched.shape == single.shape
    torch.testing.assert_close(batched, single, rtol=0, atol=1e-12)
    batched_5d, picture = skimage_hog(images, feature_vector=False, visualize=True, **kwargs)
    assert batched_5d.shape[0] == 3 and batched_5d.ndim == 6
    assert tuple(picture.shape) == (3, 29, 34)


@pytest.mark.parametrize("block_norm", BLOCK_NORMS)
@pytest.mark.parametrize("transform_sqrt", [False, True])
def test_gradcheck(block_norm, transform_sqrt):
    generator = torch.Generator().manual_seed(7)
    # A batch of two RGB images so that the batch and the dominant-channel paths are checked too.
    image = torch.rand(2, 9, 10, 3, dtype=torch.float64, generator=generator) + 0.01
    image.requires_grad_(True)

    def features(x):
        return skimage_hog(x, orientations=5, pixels_per_cell=(3, 3), cells_per_block=(2, 2),
                           block_norm=block_norm, transform_sqrt=transform_sqrt, channel_axis=-1)

    assert torch.autograd.gradcheck(features, (image,), eps=1e-6, atol=1e-5, fast_mode=True)


@pytest.mark.parametrize("block_norm", BLOCK_NORMS)
def test_gradcheck_full_jacobian_tiny_gray(block_norm):
    generator = torch.Generator().manual_seed(3)
    image = torch.rand(7, 8, dtype=torch.float64, generator=generator).requires_grad_(True)

    def features(x):
        return skimage_hog(x, orientations=4, pixels_per_cell=(3, 3), cells_per_block=(2, 2),
                           block_norm=block_norm)

    assert torch.autograd.gradcheck(features, (image,), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("block_norm", BLOCK_NORMS)
@pytest.mark.parametrize("value", [0.0, 0.5])
def test_gradients_finite_on_constant_and_binary_images(block_norm, value):
    constant = torch.full((2, 16, 17), value, dtype=torch.float64, requires_grad=True)
    binary = torch.zeros(16, 17, 3, dtype=torch.float64)
    binary[5:11, 4:9] = 1.0
    binary.requires_grad_(True)
    for image, axis in ((constant, None), (binary, -1)):
        out = skimage_hog(image, pixels_per_cell=(4, 4), cells_per_block=(2, 2),
                          block_norm=block_norm, transform_sqrt=True, channel_axis=axis)
        assert torch.isfinite(out).all()
        (out * torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)).sum().backward()
        assert torch.isfinite(image.grad).all()
    # The binary square has edges: its gradient must actually reach the image.
    assert binary.grad.abs().sum() > 0


@pytest.mark.parametrize(
    "image, kwargs, message",
    [
        (np.zeros((2, 3, 30, 30)), {}, "layout"),
        (np.zeros((30, 30)), {"channel_axis": -1}, "layout"),
        (np.zeros((30, 30, 3)), {"channel_axis": 3}, "channel_axis"),
        (np.zeros((10, 30)), {}, "too small"),
        (np.zeros((0, 30)), {}, "empty"),
        (np.full((30, 30), np.nan), {}, "NaN"),
        (np.full((30, 30), -1.0), {"transform_sqrt": True}, "non-negative"),
        (np.zeros((30, 30)), {"block_norm": "L3"}, "block_norm"),
        (np.zeros((30, 30)), {"pixels_per_cell": (0, 8)}, "pixels_per_cell"),
        (np.zeros((30, 30)), {"cells_per_block": 3}, "cells_per_block"),
        (np.zeros((30, 30)), {"orientations": 0}, "orientations"),
        (np.zeros((30, 30), dtype=np.complex128), {}, "dtype"),
        ([[0.0] * 30] * 30, {}, "numpy.ndarray"),
        (np.zeros((30, 30)), {"visualize": True, "pixels_per_cell": (1, 8),
                              "cells_per_block": (1, 1)}, "visualize"),
    ],
)
def test_bad_input_raises_clear_value_error(image, kwargs, message):
    with pytest.raises(ValueError, match=message):
        skimage_hog(image, **kwargs)


# ----------------------------------------------------------------------------------------------
# Exhaustive sweep: every bundled scikit-image image, gray and colour, three dtypes, odd sizes
# ----------------------------------------------------------------------------------------------
SWEEP_ORIENTATIONS = (3, 4, 6, 7, 9, 12, 18)
SWEEP_CELLS = ((8, 8), (6, 5), (4, 4), (7, 3), (5, 9))
SWEEP_BLOCKS = ((1, 1), (2, 2), (3, 3), (2, 1), (1, 3))
# (rows, cols) crops: a large one and odd sizes that are not multiples of any cell.
SWEEP_SIZES = ((96, 128), (61, 75), (37, 53))


def _as_dtype(image, dtype):
    """uint8 as is, floats as scikit-image users pass them (``/ 255`` for 8-bit data)."""
    if dtype == "uint8" or image.dtype.kind not in "ui":
        return image.astype(dtype) if dtype != "uint8" and image.dtype.kind == "f" else image
    return (image / 255.0).astype(dtype)


def _bundled_images():
    """Every image in ``skimage.data`` that ships with the package, as ``name -> array``."""
    images = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in data.__all__:
            loader = getattr(data, name)
            if not callable(loader) or name in ("download_all", "file_hash", "data_dir"):
                continue
            try:
                image = loader()
            except (Exception, pytest.skip.Exception):  # needs pooch / a download: not bundled
                continue
            if isinstance(image, np.ndarray) and image.ndim in (2, 3):
                images[name] = image[0] if name == "lfw_subset" else image
    return images


def _sweep_cases(image):
    """``(label, array, channel_axis)`` for the gray and (if any) colour versions, per dtype/size."""
    versions = [("gray", image if image.ndim == 2 else image.mean(axis=-1).astype(image.dtype), None)]
    if image.ndim == 3:
        versions.append((f"{image.shape[-1]}ch", image, -1))
    for (color, array, axis), (rows, cols) in itertools.product(versions, SWEEP_SIZES):
        top, left = max(0, (array.shape[0] - rows) // 3), max(0, (array.shape[1] - cols) // 2)
        crop = array[top : top + rows, left : left + cols]
        dtypes = ("float32", "float64") if crop.dtype.kind == "f" else (crop.dtype.name, "float32", "float64")
        for dtype in dtypes:
            yield f"{color} {dtype}", _as_dtype(crop, dtype), axis


def sweep_worst_differences():
    """``{(colour+dtype, block_norm, transform_sqrt): worst abs difference}`` over everything."""
    worst = {}
    for name, image in sorted(_bundled_images().items()):
        for label, array, axis in _sweep_cases(image):
            options = itertools.product(SWEEP_ORIENTATIONS, SWEEP_CELLS, (False, True))
            for i, (orientations, cell, sqrt) in enumerate(options):
                block = SWEEP_BLOCKS[i % len(SWEEP_BLOCKS)]
                if array.shape[0] < cell[0] * block[0] or array.shape[1] < cell[1] * block[1]:
                    continue
                kwargs = dict(orientations=orientations, pixels_per_cell=cell, cells_per_block=block,
                              block_norm=BLOCK_NORMS[(i // 2) % 4], transform_sqrt=sqrt,
                              channel_axis=axis, feature_vector=i % 3 != 0, visualize=i % 5 == 0)
                expected, got = reference_hog(array, **kwargs), skimage_hog(array, **kwargs)
                if kwargs["visualize"]:
                    (expected, expected_picture), (got, picture) = expected, got
                    key = (label, "visualize picture", sqrt)
                    diff = float(np.abs(picture.numpy() - expected_picture).max() / max(1.0, np.abs(expected_picture).max()))
                    worst[key] = max(worst.get(key, 0.0), diff)
                assert tuple(got.shape) == expected.shape and got.numpy().dtype == expected.dtype, (name, kwargs)
                key = (label, kwargs["block_norm"], sqrt)
                worst[key] = max(worst.get(key, 0.0), float(np.abs(got.numpy() - expected).max()))
    return worst


@pytest.mark.slow
def test_sweep_all_bundled_images():
    worst = sweep_worst_differences()
    for key in sorted(worst):
        print(*key, f"{worst[key]:.3g}")
    assert max(worst.values()) <= TOLERANCE, max(worst.items(), key=lambda item: item[1])


def test_module_twin_in_sequential():
    from torch_backend.hog import SkimageHOG

    module = SkimageHOG(orientations=7, pixels_per_cell=(6, 6), cells_per_block=(2, 2), channel_axis=0)
    assert "orientations=7" in repr(module) and "channel_axis=0" in repr(module)
    image = IMAGES["astronaut_rgb_float"]
    batch = torch.from_numpy(np.moveaxis(image, -1, 0).copy())[None]  # (1, C, H, W)
    got = torch.nn.Sequential(module)(batch)[0]
    expected = reference_hog(image, orientations=7, pixels_per_cell=(6, 6), cells_per_block=(2, 2), channel_axis=-1)
    np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=TOLERANCE)
