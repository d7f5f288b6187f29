"""Reading and writing photos as float arrays, and turning them into batched tensors.

Everything here returns ``float32`` arrays in ``[0, 1]`` laid out ``H x W x C`` (NumPy/Pillow
order); :func:`to_tensor` converts to the batch-first ``(1, C, H, W)`` layout the rest of
``torch_backend`` uses. Pillow is the only image library needed.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Union

import numpy as np
import torch

PathLike = Union[str, os.PathLike]

_MODES = ("rgb", "gray", "rgba")


def _open_image(path: Path):
    from PIL import Image, UnidentifiedImageError

    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise ValueError(f"{path}: is a directory, not an image file")
    try:
        image = Image.open(path)
        image.load()  # decode now so truncated/corrupt files fail here, not later
    except UnidentifiedImageError:
        raise ValueError(f"{path}: not an image Pillow can read (unknown or corrupt format)") from None
    except (OSError, SyntaxError, EOFError) as error:  # truncated data, broken headers
        raise ValueError(f"{path}: corrupt or truncated image ({error})") from None
    return image


def _to_float_channels(image) -> tuple[np.ndarray, np.ndarray | None]:
    """Return ``(colour HxWx3 or HxWx1, alpha HxW or None)`` as float32 in [0, 1]."""
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16-bit grayscale (PNG/TIFF): Pillow reports it as integer modes. 32-bit "I" from a 16-bit
        # PNG still holds values in [0, 65535].
        values = np.asarray(image, dtype=np.float64)
        scale = 65535.0 if values.max(initial=0) <= 65535 else float(values.max())
        return (values / scale).astype(np.float32)[..., None], None
    if mode == "F":
        values = np.asarray(image, dtype=np.float32)
        return values[..., None], None
    if mode in ("RGB;16", "RGBA;16", "BGR;16"):  # rare raw 16-bit colour modes
        image = image.convert("RGBA" if "A" in mode else "RGB")
        mode = image.mode
    has_alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
        mode == "P" and "transparency" in image.info
    )
    if mode == "1" or mode == "L":
        gray = np.asarray(image.convert("L"), dtype=np.float32) / 255.0
        return gray[..., None], None
    if has_alpha:
        if mode == "LA" or mode == "La":
            la = np.asarray(image.convert("LA"), dtype=np.float32) / 255.0
            return la[..., :1], la[..., 1]
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float32) / 255.0
        return rgba[..., :3], rgba[..., 3]
    # P (palette), CMYK, YCbCr, LAB, HSV, ...: let Pillow convert to RGB.
    rgb = np.asarray(image.convert("RGB") if mode != "RGB" else image, dtype=np.float32) / 255.0
    return rgb, None


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

    The EXIF orientation tag is honoured (the array is upright as a viewer shows it). 16-bit
    images are scaled by 1/65535, 8-bit by 1/255. Palette, LA, CMYK, ... are converted.

    Raises:
        FileNotFoundError: the file does not exist (message names the file).
        ValueError: unknown ``mode``, or the file is not a readable image (message names the file
            and the problem).
    """
    if mode not in _MODES:
        raise ValueError(f"load_image: mode must be one of {_MODES}, got {mode!r}")
    from PIL import ImageOps

    path = Path(path)
    image = _open_image(path)
    try:
        image = ImageOps.exif_transpose(image)
    except Exception:  # a broken EXIF block should not make the pixels unreadable
        pass
    colour, alpha = _to_float_channels(image)
    if colour.shape[0] == 0 or colour.shape[1] == 0:
        raise ValueError(f"{path}: image is empty ({colour.shape[1]}x{colour.shape[0]} pixels)")
    if mode == "gray":
        out = colour if colour.shape[-1] == 1 else rgb_to_gray(colour)[..., None]
    else:
        rgb = colour if colour.shape[-1] == 3 else np.repeat(colour, 3, axis=-1)
        if mode == "rgb":
            out = rgb
        else:
            a = np.ones(rgb.shape[:2], np.float32) if alpha is None else alpha
            out = np.concatenate([rgb, a[..., None]], axis=-1)
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
