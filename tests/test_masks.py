"""Tests of torch_backend.masks: mask validation, alpha, boxes, GrabCut-from-box, moments."""
import builtins

import numpy as np
import pytest
import torch

from torch_backend import masks


def test_as_mask_accepts_layouts_and_two_level_masks():
    base = np.zeros((6, 8))
    base[2:4, 3:6] = 0.2  # a 0/v label mask: v is object whatever its scale
    for candidate in (base, base[..., None], base[None], torch.from_numpy(base)[None, None], (base * 255).astype(np.uint8)):
        result = masks.as_mask(candidate, (6, 8))
        assert result.dtype == bool and result.shape == (6, 8) and result.sum() == 6


_HALF_SCALE_CASES = {  # each row: 0, a quarter, just below half, half, three quarters, full
    np.uint8: [0, 64, 127, 128, 192, 255],
    np.uint16: [0, 16384, 32767, 32768, 49152, 65535],
    np.float32: [0.0, 0.25, 0.499, 0.5, 0.75, 1.0],
    np.float64: [0.0, 0.25, 0.499, 0.5, 0.75, 1.0],
    np.int64: [0, 64, 127, 128, 192, 255],  # no fixed scale: 255 holds the values
}


@pytest.mark.parametrize("dtype", list(_HALF_SCALE_CASES))
def test_mask_values_are_coverage_at_half_scale(dtype):
    """Soft values: object from half of full scale up (uint8 >= 128, uint16 >= 32768, float >= 0.5)."""
    values = np.array(_HALF_SCALE_CASES[dtype])
    mask = np.tile(values.astype(dtype), (2, 1))
    expected = np.tile([False, False, False, True, True, True], (2, 1))
    np.testing.assert_array_equal(masks.as_mask(mask, (2, 6)), expected)
    np.testing.assert_array_equal(masks.coverage_mask(mask), expected)
    alpha = np.concatenate([mask, np.zeros((40, 6), dtype)])  # enough background to be a cut-out
    np.testing.assert_array_equal(masks.alpha_mask(alpha)[:2], expected)
    assert masks.coverage_mask(mask > 0).sum() == 10  # bool masks are taken as they are


def _disc(size, radius, supersample):
    """Coverage of a disc in a ``size x size`` image: fraction of ``supersample^2`` sub-samples inside."""
    n = size * supersample
    centre = size / 2 + 0.3  # off the pixel grid
    coords = (np.arange(n) + 0.5) / supersample
    inside = (coords[None, :] - centre) ** 2 + (coords[:, None] - centre) ** 2 < radius**2
    return inside.reshape(size, supersample, size, supersample).mean(axis=(1, 3))


@pytest.mark.parametrize("scale, dtype", [(255, np.uint8), (65535, np.uint16), (1.0, np.float32)])
def test_anti_aliased_mask_keeps_the_hard_area(scale, dtype):
    """A disc with a soft edge (coverage per pixel) gives the disc's area within 1 %, and a
    non-zero reading (the old rule) would have grown it by the soft ring."""
    radius = 20.0
    soft = _disc(64, radius, 16)
    values = (np.round(soft * scale) if scale != 1.0 else soft).astype(dtype)
    assert len(np.unique(values)) > 10  # really anti-aliased
    area = masks.as_mask(values, (64, 64)).sum()
    assert abs(area - np.pi * radius**2) <= 0.01 * np.pi * radius**2
    assert (values != 0).sum() > 1.05 * np.pi * radius**2  # what counting non-zero pixels gave
    alpha_area = masks.alpha_mask(values).sum()
    assert alpha_area == area


@pytest.mark.parametrize(
    "mask, message",
    [
        (np.ones((6, 9)), "differs"),
        (np.zeros((6, 8)), "empty"),
        (np.full((6, 8), np.nan), "NaN"),
        (np.ones((2, 6, 8)), r"\(H, W\)"),
    ],
)
def test_as_mask_errors(mask, message):
    with pytest.raises(ValueError, match=message):
        masks.as_mask(mask, (6, 8))


def test_alpha_mask_ignores_unused_alpha():
    assert masks.alpha_mask(np.ones((10, 10))) is None
    assert masks.alpha_mask(np.zeros((10, 10), np.uint8)) is None
    alpha = np.zeros((10, 10), np.uint8)
    alpha[3:7, 3:7] = 255
    assert masks.alpha_mask(alpha).sum() == 16


def test_validate_box_clips_and_rejects():
    assert masks.validate_box((-5, 2, 50, 8), (10, 20)) == (0.0, 2.0, 20.0, 8.0)
    with pytest.raises(ValueError, match="outside"):
        masks.validate_box((30, 0, 40, 5), (10, 20))
    with pytest.raises(ValueError, match="x0 < x1"):
        masks.validate_box((5, 0, 5, 5), (10, 20))
    with pytest.raises(ValueError, match="4 numbers"):
        masks.validate_box((1, 2, 3), (10, 20))
    with pytest.raises(ValueError, match="NaN"):
        masks.validate_box((1, 2, 3, float("nan")), (10, 20))
    with pytest.raises(ValueError, match="less than 2 pixels"):
        masks.validate_box((19.5, 0, 30, 5), (10, 20))


def test_mask_to_box_and_moments():
    mask = np.zeros((10, 20), bool)
    mask[2:5, 4:10] = True
    assert masks.mask_to_box(mask) == (4.0, 2.0, 10.0, 5.0)
    cx, cy, area, radius = masks.mask_moments(mask)
    assert (cx, cy, area) == (7.0, 3.5, 18.0)
    # Radius of gyration of a 6 x 3 grid of unit pixels: sqrt(var_x + var_y) with var = (n^2 - 1) / 12.
    assert radius == pytest.approx(np.sqrt((36 - 1) / 12 + (9 - 1) / 12))
    with pytest.raises(ValueError):
        masks.mask_to_box(np.zeros((3, 3)))


def test_grabcut_separates_object_from_background():
    rng = np.random.default_rng(0)
    photo = rng.uniform(0.0, 0.25, (80, 100, 3))
    truth = np.zeros((80, 100), bool)
    yy, xx = np.mgrid[0:80, 0:100]
    truth[((yy - 40) / 22) ** 2 + ((xx - 50) / 30) ** 2 < 1] = True
    photo[truth] = rng.uniform(0.7, 1.0, (truth.sum(), 3)) * np.array([1.0, 0.5, 0.2])
    result = masks.grabcut_from_box(photo.astype(np.float32), (15, 14, 86, 66))
    iou = (result & truth).sum() / (result | truth).sum()
    assert result.shape == truth.shape and iou > 0.9
    assert not result[:, :14].any()  # nothing outside the box


def test_grabcut_without_opencv_says_how_to_install(monkeypatch):
    real_import = builtins.__import__

    def no_cv2(name, *args, **kwargs):
        if name == "cv2":
            raise ImportError("no cv2")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_cv2)
    with pytest.raises(ImportError, match="opencv-python-headless"):
        masks.grabcut_from_box(np.zeros((20, 20, 3)), (2, 2, 10, 10))


def test_grabcut_from_mask_recovers_thin_parts_from_a_rough_guess():
    rng = np.random.default_rng(1)
    photo = rng.uniform(0.0, 0.3, (80, 100, 3))
    truth = np.zeros((80, 100), bool)
    truth[20:30, 20:80] = True  # a table top
    truth[30:70, 22:26] = True  # and two thin legs
    truth[30:70, 74:78] = True
    photo[truth] = (0.9, 0.6, 0.2)
    guess = np.zeros_like(truth)
    guess[18:32, 18:82] = True
    guess[32:72, 21:28] = True
    guess[32:72, 73:80] = True
    result = masks.grabcut_from_mask(photo.astype(np.float32), guess, (15, 15, 85, 75))
    iou = (result & truth).sum() / (result | truth).sum()
    assert iou > 0.85
    with pytest.raises(ValueError, match="empty"):
        masks.grabcut_from_mask(photo, np.zeros_like(truth))


def test_central_component_keeps_the_piece_nearest_the_centre():
    mask = np.zeros((40, 60), bool)
    mask[15:25, 25:35] = True  # the object, in the middle
    mask[0:5, 0:50] = True  # background that GrabCut kept, larger than the object
    mask[30:38, 50:58] = True
    central = masks.central_component(mask)
    assert central.sum() == 100 and central[20, 30]
    assert masks.mask_to_box(central) == (25.0, 15.0, 35.0, 25.0)
    assert masks.central_component(np.zeros((4, 4), bool)).sum() == 0
