"""What a photo's EXIF says about its geometry: orientation (how to show it upright) and the lens.

Two questions, answered with Pillow only and never with an exception for a broken tag:

* **Orientation** (tag 0x0112, values 1-8): :func:`orientation` reads it, :func:`apply_orientation`
  turns a stored ``(H, W, ...)`` array upright, :func:`orient_points` / :func:`orient_box` map pixel
  coordinates between the stored and the upright frame (continuous coordinates: pixel ``(i, j)``
  covers ``[j, j+1) x [i, i+1)``, so a box's edges map to edges).
* **Lens** (:func:`read_lens`): the focal length and the sensor size that give the photo's field
  of view, as Blender's ``lens`` / ``sensor_width`` with ``sensor_fit = "AUTO"``.

Where a lens came from is one word of :data:`LENS_SOURCES`; every result carrying a lens says it.
"""
from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np

#: The lens was given by the caller (a number, or the Blender camera's own).
LENS_GIVEN = "given"
#: The lens was read from the photo's EXIF (:func:`read_lens`).
LENS_EXIF = "exif"
#: The lens was estimated from the photo and the mesh.
LENS_ESTIMATED = "estimated"
#: Nothing was known: Blender's default 50 mm on a 36 mm sensor.
LENS_DEFAULT = "default"
LENS_SOURCES = (LENS_GIVEN, LENS_EXIF, LENS_ESTIMATED, LENS_DEFAULT)

#: Diagonal of the 36 x 24 mm frame: "35 mm equivalent" focal lengths are defined on it.
FULL_FRAME_DIAGONAL_MM = math.hypot(36.0, 24.0)  # 43.27

_EXIF_IFD = 0x8769
_TAGS = {
    "Orientation": 0x0112,
    "FocalLength": 0x920A,
    "FocalLengthIn35mmFilm": 0xA405,
    "FocalPlaneXResolution": 0xA20E,
    "FocalPlaneYResolution": 0xA20F,
    "FocalPlaneResolutionUnit": 0xA210,
    "ExifImageWidth": 0xA002,  # PixelXDimension in the EXIF standard
    "ExifImageHeight": 0xA003,  # PixelYDimension
    "DigitalZoomRatio": 0xA404,
}
#: FocalPlaneResolutionUnit -> millimetres (EXIF: 2 = inch, the default; 3 = cm; 4 = mm;
#: 1 = "no absolute unit" gives no sensor size).
_UNIT_MM = {2: 25.4, 3: 10.0, 4: 1.0}
# Plausible ranges; outside them a tag is taken as broken, not as an exotic camera.
_LENS_RANGE_MM = (0.5, 5000.0)
_SENSOR_RANGE_MM = (0.5, 200.0)  # phone sensors ~5 mm up to 4x5" large format (127 mm)
_ZOOM_MAX = 100.0


class ExifWarning(UserWarning):
    """A tag is broken or inconsistent; the reader fell back instead of failing."""


def _warn(message: str) -> None:
    warnings.warn(message, ExifWarning, stacklevel=3)


@dataclass(frozen=True)
class LensInfo:
    """A lens and sensor that reproduce a photo's field of view (Blender camera units).

    Attributes:
        lens_mm: focal length in mm (digital zoom included).
        sensor_width_mm: sensor extent along the photo's **longer** side, in mm: what Blender's
            ``sensor_width`` means with ``sensor_fit = "AUTO"`` (it spans the larger render
            dimension), so a portrait photo gets the same value as its landscape twin.
        sensor_height_mm: sensor extent along the shorter side (mm).
        source: one of :data:`LENS_SOURCES`.
        derived_from: the EXIF tag names the values were computed from.
        note: how the photo's pixels relate to the camera's frame (resized, cropped), if they differ.
    """

    lens_mm: float
    sensor_width_mm: float
    sensor_height_mm: float
    source: str = LENS_EXIF
    derived_from: Tuple[str, ...] = ()
    note: str = ""

    def __post_init__(self):
        if self.source not in LENS_SOURCES:
            raise ValueError(f"LensInfo.source must be one of {LENS_SOURCES}, got {self.source!r}")

    @property
    def fov_deg(self) -> float:
        """Field of view across the photo's longer side, in degrees."""
        return math.degrees(2.0 * math.atan(0.5 * self.sensor_width_mm / self.lens_mm))

    def camera_kwargs(self) -> dict:
        """Keyword arguments for ``torch_backend.camera.CameraSettings`` (``sensor_fit = "AUTO"``)."""
        return {"lens_mm": self.lens_mm, "sensor_width_mm": self.sensor_width_mm,
                "sensor_height_mm": self.sensor_height_mm, "sensor_fit": "AUTO"}


# --------------------------------------------------------------------------------------------
# Orientation
# --------------------------------------------------------------------------------------------

#: The orientation that undoes each one (6 and 8 are each other's inverse; the rest self-inverse).
_INVERSE = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 8, 7: 7, 8: 6}


def _as_image(source):
    """``(PIL image, owned)`` for a path or an already-open image (header only; no decoding)."""
    from PIL import Image

    if isinstance(source, (str, os.PathLike)):
        return Image.open(source), True
    return source, False


def _read_exif(image):
    """Pillow's ``Exif`` of an open image, or ``None`` (with a warning) when it cannot be parsed."""
    try:
        return image.getexif()
    except Exception as error:  # Pillow raises many kinds on malformed EXIF blocks
        _warn(f"EXIF block unreadable ({type(error).__name__}: {error}); ignoring it")
        return None


def orientation(source) -> int:
    """The EXIF orientation (1-8) of a photo (path or PIL image); 1 when absent or invalid.

    1 = upright, 2 = mirrored left-right, 3 = rotated 180 deg, 4 = mirrored top-bottom,
    5 = transposed, 6 = rotate 90 deg clockwise to show, 7 = transversed, 8 = rotate 90 deg
    counter-clockwise to show. An invalid value gives a warning and 1.
    """
    image, owned = _as_image(source)
    try:
        exif = _read_exif(image)
        value = None if exif is None else exif.get(_TAGS["Orientation"])
    finally:
        if owned:
            image.close()
    if value is None:
        return 1
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = -1
    if number not in _INVERSE:
        _warn(f"EXIF Orientation = {value!r} is not 1-8; showing the photo as stored")
        return 1
    return number


def upright_size(source) -> Tuple[int, int]:
    """``(width, height)`` in pixels of the photo as a viewer shows it (EXIF orientation applied)."""
    image, owned = _as_image(source)
    try:
        width, height = image.size
    finally:
        if owned:
            image.close()
    return (height, width) if orientation(source) in (5, 6, 7, 8) else (width, height)


def apply_orientation(array: np.ndarray, orientation: int, inverse: bool = False) -> np.ndarray:
    """Turn a stored ``(H, W, ...)`` array upright for an EXIF ``orientation`` (1-8).

    With ``inverse=True`` an upright array is turned back into the stored layout. Works for photos,
    masks and any per-pixel array (extra trailing axes are carried along); returns a view.
    """
    if orientation not in _INVERSE:
        raise ValueError(f"orientation must be 1-8, got {orientation!r}")
    if inverse:
        orientation = _INVERSE[orientation]
    a = np.asarray(array)
    if orientation == 2:
        return a[:, ::-1]
    if orientation == 3:
        return a[::-1, ::-1]
    if orientation == 4:
        return a[::-1]
    if orientation == 5:
        return a.swapaxes(0, 1)
    if orientation == 6:
        return np.rot90(a, k=-1)
    if orientation == 7:
        return a.swapaxes(0, 1)[::-1, ::-1]
    if orientation == 8:
        return np.rot90(a, k=1)
    return a


def orient_points(points, orientation: int, size: Tuple[int, int], inverse: bool = False) -> np.ndarray:
    """Map ``(N, 2)`` pixel coordinates ``(x, y)`` from the stored photo to the upright one.

    Args:
        points: ``(N, 2)`` or ``(2,)`` continuous pixel coordinates (pixel ``(i, j)`` covers
            ``[j, j+1) x [i, i+1)``).
        orientation: EXIF orientation 1-8.
        size: ``(width, height)`` of the frame the points are in: the stored size, or the upright
            size when ``inverse=True`` (upright -> stored).
    """
    if orientation not in _INVERSE:
        raise ValueError(f"orientation must be 1-8, got {orientation!r}")
    if inverse:
        orientation = _INVERSE[orientation]
    p = np.asarray(points, dtype=np.float64)
    x, y = p[..., 0], p[..., 1]
    w, h = float(size[0]), float(size[1])
    mapped = {
        1: (x, y), 2: (w - x, y), 3: (w - x, h - y), 4: (x, h - y),
        5: (y, x), 6: (h - y, x), 7: (h - y, w - x), 8: (y, w - x),
    }[orientation]
    return np.stack(mapped, axis=-1)


def orient_box(box: Sequence[float], orientation: int, size: Tuple[int, int], inverse: bool = False):
    """Map an ``(x0, y0, x1, y1)`` pixel box like :func:`orient_points`; returns a sorted box."""
    corners = orient_points([[box[0], box[1]], [box[2], box[3]]], orientation, size, inverse)
    (ax, ay), (bx, by) = corners.tolist()
    return (min(ax, bx), min(ay, by), max(ax, bx), max(ay, by))


# --------------------------------------------------------------------------------------------
# Lens
# --------------------------------------------------------------------------------------------


def _number(value) -> float:
    """A float from an EXIF value (IFDRational, int, ``(num, den)``); NaN when it is not one."""
    if isinstance(value, tuple) and len(value) == 2:
        num, den = value
        return float(num) / float(den) if float(den) != 0 else float("nan")
    if isinstance(value, (tuple, list)) and len(value) == 1:
        value = value[0]
    try:
        return float(value)
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return float("nan")


def _positive(tags: dict, name: str, limits: Tuple[float, float], zero_is_unknown: bool = False):
    """The tag's value when it is present and within ``limits``; ``None`` when absent.

    Raises ``_Broken`` (caught by :func:`read_lens`) for a present but unusable value.
    """
    if name not in tags:
        return None
    value = _number(tags[name])
    if zero_is_unknown and value == 0:
        return None
    if not math.isfinite(value) or not limits[0] <= value <= limits[1]:
        raise _Broken(f"EXIF {name} = {tags[name]!r} is not usable (expected {limits[0]:g}-{limits[1]:g})")
    return value


class _Broken(Exception):
    pass


def _lens_tags(exif) -> dict:
    """Name -> raw value of the lens tags, from IFD0 (TIFF files) and the EXIF sub-IFD (JPEG)."""
    found = {}
    try:
        sub_ifd = exif.get_ifd(_EXIF_IFD)
    except Exception as error:
        _warn(f"EXIF sub-IFD unreadable ({type(error).__name__}: {error}); ignoring it")
        sub_ifd = {}
    for name, tag in _TAGS.items():
        for ifd in (sub_ifd, exif):  # the EXIF sub-IFD is where the standard puts these
            if tag in ifd:
                found[name] = ifd[tag]
                break
    return found


def _same_aspect(size, frame) -> bool:
    """Whether ``size`` is ``frame`` uniformly rescaled, up to rounding to whole pixels."""
    scale = max(size[0] / frame[0], size[1] / frame[1])
    return all(abs(s - f * scale) <= max(1.0, 0.005 * s) for s, f in zip(size, frame))


def _original_frame(tags: dict, stored: Tuple[int, int]) -> Tuple[Tuple[float, float], Tuple[float, float], str]:
    """The camera's recorded frame ``(W0, H0)`` and the photo's crop fractions ``(fx, fy)`` of it.

    Pixel sizes differing from ``ExifImageWidth/Height`` mean a resize (same aspect ratio: same
    field of view) or a crop (different aspect: the axis that shrank more is taken as cropped and
    the other as merely rescaled). One cannot tell a crop that keeps the aspect ratio from a
    resize; it is taken as a resize. Recorded dimensions that match the photo only when swapped
    (pixels rotated by software that kept the old tags) are taken as swapped.
    """
    w, h = stored
    try:
        big_w = _positive(tags, "ExifImageWidth", (1, 1e6))
        big_h = _positive(tags, "ExifImageHeight", (1, 1e6))
    except _Broken as error:
        _warn(f"{error}; taking the photo as uncropped")
        big_w = big_h = None
    if big_w is None or big_h is None:
        return (float(w), float(h)), (1.0, 1.0), ""
    if not _same_aspect(stored, (big_w, big_h)) and _same_aspect(stored, (big_h, big_w)):
        big_w, big_h = big_h, big_w  # a rotated copy whose software kept the old dimensions
    scale = max(w / big_w, h / big_h)
    fx, fy = (w / big_w) / scale, (h / big_h) / scale
    if _same_aspect(stored, (big_w, big_h)):
        fx = fy = 1.0  # a resize keeps the field of view
    note = ""
    if (fx, fy) != (1.0, 1.0):
        note = f"cropped from {big_w:g}x{big_h:g} (kept {fx:.3f} x {fy:.3f} of the frame)"
    elif (w, h) != (big_w, big_h):
        note = f"resized from {big_w:g}x{big_h:g} (same field of view)"
    return (big_w, big_h), (fx, fy), note


def _full_sensor(tags, focal_eff, frame) -> Optional[Tuple[float, float, Tuple[str, ...]]]:
    """Sensor extents ``(Sx, Sy)`` in mm along the stored x / y axes of the recorded frame, and
    the tags used; ``None`` when no tag gives the sensor size."""
    big_w, big_h = frame
    diagonal_px = math.hypot(big_w, big_h)
    f35 = _positive(tags, "FocalLengthIn35mmFilm", (1.0, 50000.0), zero_is_unknown=True)
    if f35 is not None:
        # 35 mm equivalence is defined on the diagonal: crop factor = f35 / f = 43.27 / diagonal.
        # f35 is taken to describe the recorded picture, digital zoom included (phones do so).
        diagonal = FULL_FRAME_DIAGONAL_MM * focal_eff / f35
        return diagonal * big_w / diagonal_px, diagonal * big_h / diagonal_px, ("FocalLengthIn35mmFilm",)
    x_res = _positive(tags, "FocalPlaneXResolution", (1e-3, 1e7))
    if x_res is None:
        return None
    y_res = _positive(tags, "FocalPlaneYResolution", (1e-3, 1e7)) or x_res
    unit = _number(tags.get("FocalPlaneResolutionUnit", 2))  # 2 (inch) is the standard's default
    if unit not in _UNIT_MM:
        raise _Broken(f"EXIF FocalPlaneResolutionUnit = {tags['FocalPlaneResolutionUnit']!r} is not 2, 3 or 4")
    used = ("FocalPlaneXResolution", "FocalPlaneResolutionUnit")
    return big_w / x_res * _UNIT_MM[int(unit)], big_h / y_res * _UNIT_MM[int(unit)], used


def read_lens(source) -> Optional[LensInfo]:
    """The lens and sensor size from a photo's EXIF (path or PIL image), or ``None``.

    ``lens_mm = FocalLength x DigitalZoomRatio`` (ratio > 1 only). The sensor comes from
    ``FocalLengthIn35mmFilm`` (diagonal = 43.27 mm x FocalLength / FocalLengthIn35mmFilm, split by
    the recorded frame's aspect ratio) or else from ``FocalPlaneX/YResolution`` and
    ``FocalPlaneResolutionUnit`` with the recorded pixel size (``ExifImageWidth/Height``). With
    only ``FocalLengthIn35mmFilm`` the result is that lens on a 36 x 24 mm-diagonal sensor (same
    field of view). A photo resized from the recorded size keeps the field of view; a crop narrows
    the sensor along the cropped axis (see ``_original_frame``). ``sensor_width_mm`` is the extent
    along the photo's longer side (Blender's ``sensor_fit = "AUTO"``), whatever the orientation.

    Returns ``None`` silently when the photo has no lens tags at all, and ``None`` with an
    :class:`ExifWarning` naming the tag when a tag is missing, zero, NaN or absurd. Never raises
    for EXIF content (an unreadable file still raises Pillow's error).
    """
    image, owned = _as_image(source)
    try:
        stored = image.size
        exif = _read_exif(image)
        tags = {} if exif is None else _lens_tags(exif)
    finally:
        if owned:
            image.close()
    lens_names = ("FocalLength", "FocalLengthIn35mmFilm", "FocalPlaneXResolution")
    if not any(name in tags for name in lens_names) or min(stored) < 1:
        return None
    try:
        return _lens_from_tags(tags, stored)
    except _Broken as error:
        _warn(f"{error}; no lens from EXIF")
        return None


def _lens_from_tags(tags: dict, stored: Tuple[int, int]) -> Optional[LensInfo]:
    focal = _positive(tags, "FocalLength", _LENS_RANGE_MM)
    zoom = _number(tags.get("DigitalZoomRatio", 1.0))
    if not math.isfinite(zoom) or zoom <= 1.0:  # 0 or 0/0 mean "no digital zoom" in EXIF
        zoom = 1.0
    elif zoom > _ZOOM_MAX:
        raise _Broken(f"EXIF DigitalZoomRatio = {tags['DigitalZoomRatio']!r} is not usable (expected <= {_ZOOM_MAX:g})")
    frame, (fx, fy), note = _original_frame(tags, stored)
    if focal is None:
        f35 = _positive(tags, "FocalLengthIn35mmFilm", (1.0, 50000.0), zero_is_unknown=True)
        if f35 is None:
            raise _Broken("EXIF FocalLength is missing")
        focal_eff, used = f35, ("FocalLengthIn35mmFilm",)
        diagonal_px = math.hypot(*frame)
        sensor = (FULL_FRAME_DIAGONAL_MM * frame[0] / diagonal_px, FULL_FRAME_DIAGONAL_MM * frame[1] / diagonal_px)
    else:
        focal_eff = focal * zoom
        full = _full_sensor(tags, focal_eff, frame)
        if full is None:
            raise _Broken("EXIF FocalLength has no sensor size (FocalLengthIn35mmFilm and FocalPlaneXResolution missing)")
        sensor = full[:2]
        used = ("FocalLength",) + full[2] + (("DigitalZoomRatio",) if zoom > 1.0 else ())
    sensor_x, sensor_y = sensor[0] * fx, sensor[1] * fy
    if stored[0] < stored[1]:  # the longer side is the photo's height
        sensor_x, sensor_y = sensor_y, sensor_x
    for extent in (sensor_x, sensor_y):
        if not _SENSOR_RANGE_MM[0] <= extent <= _SENSOR_RANGE_MM[1]:
            raise _Broken(f"EXIF {'+'.join(used)} give a {extent:.3g} mm sensor side (expected "
                          f"{_SENSOR_RANGE_MM[0]:g}-{_SENSOR_RANGE_MM[1]:g} mm)")
    if "ExifImageWidth" in tags and note:
        used = used + ("ExifImageWidth", "ExifImageHeight")
    return LensInfo(float(focal_eff), float(sensor_x), float(sensor_y), LENS_EXIF, used, note)
