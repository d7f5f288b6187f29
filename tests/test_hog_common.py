"""Properties shared by every ∇HOG variant: gradients (gradcheck, never NaN), input validation."""
import numpy as np
import pytest
import torch

from torch_backend.hog import hog

# (variant, bilinear_orientation, vlfeat_rounding). uoctti+bilinear's default value reproduces
# libvl's float32 acos (not a smooth function of the input at float64 resolution); its gradient
# is that of the exact angle, i.e. of vlfeat_rounding=False, which is what gradcheck can verify.
VARIANTS = [("uoctti", False, True), ("uoctti", True, False), ("dalal", False, True)]
IDS = ["uoctti-hard", "uoctti-bilinear", "dalal"]


@pytest.mark.parametrize("variant,bilinear,rounding", VARIANTS, ids=IDS)
@pytest.mark.parametrize("channels", [1, 3])
def test_gradcheck_float64(variant, bilinear, rounding, channels):
    torch.manual_seed(0)
    image = torch.rand(1, channels, 16, 16, dtype=torch.float64, requires_grad=True)

    def features(x):
        return hog(x, variant, 4, 9, bilinear, vlfeat_rounding=rounding)

    assert torch.autograd.gradcheck(features, (image,), eps=1e-6, atol=1e-5, rtol=1e-4, fast_mode=True)


def test_default_bilinear_gradient_is_the_exact_angles():
    torch.manual_seed(1)
    image = torch.rand(1, 3, 16, 20, dtype=torch.float64, requires_grad=True)
    weights = torch.rand_like(hog(image, "uoctti", 4, 9, True))
    (rounded,) = torch.autograd.grad((hog(image, "uoctti", 4, 9, True) * weights).sum(), image)
    (exact,) = torch.autograd.grad((hog(image, "uoctti", 4, 9, True, vlfeat_rounding=False) * weights).sum(), image)
    # Same derivative formula, evaluated at values that differ by libvl's float32 rounding only.
    assert (rounded - exact).abs().max() < 1e-2 * exact.abs().max()


def _hard_images(dtype=torch.float64):
    """Constant, binary (edges at 0/45/90 degrees: exact bin boundaries), and a 3-level step."""
    size = 24
    y, x = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    images = {
        "constant": torch.full((size, size), 0.5),
        "zeros": torch.zeros(size, size),
        "checkerboard": ((x // 4 + y // 4) % 2).float(),
        "vertical_edge": (x >= 11).float(),
        "horizontal_edge": (y >= 13).float(),
        "diagonal": (x > y).float(),
        "single_pixel": (x == 12).float() * (y == 12).float(),
        "levels": torch.div(x, 8, rounding_mode="floor").float() / 2,
    }
    return {k: v.to(dtype)[None, None] for k, v in images.items()}


@pytest.mark.parametrize("variant,bilinear,rounding", VARIANTS, ids=IDS)
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gradients_finite_on_constant_and_binary_images(variant, bilinear, rounding, channels, dtype):
    for name, image in _hard_images(dtype).items():
        image = image.expand(1, channels, -1, -1).clone().requires_grad_(True)
        features = hog(image, variant, 4, 9, bilinear, vlfeat_rounding=rounding)
        assert torch.isfinite(features).all(), name
        weights = torch.linspace(-1, 1, features.numel(), dtype=dtype).view_as(features)
        (grad,) = torch.autograd.grad((features * weights).sum(), image)
        assert torch.isfinite(grad).all(), f"{variant} {name}: non-finite gradient"
    # Default bilinear rounding too.
    if variant == "uoctti":
        image = _hard_images(dtype)["checkerboard"].requires_grad_(True)
        hog(image, "uoctti", 4, 9, True).sum().backward()
        assert torch.isfinite(image.grad).all()


@pytest.mark.parametrize("variant", ["uoctti", "dalal"])
def test_edges_have_nonzero_gradient(variant):
    """The gradient is not trivially zero: moving an edge changes the features."""
    image = _hard_images()["vertical_edge"].clone() * 0.8 + 0.1
    image.requires_grad_(True)
    features = hog(image, variant, 4)
    weights = torch.rand_like(features, generator=torch.Generator().manual_seed(0))
    (grad,) = torch.autograd.grad((features * weights).sum(), image)
    assert grad.abs().max() > 1e-3


def test_values_outside_unit_range_are_computed():
    image = torch.rand(1, 3, 16, 16, dtype=torch.float64) * 4 - 2
    for variant in ("uoctti", "dalal"):
        assert torch.isfinite(hog(image, variant, 4)).all()


@pytest.mark.parametrize(
    "image,match",
    [
        (np.zeros((1, 1, 16, 16), np.float32), "torch.Tensor"),
        (torch.zeros(1, 16, 16), r"\(B, C, H, W\)"),
        (torch.zeros(1, 1, 1, 16, 16), r"\(B, C, H, W\)"),
        (torch.zeros(1, 1, 16, 16, dtype=torch.int64), "dtype"),
        (torch.zeros(1, 1, 16, 16, dtype=torch.float16), "dtype"),
        (torch.zeros(1, 2, 16, 16), "channels"),
        (torch.zeros(1, 4, 16, 16), "channels"),
        (torch.zeros(1, 1, 7, 16), "smaller"),
        (torch.zeros(1, 1, 16, 7), "smaller"),
        (torch.zeros(0, 1, 16, 16), "empty"),
        (torch.full((1, 1, 16, 16), float("nan")), "NaN"),
        (torch.full((1, 1, 16, 16), float("inf")), "NaN or inf"),
    ],
)
@pytest.mark.parametrize("variant", ["uoctti", "dalal"])
def test_bad_inputs_raise_value_error(image, match, variant):
    with pytest.raises(ValueError, match=match):
        hog(image, variant, 4)


def test_bad_parameters_raise_value_error():
    image = torch.zeros(1, 1, 16, 16)
    with pytest.raises(ValueError, match="variant"):
        hog(image, "sift")
    with pytest.raises(ValueError, match="cell_size"):
        hog(image, "uoctti", 0)
    with pytest.raises(ValueError, match="cell_size"):
        hog(image, "uoctti", 2.5)
    with pytest.raises(ValueError, match="num_bins"):
        hog(image, "dalal", 4, 0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("variant,bilinear", [("uoctti", False), ("uoctti", True), ("dalal", False)])
def test_cuda_matches_cpu(variant, bilinear):
    image = torch.rand(2, 3, 40, 52, dtype=torch.float64)
    cpu = hog(image, variant, 8, 9, bilinear)
    gpu = hog(image.cuda(), variant, 8, 9, bilinear)
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-6, rtol=0)


@pytest.mark.slow
@pytest.mark.parametrize("variant,bilinear,rounding", VARIANTS, ids=IDS)
def test_gradcheck_float64_full_jacobian(variant, bilinear, rounding):
    """Full-Jacobian gradcheck (minutes on 2 cores; the default run uses fast_mode)."""
    torch.manual_seed(2)
    image = torch.rand(1, 3, 12, 12, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda x: hog(x, variant, 4, 9, bilinear, vlfeat_rounding=rounding), (image,), eps=1e-6, atol=1e-5, rtol=1e-4
    )


# ---------------------------------------------------------------------------------------------
# Glyph picture
# ---------------------------------------------------------------------------------------------
from torch_backend.hog import hog_glyphs  # noqa: E402


@pytest.mark.parametrize("variant", ["uoctti", "dalal"])
def test_glyphs_shape_range_and_edge_orientation(variant):
    # A vertical edge (horizontal gradient): its glyph bars must be vertical (drawn along edges).
    x = torch.arange(32, dtype=torch.float64)
    image = (x >= 16).to(torch.float64).view(1, 1, 1, 32).expand(1, 1, 32, 32).contiguous()
    features = hog(image, variant, 8)
    picture = hog_glyphs(features, variant, glyph_size=21)
    assert picture.shape == (features.shape[-2] * 21, features.shape[-1] * 21)
    assert picture.dtype == np.float32 and picture.min() >= 0.0 and picture.max() == pytest.approx(1.0)
    tile = picture[21:42, 21:42]  # cell (1, 1), next to the edge
    column_energy, row_energy = tile.sum(axis=0), tile.sum(axis=1)
    assert column_energy.max() > 3 * row_energy.max()  # energy in a vertical stroke


def test_glyphs_of_zero_features_are_black_and_bad_shapes_rejected():
    assert hog_glyphs(np.zeros((31, 2, 3)), "uoctti").max() == 0.0
    assert hog_glyphs(torch.zeros(1, 9, 2, 2), "dalal", glyph_size=7).shape == (14, 14)
    with pytest.raises(ValueError):
        hog_glyphs(np.zeros((30, 2, 2)), "uoctti")
    with pytest.raises(ValueError):
        hog_glyphs(np.zeros((2, 31, 2, 2)), "uoctti")


def test_hog_module_twin_in_sequential():
    from torch_backend.hog import HOG, hog

    module = HOG("dalal", cell_size=6, num_bins=7)
    assert "variant='dalal'" in repr(module) and "cell_size=6" in repr(module)
    image = torch.rand(2, 3, 30, 36, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(torch.nn.Sequential(module)(image), hog(image, "dalal", 6, 7), rtol=0, atol=0)
