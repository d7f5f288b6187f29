"""A differentiable drop-in for ``skimage.feature.hog`` (scikit-image 0.25 and 0.26: same ``_hog.py``).

:func:`skimage_hog` returns the same values as ``skimage.feature.hog`` for the same image and the
same keyword arguments, as a torch tensor that autograd can differentiate with respect to the image.
Every step follows scikit-image's ``skimage/feature/_hog.py`` and ``_hoghistogram.pyx``:

1. optional ``sqrt`` power-law compression (``transform_sqrt``);
2. central differences ``[-1, 0, 1]`` along rows and columns, with the gradient set to 0 on the first
   and last row (row gradient) and column (column gradient);
3. for colour images, per pixel the channel with the largest gradient magnitude (first one on ties);
4. unsigned orientation ``rad2deg(atan2(g_row, g_col)) % 180`` (float64) put into
   ``orientations`` hard bins ``[180/n * i, 180/n * (i + 1))`` (a pixel exactly on an edge lands in
   the same bin as there); each cell's histogram is the *mean* of the magnitudes over its pixels;
   pixels right of / below the last whole cell are ignored;
5. overlapping blocks of ``cells_per_block`` cells normalized with L1, L1-sqrt, L2 or L2-Hys
   (``eps = 1e-5``), laid out as ``(n_blocks_row, n_blocks_col, b_row, b_col, orientations)``.

Gradients flow through the magnitudes (the bin choice is piecewise constant, as in the reference).
Where the math has no finite derivative (``sqrt`` at 0 in ``transform_sqrt`` and ``L1-sqrt``, the
magnitude of a zero gradient) the backward pass uses 0, so gradients are never NaN/inf.

Discrete choices (dominant channel, orientation bin) are scikit-image's bit for bit: torch's
vectorised ``sqrt``/``hypot``/``atan2`` can be one ulp off, so pixels within rounding of a
channel tie or a bin edge are re-decided with numpy exactly as ``_hog.py`` computes them (see
:class:`_ReferenceGradients`). The one numerical difference left: scikit-image's Cython loop sums
each cell in a float32 accumulator, here in float64; the outputs agree to ~1e-7 (largest
difference over all bundled images, options and dtypes in the slow sweep test: see the tests).

Usage (numpy in, torch out)::

    features = skimage_hog(np_image, channel_axis=-1)           # == skimage.feature.hog(...)
    features = skimage_hog(batch_bhwc.requires_grad_(), channel_axis=-1)  # (B, D), differentiable
"""

from __future__ import annotations

import math

import numpy as np
import torch

_BLOCK_NORMS = ("L1", "L1-sqrt", "L2", "L2-Hys")
# scikit-image's ``_hog_normalize_block`` default.
_NORM_EPS = 1e-5
# Hysteresis clip of L2-Hys (Lowe 2004, as in scikit-image).
_HYS_CLIP = 0.2
# Angles closer than this to a bin edge are re-binned exactly in float64 (see _orientation_bins);
# float32 angles are within ~1e-4 degrees of the float64 ones.
_EDGE_TOLERANCE_DEG = 1e-3


def _as_float_tensor(image) -> torch.Tensor:
    """Tensor in the float dtype scikit-image would compute in (``utils._supported_float_type``)."""
    if isinstance(image, np.ndarray):
        if image.dtype.kind not in "biuf":
            raise ValueError(f"skimage_hog: image dtype {image.dtype} is not a real number type")
        if image.dtype.kind == "f" and image.dtype.itemsize <= 4:
            image = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))
        else:
            image = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float64))
        return image
    if not isinstance(image, torch.Tensor):
        raise ValueError(
            f"skimage_hog: image must be a torch.Tensor or numpy.ndarray, got {type(image).__name__}"
        )
    if image.dtype in (torch.float32, torch.float64):
        return image
    if image.dtype in (torch.float16, torch.bfloat16):
        return image.to(torch.float32)
    if image.dtype.is_complex:
        raise ValueError(f"skimage_hog: image dtype {image.dtype} is complex; HOG needs real values")
    # Integers and booleans: scikit-image promotes them to float64 without rescaling.
    return image.to(torch.float64)


def _pair(value, name: str) -> tuple[int, int]:
    try:
        first, second = value
        pair = (int(first), int(second))
    except (TypeError, ValueError):
        raise ValueError(f"skimage_hog: {name} must be a pair of positive integers, got {value!r}")
    if pair[0] != first or pair[1] != second or min(pair) < 1:
        raise ValueError(f"skimage_hog: {name} must be a pair of positive integers, got {value!r}")
    return pair


def _to_batched_gray_or_channels(image: torch.Tensor, channel_axis) -> tuple[torch.Tensor, bool]:
    """Reshape to ``(B, C, H, W)``; ``channel_axis`` counts in the per-image layout."""
    per_image_ndim = 2 if channel_axis is None else 3
    if image.ndim == per_image_ndim:
        batched = False
        image = image.unsqueeze(0)
    elif image.ndim == per_image_ndim + 1:
        batched = True
    else:
        layout = "(H, W) or (B, H, W)" if channel_axis is None else "(H, W, C) or (B, H, W, C)"
        raise ValueError(
            f"skimage_hog: expected an image of layout {layout} (channel_axis={channel_axis}); got "
            f"shape {tuple(image.shape)}. Only images with two spatial dimensions are supported; "
            "for colour images pass channel_axis."
        )
    if channel_axis is None:
        return image.unsqueeze(1), batched
    try:
        axis = int(channel_axis)
    except (TypeError, ValueError):
        raise ValueError(f"skimage_hog: channel_axis must be an int or None, got {channel_axis!r}")
    if not -3 <= axis <= 2:
        raise ValueError(f"skimage_hog: channel_axis={channel_axis} is out of range for a 3-D image")
    axis = axis % 3 + 1  # position after the batch dimension
    return image.movedim(axis, 1), batched


def _safe_sqrt(x: torch.Tensor) -> torch.Tensor:
    """``sqrt(x)`` for ``x >= 0`` whose derivative at 0 is taken as 0 instead of +inf."""
    positive = x > 0
    return torch.where(positive, torch.sqrt(torch.where(positive, x, torch.ones_like(x))), 0.0)


class _ExactSqrt(torch.autograd.Function):
    """Correctly rounded ``sqrt(x)`` of ``x >= 0`` (numpy's, as scikit-image), derivative 0 at 0.

    torch's CPU ``sqrt`` is one ulp off for ~3% of values (e.g. ``sqrt(2.0)``); in float32 one
    ulp of ``sqrt(x)`` is ~1e-5 of a small gradient ``sqrt(a) - sqrt(b)``, so it would show in
    the features. Other devices use their own (IEEE) ``sqrt``.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        if x.device.type == "cpu":
            root = torch.from_numpy(np.sqrt(x.detach().numpy()))
        else:
            root = torch.sqrt(x)
        ctx.save_for_backward(root)
        return root

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (root,) = ctx.saved_tensors
        positive = root > 0
        return torch.where(positive, 0.5 * grad / torch.where(positive, root, 1.0), 0.0)


class _SafeHypot(torch.autograd.Function):
    """``hypot(a, b)`` whose derivative is 0 (not NaN) where ``a = b = 0``."""

    @staticmethod
    def forward(ctx, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        magnitude = torch.hypot(a, b)
        ctx.save_for_backward(a, b, magnitude)
        return magnitude

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        a, b, magnitude = ctx.saved_tensors
        positive = magnitude > 0
        scale = torch.where(positive, grad / torch.where(positive, magnitude, 1.0), 0.0)
        return scale * a, scale * b


def _channel_gradients(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Central differences of ``(B, C, H, W)`` with zero first/last row and column (``_hog.py``)."""
    g_row = torch.nn.functional.pad(image[:, :, 2:, :] - image[:, :, :-2, :], (0, 0, 1, 1))
    g_col = torch.nn.functional.pad(image[:, :, :, 2:] - image[:, :, :, :-2], (1, 1, 0, 0))
    return g_row, g_col


class _ReferenceGradients:
    """scikit-image's per-channel gradients, bit for bit, at a few pixels (numpy, CPU).

    torch's vectorised ``sqrt``, ``hypot`` and ``atan2`` are not always correctly rounded (one
    ulp off on ~1% of values), while scikit-image's choices -- the dominant channel and the
    orientation bin -- are discrete and flip on one ulp near a tie or a bin edge. The bulk is
    decided with torch; the few pixels close to a decision are redone here exactly as
    ``_hog.py`` does: numpy ``sqrt`` of the same float values, the same differences, ``hypot``
    in the image's float dtype, ``argmax`` (first channel on ties) and ``arctan2`` in float64.
    """

    def __init__(self, image: torch.Tensor, transform_sqrt: bool):
        self.image = image.detach()  # (B, C, H, W), before the sqrt
        self.transform_sqrt = transform_sqrt

    def _values(self, b, rows, cols) -> np.ndarray:
        values = self.image[b, :, rows, cols].cpu().numpy()  # (k, C) in the image's dtype
        return np.sqrt(values) if self.transform_sqrt else values

    def channels(self, where) -> tuple[np.ndarray, np.ndarray]:
        """``(k, C)`` row and column gradients of every channel at pixels ``where = (b, r, c)``."""
        b, r, c = where
        height, width = self.image.shape[-2:]
        g_row = self._values(b, (r + 1).clamp(max=height - 1), c) - self._values(b, (r - 1).clamp(min=0), c)
        g_col = self._values(b, r, (c + 1).clamp(max=width - 1)) - self._values(b, r, (c - 1).clamp(min=0))
        # scikit-image sets the one-sided gradients of the first and last row / column to 0.
        g_row[((r == 0) | (r == height - 1)).cpu().numpy()] = 0
        g_col[((c == 0) | (c == width - 1)).cpu().numpy()] = 0
        return g_row, g_col

    def dominant(self, where) -> np.ndarray:
        """``(k,)`` channel of the largest gradient magnitude (numpy ``argmax``: first on ties)."""
        g_row, g_col = self.channels(where)
        return np.hypot(g_row, g_col).argmax(axis=1)

    def orientation(self, where, channel: torch.Tensor | None) -> np.ndarray:
        """``(k,)`` float64 angle in degrees, ``rad2deg(arctan2(g_row, g_col)) % 180``."""
        g_row, g_col = self.channels(where)
        pick = np.zeros(len(g_row), dtype=np.int64) if channel is None else channel.cpu().numpy()
        picked_row = np.ascontiguousarray(np.take_along_axis(g_row, pick[:, None], 1)[:, 0], dtype=np.float64)
        picked_col = np.ascontiguousarray(np.take_along_axis(g_col, pick[:, None], 1)[:, 0], dtype=np.float64)
        return np.rad2deg(np.arctan2(picked_row, picked_col)) % 180


def _gradient_tolerance(image: torch.Tensor) -> float:
    """Bound on how far torch's gradients can be from scikit-image's (a few ulps of the image)."""
    return 8.0 * torch.finfo(image.dtype).eps * float(image.detach().abs().max())


def _dominant_channel(
    g_row: torch.Tensor, g_col: torch.Tensor, reference: _ReferenceGradients, tolerance: float
) -> torch.Tensor:
    """``(B, 1, H, W)`` index of the channel with the largest gradient magnitude (first on ties).

    Pixels where another channel with a different gradient comes within rounding of the largest
    magnitude are decided by :class:`_ReferenceGradients` (e.g. ``(a - b) / 255`` in two
    channels with equal integer differences, or ``hypot(3, 4) == hypot(4, 3)``).
    """
    g_row, g_col = g_row.detach(), g_col.detach()
    magnitude = torch.hypot(g_row, g_col)
    dominant = magnitude.argmax(dim=1, keepdim=True)
    top = magnitude.gather(1, dominant)
    close = (top - magnitude) <= 8.0 * torch.finfo(magnitude.dtype).eps * top + 2.0 * tolerance
    differs = (g_row != g_row.gather(1, dominant)) | (g_col != g_col.gather(1, dominant))
    fragile = (close & differs).any(dim=1)
    if bool(fragile.any()):
        where = fragile.nonzero(as_tuple=True)
        exact = torch.from_numpy(reference.dominant(where)).to(dominant.device)
        dominant[where[0], 0, where[1], where[2]] = exact
    return dominant


def _orientation_bins(
    g_row: torch.Tensor,
    g_col: torch.Tensor,
    orientations: int,
    reference: _ReferenceGradients,
    channel: torch.Tensor | None,
    tolerance: float,
) -> torch.Tensor:
    """Bin index in ``[0, orientations]`` per pixel; ``orientations`` means "in no bin".

    Matches ``_hoghistogram.pyx``: the angle is ``rad2deg(arctan2(g_row, g_col)) % 180`` in float64
    and bin ``i`` holds ``edge[i] <= angle < edge[i + 1]`` with ``edge[i] = 180. / n * i`` in
    double precision; angles at or above ``edge[n]`` (if it rounds below 180) are in no bin.

    The bulk is binned with torch in the gradients' dtype; the pixels whose angle may be within
    rounding of an edge (``_EDGE_TOLERANCE_DEG`` plus the angle error that a gradient error of
    ``tolerance`` can cause) are redone exactly by ``reference`` in the dominant ``channel``
    (``(B, 1, H, W)``, or ``None`` for gray). Edges are common in 8-bit photos: 45 degree
    diagonals with ``|g_row| == |g_col|``, 90 degree verticals. The bin choice carries no gradient.
    """
    g_row, g_col = g_row.detach(), g_col.detach()
    width = 180.0 / orientations
    # Position in units of bins, wrapped into [0, orientations).
    scaled = torch.remainder(torch.atan2(g_row, g_col) * (180.0 / math.pi / width), orientations)
    bins = scaled.floor().clamp_(0, orientations - 1).to(torch.int64)
    magnitude = torch.hypot(g_row, g_col)
    # |d angle| <= sqrt(2) * gradient error / magnitude radians = 81 * error / magnitude degrees.
    # A zero magnitude votes 0 into whichever bin, so it needs no exact bin.
    distance = (scaled - scaled.round()).abs_() * width
    near = (distance * magnitude < _EDGE_TOLERANCE_DEG * magnitude + 81.0 * tolerance) & (magnitude > 0)
    if bool(near.any()):
        where = near.nonzero(as_tuple=True)
        pick = None if channel is None else channel[where[0], 0, where[1], where[2]]
        angle = reference.orientation(where, pick)
        exact = np.clip(np.floor(angle / width), 0, orientations - 1)
        # ``width * i`` is the Cython edge bit for bit (one IEEE multiplication).
        exact -= angle < exact * width
        exact += angle >= (exact + 1) * width
        bins = bins.index_put(where, torch.from_numpy(exact.astype(np.int64)).to(bins.device))
    return bins


def _cell_histograms(
    magnitude: torch.Tensor, bins: torch.Tensor, cell: tuple[int, int], orientations: int
) -> torch.Tensor:
    """Mean magnitude per (cell, bin): ``(B, H, W)`` -> ``(B, n_cells_row, n_cells_col, bins)``."""
    batch = magnitude.shape[0]
    c_row, c_col = cell
    n_rows, n_cols = magnitude.shape[1] // c_row, magnitude.shape[2] // c_col
    magnitude = magnitude[:, : n_rows * c_row, : n_cols * c_col]
    bins = bins[:, : n_rows * c_row, : n_cols * c_col]
    cell_row = torch.arange(n_rows * c_row, device=bins.device) // c_row
    cell_col = torch.arange(n_cols * c_col, device=bins.device) // c_col
    cell_index = cell_row[:, None] * n_cols + cell_col[None, :]
    # One extra slot per cell collects the pixels that fall in no bin; it is dropped below.
    slot = (cell_index * (orientations + 1)).unsqueeze(0) + bins
    sums = magnitude.new_zeros(batch, n_rows * n_cols * (orientations + 1))
    sums = sums.scatter_add(1, slot.reshape(batch, -1), magnitude.reshape(batch, -1))
    sums = sums.view(batch, n_rows, n_cols, orientations + 1)[..., :orientations]
    return sums / (c_row * c_col)


def _normalize_blocks(histogram: torch.Tensor, block: tuple[int, int], method: str) -> torch.Tensor:
    """``(B, Hc, Wc, n)`` -> ``(B, n_blocks_row, n_blocks_col, b_row, b_col, n)``, as
    scikit-image's ``_hog_normalize_block`` applied to every overlapping block."""
    b_row, b_col = block
    blocks = histogram.unfold(1, b_row, 1).unfold(2, b_col, 1)  # (B, nbr, nbc, n, b_row, b_col)
    blocks = blocks.permute(0, 1, 2, 4, 5, 3)
    dims = (3, 4, 5)
    if method in ("L1", "L1-sqrt"):
        # Histograms are non-negative, so sum(|v|) = sum(v) (and has a gradient at 0).
        out = blocks / (blocks.sum(dim=dims, keepdim=True) + _NORM_EPS)
        if method == "L1-sqrt":
            out = _safe_sqrt(out)
        return out
    out = blocks / torch.sqrt((blocks * blocks).sum(dim=dims, keepdim=True) + _NORM_EPS**2)
    if method == "L2-Hys":
        out = out.clamp(max=_HYS_CLIP)
        out = out / torch.sqrt((out * out).sum(dim=dims, keepdim=True) + _NORM_EPS**2)
    return out


def _line_offsets(d_row0: int, d_col0: int, d_row1: int, d_col1: int) -> tuple[list[int], list[int]]:
    """Bresenham line between two points, pixel for pixel as ``skimage.draw.line``."""
    r, c = d_row0, d_col0
    dr, dc = abs(d_row1 - d_row0), abs(d_col1 - d_col0)
    sc = 1 if d_col1 - c > 0 else -1
    sr = 1 if d_row1 - r > 0 else -1
    steep = dr > dc
    if steep:
        r, c, dr, dc, sr, sc = c, r, dc, dr, sc, sr
    rows, cols = [], []
    d = 2 * dr - dc
    for _ in range(dc):
        rows.append(c if steep else r)
        cols.append(r if steep else c)
        while d >= 0:
            r += sr
            d -= 2 * dc
        c += sc
        d += 2 * dr
    rows.append(d_row1)
    cols.append(d_col1)
    return rows, cols


def _glyph_image(
    histogram: torch.Tensor, image_shape: tuple[int, int], cell: tuple[int, int]
) -> torch.Tensor:
    """scikit-image's ``visualize=True`` picture: ``(B, Hc, Wc, n)`` -> ``(B, H, W)``.

    For every cell and bin a line through the cell centre, perpendicular to the bin's mid angle,
    is drawn with intensity equal to the (unnormalized) cell histogram value.
    """
    c_row, c_col = cell
    radius = min(c_row, c_col) // 2 - 1
    if radius < 0:
        raise ValueError("skimage_hog: visualize=True needs pixels_per_cell of at least 2 pixels")
    batch, n_rows, n_cols, orientations = histogram.shape
    height, width = image_shape
    image = histogram.new_zeros(batch, height * width)
    centre_row = torch.arange(n_rows, device=histogram.device) * c_row + c_row // 2
    centre_col = torch.arange(n_cols, device=histogram.device) * c_col + c_col // 2
    for o in range(orientations):
        mid = math.pi * (o + 0.5) / orientations
        d_row, d_col = radius * math.sin(mid), radius * math.cos(mid)
        # scikit-image truncates centre +- d in floating point, so a tiny d (cos(90 deg) ~ 1e-17)
        # is absorbed by the rounding: the endpoints' offsets depend on the centre. Group cells by
        # their offsets (a handful of groups) and draw one line per group.
        row_ends = [(int(r - d_col) - r, int(r + d_col) - r) for r in centre_row.tolist()]
        col_ends = [(int(c + d_row) - c, int(c - d_row) - c) for c in centre_col.tolist()]
        for row_end in set(row_ends):
            cell_rows = [i for i, end in enumerate(row_ends) if end == row_end]
            for col_end in set(col_ends):
                cell_cols = [j for j, end in enumerate(col_ends) if end == col_end]
                rows, cols = _line_offsets(row_end[0], col_end[0], row_end[1], col_end[1])
                rows_t = torch.tensor(rows, device=histogram.device)
                cols_t = torch.tensor(cols, device=histogram.device)
                sel_rows = torch.tensor(cell_rows, device=histogram.device)
                sel_cols = torch.tensor(cell_cols, device=histogram.device)
                pixel_row = centre_row[sel_rows, None, None] + rows_t[None, None, :]
                pixel_col = centre_col[None, sel_cols, None] + cols_t[None, None, :]
                flat = (pixel_row * width + pixel_col).reshape(-1)
                values = histogram[:, sel_rows][:, :, sel_cols][..., o, None]
                values = values.expand(-1, -1, -1, len(rows)).reshape(batch, -1)
                image = image.index_add(1, flat, values)
    return image.view(batch, height, width)


def skimage_hog(
    image,
    *,
    orientations: int = 9,
    pixels_per_cell=(8, 8),
    cells_per_block=(3, 3),
    block_norm: str = "L2-Hys",
    visualize: bool = False,
    transform_sqrt: bool = False,
    feature_vector: bool = True,
    channel_axis=None,
):
    """Differentiable ``skimage.feature.hog``: same arguments, same values, torch output.

    Args:
        image: torch tensor or numpy array laid out as scikit-image's ``image``: ``(H, W)`` gray or,
            with ``channel_axis``, e.g. ``(H, W, C)``; optionally with a leading batch dimension
            ``(B, H, W)`` / ``(B, H, W, C)``. ``channel_axis`` counts in the per-image layout
            (``channel_axis=0`` with a batch means ``(B, C, H, W)``). Intensities in any unit;
            integer inputs are promoted to float64 without rescaling (as scikit-image does),
            float16 to float32. numpy input gives a CPU tensor; a tensor input's device is kept.
        orientations: number of unsigned orientation bins over 0-180 degrees.
        pixels_per_cell: ``(rows, cols)`` pixels per cell.
        cells_per_block: ``(rows, cols)`` cells per normalization block.
        block_norm: ``"L1"``, ``"L1-sqrt"``, ``"L2"`` or ``"L2-Hys"``.
        visualize: also return scikit-image's HOG picture ``(H, W)`` (``(B, H, W)`` batched).
        transform_sqrt: take the square root of the image first (needs non-negative values).
        feature_vector: flatten each image's descriptor to 1-D.
        channel_axis: axis of the colour channels, or ``None`` for a gray image.

    Returns:
        Tensor ``(n_blocks_row, n_blocks_col, b_row, b_col, orientations)`` with
        ``n_blocks = H // cell - block + 1`` per axis, or ``(D,)`` with ``feature_vector``; a leading
        ``B`` when batched. Dtype: float32 for float32/float16 input, otherwise float64. With
        ``visualize=True``, ``(features, hog_image)``.

    Raises:
        ValueError: bad layout, dtype, options, non-finite values, negative values with
            ``transform_sqrt``, or an image smaller than one block (scikit-image's message).
    """
    if block_norm not in _BLOCK_NORMS:
        raise ValueError(
            f"skimage_hog: block_norm must be one of {', '.join(_BLOCK_NORMS)}; got {block_norm!r}"
        )
    if isinstance(orientations, bool) or int(orientations) != orientations or orientations < 1:
        raise ValueError(f"skimage_hog: orientations must be a positive integer, got {orientations!r}")
    orientations = int(orientations)
    cell = _pair(pixels_per_cell, "pixels_per_cell")
    block = _pair(cells_per_block, "cells_per_block")

    image = _as_float_tensor(image)
    image, batched = _to_batched_gray_or_channels(image, channel_axis)
    if image.numel() == 0:
        raise ValueError(f"skimage_hog: image is empty (shape {tuple(image.shape)})")
    if not torch.isfinite(image).all():
        raise ValueError("skimage_hog: image contains NaN or infinite values")

    height, width = image.shape[-2:]
    n_cells_row, n_cells_col = height // cell[0], width // cell[1]
    if n_cells_row - block[0] + 1 <= 0 or n_cells_col - block[1] + 1 <= 0:
        raise ValueError(
            "skimage_hog: the input image is too small given the values of pixels_per_cell and "
            f"cells_per_block. It should have at least: {block[0] * cell[0]} rows and "
            f"{block[1] * cell[1]} cols (got {height}x{width})."
        )

    if transform_sqrt:
        if (image < 0).any():
            raise ValueError("skimage_hog: transform_sqrt=True needs non-negative image values")
    reference = _ReferenceGradients(image, transform_sqrt)
    if transform_sqrt:
        image = _ExactSqrt.apply(image)
    tolerance = _gradient_tolerance(image)

    g_row, g_col = _channel_gradients(image)
    dominant = None
    if image.shape[1] > 1:
        dominant = _dominant_channel(g_row, g_col, reference, tolerance)
        g_row = g_row.gather(1, dominant)
        g_col = g_col.gather(1, dominant)
    g_row, g_col = g_row[:, 0], g_col[:, 0]

    bins = _orientation_bins(g_row, g_col, orientations, reference, dominant, tolerance)
    # scikit-image casts the chosen gradients to float64 for the histograms and normalizes in
    # float64 (MPS has no float64: there float32 throughout).
    work = torch.float64 if g_row.device.type != "mps" else g_row.dtype
    magnitude = _SafeHypot.apply(g_row.to(work), g_col.to(work))
    histogram = _cell_histograms(magnitude, bins, cell, orientations)
    features = _normalize_blocks(histogram, block, block_norm).to(image.dtype)

    if feature_vector:
        features = features.reshape(features.shape[0], -1)
    hog_image = _glyph_image(histogram, (height, width), cell).to(image.dtype) if visualize else None
    if not batched:
        features = features[0]
        hog_image = hog_image[0] if visualize else None
    return (features, hog_image) if visualize else features


class SkimageHOG(torch.nn.Module):
    """``nn.Module`` twin of :func:`skimage_hog` (same keyword arguments, fixed at construction).

    ``forward(image)`` takes what :func:`skimage_hog` takes (e.g. ``(B, H, W)`` gray or, with
    ``channel_axis=0``, ``(B, C, H, W)``) and returns the features (and the picture with
    ``visualize=True``). Works in ``nn.Sequential`` and under ``torch.compile`` (same values;
    graph breaks at the NumPy re-decisions of near-tie pixels); not under ``torch.jit.script``
    (keyword-argument expansion, NumPy decisions and ``autograd.Function``s are outside it).
    """

    def __init__(self, orientations: int = 9, pixels_per_cell=(8, 8), cells_per_block=(3, 3),
                 block_norm: str = "L2-Hys", visualize: bool = False, transform_sqrt: bool = False,
                 feature_vector: bool = True, channel_axis=None):
        super().__init__()
        self.settings = dict(orientations=orientations, pixels_per_cell=tuple(pixels_per_cell),
                             cells_per_block=tuple(cells_per_block), block_norm=block_norm,
                             visualize=visualize, transform_sqrt=transform_sqrt,
                             feature_vector=feature_vector, channel_axis=channel_axis)

    def forward(self, image):
        return skimage_hog(image, **self.settings)

    def extra_repr(self) -> str:
        return ", ".join(f"{key}={value!r}" for key, value in self.settings.items())
