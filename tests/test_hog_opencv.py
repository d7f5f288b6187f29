"""torch_backend.hog_opencv.opencv_hog against OpenCV's own ``cv2.HOGDescriptor.compute``."""
import numpy as np
import pytest
import torch

cv2 = pytest.importorskip("cv2")

from torch_backend.hog import OpenCVHOG, opencv_hog  # noqa: E402
from torch_backend.hog_opencv import opencv_hog_descriptor_size  # noqa: E402

# float32 sums in another order than OpenCV's; measured ~1e-7, the bound is 1e-4.
TOLERANCE = 1e-4

DEFAULTS = dict(win_size=(64, 128), block_size=(16, 16), block_stride=(8, 8), cell_size=(8, 8), nbins=9,
                win_sigma=-1.0, l2_hys_threshold=0.2, gamma_correction=True, signed_gradient=False)


def _reference(image, win_stride=None, padding=(0, 0), **settings):
    s = {**DEFAULTS, **settings}
    descriptor = cv2.HOGDescriptor(s["win_size"], s["block_size"], s["block_stride"], s["cell_size"],
                                   s["nbins"], 1, s["win_sigma"], cv2.HOGDescriptor_L2Hys,
                                   s["l2_hys_threshold"], s["gamma_correction"], 64, s["signed_gradient"])
    return descriptor.compute(image, win_stride or (0, 0), padding)


def _photo(height, width, color=True, seed=0):
    """A natural-looking 8-bit BGR (or gray) image: smooth blobs, edges and noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    image = np.zeros((height, width, 3))
    for channel in range(3):
        for _ in range(4):
            cy, cx, r = rng.uniform(0, height), rng.uniform(0, width), rng.uniform(5, 40)
            image[..., channel] += rng.uniform(40, 120) * (np.hypot(y - cy, x - cx) < r)
        image[..., channel] += 30 * np.sin(x / rng.uniform(3, 9) + channel) + rng.normal(0, 6, (height, width))
    image = np.clip(image + 60, 0, 255).astype(np.uint8)
    return image if color else image[..., 1].copy()


def _ties(height, width, seed=0):
    """Exact ties between channels with different gradient directions (B, mirrored, flipped)."""
    base = np.random.default_rng(seed).integers(0, 4, (height, width)).astype(np.uint8) * 60
    return np.stack([base, base[:, ::-1], base[::-1]], axis=-1).copy()


CASES = {
    "default gray": (_photo(128, 64, color=False), {}),
    "default bgr": (_photo(128, 64), {}),
    "no gamma bgr": (_photo(128, 64, seed=1), dict(gamma_correction=False)),
    "signed 12 bins": (_photo(128, 64, seed=2), dict(signed_gradient=True, nbins=12)),
    "small geometry": (_photo(50, 41, seed=3), dict(win_size=(36, 48), block_size=(12, 12),
                                                     block_stride=(6, 6), cell_size=(6, 6), nbins=7)),
    "non-square cells": (_photo(64, 64, seed=4), dict(win_size=(48, 64), block_size=(16, 32),
                                                       block_stride=(8, 16), cell_size=(4, 16),
                                                       win_sigma=3.0, l2_hys_threshold=0.15)),
    "sliding + padding": (_photo(150, 97, seed=5), dict(win_stride=(8, 8), padding=(4, 12))),
    "sliding odd stride": (_photo(137, 75, seed=6, color=False), dict(win_stride=(4, 6), padding=(2, 3))),
    "ties no gamma": (_ties(130, 67), dict(gamma_correction=False, win_stride=(8, 2))),
    "ties gamma padded": (_ties(128, 71, seed=1), dict(padding=(3, 3))),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_equals_opencv(name):
    image, kwargs = CASES[name]
    expected = _reference(image, **kwargs)
    got = opencv_hog(image, **kwargs)
    assert got.dtype == torch.float32 and tuple(got.shape) == expected.shape
    np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=TOLERANCE)


def test_l2_hys_threshold_is_ignored_as_by_opencv():
    # OpenCV 4.11's compute clips at 0.2 whatever L2HysThreshold says; the drop-in follows it.
    image = _photo(64, 64, seed=4)
    for threshold in (0.05, 0.15, 0.5):
        expected = _reference(image, win_size=(64, 64), l2_hys_threshold=threshold)
        got = opencv_hog(image, win_size=(64, 64), l2_hys_threshold=threshold)
        np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=TOLERANCE)


def test_descriptor_size_matches_opencv():
    for settings in ({}, CASES["small geometry"][1], CASES["non-square cells"][1]):
        s = {**DEFAULTS, **settings}
        reference = cv2.HOGDescriptor(s["win_size"], s["block_size"], s["block_stride"], s["cell_size"], s["nbins"])
        size_args = {k: s[k] for k in ("win_size", "block_size", "block_stride", "cell_size", "nbins")}
        assert opencv_hog_descriptor_size(**size_args) == reference.getDescriptorSize()


def test_batched_tensor_equals_per_image_numpy_calls():
    images = [_photo(128, 64, seed=s) for s in range(3)]
    batch = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float()  # BGR stays BGR
    got = opencv_hog(batch, win_stride=(8, 8))
    assert got.shape == (3, opencv_hog_descriptor_size())
    for row, image in zip(got, images):
        np.testing.assert_allclose(row.numpy(), _reference(image, win_stride=(8, 8)), rtol=0, atol=TOLERANCE)


def test_module_twin_in_sequential():
    module = OpenCVHOG(win_size=(32, 32), block_size=(16, 16), block_stride=(8, 8), cell_size=(8, 8))
    assert "win_size=(32, 32)" in repr(module)
    image = _photo(32, 32, color=False)
    out = torch.nn.Sequential(module)(torch.from_numpy(image)[None, None].float())
    np.testing.assert_allclose(out[0].numpy(), _reference(image, win_size=(32, 32)), rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize("gamma", [True, False])
@pytest.mark.parametrize("channels", [1, 3])
def test_gradcheck(gamma, channels):
    generator = torch.Generator().manual_seed(11)
    # Random 0-255 values: no exact channel ties or |dx| == |dy| (where OpenCV's choices jump).
    image = (torch.rand(2, channels, 13, 12, dtype=torch.float64, generator=generator) * 250 + 3)
    image.requires_grad_(True)

    def features(x):
        return opencv_hog(x, win_size=(8, 12), block_size=(8, 8), block_stride=(4, 4), cell_size=(4, 4),
                          nbins=5, gamma_correction=gamma, win_stride=(4, 1), padding=(1, 0))

    assert features(image).dtype == torch.float64
    assert torch.autograd.gradcheck(features, (image,), eps=1e-6, atol=1e-6, rtol=1e-4, fast_mode=True)


def test_gradcheck_full_jacobian_signed():
    generator = torch.Generator().manual_seed(5)
    image = (torch.rand(1, 1, 9, 8, dtype=torch.float64, generator=generator) * 250 + 3).requires_grad_(True)

    def features(x):
        return opencv_hog(x, win_size=(8, 8), block_size=(8, 8), block_stride=(4, 4), cell_size=(4, 4),
                          nbins=6, signed_gradient=True, win_stride=(4, 1))

    assert torch.autograd.gradcheck(features, (image,), eps=1e-6, atol=1e-6, rtol=1e-4)


def test_gradients_finite_on_flat_and_binary_images():
    flat = torch.full((1, 1, 128, 64), 0.0, requires_grad=True)
    binary = torch.zeros(1, 3, 128, 64)
    binary[:, :, 40:90, 20:40] = 255.0
    binary.requires_grad_(True)
    for image in (flat, binary):
        out = opencv_hog(image)
        assert torch.isfinite(out).all()
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        assert torch.isfinite(image.grad).all()
    assert binary.grad.abs().sum() > 0


@pytest.mark.parametrize(
    "image, kwargs, message",
    [
        (np.zeros((128, 64), dtype=np.float32), {}, "uint8"),
        (np.zeros((128, 64, 4), dtype=np.uint8), {}, "BGR"),
        (torch.zeros(1, 2, 128, 64), {}, "C = 1 or 3"),
        (np.zeros((100, 64), dtype=np.uint8), {}, "smaller than win_size"),
        (np.zeros((128, 64), dtype=np.uint8), {"block_size": (16, 12)}, "multiple"),
        (np.zeros((128, 64), dtype=np.uint8), {"nbins": 0}, "nbins"),
        (np.zeros((128, 64), dtype=np.uint8), {"l2_hys_threshold": 0}, "l2_hys_threshold"),
        (torch.full((1, 1, 128, 64), float("nan")), {}, "NaN"),
        ([[0] * 64] * 128, {}, "numpy.ndarray"),
    ],
)
def test_bad_input_raises_clear_value_error(image, kwargs, message):
    with pytest.raises(ValueError, match=message):
        opencv_hog(image, **kwargs)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    image = torch.from_numpy(_photo(150, 97)).permute(2, 0, 1)[None].float()
    cpu = opencv_hog(image, win_stride=(8, 8), padding=(4, 4))
    cuda = opencv_hog(image.cuda(), win_stride=(8, 8), padding=(4, 4))
    assert cuda.device.type == "cuda"
    torch.testing.assert_close(cuda.cpu(), cpu, rtol=0, atol=TOLERANCE)
