"""torch_backend.images: EXIF orientation, 16-bit, alpha, palette/CMYK, clear errors, round trips."""
import numpy as np
import pytest
import torch
from PIL import Image

from torch_backend.images import load_image, save_image, to_array, to_tensor


def _gradient_rgb(h=6, w=10):
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 20, y * 30, (x + y) * 10], axis=-1).astype(np.uint8)


def test_rgb_png_round_values(tmp_path):
    pixels = _gradient_rgb()
    Image.fromarray(pixels).save(tmp_path / "a.png")
    out = load_image(tmp_path / "a.png")
    assert out.dtype == np.float32 and out.shape == (6, 10, 3)
    np.testing.assert_allclose(out, pixels / 255.0, atol=1e-7)


def test_gray_mode_uses_bt601_luma(tmp_path):
    pixels = _gradient_rgb()
    Image.fromarray(pixels).save(tmp_path / "a.png")
    gray = load_image(tmp_path / "a.png", mode="gray")
    expected = (0.299 * pixels[..., 0] + 0.587 * pixels[..., 1] + 0.114 * pixels[..., 2]) / 255.0
    assert gray.shape == (6, 10, 1)
    np.testing.assert_allclose(gray[..., 0], expected, atol=1e-6)


def test_gray_file_replicated_in_rgb_mode(tmp_path):
    pixels = np.arange(60, dtype=np.uint8).reshape(6, 10) * 4
    Image.fromarray(pixels, mode="L").save(tmp_path / "g.png")
    rgb = load_image(tmp_path / "g.png")
    assert rgb.shape == (6, 10, 3)
    for c in range(3):
        np.testing.assert_allclose(rgb[..., c], pixels / 255.0, atol=1e-7)


def test_exif_orientation_is_honoured(tmp_path):
    pixels = _gradient_rgb(6, 10)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    Image.fromarray(pixels).save(tmp_path / "r.jpg", exif=exif, quality=100)
    out = load_image(tmp_path / "r.jpg")
    assert out.shape == (10, 6, 3)  # upright: width and height swapped
    expected = np.rot90(pixels, k=-1) / 255.0  # 90 degrees clockwise
    assert np.abs(out - expected).mean() < 0.05  # JPEG is lossy; a wrong rotation errs by ~0.3


def test_16bit_png_scaled_by_65535(tmp_path):
    values = np.array([[0, 1000, 65535], [30000, 40000, 12345]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "d.png")
    gray = load_image(tmp_path / "d.png", mode="gray")
    np.testing.assert_allclose(gray[..., 0], values / 65535.0, atol=1e-7)
    # The test is only meaningful if the file really stores more than 8 bits.
    assert len(np.unique(np.round(gray * 255))) <= len(np.unique(gray))
    assert abs(gray[0, 1, 0] - 1000 / 65535.0) < 1e-7


def test_16bit_tiff_scaled_by_65535(tmp_path):
    values = np.array([[0, 257, 65535], [512, 9999, 1]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "d.tif")
    rgb = load_image(tmp_path / "d.tif")
    np.testing.assert_allclose(rgb[..., 1], values / 65535.0, atol=1e-7)


def test_alpha_kept_or_dropped(tmp_path):
    rgba = np.zeros((4, 5, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = np.arange(5, dtype=np.uint8) * 60
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "t.png")
    kept = load_image(tmp_path / "t.png", mode="rgba")
    dropped = load_image(tmp_path / "t.png", mode="rgb")
    assert kept.shape == (4, 5, 4) and dropped.shape == (4, 5, 3)
    np.testing.assert_allclose(kept[..., 3], rgba[..., 3] / 255.0, atol=1e-7)
    np.testing.assert_allclose(dropped[..., 0], 200 / 255.0, atol=1e-7)
    opaque = _gradient_rgb()
    Image.fromarray(opaque).save(tmp_path / "o.png")
    assert np.all(load_image(tmp_path / "o.png", mode="rgba")[..., 3] == 1.0)


def test_palette_la_and_cmyk_converted(tmp_path):
    rgb = Image.fromarray(_gradient_rgb())
    rgb.convert("P").save(tmp_path / "p.png")
    rgb.convert("LA").save(tmp_path / "la.png")
    rgb.convert("CMYK").save(tmp_path / "c.jpg", quality=100)
    for name in ("p.png", "la.png", "c.jpg"):
        out = load_image(tmp_path / name)
        assert out.shape == (6, 10, 3) and out.dtype == np.float32
        assert 0.0 <= out.min() and out.max() <= 1.0
    la = load_image(tmp_path / "la.png", mode="rgba")
    assert la.shape == (6, 10, 4)


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.png"):
        load_image(tmp_path / "nope.png")


def test_corrupt_file_names_the_file(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"this is not an image at all")
    with pytest.raises(ValueError, match="bad.png"):
        load_image(tmp_path / "bad.png")


def test_truncated_file_is_a_value_error(tmp_path):
    Image.fromarray(_gradient_rgb(64, 64)).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="cut.png"):
        load_image(tmp_path / "cut.png")


def test_bad_mode_rejected(tmp_path):
    with pytest.raises(ValueError, match="mode"):
        load_image(tmp_path / "x.png", mode="cmyk")


def test_to_tensor_and_back():
    array = np.random.default_rng(0).random((5, 7, 3)).astype(np.float32)
    tensor = to_tensor(array)
    assert tensor.shape == (1, 3, 5, 7) and tensor.dtype == torch.float32
    assert torch.equal(tensor[0, 2], torch.from_numpy(array[..., 2]))
    np.testing.assert_array_equal(to_array(tensor), array)
    assert to_tensor(array[..., 0], dtype=torch.float64).shape == (1, 1, 5, 7)
    with pytest.raises(ValueError):
        to_tensor(np.zeros((2, 3, 4, 5)))


def test_save_then_load_round_trip(tmp_path):
    array = np.random.default_rng(1).random((8, 9, 3)).astype(np.float32)
    save_image(tmp_path / "s.png", array)
    back = load_image(tmp_path / "s.png")
    assert np.abs(back - array).max() <= 0.5 / 255 + 1e-6
    with pytest.raises(ValueError):
        save_image(tmp_path / "n.png", np.full((3, 3), np.nan))
    with pytest.raises(FileNotFoundError):
        save_image(tmp_path / "no_such_dir" / "x.png", array)
