"""Tests for ``gradhog invert`` (torch_backend.cli_invert)."""
import numpy as np
import pytest
from PIL import Image

from torch_backend.cli import main


def _photo(path, width=45, height=37):
    yy, xx = np.mgrid[0:height, 0:width]
    gray = 60 + 2 * xx + 80 * (((xx - 20) ** 2 + (yy - 18) ** 2) < 120)
    rgb = np.stack([gray, gray * 0.8, gray * 0.5], axis=-1).clip(0, 255).astype(np.uint8)
    Image.fromarray(rgb).save(path)
    return path


def test_invert_writes_same_size_gray_png_and_sheet(tmp_path, capsys):
    photo = _photo(tmp_path / "photo.jpg")  # 45 x 37: not a multiple of the 8-px cell
    out, sheet = tmp_path / "recon.png", tmp_path / "sheet.png"
    code = main(["invert", str(photo), "--out", str(out), "--sheet", str(sheet), "--iterations", "3", "--quiet"])
    assert code == 0
    written = Image.open(out)
    assert written.size == (45, 37) and written.mode == "L"
    assert np.asarray(written).std() > 0
    picture = Image.open(sheet)
    assert picture.width == 3 * 45 + 8 and picture.height > 37
    assert "CC" in capsys.readouterr().out


def test_invert_multiscale_more_and_dalal(tmp_path):
    photo = _photo(tmp_path / "photo.png", 64, 64)
    for extra in (["--method", "multiscale-more"], ["--variant", "dalal"]):
        out = tmp_path / f"out{len(extra[1])}.png"
        assert main(["invert", str(photo), "--out", str(out), "--iterations", "2", "--quiet", *extra]) == 0
        assert Image.open(out).size == (64, 64)


@pytest.mark.parametrize(
    "make, extra, message",
    [
        (lambda d: d / "missing.png", [], "no such file"),
        (lambda d: (d / "notes.txt").write_text("hello") and d / "notes.txt", [], "not an image"),
        (lambda d: _photo(d / "tiny.png", 12, 12), [], "at least 16 x 16"),
        (lambda d: _photo(d / "p.png"), ["--bilinear", "--variant", "dalal"], "--bilinear"),
        (lambda d: _photo(d / "p.png"), ["--out", "/nonexistent-folder/x.png"], "does not exist"),
    ],
)
def test_invert_rejects_bad_input(tmp_path, capsys, make, extra, message):
    path = make(tmp_path)
    assert main(["invert", str(path), "--iterations", "1", "--quiet", *extra]) == 2
    assert message in capsys.readouterr().err
