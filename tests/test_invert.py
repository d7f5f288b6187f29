"""Tests for torch_backend.invert (HOG pre-images). Small images and few steps: fast on 2 CPU cores."""
import math

import pytest
import torch

from torch_backend.hog import hog
from torch_backend.invert import (
    MULTISCALE_FACTORS,
    ReconstructionCancelled,
    _poisson_neumann,
    hog_pyramid,
    reconstruct,
)
from torch_backend.metrics import cross_correlation


def _scene(size=32, batch=2, dtype=torch.float32):
    """Smooth synthetic gray images: a bright disc and a dark bar on a ramp, one per batch item."""
    coords = torch.arange(size, dtype=torch.float64) / size
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    images = []
    for k in range(batch):
        disc = torch.sigmoid((0.08 - ((xx - 0.35 - 0.2 * k) ** 2 + (yy - 0.5) ** 2)) * 150)
        bar = torch.sigmoid((0.06 - (xx + yy - 1.1 + 0.1 * k).abs()) * 60)
        images.append(0.3 + 0.2 * xx + 0.4 * disc - 0.25 * bar)
    return torch.stack(images).unsqueeze(1).to(dtype)


def _relative_distance(image, target, variant="uoctti"):
    return ((hog(image, variant) - target).flatten(1).norm(dim=1) / target.flatten(1).norm(dim=1))


def test_poisson_solver_inverts_forward_differences():
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(2, 1, 12, 17, generator=generator, dtype=torch.float64)
    gx = torch.nn.functional.pad(image[..., :, 1:] - image[..., :, :-1], (0, 1))
    gy = torch.nn.functional.pad(image[..., 1:, :] - image[..., :-1, :], (0, 0, 0, 1))
    recovered = _poisson_neumann(gx, gy)
    expected = image - image.mean(dim=(2, 3), keepdim=True)
    assert torch.allclose(recovered, expected, atol=1e-10)


def test_output_shape_range_dtype_and_determinism():
    images = _scene(dtype=torch.float64)
    target = hog(images, "uoctti")
    first = reconstruct(target, "uoctti", (32, 32), iterations=3, init="noise", seed=3)
    second = reconstruct(target, "uoctti", (32, 32), iterations=3, init="noise", seed=3)
    other = reconstruct(target, "uoctti", (32, 32), iterations=3, init="noise", seed=4)
    assert first.shape == (2, 1, 32, 32) and first.dtype == torch.float64
    assert first.min() >= 0 and first.max() <= 1
    assert torch.equal(first, second)
    assert not torch.equal(first, other)


def test_hog_start_recovers_a_smooth_scene_from_uoctti_alone():
    # The signed orientation channels of UoCTTI fix the sign of the gradients: the Poisson start
    # alone must already correlate strongly with the scene (it never sees the scene itself).
    images = _scene(size=48)
    target = hog(images, "uoctti")
    start_only = reconstruct(target, "uoctti", (48, 48), iterations=1)
    assert cross_correlation(start_only, images).min() > 0.8


def test_descent_reduces_the_hog_distance():
    images = _scene(size=32)
    target = hog(images, "uoctti")
    # output_blur=0: the test is about the descent, not the post-filter (which smooths the result).
    options = dict(init="noise", smoothness=1e-3, smoothness_end=1e-3, learning_rate=0.03, output_blur=0.0)
    early = _relative_distance(reconstruct(target, "uoctti", (32, 32), iterations=1, **options), target)
    late = _relative_distance(reconstruct(target, "uoctti", (32, 32), iterations=25, **options), target)
    assert (late < 0.75 * early).all(), (early, late)


def test_dalal_and_bilinear_variants_run():
    images = _scene(size=32, batch=1)
    for variant, bilinear in (("dalal", False), ("uoctti", True)):
        target = hog(images, variant, bilinear_orientation=bilinear)
        out = reconstruct(target, variant, (32, 32), iterations=3, bilinear_orientation=bilinear)
        assert out.shape == (1, 1, 32, 32) and torch.isfinite(out).all()


def test_multiscale_methods():
    images = _scene(size=64, batch=1)
    target = hog(images, "uoctti")
    out = reconstruct(target, "uoctti", (64, 64), "multiscale", iterations=3)
    assert out.shape == (1, 1, 64, 64)
    pyramid = hog_pyramid(images, "uoctti")
    assert len(pyramid) == len(MULTISCALE_FACTORS)
    assert all(level.shape == target.shape for level in pyramid)
    out_more = reconstruct(pyramid, "uoctti", (64, 64), "multiscale_more", iterations=3)
    assert out_more.shape == (1, 1, 64, 64)
    with pytest.raises(ValueError, match="list of descriptors"):
        reconstruct(target, "uoctti", (64, 64), "multiscale_more")
    with pytest.raises(ValueError, match="needs 4 descriptors"):
        reconstruct(pyramid[:2], "uoctti", (64, 64), "multiscale_more")


def test_callback_reports_progress_and_can_cancel():
    target = hog(_scene(size=32, batch=1), "uoctti")
    seen = []
    reconstruct(target, "uoctti", (32, 32), iterations=4, callback=lambda p, m: seen.append((p, m)))
    assert len(seen) == 4 and seen[-1][0] == pytest.approx(1.0)
    assert all(a[0] < b[0] for a, b in zip(seen, seen[1:])) and isinstance(seen[0][1], str)
    calls = []

    def stop_at_second(progress, message):
        calls.append(progress)
        return len(calls) < 2

    with pytest.raises(ReconstructionCancelled):
        reconstruct(target, "uoctti", (32, 32), iterations=10, callback=stop_at_second)
    assert len(calls) == 2


def test_bad_inputs_raise_clear_errors():
    target = hog(_scene(size=32, batch=1), "uoctti")
    with pytest.raises(ValueError, match="does not match"):
        reconstruct(target, "uoctti", (48, 48), iterations=1)
    with pytest.raises(ValueError, match="unknown method"):
        reconstruct(target, "uoctti", (32, 32), "fancy")
    with pytest.raises(ValueError, match="NaN"):
        reconstruct(torch.full_like(target, math.nan), "uoctti", (32, 32))
    with pytest.raises(ValueError, match="descriptor"):
        reconstruct(target[0], "uoctti", (32, 32))
    with pytest.raises(ValueError, match="divisible"):
        reconstruct(hog(_scene(size=36, batch=1), "uoctti"), "uoctti", (36, 36), "multiscale")


def test_contrast_recovery_restores_relative_contrast():
    # Left half: faint texture; right half: strong texture. Block normalisation equalises them; the
    # texture channels let the start put the contrast back (never looking at the image itself).
    generator = torch.Generator().manual_seed(5)
    smooth = torch.nn.functional.avg_pool2d(torch.rand(1, 1, 64, 64, generator=generator), 5, 1, 2)
    gain = torch.cat([torch.full((64, 32), 0.1), torch.full((64, 32), 1.0)], dim=1)
    image = 0.5 + gain * (smooth - smooth.mean())
    target = hog(image, "uoctti")
    options = dict(iterations=1)
    recovered = reconstruct(target, "uoctti", (64, 64), recover_contrast=True, **options)
    flat = reconstruct(target, "uoctti", (64, 64), recover_contrast=False, **options)
    ratio = lambda r: (r[..., 32:].std() / r[..., :32].std()).item()  # noqa: E731
    assert ratio(recovered) > 2 * ratio(flat)
    assert cross_correlation(recovered, image) > cross_correlation(flat, image)


def test_output_blur_removes_pixel_scale_detail_only():
    images = _scene(size=32)
    target = hog(images, "uoctti")
    options = dict(iterations=5, init="noise", learning_rate=0.03)
    sharp = reconstruct(target, "uoctti", (32, 32), output_blur=0.0, **options)
    blurred = reconstruct(target, "uoctti", (32, 32), output_blur=1.0, **options)
    # Same global contrast (re-scaled after the blur), less energy in neighbour differences.
    assert torch.allclose(sharp.std(dim=(2, 3)), blurred.std(dim=(2, 3)), rtol=0.05)
    roughness = lambda r: (r[..., 1:, :] - r[..., :-1, :]).abs().mean().item()  # noqa: E731
    assert roughness(blurred) < 0.8 * roughness(sharp)
    with pytest.raises(ValueError, match="output_blur"):
        reconstruct(target, "uoctti", (32, 32), output_blur=-1.0)
