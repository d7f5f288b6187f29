"""``hog(variant="dalal")`` against a plain NumPy-loop oracle of Chiu & Fritz eq. 1-7."""
import math

import numpy as np
import pytest
import torch

from torch_backend.hog import DALAL_EPS, feature_channels, hog, hog_cell_grid

TOLERANCE = 1e-6


def dalal_oracle(image_chw: np.ndarray, cell_size: int, num_bins: int) -> np.ndarray:
    """Eq. 1-7 written out literally, one pixel / cell / bin at a time (float64)."""
    channels, height, width = image_chw.shape
    if channels == 3:  # eq. 1
        gray = image_chw[0] * 0.299 + image_chw[1] * 0.587 + image_chw[2] * 0.114
    else:
        gray = image_chw[0]
    # [-1, 0, 1] masks; border pixels without both neighbours get 0 along that axis.
    gx = np.zeros((height, width))
    gy = np.zeros((height, width))
    for y in range(height):
        for x in range(width):
            if 0 < x < width - 1:
                gx[y, x] = gray[y, x + 1] - gray[y, x - 1]
            if 0 < y < height - 1:
                gy[y, x] = gray[y + 1, x] - gray[y - 1, x]
    # Eq. 2 (unsigned orientation in degrees) and eq. 3 (clipped triangular filters, wrapping at 180).
    orientation_votes = np.zeros((num_bins, height, width))
    for y in range(height):
        for x in range(width):
            magnitude = math.sqrt(gx[y, x] ** 2 + gy[y, x] ** 2)
            theta = math.degrees(math.atan2(gy[y, x], gx[y, x])) % 180.0
            for b in range(num_bins):
                centre = (b + 0.5) * 180.0 / num_bins
                distance = abs(theta - centre)
                distance = min(distance, 180.0 - distance)
                weight = min(max(1.0 - distance * num_bins / 180.0, 0.0), 1.0)
                orientation_votes[b, y, x] = magnitude * weight
    # Eq. 5-6: the 2c x 2c bilinear filter (1 at the centre, 0 at the corners) sampled at the
    # cell centres.
    rows, cols = height // cell_size, width // cell_size
    cells = np.zeros((num_bins, rows, cols))
    for i in range(rows):
        for j in range(cols):
            centre_y = i * cell_size + (cell_size - 1) / 2.0
            centre_x = j * cell_size + (cell_size - 1) / 2.0
            for y in range(max(0, i * cell_size - cell_size), min(height, (i + 2) * cell_size)):
                for x in range(max(0, j * cell_size - cell_size), min(width, (j + 2) * cell_size)):
                    fy = max(0.0, 1.0 - abs(y - centre_y) / cell_size)
                    fx = max(0.0, 1.0 - abs(x - centre_x) / cell_size)
                    if fy * fx > 0:
                        cells[:, i, j] += fy * fx * orientation_votes[:, y, x]
    # Eq. 7 as robust L2.
    return cells / math.sqrt((cells**2).sum() + DALAL_EPS**2)


def _natural(shape_hw):
    from skimage import data

    height, width = shape_hw
    return data.astronaut()[100 : 100 + height, 150 : 150 + width].transpose(2, 0, 1) / 255.0


@pytest.mark.parametrize(
    "channels,height,width,cell_size,num_bins",
    [(1, 16, 16, 4, 9), (3, 21, 30, 4, 9), (1, 19, 26, 5, 6), (3, 24, 17, 8, 9), (1, 14, 13, 3, 4), (1, 12, 12, 4, 1)],
)
def test_equals_numpy_oracle_on_random_images(channels, height, width, cell_size, num_bins):
    rng = np.random.default_rng(height * 100 + width)
    image = rng.random((channels, height, width))
    ours = hog(torch.from_numpy(image)[None], "dalal", cell_size, num_bins)[0].numpy()
    expected = dalal_oracle(image, cell_size, num_bins)
    assert ours.shape == expected.shape == (num_bins, height // cell_size, width // cell_size)
    assert np.abs(ours - expected).max() <= TOLERANCE


@pytest.mark.parametrize("cell_size", [4, 6])
def test_equals_numpy_oracle_on_natural_image(cell_size):
    image = _natural((26, 31))  # 8-bit photo: many exact zero / axis-aligned gradients, bin edges
    ours = hog(torch.from_numpy(image)[None], "dalal", cell_size, 9)[0].numpy()
    expected = dalal_oracle(image, cell_size, 9)
    assert np.abs(ours - expected).max() <= TOLERANCE


def test_float32_close_to_oracle():
    image = np.random.default_rng(3).random((3, 20, 20))
    ours = hog(torch.from_numpy(image).float()[None], "dalal", 4, 9)[0].double().numpy()
    assert np.abs(ours - dalal_oracle(image, 4, 9)).max() < 1e-5


def test_unit_norm_shape_and_channel_names():
    image = torch.rand(2, 3, 37, 50, dtype=torch.float64)
    out = hog(image, "dalal", 8, 9)
    assert out.shape == (2, 9, 4, 6) and hog_cell_grid(37, 50, "dalal", 8) == (4, 6)
    torch.testing.assert_close(out.square().sum(dim=(1, 2, 3)), torch.ones(2, dtype=torch.float64))
    assert len(feature_channels("dalal", 9)) == 9


def test_bilinear_flag_does_not_change_dalal():
    image = torch.rand(1, 1, 16, 16, dtype=torch.float64)
    torch.testing.assert_close(hog(image, "dalal", 4), hog(image, "dalal", 4, bilinear_orientation=True))


def test_constant_image_gives_zero_features():
    out = hog(torch.full((1, 3, 16, 16), 0.4, dtype=torch.float64), "dalal", 4)
    assert torch.all(out == 0)
