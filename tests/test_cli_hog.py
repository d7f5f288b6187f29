"""``gradhog hog``: writes photo | glyphs and the raw features; clear one-line errors."""
import numpy as np
import pytest
import torch
from PIL import Image

from torch_backend.cli import main
from torch_backend.hog import hog
from torch_backend.images import load_image, to_tensor


@pytest.fixture()
def photo(tmp_path):
    from skimage import data

    path = tmp_path / "photo.png"
    Image.fromarray(data.astronaut()[100:180, 150:270]).save(path)  # 80 x 120
    return path


def test_writes_picture_and_features(photo, tmp_path, capsys):
    out, npy = tmp_path / "glyphs.png", tmp_path / "feats.npy"
    assert main(["hog", str(photo), "--out", str(out), "--npy", str(npy)]) == 0
    features = np.load(npy)
    expected = hog(to_tensor(load_image(photo)), "uoctti", 8)[0].numpy()
    assert features.shape == (31, 10, 15) and features.dtype == np.float32
    np.testing.assert_allclose(features, expected, atol=1e-6)
    picture = np.asarray(Image.open(out))
    glyph_height, glyph_width = 10 * 21, 15 * 21
    assert picture.shape == (glyph_height, round(120 * glyph_height / 80) + 8 + glyph_width, 3)
    assert "wrote" in capsys.readouterr().out


def test_dalal_variant_and_default_output_name(photo, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["hog", str(photo), "--variant", "dalal", "--cell-size", "6", "--npy", "d.npy"]) == 0
    assert (tmp_path / "photo_hog.png").exists()
    assert np.load(tmp_path / "d.npy").shape == (9, 80 // 6, 120 // 6)


def test_exif_rotation_and_16_bit(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees: 40 x 64 on disk becomes 64 x 40 upright
    Image.fromarray((np.random.default_rng(0).random((40, 64, 3)) * 255).astype(np.uint8)).save(
        tmp_path / "r.jpg", exif=exif
    )
    assert main(["hog", str(tmp_path / "r.jpg"), "--out", str(tmp_path / "o.png"), "--npy", str(tmp_path / "r.npy")]) == 0
    assert np.load(tmp_path / "r.npy").shape == (31, 8, 5)
    Image.fromarray((np.arange(48 * 40).reshape(48, 40) * 30).astype(np.uint16)).save(tmp_path / "d16.png")
    assert main(["hog", str(tmp_path / "d16.png"), "--out", str(tmp_path / "o16.png")]) == 0


def _error_line(capsys):
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("gradhog hog: error:"), err
    return err


def test_missing_file(tmp_path, capsys):
    assert main(["hog", str(tmp_path / "missing.jpg")]) == 2
    assert "missing.jpg" in _error_line(capsys)


def test_corrupt_file(tmp_path, capsys):
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    assert main(["hog", str(tmp_path / "broken.png")]) == 2
    assert "broken.png" in _error_line(capsys)


@pytest.mark.parametrize("option", [["--cell-size", "0"], ["--num-bins", "0"], ["--glyph-size", "1"]])
def test_bad_numeric_options(photo, capsys, option):
    assert main(["hog", str(photo), *option]) == 2
    _error_line(capsys)


def test_image_too_small_for_cell(tmp_path, capsys):
    Image.fromarray(np.zeros((10, 30, 3), np.uint8)).save(tmp_path / "small.png")
    assert main(["hog", str(tmp_path / "small.png"), "--cell-size", "8"]) == 2
    assert "too small" in _error_line(capsys)


def test_missing_output_folder(photo, tmp_path, capsys):
    assert main(["hog", str(photo), "--out", str(tmp_path / "nope" / "x.png")]) == 2
    assert "does not exist" in _error_line(capsys)


def test_bad_variant_exits_nonzero(photo):
    with pytest.raises(SystemExit) as exit_info:
        main(["hog", str(photo), "--variant", "sift"])
    assert exit_info.value.code != 0


def test_skimage_and_opencv_backends_save_the_libraries_descriptors(photo, tmp_path):
    cv2 = pytest.importorskip("cv2")
    from skimage.feature import hog as skimage_reference

    rgb = load_image(photo)  # 80 x 120, floats in [0, 1]
    for backend in ("skimage", "opencv"):
        out, npy = tmp_path / f"{backend}.png", tmp_path / f"{backend}.npy"
        assert main(["hog", str(photo), "--backend", backend, "--out", str(out), "--npy", str(npy)]) == 0
        picture = np.asarray(Image.open(out))
        assert picture.shape[0] == 10 * 21 and picture[:, -15 * 21 :].std() > 0  # 10 x 15 cells drawn
        if backend == "skimage":
            expected = skimage_reference(rgb.astype(np.float64).mean(axis=-1))
        else:
            bgr = np.round(rgb[..., ::-1] * 255).astype(np.uint8)
            descriptor = cv2.HOGDescriptor((120, 80), (16, 16), (8, 8), (8, 8), 9, 1, -1.0, 0, 0.2, True)
            expected = descriptor.compute(bgr)
        np.testing.assert_allclose(np.load(npy), expected, rtol=0, atol=1e-4)
