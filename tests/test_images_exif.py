"""torch_backend.images / exif: the lens from EXIF, orientation 1-8, one reader for every pixel mode."""
import math
import struct
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image, ImageOps
from PIL.TiffImagePlugin import IFDRational

from torch_backend import images, masks
from torch_backend.images import (
    LENS_SOURCES, ExifWarning, PhotoNotFoundError, apply_orientation, orient_box, orient_points,
    read_lens, read_mask, read_photo,
)

TAG = {"FocalLength": 0x920A, "FocalLengthIn35mmFilm": 0xA405, "FocalPlaneXResolution": 0xA20E,
       "FocalPlaneYResolution": 0xA20F, "FocalPlaneResolutionUnit": 0xA210, "ExifImageWidth": 0xA002,
       "ExifImageHeight": 0xA003, "DigitalZoomRatio": 0xA404}
DIAGONAL = math.hypot(36.0, 24.0)
# Pillow's transpose that shows each stored orientation upright (ImageOps.exif_transpose's table).
PIL_SHOW = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
            5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
            8: Image.Transpose.ROTATE_90}
PIL_STORE = {**PIL_SHOW, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}  # the inverses


def _photo(path, size=(60, 40), orientation=None, **tags):
    """A JPEG (or PNG, by extension) of ``size`` carrying the given EXIF sub-IFD tags."""
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    sub = exif.get_ifd(0x8769)
    for name, value in tags.items():
        sub[TAG[name]] = value
    Image.new("RGB", size, (120, 80, 40)).save(path, exif=exif)
    return path


def _quiet_lens(path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a valid file must not warn
        return read_lens(path)


def _diagonal_fov(lens):
    return 2 * math.atan(0.5 * math.hypot(lens.sensor_width_mm, lens.sensor_height_mm) / lens.lens_mm)


# --------------------------------------------------------------------------------------------
# Lens
# --------------------------------------------------------------------------------------------


def test_full_frame_35mm_equivalent_is_a_36_by_24_sensor(tmp_path):
    lens = _quiet_lens(_photo(tmp_path / "a.jpg", (60, 40), FocalLength=50.0, FocalLengthIn35mmFilm=50))
    assert lens.source == "exif" and lens.source in LENS_SOURCES
    assert lens.lens_mm == pytest.approx(50.0)
    assert (lens.sensor_width_mm, lens.sensor_height_mm) == pytest.approx((36.0, 24.0))
    assert lens.derived_from == ("FocalLength", "FocalLengthIn35mmFilm")


@pytest.mark.parametrize("size, focal, f35", [((64, 48), 4.25, 26), ((80, 45), 6.1, 24), ((60, 40), 18.0, 27)])
def test_35mm_equivalent_keeps_the_diagonal_field_of_view(tmp_path, size, focal, f35):
    """Phone / compact / APS-C: same diagonal field of view as f35 on the 43.27 mm diagonal,
    sensor shaped like the photo."""
    lens = _quiet_lens(_photo(tmp_path / "p.jpg", size, FocalLength=focal, FocalLengthIn35mmFilm=f35))
    assert lens.lens_mm == pytest.approx(focal)
    assert _diagonal_fov(lens) == pytest.approx(2 * math.atan(0.5 * DIAGONAL / f35), rel=1e-9)
    assert lens.sensor_width_mm / lens.sensor_height_mm == pytest.approx(size[0] / size[1])


@pytest.mark.parametrize("unit, per_unit_mm", [(2, 25.4), (3, 10.0), (4, 1.0)])
def test_focal_plane_resolution_gives_the_physical_sensor(tmp_path, unit, per_unit_mm):
    """6000 px across a 23.5 mm sensor, in inch / cm / mm; the file itself is a downsized copy."""
    resolution = IFDRational(round(6000 / 23.5 * per_unit_mm * 1000), 1000)
    path = _photo(tmp_path / "f.jpg", (60, 40), FocalLength=35.0, FocalPlaneXResolution=resolution,
                  FocalPlaneYResolution=resolution, FocalPlaneResolutionUnit=unit,
                  ExifImageWidth=6000, ExifImageHeight=4000)
    lens = _quiet_lens(path)
    assert lens.lens_mm == pytest.approx(35.0)
    assert lens.sensor_width_mm == pytest.approx(23.5, rel=1e-5)
    assert lens.sensor_height_mm == pytest.approx(23.5 * 4000 / 6000, rel=1e-5)
    assert "resized" in lens.note


def test_focal_plane_without_recorded_size_uses_the_pixel_width(tmp_path):
    lens = _quiet_lens(_photo(tmp_path / "f.jpg", (60, 40), FocalLength=35.0, FocalPlaneXResolution=IFDRational(10, 1),
                              FocalPlaneResolutionUnit=4))
    assert (lens.sensor_width_mm, lens.sensor_height_mm) == pytest.approx((6.0, 4.0))


def test_only_35mm_equivalent_is_that_lens_on_full_frame(tmp_path):
    lens = _quiet_lens(_photo(tmp_path / "e.jpg", (60, 40), FocalLengthIn35mmFilm=85))
    assert lens.lens_mm == 85 and (lens.sensor_width_mm, lens.sensor_height_mm) == pytest.approx((36.0, 24.0))
    assert lens.derived_from == ("FocalLengthIn35mmFilm",)


def test_resize_keeps_and_crop_narrows_the_field_of_view(tmp_path):
    tags = dict(FocalLength=50.0, FocalLengthIn35mmFilm=50, ExifImageWidth=6000, ExifImageHeight=4000)
    full = _quiet_lens(_photo(tmp_path / "full.jpg", (60, 40), **tags))
    off_by_rounding = _quiet_lens(_photo(tmp_path / "r.jpg", (301, 200), **tags))
    wide_crop = _quiet_lens(_photo(tmp_path / "c.jpg", (60, 30), **tags))  # 3:2 -> 2:1: rows cut
    tall_crop = _quiet_lens(_photo(tmp_path / "t.jpg", (30, 60), **tags))  # a portrait cut out of it
    assert (full.sensor_width_mm, full.sensor_height_mm) == pytest.approx((36.0, 24.0))
    assert (off_by_rounding.sensor_width_mm, off_by_rounding.sensor_height_mm) == pytest.approx((36.0, 24.0))
    assert (wide_crop.sensor_width_mm, wide_crop.sensor_height_mm) == pytest.approx((36.0, 18.0))
    assert "cropped" in wide_crop.note and "ExifImageWidth" in wide_crop.derived_from
    # 30x60 of a 6000x4000 frame: full height (24 mm) along the long side, 12 mm across.
    assert (tall_crop.sensor_width_mm, tall_crop.sensor_height_mm) == pytest.approx((24.0, 12.0))
    assert wide_crop.fov_deg == pytest.approx(full.fov_deg) and tall_crop.fov_deg < full.fov_deg


def test_digital_zoom_multiplies_the_focal_length(tmp_path):
    plane = dict(FocalLength=10.0, FocalPlaneXResolution=IFDRational(10, 1), FocalPlaneResolutionUnit=4)
    lens = _quiet_lens(_photo(tmp_path / "z.jpg", (60, 40), DigitalZoomRatio=IFDRational(2, 1), **plane))
    assert lens.lens_mm == pytest.approx(20.0) and lens.sensor_width_mm == pytest.approx(6.0)
    assert "DigitalZoomRatio" in lens.derived_from
    no_zoom = _quiet_lens(_photo(tmp_path / "n.jpg", (60, 40), DigitalZoomRatio=IFDRational(0, 0), **plane))
    assert no_zoom.lens_mm == pytest.approx(10.0)  # 0/0 means "digital zoom not used"
    # FocalLengthIn35mmFilm already describes the zoomed picture: its field of view is kept.
    phone = _quiet_lens(_photo(tmp_path / "p.jpg", (64, 48), FocalLength=4.25, FocalLengthIn35mmFilm=52,
                               DigitalZoomRatio=IFDRational(2, 1)))
    assert phone.lens_mm == pytest.approx(8.5)
    assert _diagonal_fov(phone) == pytest.approx(2 * math.atan(0.5 * DIAGONAL / 52), rel=1e-9)


@pytest.mark.parametrize("stored, turn", [((60, 40), 1), ((60, 40), 6), ((60, 40), 8), ((40, 60), 1), ((40, 60), 3)])
def test_sensor_width_is_along_the_longer_side_whatever_the_orientation(tmp_path, stored, turn):
    """Blender's sensor_fit AUTO fits sensor_width to the larger render dimension."""
    tags = dict(FocalLength=50.0, FocalLengthIn35mmFilm=50, ExifImageWidth=6000, ExifImageHeight=4000)
    lens = _quiet_lens(_photo(tmp_path / "o.jpg", stored, orientation=turn, **tags))
    # (40, 60) with 6000x4000 tags: rotated by software that kept the old size -> not a crop.
    assert (lens.sensor_width_mm, lens.sensor_height_mm) == pytest.approx((36.0, 24.0))
    assert lens.camera_kwargs()["sensor_fit"] == "AUTO"


@pytest.mark.parametrize(
    "tags, culprit",
    [
        (dict(FocalLength=0.0, FocalLengthIn35mmFilm=50), "FocalLength"),
        (dict(FocalLength=IFDRational(0, 0), FocalLengthIn35mmFilm=50), "FocalLength"),
        (dict(FocalLength=1e7, FocalLengthIn35mmFilm=50), "FocalLength"),
        (dict(FocalLength="abc", FocalLengthIn35mmFilm=50), "FocalLength"),
        (dict(FocalLength=50.0), "FocalLengthIn35mmFilm"),
        (dict(FocalLength=50.0, FocalLengthIn35mmFilm=50000), "FocalLengthIn35mmFilm"),
        (dict(FocalLength=50.0, FocalPlaneXResolution=IFDRational(10, 1), FocalPlaneResolutionUnit=7), "FocalPlaneResolutionUnit"),
        (dict(FocalLength=50.0, FocalPlaneXResolution=IFDRational(10, 1), FocalPlaneResolutionUnit=1), "FocalPlaneResolutionUnit"),
        (dict(FocalLength=50.0, FocalPlaneXResolution=IFDRational(0, 0)), "FocalPlaneXResolution"),
        (dict(FocalLength=50.0, FocalLengthIn35mmFilm=50, DigitalZoomRatio=IFDRational(1000, 1)), "DigitalZoomRatio"),
    ],
)
def test_broken_lens_tags_fall_back_with_a_warning(tmp_path, tags, culprit):
    path = _photo(tmp_path / "b.jpg", **tags)
    with pytest.warns(ExifWarning, match=culprit):
        assert read_lens(path) is None
    with pytest.warns(ExifWarning):
        photo = read_photo(path)  # the pixels are still read
    assert photo.lens is None and photo.rgb.shape == (40, 60, 3)


def test_broken_recorded_size_warns_but_keeps_the_lens(tmp_path):
    path = _photo(tmp_path / "w.jpg", FocalLength=50.0, FocalLengthIn35mmFilm=50, ExifImageWidth=0, ExifImageHeight=4000)
    with pytest.warns(ExifWarning, match="ExifImageWidth"):
        lens = read_lens(path)
    assert lens.sensor_width_mm == pytest.approx(36.0)


def test_no_exif_or_garbage_exif_is_no_lens_and_no_failure(tmp_path):
    Image.new("RGB", (30, 20)).save(tmp_path / "plain.png")
    assert _quiet_lens(tmp_path / "plain.png") is None
    Image.new("RGB", (30, 20)).save(tmp_path / "junk.jpg", exif=b"Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08\x00\x05\x01\x12")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow itself may warn about corrupt EXIF
        photo = read_photo(tmp_path / "junk.jpg")
    assert photo.lens is None and photo.orientation == 1 and photo.size == (30, 20)


def test_invalid_orientation_warns_and_keeps_the_stored_layout(tmp_path):
    path = _photo(tmp_path / "o.jpg", (60, 40), orientation=9)
    with pytest.warns(ExifWarning, match="Orientation"):
        photo = read_photo(path)
    assert photo.orientation == 1 and photo.size == (60, 40)


def test_lens_info_rejects_unknown_sources():
    with pytest.raises(ValueError, match="source"):
        images.LensInfo(50.0, 36.0, 24.0, source="guess")


# --------------------------------------------------------------------------------------------
# Orientation
# --------------------------------------------------------------------------------------------


def _upright_rgba(h=12, w=20):
    """A non-square RGBA image whose every pixel is distinct (so any wrong turn shows)."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 12, y * 20, (x * 7 + y * 3) % 256, 55 + x * 10], axis=-1).astype(np.uint8)


@pytest.mark.parametrize("turn", range(1, 9))
def test_every_orientation_reads_upright_and_identical(tmp_path, turn):
    upright = Image.fromarray(_upright_rgba(), "RGBA")
    stored = upright.transpose(PIL_STORE[turn]) if turn > 1 else upright
    exif = Image.Exif()
    exif[0x0112] = turn
    stored.save(tmp_path / "o.png", exif=exif)  # PNG: lossless, so the pixels must match exactly
    with Image.open(tmp_path / "o.png") as check:  # the test's construction, by Pillow's own reader
        assert np.array_equal(np.asarray(ImageOps.exif_transpose(check)), np.asarray(upright))
    photo = read_photo(tmp_path / "o.png")
    expected = np.asarray(upright, np.float64) / 255
    assert photo.orientation == turn and photo.size == (20, 12) == images.upright_size(tmp_path / "o.png")
    np.testing.assert_array_equal(photo.rgb, expected[..., :3].astype(np.float32))
    np.testing.assert_array_equal(photo.alpha, expected[..., 3].astype(np.float32))
    np.testing.assert_array_equal(images.load_image(tmp_path / "o.png", "rgba"), expected.astype(np.float32))
    # A mask stored like the photo comes out upright the same way.
    Image.fromarray(np.asarray(stored)[..., 0]).save(tmp_path / "m.png", exif=exif)
    np.testing.assert_array_equal(read_mask(tmp_path / "m.png"), photo.rgb[..., 0])


def test_rotated_jpeg_is_upright(tmp_path):
    upright = _upright_rgba()[..., :3]
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(upright).transpose(PIL_STORE[6]).save(tmp_path / "r.jpg", exif=exif, quality=100)
    photo = read_photo(tmp_path / "r.jpg")
    assert photo.rgb.shape == (12, 20, 3)
    assert np.abs(photo.rgb - upright / 255).mean() < 0.02  # lossy; a wrong turn errs by ~0.3


@pytest.mark.parametrize("turn", range(1, 9))
def test_orientation_of_arrays_points_and_boxes_agree_with_pillow(turn):
    stored = _upright_rgba(5, 9)
    shown = np.asarray(Image.fromarray(stored, "RGBA").transpose(PIL_SHOW[turn])) if turn > 1 else stored
    np.testing.assert_array_equal(apply_orientation(stored, turn), shown)
    np.testing.assert_array_equal(apply_orientation(shown, turn, inverse=True), stored)
    # Every stored pixel centre lands on the upright pixel that shows its value.
    rows, cols = np.mgrid[0:5, 0:9]
    centres = np.stack([cols.ravel() + 0.5, rows.ravel() + 0.5], axis=-1)
    moved = orient_points(centres, turn, (9, 5))
    shown_values = shown[np.floor(moved[:, 1]).astype(int), np.floor(moved[:, 0]).astype(int)]
    np.testing.assert_array_equal(shown_values, stored.reshape(-1, 4))
    upright_size = (shown.shape[1], shown.shape[0])
    np.testing.assert_allclose(orient_points(moved, turn, upright_size, inverse=True), centres)
    # A box around stored pixel (row 1, col 2) maps onto a box around that pixel, upright.
    x0, y0, x1, y1 = orient_box((2, 1, 3, 2), turn, (9, 5))
    assert (x1 - x0, y1 - y0) == (1, 1)
    assert np.array_equal(shown[int(y0), int(x0)], stored[1, 2])


# --------------------------------------------------------------------------------------------
# One reader for every pixel mode
# --------------------------------------------------------------------------------------------


def _write_png16(path, array):
    """A 16-bit PNG (gray, gray+alpha, RGB or RGBA by channel count): Pillow cannot write these."""
    array = np.asarray(array, np.uint16)
    array = array[..., None] if array.ndim == 2 else array
    height, width, channels = array.shape
    raw = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in array)

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 16, {1: 0, 2: 4, 3: 2, 4: 6}[channels], 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    return path


def test_gray_la_palette_rgba_and_16bit_read_alike(tmp_path):
    """The same gray content with the same cut-out, in every mode, gives identical floats."""
    rng = np.random.default_rng(3)
    gray = rng.integers(0, 256, (10, 14)).astype(np.uint8)
    alpha = np.where(gray % 3 == 0, 0, 255).astype(np.uint8)
    rgb3 = np.repeat(gray[..., None], 3, axis=-1)
    Image.fromarray(gray, "L").save(tmp_path / "l.png")
    Image.fromarray(rgb3, "RGB").save(tmp_path / "rgb.png")
    Image.fromarray(np.stack([gray, alpha], -1), "LA").save(tmp_path / "la.png")
    Image.fromarray(np.dstack([rgb3, alpha]), "RGBA").save(tmp_path / "rgba.png")
    palette = Image.fromarray(gray, "L").convert("P")  # palette index i holds gray i
    palette.info["transparency"] = bytes(0 if i % 3 == 0 else 255 for i in range(256))
    palette.save(tmp_path / "p.png")
    Image.fromarray(gray.astype(np.uint16) * 257).save(tmp_path / "i16.png")
    _write_png16(tmp_path / "la16.png", np.stack([gray, alpha], -1).astype(np.uint16) * 257)
    _write_png16(tmp_path / "rgba16.png", np.dstack([rgb3, alpha]).astype(np.uint16) * 257)
    _write_png16(tmp_path / "rgb16.png", rgb3.astype(np.uint16) * 257)
    assert Image.open(tmp_path / "i16.png").mode == "I;16" and Image.open(tmp_path / "p.png").mode == "P"

    reference = read_photo(tmp_path / "rgba.png")
    np.testing.assert_array_equal(reference.rgb[..., 1], (gray / 255.0).astype(np.float32))
    for name in ("l.png", "rgb.png", "i16.png", "rgb16.png"):
        photo = read_photo(tmp_path / name)
        np.testing.assert_array_equal(photo.rgb, reference.rgb, err_msg=name)
        assert photo.alpha is None, name
    for name in ("la.png", "p.png", "la16.png", "rgba16.png"):
        photo = read_photo(tmp_path / name)
        np.testing.assert_array_equal(photo.rgb, reference.rgb, err_msg=name)
        np.testing.assert_array_equal(photo.alpha, reference.alpha, err_msg=name)
        np.testing.assert_array_equal(masks.alpha_mask(photo.alpha), alpha > 0, err_msg=name)
        np.testing.assert_array_equal(read_mask(tmp_path / name), reference.alpha, err_msg=name)
    np.testing.assert_array_equal(images.load_image(tmp_path / "i16.png", "gray")[..., 0], reference.rgb[..., 0])


def test_soft_alpha_and_soft_mask_file_give_the_same_object(tmp_path):
    """An anti-aliased cut-out as 8-bit alpha, 16-bit alpha and a gray mask file: one object mask."""
    yy, xx = np.mgrid[0:48, 0:64]
    ramp = np.clip((20.0 - np.hypot(xx - 30.3, yy - 22.7)) + 0.5, 0, 1)  # 1 px soft edge
    alpha8 = np.round(ramp * 255).astype(np.uint8)
    Image.fromarray(np.dstack([np.full((48, 64, 3), 90, np.uint8), alpha8]), "RGBA").save(tmp_path / "a.png")
    _write_png16(tmp_path / "a16.png", np.dstack([np.full((48, 64, 3), 90 * 257), alpha8.astype(np.uint16) * 257]))
    Image.fromarray(alpha8).save(tmp_path / "m.png")
    cut = masks.alpha_mask(read_photo(tmp_path / "a.png").alpha)
    assert np.array_equal(cut, alpha8 >= 128) and 0 < cut.sum() < (alpha8 > 0).sum()
    assert np.array_equal(masks.alpha_mask(read_photo(tmp_path / "a16.png").alpha), cut)
    assert np.array_equal(masks.as_mask(read_mask(tmp_path / "m.png"), (48, 64)), cut)


@pytest.mark.parametrize("make, problem", [
    (lambda p: None, "no such file"),
    (lambda p: p.write_bytes(b""), "not an image"),
    (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20), "corrupt|not an image"),
    (lambda p: p.mkdir(), "directory"),
])
def test_unreadable_photos_are_value_errors_naming_the_file(tmp_path, make, problem):
    path = tmp_path / "photo.png"
    make(path)
    with pytest.raises(ValueError, match=f"photo.png.*({problem})"):
        read_photo(path)


def test_missing_photo_is_also_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_photo(tmp_path / "none.jpg")
    assert issubclass(PhotoNotFoundError, ValueError)
