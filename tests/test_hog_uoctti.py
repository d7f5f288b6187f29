"""``hog(variant="uoctti")`` is VLFeat 0.9.21's ``vl_hog`` (UoCTTI): live libvl and committed outputs."""
from pathlib import Path

import numpy as np
import pytest
import torch

from torch_backend.hog import feature_channels, hog, hog_cell_grid, num_feature_channels, uoctti_flip_permutation

DATA = Path(__file__).parent / "data"
TOLERANCE = 1e-5  # the bar; measured ~1e-6 (libvl accumulates in float32)


def _ours(image_chw: np.ndarray, cell_size, num_bins, bilinear, dtype=torch.float64) -> np.ndarray:
    tensor = torch.from_numpy(np.ascontiguousarray(image_chw)).to(dtype)[None]
    return hog(tensor, "uoctti", cell_size, num_bins, bilinear)[0].double().numpy()


def _natural_images():
    from skimage import data

    return {
        "camera_gray_61x83": data.camera()[100:161, 150:233][None] / 255.0,
        "astronaut_rgb_70x45": data.astronaut()[40:110, 200:245].transpose(2, 0, 1) / 255.0,
        "coffee_rgb_53x64": data.coffee()[100:153, 200:264].transpose(2, 0, 1) / 255.0,
    }


def _random_images():
    rng = np.random.default_rng(2024)
    return {"random_gray_37x29": rng.random((1, 37, 29)), "random_rgb_24x42": rng.random((3, 24, 42))}


# ---------------------------------------------------------------------------------------------
# Committed references (run everywhere)
# ---------------------------------------------------------------------------------------------
def _reference_cases():
    from vlfeat_ref import REFERENCE_CASES

    return sorted(REFERENCE_CASES.items())


@pytest.mark.parametrize("name,params", _reference_cases())
def test_matches_committed_vlfeat_outputs(name, params):
    image = np.load(DATA / f"vlfeat_{name}_image.npy")
    expected = np.load(DATA / f"vlfeat_{name}_features.npy")
    ours = _ours(image.astype(np.float64), params["cell_size"], params["num_bins"], params["bilinear"])
    assert ours.shape == expected.shape
    assert np.abs(ours - expected).max() <= TOLERANCE
    # The comparison is not vacuous: the features carry signal at the tolerance's scale.
    assert expected.max() > 0.05


# ---------------------------------------------------------------------------------------------
# Live libvl
# ---------------------------------------------------------------------------------------------
@pytest.mark.vlfeat
@pytest.mark.parametrize("source", ["natural", "random"])
@pytest.mark.parametrize("cell_size", [4, 5, 8])
@pytest.mark.parametrize("bilinear", [False, True], ids=["hard", "bilinear"])
def test_equals_live_vlfeat(source, cell_size, bilinear):
    from vlfeat_ref import vlfeat_hog

    images = _natural_images() if source == "natural" else _random_images()
    for name, image in images.items():
        expected = vlfeat_hog(image.astype(np.float32), cell_size, 9, "uoctti", bilinear)
        ours = _ours(image, cell_size, 9, bilinear)
        assert ours.shape == expected.shape, name
        error = np.abs(ours - expected).max()
        assert error <= TOLERANCE, f"{name}: max abs diff {error:.2e}"


@pytest.mark.vlfeat
@pytest.mark.parametrize("num_bins", [1, 2, 4, 7, 12])
@pytest.mark.parametrize("bilinear", [False, True], ids=["hard", "bilinear"])
def test_equals_live_vlfeat_other_bin_counts(num_bins, bilinear):
    from vlfeat_ref import vlfeat_hog

    image = _natural_images()["astronaut_rgb_70x45"]
    expected = vlfeat_hog(image.astype(np.float32), 6, num_bins, "uoctti", bilinear)
    ours = _ours(image, 6, num_bins, bilinear)
    assert np.abs(ours - expected).max() <= TOLERANCE


@pytest.mark.vlfeat
@pytest.mark.parametrize("bilinear", [False, True], ids=["hard", "bilinear"])
def test_float32_input_equals_live_vlfeat(bilinear):
    from vlfeat_ref import vlfeat_hog

    image = _natural_images()["coffee_rgb_53x64"].astype(np.float32)
    expected = vlfeat_hog(image, 8, 9, "uoctti", bilinear)
    ours = _ours(image, 8, 9, bilinear, dtype=torch.float32)
    assert np.abs(ours - expected).max() <= TOLERANCE


@pytest.mark.vlfeat
def test_vlfeat_wrapper_layouts_agree():
    """Our ctypes wrapper reads libvl the same way in row-major and MATLAB's column-major mode."""
    from vlfeat_ref import vlfeat_hog

    image = _random_images()["random_rgb_24x42"]
    for bilinear in (False, True):
        rows = vlfeat_hog(image, 5, 9, "uoctti", bilinear)
        columns = vlfeat_hog(image, 5, 9, "uoctti", bilinear, transposed=True)
        assert np.abs(rows - columns).max() < 1e-6


@pytest.mark.vlfeat
def test_committed_references_are_current():
    """The committed .npy files are what libvl produces today (guards against stale data)."""
    import importlib.util

    from vlfeat_ref import REFERENCE_CASES, vlfeat_hog

    spec = importlib.util.spec_from_file_location("make_vlfeat_refs", DATA / "make_vlfeat_refs.py")
    maker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(maker)
    for name, params in REFERENCE_CASES.items():
        image = maker.case_image(name)
        np.testing.assert_array_equal(image, np.load(DATA / f"vlfeat_{name}_image.npy"))
        live = vlfeat_hog(image, params["cell_size"], params["num_bins"], "uoctti", params["bilinear"])
        np.testing.assert_allclose(live, np.load(DATA / f"vlfeat_{name}_features.npy"), atol=1e-7)


@pytest.mark.vlfeat
def test_flip_permutation_is_vlfeats():
    from vlfeat_ref import vlfeat_permutation

    for num_bins in (4, 9):
        np.testing.assert_array_equal(uoctti_flip_permutation(num_bins).numpy(), vlfeat_permutation(num_bins))


# ---------------------------------------------------------------------------------------------
# Properties that need no reference
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bilinear", [False, True], ids=["hard", "bilinear"])
@pytest.mark.parametrize("channels", [1, 3])
def test_left_right_flip_permutes_channels(bilinear, channels):
    """hog(flip(x)) == flip(hog(x))[perm] when the cell grid is symmetric (W a multiple of c)."""
    rng = np.random.default_rng(11)
    image = torch.from_numpy(rng.random((2, channels, 27, 40)))
    features = hog(image, "uoctti", 5, 9, bilinear)
    flipped = hog(image.flip(-1), "uoctti", 5, 9, bilinear)
    expected = features.flip(-1)[:, uoctti_flip_permutation(9)]
    assert torch.allclose(flipped, expected, atol=1e-6, rtol=0)
    # ...and the permutation matters: without it the comparison fails.
    assert not torch.allclose(flipped, features.flip(-1), atol=1e-3)


def test_shapes_channels_and_grid():
    image = torch.rand(2, 3, 45, 61, dtype=torch.float64)
    out = hog(image, "uoctti", 8)
    assert out.shape == (2, 31, 6, 8) == (2, num_feature_channels("uoctti"), *hog_cell_grid(45, 61, "uoctti", 8))
    assert out.dtype == torch.float64
    assert len(feature_channels("uoctti", 9)) == 31
    assert hog(image.float(), "uoctti", 8).dtype == torch.float32
    assert float(out.max()) <= 1.0 and float(out.min()) >= 0.0


def test_batch_items_are_independent():
    images = torch.rand(3, 3, 33, 35, dtype=torch.float64)
    batched = hog(images, "uoctti", 6, 9, True)
    for i in range(3):
        torch.testing.assert_close(batched[i : i + 1], hog(images[i : i + 1], "uoctti", 6, 9, True))


def test_gray_equals_rgb_with_equal_channels():
    gray = torch.rand(1, 1, 30, 30, dtype=torch.float64)
    torch.testing.assert_close(hog(gray, "uoctti", 6), hog(gray.expand(1, 3, 30, 30), "uoctti", 6))


def test_vlfeat_rounding_only_moves_bilinear_values_slightly():
    image = torch.from_numpy(_random_images()["random_rgb_24x42"])[None]
    rounded = hog(image, "uoctti", 4, 9, True)
    exact = hog(image, "uoctti", 4, 9, True, vlfeat_rounding=False)
    assert (rounded - exact).abs().max() < 2e-3
    hard = hog(image, "uoctti", 4, 9, False)
    torch.testing.assert_close(hard, hog(image, "uoctti", 4, 9, False, vlfeat_rounding=False))
