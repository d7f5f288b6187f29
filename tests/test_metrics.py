"""Tests for torch_backend.metrics: SSIM against scikit-image, CC and MI sanity."""
import numpy as np
import pytest
import torch

from torch_backend.metrics import cross_correlation, mutual_information, ssim


def _natural_pair(dtype=torch.float64):
    from skimage import data

    camera = data.camera()[100:164, 200:264].astype(np.float64) / 255
    astronaut = data.astronaut()[200:264, 200:264, 1].astype(np.float64) / 255
    rng = np.random.default_rng(0)
    noisy = np.clip(camera + rng.normal(0, 0.1, camera.shape), 0, 1)
    first = torch.tensor(np.stack([camera, camera, astronaut]), dtype=dtype)[:, None]
    second = torch.tensor(np.stack([noisy, 0.4 * camera + 0.3, camera]), dtype=dtype)[:, None]
    return first, second


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_ssim_matches_skimage(dtype):
    from skimage.metrics import structural_similarity

    first, second = _natural_pair(dtype)
    ours = ssim(first, second).double().numpy()
    reference = [
        structural_similarity(
            a[0].double().numpy(), b[0].double().numpy(), gaussian_weights=True, sigma=1.5,
            use_sample_covariance=False, data_range=1,
        )
        for a, b in zip(first, second)
    ]
    assert np.abs(ours - np.array(reference)).max() <= 1e-4
    assert ours.shape == (3,)


def test_ssim_identical_is_one_and_rejects_small_images():
    first, _ = _natural_pair()
    assert torch.allclose(ssim(first, first), torch.ones(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="at least 11"):
        ssim(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8))


def test_cross_correlation_matches_numpy_and_is_affine_invariant():
    first, second = _natural_pair()
    ours = cross_correlation(first, second).numpy()
    reference = [np.corrcoef(a.numpy().ravel(), b.numpy().ravel())[0, 1] for a, b in zip(first, second)]
    np.testing.assert_allclose(ours, reference, atol=1e-12)
    assert ours[1] == pytest.approx(1.0, abs=1e-12)  # 0.4 * I + 0.3
    assert cross_correlation(first, 1 - first).numpy() == pytest.approx([-1.0] * 3, abs=1e-12)
    generator = torch.Generator().manual_seed(0)
    noise_a = torch.rand(4, 1, 128, 128, generator=generator, dtype=torch.float64)
    noise_b = torch.rand(4, 1, 128, 128, generator=generator, dtype=torch.float64)
    assert cross_correlation(noise_a, noise_b).abs().max() < 0.03
    assert cross_correlation(torch.full((1, 1, 8, 8), 0.5), torch.rand(1, 1, 8, 8)).item() == 0.0


def test_mutual_information_identity_independence_and_reference():
    first, second = _natural_pair()
    self_information = mutual_information(first, first)
    # MI(I, I) is the gray-level entropy of I (nats), the largest value any partner can reach.
    for image, value in zip(first, self_information):
        counts = np.bincount(np.clip((image.numpy().ravel() * 256).astype(int), 0, 255), minlength=256)
        p = counts[counts > 0] / counts.sum()
        assert value.item() == pytest.approx(float(-(p * np.log(p)).sum()), abs=1e-9)
    assert (mutual_information(first, second) < self_information).all()
    # Against a plain NumPy joint histogram.
    joint, _, _ = np.histogram2d(first[0].numpy().ravel(), second[0].numpy().ravel(), bins=32, range=[[0, 1], [0, 1]])
    p = joint / joint.sum()
    outer = p.sum(1, keepdims=True) * p.sum(0, keepdims=True)
    expected = float((p[p > 0] * np.log(p[p > 0] / outer[p > 0])).sum())
    assert mutual_information(first[:1], second[:1], bins=32).item() == pytest.approx(expected, abs=1e-9)
    generator = torch.Generator().manual_seed(1)
    noise_a = torch.rand(2, 1, 256, 256, generator=generator, dtype=torch.float64)
    noise_b = torch.rand(2, 1, 256, 256, generator=generator, dtype=torch.float64)
    assert mutual_information(noise_a, noise_b, bins=8).max() < 0.01


def test_metrics_reject_bad_input():
    good = torch.rand(2, 1, 16, 16)
    with pytest.raises(ValueError, match="same shape"):
        cross_correlation(good, torch.rand(2, 1, 16, 15))
    with pytest.raises(ValueError, match="NaN"):
        ssim(good, torch.full_like(good, float("nan")))
    with pytest.raises(ValueError, match="gray batch"):
        mutual_information(torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16))
    with pytest.raises(ValueError, match="floating"):
        cross_correlation(torch.zeros(1, 1, 4, 4, dtype=torch.uint8), torch.zeros(1, 1, 4, 4, dtype=torch.uint8))
    with pytest.raises(ValueError, match="empty"):
        ssim(torch.rand(0, 1, 16, 16), torch.rand(0, 1, 16, 16))
    with pytest.raises(ValueError, match="bins"):
        mutual_information(good, good, bins=1)
