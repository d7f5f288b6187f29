"""Object cues for pose estimation: masks (alpha / mask images), boxes, GrabCut-from-box.

Everything here works on NumPy arrays in photo pixel coordinates (``x`` to the right, ``y`` down,
pixel ``(i, j)`` covering ``[j, j+1) x [i, i+1)``). A box is ``(x0, y0, x1, y1)`` in pixels with
``x0 < x1``, ``y0 < y1``. A mask is an ``(H, W)`` array of **coverage**: a pixel is object when
its value is at least half of full scale (uint8 >= 128, uint16 >= 32768, float >= 0.5, bool True),
so the soft edge of an anti-aliased mask or alpha (what paint programs, matting tools and
renderers write) neither grows nor shrinks the object. A mask holding only zero and one other
value (a 0/1 label image) is hard: that value is object (:func:`coverage_mask`).

OpenCV is optional: only :func:`grabcut_from_box` needs it, and it imports ``cv2`` lazily with a
clear error when it is missing (``pip install "opencv-python-headless<4.12"``).
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

import numpy as np

Box = Tuple[float, float, float, float]


def _full_scale(array: np.ndarray) -> float:
    """Full-scale value of a mask's dtype: 255 (uint8), 65535 (uint16), 1 (float).

    Other integer types have no fixed scale: the smallest of 1, 255, 65535 that holds the values.
    """
    if array.dtype == np.uint8:
        return 255.0
    if array.dtype == np.uint16:
        return 65535.0
    if array.dtype.kind in "iu":
        top = float(array.max(initial=0))
        return next((scale for scale in (1.0, 255.0, 65535.0) if top <= scale), top)
    return 1.0


def coverage_mask(values, threshold: float = 0.5) -> np.ndarray:
    """Object mask ``(H, W)`` bool from coverage values ``(H, W)``: value >= ``threshold`` x full scale.

    Full scale is 255 for uint8, 65535 for uint16, 1 for floats; bool masks are returned as they
    are. A mask whose non-zero values are all equal (a 0/1 or 0/255 label image) is hard: every
    non-zero pixel is object, whatever the scale.
    """
    array = np.asarray(values)
    if array.dtype == bool:
        return array.copy()
    nonzero = array[array != 0]
    if nonzero.size and nonzero.min() == nonzero.max():
        return array != 0
    return array >= threshold * _full_scale(array)


def as_mask(mask, shape: Tuple[int, int], *, name: str = "mask") -> np.ndarray:
    """Validate a mask and return it as a ``bool`` ``(H, W)`` array.

    Args:
        mask: ``(H, W)``, ``(H, W, 1)``, ``(1, H, W)`` or ``(1, 1, H, W)`` array or tensor of
            coverage: object where the value is at least half of full scale (uint8 >= 128,
            uint16 >= 32768, float >= 0.5, bool True); a two-level 0/v mask is object where v
            (see :func:`coverage_mask`).
        shape: the photo's ``(H, W)``.

    Raises:
        ValueError: wrong size (naming both sizes), non-finite values, or an empty mask.
    """
    try:
        import torch

        if isinstance(mask, torch.Tensor):
            mask = mask.detach().cpu().numpy()
    except ImportError:  # pragma: no cover - torch is a hard dependency of the package
        pass
    array = np.asarray(mask)
    while array.ndim > 2 and array.shape[0] == 1:
        array = array[0]
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 2:
        raise ValueError(f"{name}: expected an (H, W) array, got shape {np.asarray(mask).shape}")
    if tuple(array.shape) != tuple(shape):
        raise ValueError(
            f"{name}: size {array.shape[1]}x{array.shape[0]} (WxH) differs from the photo's "
            f"{shape[1]}x{shape[0]}"
        )
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        raise ValueError(f"{name}: contains NaN or inf")
    result = coverage_mask(array)
    if not result.any():
        raise ValueError(f"{name}: is empty (no pixel reaches half coverage to mark the object)")
    return result


def alpha_mask(alpha: np.ndarray, threshold: float = 0.5) -> Optional[np.ndarray]:
    """Object mask from an alpha channel, or ``None`` when the alpha carries no cut-out.

    Args:
        alpha: ``(H, W)`` coverage: floats in ``[0, 1]``, uint8 or uint16.
        threshold: alpha at or above this fraction of full opacity is object (coverage, as in
            :func:`coverage_mask`).

    An alpha channel that is (almost) fully opaque or fully transparent is not a mask: such files
    are common (PNG exported with an alpha channel it does not use), so ``None`` is returned.
    """
    mask = coverage_mask(alpha, threshold)
    fraction = float(mask.mean()) if mask.size else 0.0
    if fraction <= 0.0005 or fraction >= 0.9995:
        return None
    return mask


def validate_box(bbox: Sequence[float], shape: Tuple[int, int]) -> Box:
    """Check a ``(x0, y0, x1, y1)`` pixel box against a photo of ``shape = (H, W)``.

    The box is clipped to the photo when it sticks out a little; it must overlap the photo and be
    at least 2 pixels wide and tall.

    Raises:
        ValueError: not 4 finite numbers, ``x0 >= x1`` or ``y0 >= y1``, or outside the photo.
    """
    try:
        values = [float(v) for v in bbox]
    except (TypeError, ValueError):
        raise ValueError(f"bbox: expected 4 numbers (x0, y0, x1, y1), got {bbox!r}") from None
    if len(values) != 4:
        raise ValueError(f"bbox: expected 4 numbers (x0, y0, x1, y1), got {len(values)}")
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"bbox: contains NaN or inf: {values}")
    x0, y0, x1, y1 = values
    if x0 >= x1 or y0 >= y1:
        raise ValueError(f"bbox: needs x0 < x1 and y0 < y1, got {values}")
    height, width = shape
    if x1 <= 0 or y1 <= 0 or x0 >= width or y0 >= height:
        raise ValueError(f"bbox {values} lies outside the {width}x{height} photo")
    x0, y0, x1, y1 = max(x0, 0.0), max(y0, 0.0), min(x1, float(width)), min(y1, float(height))
    if x1 - x0 < 2 or y1 - y0 < 2:
        raise ValueError(f"bbox {values}: less than 2 pixels of it lie inside the {width}x{height} photo")
    return (x0, y0, x1, y1)


def mask_to_box(mask: np.ndarray) -> Box:
    """Tight ``(x0, y0, x1, y1)`` box (pixel edges, exclusive max) around a non-empty mask."""
    mask = np.asarray(mask) != 0
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        raise ValueError("mask_to_box: the mask is empty")
    return (float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1))


def central_component(mask: np.ndarray) -> np.ndarray:
    """The part of an ``(H, W)`` mask that is one connected piece around the photo's centre: the
    8-connected component nearest to it (by its closest pixel). GrabCut of a cluttered frame keeps
    bits of the background; a photographer centres the object. Empty in, empty out."""
    cv2 = _import_cv2()
    mask = np.asarray(mask) != 0
    count, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    if count <= 2:
        return mask
    height, width = mask.shape
    ys, xs = np.nonzero(mask)
    distance = (xs + 0.5 - width / 2.0) ** 2 + (ys + 0.5 - height / 2.0) ** 2
    return labels == labels[ys[np.argmin(distance)], xs[np.argmin(distance)]]


def grabcut_from_box(
    photo: np.ndarray, bbox: Sequence[float], *, iterations: int = 4, max_side: int = 240
) -> np.ndarray:
    """Automatic object mask from a box with OpenCV's GrabCut (Rother et al. 2004).

    Args:
        photo: ``(H, W, 3)`` RGB floats in ``[0, 1]`` or uint8.
        bbox: ``(x0, y0, x1, y1)`` pixels; everything outside is taken as background.
        iterations: GrabCut iterations.
        max_side: the photo is downscaled to this longest side for speed; the mask is upscaled back.

    Returns:
        ``(H, W)`` bool mask (probable + certain foreground). Falls back to the filled box when
        GrabCut returns nothing (flat photos), so the result is never empty.

    Raises:
        ImportError: OpenCV is not installed (the message says how to install it).
    """
    cv2 = _import_cv2()
    photo = np.asarray(photo)
    height, width = photo.shape[:2]
    x0, y0, x1, y1 = validate_box(bbox, (height, width))
    rgb = _as_uint8_rgb(photo)
    if rgb.ndim == 2 or rgb.shape[-1] == 1:
        rgb = np.repeat(rgb.reshape(height, width, 1), 3, axis=-1)
    scale = min(1.0, max_side / max(height, width))
    small_w, small_h = max(1, round(width * scale)), max(1, round(height * scale))
    small = cv2.resize(np.ascontiguousarray(rgb), (small_w, small_h), interpolation=cv2.INTER_AREA)
    bgr = np.ascontiguousarray(small[..., ::-1])
    rect_x0 = int(math.floor(x0 * scale))
    rect_y0 = int(math.floor(y0 * scale))
    rect_w = max(2, min(small_w - rect_x0, int(math.ceil(x1 * scale)) - rect_x0))
    rect_h = max(2, min(small_h - rect_y0, int(math.ceil(y1 * scale)) - rect_y0))
    box_mask = np.zeros((small_h, small_w), bool)
    box_mask[rect_y0 : rect_y0 + rect_h, rect_x0 : rect_x0 + rect_w] = True
    if rect_w >= small_w - 1 and rect_h >= small_h - 1:
        # GrabCut needs some background outside the rectangle to model it.
        return _upscale(box_mask, (height, width))
    labels = np.zeros((small_h, small_w), np.uint8)
    background_model = np.zeros((1, 65), np.float64)
    foreground_model = np.zeros((1, 65), np.float64)
    # Deterministic: GrabCut's k-means initialisation uses OpenCV's global RNG.
    cv2.setRNGSeed(0)
    try:
        cv2.grabCut(
            bgr, labels, (rect_x0, rect_y0, rect_w, rect_h), background_model, foreground_model,
            int(iterations), cv2.GC_INIT_WITH_RECT,
        )
    except cv2.error:
        return _upscale(box_mask, (height, width))
    foreground = (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)
    if foreground.sum() < 0.02 * box_mask.sum():
        foreground = box_mask
    return _upscale(foreground, (height, width))


def grabcut_from_mask(
    photo: np.ndarray, guess: np.ndarray, bbox: Optional[Sequence[float]] = None, *, iterations: int = 3,
    max_side: int = 240,
) -> np.ndarray:
    """GrabCut seeded by a guessed object mask (e.g. the render of a first pose estimate).

    The guess marks "probably object", the rest "probably background" and everything outside
    ``bbox`` "certainly background". Thin parts the box-initialised GrabCut loses (chair legs)
    come back when the guess contains them and the colours agree.

    Args:
        photo: ``(H, W, 3)`` RGB floats in ``[0, 1]`` or uint8.
        guess: ``(H, W)`` bool/float mask (non-zero = object).
        bbox: optional ``(x0, y0, x1, y1)`` pixels.

    Returns:
        ``(H, W)`` bool mask; the guess itself when GrabCut fails or returns almost nothing.
    """
    cv2 = _import_cv2()
    photo = np.asarray(photo)
    height, width = photo.shape[:2]
    guess = np.asarray(guess) != 0
    if guess.shape != (height, width):
        raise ValueError(f"grabcut_from_mask: guess {guess.shape} differs from the photo {(height, width)}")
    if not guess.any():
        raise ValueError("grabcut_from_mask: the guess is empty")
    rgb = _as_uint8_rgb(photo)
    scale = min(1.0, max_side / max(height, width))
    small_w, small_h = max(1, round(width * scale)), max(1, round(height * scale))
    small = cv2.resize(np.ascontiguousarray(rgb), (small_w, small_h), interpolation=cv2.INTER_AREA)
    small_guess = cv2.resize(guess.astype(np.uint8), (small_w, small_h), interpolation=cv2.INTER_NEAREST) > 0
    labels = np.where(small_guess, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
    if bbox is not None:
        x0, y0, x1, y1 = validate_box(bbox, (height, width))
        outside = np.ones((small_h, small_w), bool)
        outside[int(math.floor(y0 * scale)) : int(math.ceil(y1 * scale)), int(math.floor(x0 * scale)) : int(math.ceil(x1 * scale))] = False
        labels[outside] = cv2.GC_BGD
    if not (labels == cv2.GC_PR_BGD).any() and not (labels == cv2.GC_BGD).any():
        return guess
    background_model = np.zeros((1, 65), np.float64)
    foreground_model = np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)
    try:
        cv2.grabCut(np.ascontiguousarray(small[..., ::-1]), labels, None, background_model, foreground_model,
                    int(iterations), cv2.GC_INIT_WITH_MASK)
    except cv2.error:
        return guess
    foreground = (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)
    if foreground.sum() < 0.2 * small_guess.sum():
        return guess
    return _upscale(foreground, (height, width))


def _import_cv2():
    """OpenCV, imported only when GrabCut runs (it is an optional dependency)."""
    try:
        import cv2
    except ImportError:
        raise ImportError(
            "box mode needs OpenCV for GrabCut: pip install 'opencv-python-headless<4.12'"
        ) from None
    return cv2


def _as_uint8_rgb(photo: np.ndarray) -> np.ndarray:
    """The photo's colour channels as uint8 (GrabCut's input type); floats are taken in [0, 1]."""
    rgb = photo[..., :3]
    if rgb.dtype != np.uint8:
        rgb = np.round(np.clip(rgb.astype(np.float32), 0, 1) * 255).astype(np.uint8)
    return rgb


def _upscale(mask: np.ndarray, shape: Tuple[int, int]) -> np.ndarray:
    if mask.shape == tuple(shape):
        return mask
    from PIL import Image

    image = Image.fromarray(mask.astype(np.uint8) * 255).resize((shape[1], shape[0]), Image.BILINEAR)
    return np.asarray(image) >= 128


def mask_moments(mask: np.ndarray) -> Tuple[float, float, float, float]:
    """``(cx, cy, area, radius)`` of a mask: centroid (pixels, continuous coordinates with pixel
    centres at ``+0.5``), area (pixels) and radius of gyration ``sqrt(var_x + var_y)`` (pixels)."""
    weights = np.asarray(mask, dtype=np.float64)
    total = weights.sum()
    if total <= 0:
        raise ValueError("mask_moments: the mask is empty")
    ys, xs = np.mgrid[0 : weights.shape[0], 0 : weights.shape[1]]
    cx = float((weights * (xs + 0.5)).sum() / total)
    cy = float((weights * (ys + 0.5)).sum() / total)
    var = float((weights * ((xs + 0.5 - cx) ** 2 + (ys + 0.5 - cy) ** 2)).sum() / total)
    return cx, cy, float(total), math.sqrt(max(var, 1e-12))
