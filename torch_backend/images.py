"""Reading and writing photos as float arrays, and turning them into batched tensors.

Everything here returns ``float32`` arrays in ``[0, 1]`` laid out ``H x W x C`` (NumPy/Pillow
order); :func:`to_tensor` converts to the batch-first ``(1, C, H, W)`` layout the rest of
``torch_backend`` uses. Pillow is the only image library needed.

:func:`read_photo` is the one reader of the pixels the solver sees: EXIF orientation applied once,
every Pillow mode (gray, gray + alpha, palette with transparency, RGB, RGBA, 16-bit) mapped to the
same floats for the same content, raw values over full scale (no colour-space conversion), and the
lens from EXIF (:mod:`torch_backend.exif`, re-exported here).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple, Union

import numpy as np
import torch

from .exif import (  # noqa: F401  (re-exported: the lens vocabulary lives with the photo reader)
    FULL_FRAME_DIAGONAL_MM,
    LENS_DEFAULT,
    LENS_ESTIMATED,
    LENS_EXIF,
    LENS_GIVEN,
    LENS_SOURCES,
    ExifWarning,
    LensInfo,
    apply_orientation,
    orient_box,
    orient_points,
    orientation,
    read_lens,
    upright_size,
)

PathLike = Union[str, os.PathLike]

_MODES = ("rgb", "gray", "rgba")


class PhotoNotFoundError(FileNotFoundError, ValueError):
    """The photo file does not exist (both a ``FileNotFoundError`` and a ``ValueError``)."""


@dataclass(frozen=True, eq=False)
class Photo:
    """A photo as the solver sees it, upright.

    Attributes:
        rgb: ``(H, W, 3)`` float32 in ``[0, 1]`` (gray photos replicated to 3 channels).
        alpha: ``(H, W)`` float32 in ``[0, 1]``, or ``None`` when the file has no alpha channel
            (an alpha channel that is fully opaque is kept: :func:`torch_backend.masks.alpha_mask`
            decides whether it is a cut-out).
        orientation: the EXIF orientation (1-8) that was applied to the stored pixels.
        lens: the lens from EXIF (:func:`read_lens`) or ``None``.
        size: ``(width, height)`` in pixels, upright.
        path: the file it came from.
    """

    rgb: np.ndarray
    alpha: Optional[np.ndarray]
    orientation: int
    lens: Optional[LensInfo]
    size: Tuple[int, int]
    path: Optional[Path] = None


def _open_image(path: Path):
    from PIL import Image, UnidentifiedImageError

    if not path.exists():
        raise PhotoNotFoundError(2, f"{path}: no such file")
    if path.is_dir():
        raise ValueError(f"{path}: is a directory, not an image file")
    try:
        image = Image.open(path)
        image.load()  # decode now so truncated/corrupt files fail here, not later
    except UnidentifiedImageError:
        raise ValueError(f"{path}: not an image Pillow can read (unknown or corrupt format)") from None
    except (OSError, SyntaxError, EOFError, ValueError) as error:  # truncated data, broken headers
        raise ValueError(f"{path}: corrupt or truncated image ({error})") from None
    return image


def _scaled(array, full_scale: float) -> np.ndarray:
    # float64 division, then float32: 8-bit v/255 and 16-bit 257v/65535 round to the same float.
    return (np.asarray(array, dtype=np.float64) / full_scale).astype(np.float32)


def _to_float_channels(image) -> tuple[np.ndarray, np.ndarray | None]:
    """Return ``(colour HxWx3 or HxWx1, alpha HxW or None)`` as float32 in [0, 1].

    Pillow opens 16-bit gray PNG/TIFF as ``I;16`` (kept at 16 bits) but 16-bit colour PNGs as
    8-bit ``RGB``/``RGBA`` (it keeps the high byte); either way values are raw / full scale.
    """
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 32-bit "I" from a 16-bit PNG still holds values in [0, 65535].
        values = np.asarray(image)
        scale = 65535.0 if values.max(initial=0) <= 65535 else float(values.max())
        return _scaled(values, scale)[..., None], None
    if mode == "F":
        return np.asarray(image, dtype=np.float32)[..., None], None
    if mode in ("1", "L"):
        return _scaled(image.convert("L"), 255.0)[..., None], None
    if mode in ("LA", "La"):
        la = _scaled(image.convert("LA"), 255.0)
        return la[..., :1], la[..., 1]
    if mode in ("RGBA", "RGBa", "PA") or (mode == "P" and "transparency" in image.info):
        rgba = _scaled(image.convert("RGBA"), 255.0)
        return rgba[..., :3], rgba[..., 3]
    # RGB, P (palette), CMYK, YCbCr, LAB, HSV, ...: let Pillow convert to RGB.
    return _scaled(image.convert("RGB") if mode != "RGB" else image, 255.0), None


def read_photo(path: PathLike, *, with_lens: bool = True) -> Photo:
    """Read a photo upright, as float32 in ``[0, 1]``, with its alpha and EXIF lens.

    Args:
        path: any file Pillow can read (JPEG, PNG incl. 16-bit, TIFF, BMP, WebP, ...).
        with_lens: read the lens from EXIF (:func:`read_lens`; it may warn about broken tags).

    The EXIF orientation is applied to the pixels (and the alpha) once; ``Photo.size`` is the
    upright size. Values are raw / full scale (8-bit / 255, 16-bit / 65535), whatever the mode.

    Raises:
        PhotoNotFoundError: (a ``ValueError``) the file does not exist.
        ValueError: the file is a folder, not a readable image, truncated or empty (the message
            names the file and the problem).
    """
    path = Path(path)
    image = _open_image(path)
    with image:
        turn = orientation(image)
        lens = read_lens(image) if with_lens else None
        colour, alpha = _to_float_channels(image)
    if colour.shape[0] == 0 or colour.shape[1] == 0:
        raise ValueError(f"{path}: image is empty ({colour.shape[1]}x{colour.shape[0]} pixels)")
    colour = np.clip(colour, 0.0, 1.0)
    rgb = np.ascontiguousarray(apply_orientation(np.broadcast_to(colour, colour.shape[:2] + (3,)), turn))
    if alpha is not None:
        alpha = np.ascontiguousarray(apply_orientation(np.clip(alpha, 0.0, 1.0), turn))
    return Photo(rgb, alpha, turn, lens, (rgb.shape[1], rgb.shape[0]), path)


def read_mask(path: PathLike) -> np.ndarray:
    """A mask file's coverage, upright: ``(H, W)`` float32 in ``[0, 1]``.

    The alpha channel when the file has one that is not fully opaque (a cut-out), else the
    brightest colour channel (white or any colour on black). Turn it into an object mask with
    :func:`torch_backend.masks.as_mask` (coverage >= 1/2 is object).
    """
    photo = read_photo(path, with_lens=False)
    if photo.alpha is not None and bool((photo.alpha < 1.0).any()):
        return photo.alpha
    return np.ascontiguousarray(photo.rgb.max(axis=-1))


#: ITU-R BT.601 luma weights: Pillow's "L" conversion and the seed paper's eq. 1.
GRAY_WEIGHTS = (0.299, 0.587, 0.114)


def rgb_to_gray(rgb, channel_axis: int = -1):
    """Gray = 0.299 R + 0.587 G + 0.114 B (seed paper eq. 1) of a numpy array or torch tensor.

    Args:
        rgb: array/tensor whose ``channel_axis`` holds R, G, B first (a 4th channel, alpha, is
            ignored); any value range, any float dtype.
        channel_axis: the colour axis (``-1`` for ``(H, W, C)``, ``1`` for ``(B, C, H, W)``).

    Returns:
        the same type with the colour axis removed.
    """
    move = rgb.movedim if isinstance(rgb, torch.Tensor) else (lambda src, dst: np.moveaxis(rgb, src, dst))
    red, green, blue = move(channel_axis, 0)[:3]
    return red * GRAY_WEIGHTS[0] + green * GRAY_WEIGHTS[1] + blue * GRAY_WEIGHTS[2]


def load_image(path: PathLike, mode: str = "rgb") -> np.ndarray:
    """Read a photo as ``float32`` in ``[0, 1]``, ``H x W x C``.

    Args:
        path: any file Pillow can read (JPEG, PNG incl. 16-bit, TIFF, BMP, WebP, ...).
        mode: ``"rgb"`` -> C = 3 (alpha dropped, gray replicated), ``"gray"`` -> C = 1
            (BT.601 luma 0.299 R + 0.587 G + 0.114 B), ``"rgba"`` -> C = 4 (alpha kept; opaque
            images get alpha = 1).

    A view of :func:`read_photo`: EXIF orientation honoured (upright as a viewer shows it),
    16-bit images scaled by 1/65535, 8-bit by 1/255, palette, LA, CMYK, ... converted.

    Raises:
        FileNotFoundError: the file does not exist (message names the file; also a ValueError).
        ValueError: unknown ``mode``, or the file is not a readable image (message names the file
            and the problem).
    """
    if mode not in _MODES:
        raise ValueError(f"load_image: mode must be one of {_MODES}, got {mode!r}")
    photo = read_photo(path, with_lens=False)
    if mode == "gray":
        rgb = photo.rgb
        gray = (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 0] == rgb[..., 2]).all()
        out = (rgb[..., :1] if gray else rgb_to_gray(rgb)[..., None])  # gray files stay exact
    elif mode == "rgb":
        out = photo.rgb
    else:
        alpha = np.ones(photo.rgb.shape[:2], np.float32) if photo.alpha is None else photo.alpha
        out = np.concatenate([photo.rgb, alpha[..., None]], axis=-1)
    return np.ascontiguousarray(np.clip(out, 0.0, 1.0), dtype=np.float32)


def to_tensor(
    array: np.ndarray, dtype: torch.dtype = torch.float32, device: Union[str, torch.device, None] = None
) -> torch.Tensor:
    """Turn an ``H x W`` or ``H x W x C`` image array into a ``(1, C, H, W)`` tensor.

    Args:
        array: image array (any real dtype; integer arrays are NOT rescaled — pass floats in [0, 1]).
        dtype: floating dtype of the result (``torch.float32`` or ``torch.float64``).
        device: target device (default: CPU).
    """
    array = np.asarray(array)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3:
        raise ValueError(f"to_tensor: expected an HxW or HxWxC array, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"to_tensor: empty image of shape {array.shape}")
    tensor = torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1))).to(dtype=dtype, device=device)
    return tensor.unsqueeze(0)


def to_array(tensor: torch.Tensor) -> np.ndarray:
    """Inverse of :func:`to_tensor`: ``(1, C, H, W)`` or ``(C, H, W)`` -> ``H x W x C`` float32."""
    if tensor.dim() == 4:
        if tensor.shape[0] != 1:
            raise ValueError(f"to_array: expected batch size 1, got shape {tuple(tensor.shape)}")
        tensor = tensor[0]
    if tensor.dim() != 3:
        raise ValueError(f"to_array: expected (1, C, H, W) or (C, H, W), got {tuple(tensor.shape)}")
    return tensor.detach().cpu().permute(1, 2, 0).to(torch.float32).numpy()


def save_image(path: PathLike, array: np.ndarray) -> Path:
    """Write an image array (``H x W``, ``H x W x 1/3/4``, floats in [0, 1] or uint8) as 8-bit.

    Float values are clipped to ``[0, 1]`` and rounded. The format follows the file extension
    (``.png`` recommended). Parent folders must exist. Returns the written path.
    """
    from PIL import Image

    path = Path(path)
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (3, 4)):
        raise ValueError(f"save_image: expected HxW or HxWx{{1,3,4}}, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"save_image: empty image of shape {array.shape}")
    if array.dtype != np.uint8:
        values = np.asarray(array, dtype=np.float64)
        if not np.all(np.isfinite(values)):
            raise ValueError(f"save_image: {path}: image contains NaN or inf")
        array = np.round(np.clip(values, 0.0, 1.0) * 255.0).astype(np.uint8)
    if not path.parent.exists():
        raise FileNotFoundError(f"{path}: folder {path.parent} does not exist")
    try:
        Image.fromarray(array).save(path)
    except (KeyError, ValueError) as error:  # unknown extension
        raise ValueError(f"{path}: cannot save image ({error})") from None
    return path
