"""∇HOG: differentiable Histograms of Oriented Gradients in PyTorch.

Two variants, both batch-first ``(B, C, H, W)``, float32 or float64, on any device:

* ``"uoctti"`` -- the Felzenszwalb et al. (UoCTTI) descriptor, numerically equal to VLFeat 0.9.21's
  ``vl_hog`` with ``VlHogVariantUoctti`` (vl/hog.c: ``vl_hog_put_image`` + ``vl_hog_extract``):
  ``3 * num_bins + 4`` channels per cell (``2 * num_bins`` directed orientations, ``num_bins``
  undirected ones, 4 texture energies), VLFeat's cell grid, block normalisation, 0.2 clipping and
  border handling. ``bilinear_orientation=True`` gives VLFeat's bilinear orientation assignment
  (Mahendran & Vedaldi's "HOGb").
* ``"dalal"`` -- the ∇HOG of Chiu & Fritz (BMVC 2015), Sec. 3, eq. 1-7: gray image, ``[-1, 0, 1]``
  gradients, unsigned orientations softly binned by the clipped triangular filters of eq. 3,
  spatial voting by the ``2c x 2c`` bilinear filter of eq. 5 sampled at the cell centres (eq. 6),
  and one global robust L2 normalisation (eq. 7, see :data:`DALAL_EPS`).

Every step is a tensor expression (no Python loops over pixels). Each pixel votes for one or two
orientation bins, and the bilinear spatial vote of eq. 5-6 reaches only the 2x2 cells around it,
so all of the voting is one ``scatter_add`` of ``4`` weighted votes per (pixel, bin) into the cell
grid, with index/weight tables cached per image size (no dense ``bins x H x W`` image is ever
built; the backward is one ``gather``). At small sizes the cost is per-op overhead, not
arithmetic: the hot steps (central differences, magnitude, dalal's polar votes, spatial voting,
UoCTTI block normalisation) are ``torch.autograd.Function``s with hand-written backward passes,
and the discrete decisions avoid ``where``/``argmax``/bool masks (each several times a ``mul``
on CPU). On CUDA, ``scatter_add`` sums in a nondeterministic order (float rounding-level
differences between runs). Gradients are finite everywhere (zero-gradient pixels, constant
images, exact bin boundaries): the derivatives of the magnitude and angle are taken as 0 where
the magnitude vanishes.
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .images import rgb_to_gray

__all__ = [
    "DALAL_EPS",
    "UOCTTI_CLIP",
    "VARIANTS",
    "hog",
    "hog_cell_grid",
    "feature_channels",
    "num_feature_channels",
    "uoctti_flip_permutation",
    "hog_glyphs",
    "HOG",
    "skimage_hog",
    "SkimageHOG",
    "opencv_hog",
    "OpenCVHOG",
]

VARIANTS = ("uoctti", "dalal")

#: ε of the robust global L2 normalisation of ``dalal``: ``v / sqrt(||v||² + ε²)``. The paper's eq. 7
#: prints ``v / sqrt(||v|| + ε)`` (not scale-invariant: a typo for the robust L2 norm of Dalal &
#: Triggs). ε only matters for (near-)constant images, where it keeps the division finite; 1e-5 is
#: scikit-image's block-normalisation ε, tiny against ``||v||`` of any textured image (≥ 1e-2).
DALAL_EPS = 1e-5

#: VLFeat clips every block-normalised value at 0.2 (Dalal & Triggs' "L2-Hys" threshold).
UOCTTI_CLIP = 0.2
#: vl_hog_extract adds 1e-4 to each block's squared norm before the inverse square root.
_UOCTTI_NORM_EPS = 1e-4
#: vl_hog_extract scales the texture energies by the float constant ``1.0f / sqrtf(18.0f)`` --
#: 18 = 2 * 9 orientations, hard-coded whatever ``num_bins`` is.
_UOCTTI_TEXTURE_SCALE = float(np.float32(1.0) / np.sqrt(np.float32(18.0)))


# --------------------------------------------------------------------------------------------
# Shapes and channel bookkeeping
# --------------------------------------------------------------------------------------------
def hog_cell_grid(height: int, width: int, variant: str, cell_size: int = 8) -> tuple[int, int]:
    """Number of cells ``(Hc, Wc)`` that :func:`hog` returns for an ``height x width`` image.

    ``uoctti`` follows VLFeat: ``(H + c // 2) // c`` (the last cell is at least half inside the
    image); ``dalal`` keeps the whole cells only: ``H // c``.
    """
    _check_variant(variant)
    if variant == "uoctti":
        return (height + cell_size // 2) // cell_size, (width + cell_size // 2) // cell_size
    return height // cell_size, width // cell_size


def num_feature_channels(variant: str, num_bins: int = 9) -> int:
    """Channels per cell: ``3 * num_bins + 4`` for ``uoctti``, ``num_bins`` for ``dalal``."""
    _check_variant(variant)
    return 3 * num_bins + 4 if variant == "uoctti" else num_bins


def feature_channels(variant: str, num_bins: int = 9) -> list[str]:
    """Human-readable names of the feature channels, in output order.

    Angles are gradient orientations in degrees, measured clockwise from the +x (right) axis
    because image y points down (VLFeat's convention). ``uoctti``: ``dir<angle>`` for the
    ``2 * num_bins`` directed bins (0-360°), ``undir<angle>`` for the undirected ones (0-180°),
    then ``texture_ul/ur/ll/lr`` (the 2x2 blocks up-left, up-right, low-left, low-right of the
    cell). ``dalal``: ``unsigned<centre>`` with bin centres at ``(b + 0.5) * 180 / num_bins``.
    """
    _check_variant(variant)
    step = 180.0 / num_bins
    if variant == "dalal":
        return [f"unsigned{(b + 0.5) * step:g}" for b in range(num_bins)]
    names = [f"dir{k * step:g}" for k in range(2 * num_bins)]
    names += [f"undir{k * step:g}" for k in range(num_bins)]
    return names + ["texture_ul", "texture_ur", "texture_ll", "texture_lr"]


def uoctti_flip_permutation(num_bins: int = 9) -> torch.Tensor:
    """Permutation ``perm`` with ``hog(flip_lr(x))[:, i] == flip_lr(hog(x))[:, perm[i]]``.

    Same as VLFeat's ``vl_hog_get_permutation``: a left-right flip maps orientation ``θ`` to
    ``180° - θ`` (directed: ``k -> n - k mod 2n``; undirected: ``k -> -k mod n``) and swaps the
    left and right texture blocks. Returns a ``(3 * num_bins + 4,)`` int64 tensor.
    """
    n = num_bins
    perm = []
    perm += [(n - k) % (2 * n) for k in range(2 * n)]
    perm += [2 * n + (n - k) % n for k in range(n)]
    perm += [3 * n + q for q in (1, 0, 3, 2)]
    return torch.tensor(perm, dtype=torch.int64)


# --------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------
def _wide_dtype(device: torch.device) -> torch.dtype:
    """float64 for exact intermediate arithmetic, except on Apple's MPS which has no float64."""
    return torch.float32 if device.type == "mps" else torch.float64


def _check_variant(variant: str) -> None:
    if variant not in VARIANTS:
        raise ValueError(f"hog: variant must be one of {VARIANTS}, got {variant!r}")


def _check_inputs(image: torch.Tensor, variant: str, cell_size: int, num_bins: int) -> None:
    _check_variant(variant)
    if not isinstance(image, torch.Tensor):
        raise ValueError(f"hog: image must be a torch.Tensor (B, C, H, W), got {type(image).__name__}")
    if image.dim() != 4:
        raise ValueError(f"hog: image must have shape (B, C, H, W), got {tuple(image.shape)}")
    if image.dtype not in (torch.float32, torch.float64):
        raise ValueError(f"hog: image dtype must be float32 or float64, got {image.dtype}")
    batch, channels, height, width = image.shape
    if channels not in (1, 3):
        raise ValueError(f"hog: image must have 1 (gray) or 3 (RGB) channels, got C={channels}")
    if isinstance(cell_size, bool) or not isinstance(cell_size, (int, np.integer)) or cell_size < 1:
        raise ValueError(f"hog: cell_size must be a positive integer, got {cell_size!r}")
    if isinstance(num_bins, bool) or not isinstance(num_bins, (int, np.integer)) or num_bins < 1:
        raise ValueError(f"hog: num_bins must be a positive integer, got {num_bins!r}")
    if batch == 0:
        raise ValueError("hog: empty batch (B = 0)")
    minimum = max(2 * cell_size, 3)
    if height < minimum or width < minimum:
        raise ValueError(
            f"hog: image is {height}x{width}, smaller than 2 * cell_size = {2 * cell_size} (and 3) pixels"
        )
    # One reduction instead of an isfinite map: any NaN/inf makes the (float64) sum non-finite.
    if not bool(torch.isfinite(image.sum(dtype=_wide_dtype(image.device)))):
        raise ValueError("hog: image contains NaN or inf")


# --------------------------------------------------------------------------------------------
# Shared building blocks
# --------------------------------------------------------------------------------------------
def _triangle_taps(cell_size: int) -> torch.Tensor:
    """The bilinear spatial vote (paper eq. 5, vl_hog_put_image) as a float64 ``(2, c)`` tap matrix.

    Pixel ``x`` votes for cell ``j`` with weight ``max(0, 1 - |x - centre_j| / c)``, centre
    ``centre_j = j c + (c - 1) / 2``, so cell ``j`` reads the ``2c`` pixels
    ``x = j c - c // 2 + t``, ``t < 2c``. Row 0 holds taps ``t < c`` (block ``j`` of the line
    shifted by ``c // 2``), row 1 taps ``t >= c`` (block ``j + 1``).
    """
    taps = torch.arange(2 * cell_size, dtype=torch.float64)
    taps = (1.0 - (taps - cell_size // 2 - (cell_size - 1) / 2).abs() / cell_size).clamp(min=0.0)
    return taps.view(2, cell_size)


def _kept_pixels(length: int, count: int, cell_size: int, origin: int) -> int:
    """How many of ``length`` pixels starting at image coordinate ``origin`` reach one of
    ``count`` cells: a pixel's window position ``x + c // 2`` must be below ``(count + 1) c``."""
    return max(0, min(length, (count + 1) * cell_size - cell_size // 2 - origin))


def _indicator(compare, a: torch.Tensor, b) -> torch.Tensor:
    """``compare(a, b)`` as 0/1 in ``a``'s float dtype. On CPU a comparison into a bool tensor,
    and arithmetic with bools, cost 3-10x a float comparison written with ``out=``."""
    return compare(a, b, out=torch.empty_like(a))


@lru_cache(maxsize=64)
def _vote_table(
    height: int, width: int, origin: int, rows: int, cols: int, cell_size: int, dtype: torch.dtype, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Where and how much each pixel votes in the bilinear spatial voting (eq. 5-6).

    Pixel ``(i, j)`` (image pixel ``(i + origin, j + origin)``) meets at most two cells per axis
    (:func:`_triangle_taps`), so it votes for the 4 cells of a 2x2 neighbourhood. Returns the flat
    cell index ``row * cols + col`` and the weight ``w_row * w_col`` of those 4 votes, each
    ``(4, height * width)``; a vote for a cell outside the grid gets index 0 and weight 0 (VLFeat
    drops it). Cached per shape: the table is the same for every image of that size.
    """
    c = cell_size
    taps = _triangle_taps(c)

    def along(length: int, count: int):
        position = torch.arange(length) + origin + c // 2
        block, offset = torch.div(position, c, rounding_mode="floor"), position % c
        cell = torch.stack((block, block - 1))  # taps[0] feed cell `block`, taps[1] cell `block - 1`
        inside = (cell >= 0) & (cell < count)
        return torch.where(inside, cell, 0), torch.where(inside, torch.stack((taps[0][offset], taps[1][offset])), 0.0)

    cell_y, weight_y = along(height, rows)
    cell_x, weight_x = along(width, cols)
    index = cell_y[:, None, :, None] * cols + cell_x[None, :, None, :]  # (2, 2, h, w)
    weight = weight_y[:, None, :, None] * weight_x[None, :, None, :]
    index = torch.where(weight > 0, index, 0)
    shape = (4, height * width)
    return index.reshape(shape).to(device), weight.reshape(shape).to(dtype=dtype, device=device)


def _scatter_votes(values, offsets, cell_index, cell_weight, grid) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward of :class:`_ScatterVotes`: ``(cells (B, K, rows, cols), flat vote index)``."""
    batch = values.shape[0]
    index = (offsets + cell_index).view(batch, -1)  # (B, V * 4 * P)
    spread = (values.unsqueeze(2) * cell_weight).view(batch, -1)
    cells = values.new_zeros(batch, *grid)
    cells.view(batch, -1).scatter_add_(1, index, spread)
    return cells, index


def _gather_votes(grad_cells, index, cell_weight, votes: int) -> torch.Tensor:
    """Backward of :class:`_ScatterVotes`: ``(B, K, rows, cols)`` -> ``(B, V, P)``."""
    batch = grad_cells.shape[0]
    grad_spread = grad_cells.reshape(batch, -1).gather(1, index).view(batch, votes, 4, -1)
    return (grad_spread * cell_weight).sum(dim=2)


class _ScatterVotes(torch.autograd.Function):
    """Bilinear spatial voting (eq. 5-6): ``(B, V, P)`` pixel votes -> ``(B, K, rows, cols)`` cells.

    ``offsets`` (``(B, V, 1, P)`` int64) is each vote's channel times ``rows * cols``; the 4
    spatial votes per pixel come from :func:`_vote_table`. One ``scatter_add`` forward; the
    backward is one ``gather`` (autograd's would add a broadcast-reduction and full-size zero fills).
    """

    @staticmethod
    def forward(ctx, values, offsets, cell_index, cell_weight, grid):
        cells, index = _scatter_votes(values, offsets, cell_index, cell_weight, grid)
        ctx.save_for_backward(index, cell_weight)
        ctx.votes = values.shape[1]
        return cells

    @staticmethod
    def backward(ctx, grad_cells):
        index, cell_weight = ctx.saved_tensors
        return _gather_votes(grad_cells, index, cell_weight, ctx.votes), None, None, None, None


class _MagnitudeVotes(torch.autograd.Function):
    """:class:`_ScatterVotes` of the gradient magnitudes ``sqrt(gx² + gy²)`` (``(B, 1, h, w)``
    each), in one autograd node; the derivative is 0 (not NaN) where the gradient vanishes."""

    @staticmethod
    def forward(ctx, gx, gy, offsets, cell_index, cell_weight, grid):
        batch = gx.shape[0]
        magnitude = (gx * gx + gy * gy).sqrt()
        cells, index = _scatter_votes(magnitude.view(batch, 1, -1), offsets, cell_index, cell_weight, grid)
        ctx.save_for_backward(gx, gy, magnitude, index, cell_weight)
        return cells

    @staticmethod
    def backward(ctx, grad_cells):
        gx, gy, magnitude, index, cell_weight = ctx.saved_tensors
        grad = _gather_votes(grad_cells, index, cell_weight, 1).view(gx.shape)
        # Where the magnitude is 0 so are gx and gy: dividing by 1 there gives the 0 we want.
        scale = grad / (magnitude + _indicator(torch.eq, magnitude, 0))
        return scale * gx, scale * gy, None, None, None, None


def _pool_votes(values, offsets, channels: int, rows: int, cols: int, cell_size: int, origin: int) -> torch.Tensor:
    """Bilinear spatial voting (eq. 5-6) of sparse per-pixel orientation votes into cells.

    Args:
        values: ``(B, V, h, w)`` votes; pixel ``(i, j)`` is image pixel ``(i + origin, j + origin)``.
        offsets: ``(B, V, h, w)`` int64, each vote's channel in ``[0, K)`` times ``rows * cols``.
        channels: ``K``; rows, cols: the cell grid; cell_size: ``c``.

    Returns:
        ``(B, K, rows, cols)``: ``sum_{x, y} w_i(y) w_j(x) votes_k(y, x)`` with the triangle weights
        of :func:`_triangle_taps` -- the ``2c x 2c`` bilinear filter of eq. 5 sampled at the cell
        centres (eq. 6). Votes reaching no cell are dropped (as VLFeat). Each pixel's vote meets
        only its own channel and 4 cells, so this is one ``scatter_add`` of ``4 V`` values per
        pixel (no dense ``K``-channel image).
    """
    batch, votes, height, width = values.shape
    cell_index, cell_weight = _vote_table(height, width, origin, rows, cols, cell_size, values.dtype, values.device)
    return _ScatterVotes.apply(
        values.reshape(batch, votes, -1), offsets.reshape(batch, votes, 1, -1), cell_index, cell_weight,
        (channels, rows, cols),
    )


def _differences(image: torch.Tensor, origin: int, height: int, width: int):
    """Forward of :class:`_CentralDifferences`; also returns the spans ``(y0, y1, x0, x1)`` of
    output rows/cols where both neighbours exist (image coordinates ``1 .. H - 2``)."""
    full_h, full_w = image.shape[-2:]
    o = origin
    x0, x1 = max(o, 1) - o, min(o + width, full_w - 1) - o
    y0, y1 = max(o, 1) - o, min(o + height, full_h - 1) - o
    inner_x = image[..., o : o + height, o + x0 + 1 : o + x1 + 1] - image[..., o : o + height, o + x0 - 1 : o + x1 - 1]
    inner_y = image[..., o + y0 + 1 : o + y1 + 1, o : o + width] - image[..., o + y0 - 1 : o + y1 - 1, o : o + width]
    if (x0, x1) == (0, width):
        gx = inner_x
    else:
        gx = image.new_zeros(*image.shape[:2], height, width)
        gx[..., x0:x1] = inner_x
    if (y0, y1) == (0, height):
        gy = inner_y
    else:
        gy = image.new_zeros(*image.shape[:2], height, width)
        gy[..., y0:y1, :] = inner_y
    return gx, gy, (y0, y1, x0, x1)


class _CentralDifferences(torch.autograd.Function):
    """``[-1, 0, 1]`` derivatives ``(gx, gy)``, each ``(B, C, h, w)``, of pixels ``origin ..``
    of a ``(B, C, H, W)`` image; 0 along an axis where a neighbour is missing (image border).

    A hand-written backward: autograd's for two slice differences allocates, zero-fills and
    copies a full-size gradient per slice.
    """

    @staticmethod
    def forward(ctx, image, origin: int, height: int, width: int):
        ctx.origin, ctx.shape = origin, image.shape
        gx, gy, ctx.spans = _differences(image, origin, height, width)
        return gx, gy

    @staticmethod
    def backward(ctx, grad_x, grad_y):
        y0, y1, x0, x1 = ctx.spans
        o = ctx.origin
        height, width = grad_x.shape[-2:]
        grad = grad_x.new_zeros(ctx.shape)
        grad_x, grad_y = grad_x[..., x0:x1], grad_y[..., y0:y1, :]
        grad[..., o : o + height, o + x0 + 1 : o + x1 + 1] += grad_x
        grad[..., o : o + height, o + x0 - 1 : o + x1 - 1] -= grad_x
        grad[..., o + y0 + 1 : o + y1 + 1, o : o + width] += grad_y
        grad[..., o + y0 - 1 : o + y1 - 1, o : o + width] -= grad_y
        return grad, None, None, None


def _central_differences(image: torch.Tensor, origin: int, height: int, width: int):
    """See :class:`_CentralDifferences`."""
    return _CentralDifferences.apply(image, origin, height, width)


class _SafeMagnitude(torch.autograd.Function):
    """``sqrt(gx² + gy²)`` whose derivative is 0 (not NaN) where the gradient vanishes."""

    @staticmethod
    def forward(ctx, gx, gy):
        magnitude = (gx * gx + gy * gy).sqrt()
        ctx.save_for_backward(gx, gy, magnitude)
        return magnitude

    @staticmethod
    def backward(ctx, grad):
        gx, gy, magnitude = ctx.saved_tensors
        # Where the magnitude is 0 so are gx and gy: dividing by 1 there gives the 0 we want.
        scale = grad / (magnitude + _indicator(torch.eq, magnitude, 0))
        return scale * gx, scale * gy


@lru_cache(maxsize=64)
def _uoctti_tables(num_bins: int, dtype: torch.dtype, device: torch.device):
    """VLFeat's float32 bin axes ``(2, n)`` and exact cos/sin of the directed bins ``(2, 2n)``."""
    angles = [k * math.pi / num_bins for k in range(num_bins)]
    # vl_hog_new: orientationX[k] = (float) cos(k pi / n), orientationY[k] = (float) sin(k pi / n).
    axes = torch.tensor([[math.cos(a) for a in angles], [math.sin(a) for a in angles]], dtype=torch.float32)
    directed = [k * math.pi / num_bins for k in range(2 * num_bins)]
    cos_sin = torch.tensor([[math.cos(a) for a in directed], [math.sin(a) for a in directed]], dtype=dtype)
    return axes.to(device), cos_sin.to(device)


@lru_cache(maxsize=64)
def _uoctti_candidate_tables(num_bins: int, device: torch.device):
    """For each ``floor(atan2(gy, gx) n / pi) + n`` in ``[0, 2n]``, the two axes adjacent to the
    angle, the one VLFeat prefers on a tie (the lower index: its loop keeps the first best) first:
    their float32 ``(cos_a, sin_a, cos_b, sin_b)`` packed as one complex128 per entry (one
    ``take`` fetches all four), ``(2n + 1,)`` (``(2n + 1, 4)`` float32 on MPS, which has no
    complex128); and the directed bins ``(+a, -a, +b, -b)`` of the four candidates,
    ``(2n + 1) * 4`` int64."""
    n = num_bins
    axes, _ = _uoctti_tables(n, torch.float32, torch.device("cpu"))
    cos_sin, directed = [], []
    for lower in range(-n, n + 1):
        pair = (lower % n, (lower + 1) % n)
        if pair[1] < pair[0]:
            pair = pair[::-1]
        cos_sin.append([float(axes[i][k]) for k in pair for i in (0, 1)])
        directed += [pair[0], pair[0] + n, pair[1], pair[1] + n]
    packed = torch.tensor(cos_sin, dtype=torch.float32)
    if device.type != "mps":
        packed = packed.view(torch.complex128).view(-1)
    return packed.to(device), torch.tensor(directed, dtype=torch.int64, device=device)


# --------------------------------------------------------------------------------------------
# UoCTTI (VLFeat vl_hog)
# --------------------------------------------------------------------------------------------
def _strongest_channel(squared: torch.Tensor) -> torch.Tensor:
    """Index ``(B, 1, h, w)`` of the channel with the largest squared gradient; the first one wins
    ties (VLFeat's strict ``>``). A comparison chain: ``argmax`` over 3 channels is ~20x slower."""
    best = squared[:, :1]
    index = torch.zeros_like(best, dtype=torch.int64)
    for channel in range(1, squared.shape[1]):
        better = squared[:, channel : channel + 1] > best
        best = torch.where(better, squared[:, channel : channel + 1], best)
        index = torch.where(better, channel, index)
    return index


def _next_axis(axis: torch.Tensor, n: int, step: int = 1) -> torch.Tensor:
    """``(axis + step) mod n`` for float axis indices in ``[0, n)``, ``step = +-1``."""
    if step > 0:
        return torch.where(axis >= n - 1, 0.0, axis + 1.0)
    return torch.where(axis <= 0, n - 1.0, axis - 1.0)


def _axis_score(gx32: torch.Tensor, gy32: torch.Tensor, axes: torch.Tensor, axis: torch.Tensor) -> torch.Tensor:
    """VLFeat's float32 ``gx * orientationX[k] + gy * orientationY[k]`` for a per-pixel axis ``k``."""
    index = axis.to(torch.int64)
    return gx32 * axes[0].take(index) + gy32 * axes[1].take(index)


def _uoctti_best_bin(gx32: torch.Tensor, gy32: torch.Tensor, num_bins: int) -> torch.Tensor:
    """VLFeat's hard orientation decision: the directed bin ``(B, 1, h, w)`` int64 of each gradient.

    vl_hog_put_image scores the raw gradient against the ``n`` float32 axes ``(cos, sin)(k pi/n)``,
    keeps the best ``|score|`` (the first axis wins ties) and its sign picks the directed bin
    ``k`` or ``k + n``. Only the two axes adjacent to the gradient angle can win, so we score just
    those two (found with atan2), in float32 like VLFeat. Few, cheap ops (no ``where``/``argmax``,
    both slow on CPU): at 128² the per-op overhead is the cost.
    """
    n = num_bins
    packed, directed = _uoctti_candidate_tables(n, gx32.device)
    pair = torch.floor(torch.atan2(gy32, gx32) * (n / math.pi)).add_(n)  # integers in [0, 2n]
    if packed.dtype == torch.complex128:
        axes = packed.take(pair.to(torch.int64)).view(torch.float32).view(*pair.shape, 4)
    else:
        axes = packed.index_select(0, pair.to(torch.int64).view(-1)).view(*pair.shape, 4)
    score_a = gx32 * axes[..., 0] + gy32 * axes[..., 1]
    score_b = gx32 * axes[..., 2] + gy32 * axes[..., 3]
    # 0/1 floats (exact): candidate 2 take_b + negative of the pair.
    take_b = _indicator(torch.gt, score_b.abs(), score_a.abs())
    negative_a = _indicator(torch.lt, score_a, 0)
    negative = negative_a + take_b * (_indicator(torch.lt, score_b, 0) - negative_a)
    return directed.take((pair * 4 + take_b * 2 + negative).to(torch.int64))


def _uoctti_bins(gx32: torch.Tensor, gy32: torch.Tensor, num_bins: int):
    """VLFeat's bilinear orientation decisions for one gradient per pixel, in its float32 arithmetic.

    As :func:`_uoctti_best_bin`, and bilinear assignment also keeps the runner-up.

    Returns ``(best_dir, second_dir, best_cos)``: directed bins ``(B, 1, h, w)`` int64 and the
    float32 ``|score|`` of the best axis.
    """
    n = num_bins
    axes, _ = _uoctti_tables(n, torch.float32, gx32.device)
    # Axis indices are handled as floats: int64 remainder is ~10x slower than float on CPU.
    axis_a = torch.remainder(torch.floor(torch.atan2(gy32, gx32) * (n / math.pi)), n)
    axis_b = _next_axis(axis_a, n)
    score_a, score_b = _axis_score(gx32, gy32, axes, axis_a), _axis_score(gx32, gy32, axes, axis_b)
    best_score, best_axis, best_dir = _stronger_axis(score_a, axis_a, score_b, axis_b, n)
    # The runner-up is one of the best axis' two neighbours. Which one is decided by VLFeat's
    # float32 scores too: right on an axis both are nearly tied, and libvl still gives the
    # winner a weight of up to ~1e-3 there (float32 acos), so guessing the side is not enough.
    axis_p, axis_q = _next_axis(best_axis, n, step=-1), _next_axis(best_axis, n)
    score_p, score_q = _axis_score(gx32, gy32, axes, axis_p), _axis_score(gx32, gy32, axes, axis_q)
    _, _, second_dir = _stronger_axis(score_p, axis_p, score_q, axis_q, n)
    return best_dir, second_dir, best_score.abs()


def _stronger_axis(score_a, axis_a, score_b, axis_b, n: int):
    """Of two candidate axes (float indices), the one with the larger float32 ``|score|``; ties go
    to the lower index, as in VLFeat's loop. Returns its signed score, axis and directed bin
    (``axis + n`` when the gradient points against the axis) as int64."""
    strength_a, strength_b = score_a.abs(), score_b.abs()
    take_b = (strength_b > strength_a) | ((strength_b == strength_a) & (axis_b < axis_a))
    score = torch.where(take_b, score_b, score_a)
    axis = torch.where(take_b, axis_b, axis_a)
    return score, axis, torch.where(score < 0, axis + n, axis).to(torch.int64)


def _uoctti_cells(
    image: torch.Tensor, rows: int, cols: int, cell_size: int, num_bins: int, bilinear: bool, vlfeat_rounding: bool
) -> torch.Tensor:
    """vl_hog_put_image: directed-orientation histograms ``(B, 2n, rows, cols)`` before normalisation.

    The image border gets no gradient (VLFeat loops over ``1 <= x < W - 1``). Each pixel uses the
    colour channel of largest gradient; its magnitude votes for the directed bin nearest to the
    gradient (hard), or splits between the two nearest directed bins in proportion to the angle
    (bilinear). Which channel and which bins win is decided exactly as VLFeat does, in float32
    (so exact ties, e.g. vertical gradients with 9 bins, go to the same bin); magnitudes and
    bilinear weights are then computed differentiably in the input's dtype.
    """
    n = num_bins
    batch, channels, height, width = image.shape
    # Pixels that reach no cell are left out before any work.
    h = _kept_pixels(height - 2, rows, cell_size, 1)
    w = _kept_pixels(width - 2, cols, cell_size, 1)
    gx, gy = _central_differences(image, 1, h, w)

    with torch.no_grad():  # discrete decisions, in VLFeat's float32 arithmetic
        if image.dtype == torch.float32:
            gx32, gy32 = gx.detach(), gy.detach()
        else:
            gx32, gy32, _ = _differences(image.detach().to(torch.float32), 1, h, w)
        if channels > 1:
            channel = _strongest_channel(gx32 * gx32 + gy32 * gy32)
            gx32, gy32 = gx32.gather(1, channel), gy32.gather(1, channel)
        if not bilinear:
            best_dir = _uoctti_best_bin(gx32, gy32, n)
        else:
            best_dir, second_dir, best_cos = _uoctti_bins(gx32, gy32, n)
        if bilinear and vlfeat_rounding:
            # libvl 0.9.21 (disassembled; newer sources normalise the gradient first):
            # angle0 = acosf((float) min(score / max((double) sqrtf(grad2), 1e-10), 1.0)),
            # weight = (float) (angle0 / (pi / n)). acos is ill-conditioned near a bin axis (one
            # float32 ulp of the cosine moves the weight by up to ~1e-4), so we reproduce that
            # value bit for bit and differentiate the exact angle (below). torch's float32
            # sqrt/acos are not correctly rounded on CPU, hence float64 then rounding.
            wide = _wide_dtype(image.device)
            grad32 = (gx32 * gx32 + gy32 * gy32).to(wide).sqrt().to(torch.float32).to(wide)
            ratio = best_cos.to(wide) / grad32.clamp(min=1e-10)
            ratio = ratio.clamp(max=1.0).to(torch.float32).to(wide)
            angle32 = torch.acos(ratio).to(torch.float32).to(wide)
            vlfeat_second_weight = (angle32 / (math.pi / n)).to(torch.float32).to(image.dtype)

    if channels > 1:
        gx, gy = gx.gather(1, channel), gy.gather(1, channel)
    size = rows * cols
    if not bilinear:
        cell_index, cell_weight = _vote_table(h, w, 1, rows, cols, cell_size, gx.dtype, gx.device)
        offsets = (best_dir * size).view(batch, 1, 1, -1)
        return _MagnitudeVotes.apply(gx, gy, offsets, cell_index, cell_weight, (2 * n, rows, cols))
    magnitude = _SafeMagnitude.apply(gx, gy)

    # Angle between the gradient and its best directed bin (VLFeat's acos of the score), as an
    # atan2 whose derivative stays finite when the gradient lies on the bin axis.
    nonzero = magnitude.detach() > 0
    _, cos_sin = _uoctti_tables(n, image.dtype, image.device)
    cos0, sin0 = cos_sin[0][best_dir], cos_sin[1][best_dir]
    along = torch.where(nonzero, gx * cos0 + gy * sin0, 1.0)
    across = torch.where(nonzero, gy * cos0 - gx * sin0, 0.0)
    second_weight = torch.atan2(across.abs(), along.abs()) * (n / math.pi)
    if vlfeat_rounding:  # value of libvl's float32 formula, derivative of the exact angle
        second_weight = second_weight + (vlfeat_second_weight - second_weight.detach())
    if n == 1:  # with one axis VLFeat's running top-2 never fills its second slot: mass dropped
        return _pool_votes(magnitude * (1.0 - second_weight), best_dir * size, 2 * n, rows, cols, cell_size, origin=1)
    values = torch.cat((magnitude * (1.0 - second_weight), magnitude * second_weight), dim=1)
    offsets = torch.cat((best_dir, second_dir), dim=1) * size
    return _pool_votes(values, offsets, 2 * n, rows, cols, cell_size, origin=1)


@lru_cache(maxsize=64)
def _block_sources(rows: int, cols: int, device: torch.device) -> torch.Tensor:
    """For each of the ``(rows + 1) x (cols + 1)`` 2x2 blocks of the replicate-padded cell grid
    (see :func:`_uoctti_normalize`), the flat index of the cell behind each of its 4 corners:
    ``(4 (rows + 1) (cols + 1),)`` int64, corner-major."""
    y = torch.arange(rows + 1)
    x = torch.arange(cols + 1)
    index = [
        (y + dy - 1).clamp(0, rows - 1)[:, None] * cols + (x + dx - 1).clamp(0, cols - 1)[None, :]
        for dy in (0, 1)
        for dx in (0, 1)
    ]
    return torch.stack(index).view(-1).to(device)


class _UocttiNormalize(torch.autograd.Function):
    """vl_hog_extract for VlHogVariantUoctti: ``(B, 2n, Hc, Wc)`` histograms -> ``(B, 3n+4, Hc, Wc)``.

    Each cell is normalised by the L2 norms of the four 2x2 blocks of undirected histograms that
    contain it (replicating the border cells), clipped at 0.2; the four copies are summed and
    halved (the directed and undirected parts), and the clipped undirected copies' L1 norms form
    the 4 texture channels. A hand-written backward: autograd's through the ~20 small ops costs
    ~4x the forward at 128².
    """

    @staticmethod
    def forward(ctx, cells: torch.Tensor, num_bins: int) -> torch.Tensor:
        n = num_bins
        batch, _, rows, cols = cells.shape
        undirected = cells[:, :n] + cells[:, n:]
        histograms = torch.cat((cells, undirected), dim=1)  # (B, 3n, Hc, Wc)
        energy = undirected.square().sum(dim=1, keepdim=True)
        energy = F.pad(energy, (1, 1, 1, 1), mode="replicate")
        block = F.avg_pool2d(energy, 2, stride=1) * 4.0  # (B, 1, Hc + 1, Wc + 1), block (i, j) = sum
        inverse = (block + _UOCTTI_NORM_EPS).rsqrt()
        # The four blocks around cell (y, x) in unfold's order: up-left, up-right, low-left, low-right.
        factors = F.unfold(inverse, 2).view(batch, 4, 1, rows, cols)
        scaled = histograms.unsqueeze(1) * factors  # (B, 4, 3n, Hc, Wc)
        clipped = scaled.clamp(max=UOCTTI_CLIP)
        texture = clipped[:, :, 2 * n :].sum(dim=2) * _UOCTTI_TEXTURE_SCALE  # (B, 4, Hc, Wc)
        ctx.save_for_backward(histograms, factors, inverse, scaled)
        ctx.num_bins = n
        return torch.cat((0.5 * clipped.sum(dim=1), texture), dim=1)

    @staticmethod
    def backward(ctx, grad_features: torch.Tensor):
        histograms, factors, inverse, scaled = ctx.saved_tensors
        n = ctx.num_bins
        batch, _, rows, cols = histograms.shape
        # d features / d clipped copy q: 0.5 for the histogram channels, plus the texture scale
        # for the undirected ones; zero where the copy was clipped (as torch's clamp backward).
        unclipped = _indicator(torch.le, scaled, UOCTTI_CLIP)
        grad_scaled = unclipped * (0.5 * grad_features[:, : 3 * n]).unsqueeze(1)
        grad_scaled[:, :, 2 * n :] += unclipped[:, :, 2 * n :] * (
            _UOCTTI_TEXTURE_SCALE * grad_features[:, 3 * n :]
        ).unsqueeze(2)
        grad_histograms = (grad_scaled * factors).sum(dim=1)  # (B, 3n, Hc, Wc)
        grad_factors = (grad_scaled * histograms.unsqueeze(1)).sum(dim=2)  # (B, 4, Hc, Wc)
        grad_inverse = F.fold(grad_factors.view(batch, 4, rows * cols), (rows + 1, cols + 1), 2)
        grad_block = grad_inverse * inverse.pow(3) * -0.5  # d rsqrt(x) = -x^(-3/2) / 2
        # Each block sums 4 (replicated) cells' energies: add its gradient back to those cells.
        sources = _block_sources(rows, cols, histograms.device)
        grad_energy = grad_block.new_zeros(batch, rows * cols).index_add_(
            1, sources, grad_block.view(batch, -1).repeat(1, 4)
        )
        undirected = histograms[:, 2 * n :]
        grad_undirected = grad_histograms[:, 2 * n :] + 2.0 * undirected * grad_energy.view(batch, 1, rows, cols)
        return grad_histograms[:, : 2 * n] + grad_undirected.repeat(1, 2, 1, 1), None


def _uoctti_normalize(cells: torch.Tensor, num_bins: int) -> torch.Tensor:
    """vl_hog_extract (UoCTTI): ``(B, 2n, Hc, Wc)`` histograms -> ``(B, 3n+4, Hc, Wc)``; see
    :class:`_UocttiNormalize`."""
    return _UocttiNormalize.apply(cells, num_bins)


# --------------------------------------------------------------------------------------------
# Dalal (Chiu & Fritz eq. 1-7)
# --------------------------------------------------------------------------------------------
class _DalalVotes(torch.autograd.Function):
    """Eq. 2-3 per pixel: ``(gx, gy)`` -> the two orientation votes ``(B, 2, h, w)`` (magnitude
    times the triangular filters of the two bins bracketing the angle) and their bins (int64).

    A hand-written backward through magnitude and angle that is 0 (not NaN) where the gradient
    vanishes, in a handful of ops (autograd's chain of guarded ``where``s is ~20 ops).
    """

    @staticmethod
    def forward(ctx, gx, gy, num_bins: int):
        n = num_bins
        magnitude = (gx * gx + gy * gy).sqrt()  # eq. 2
        # Unsigned orientation in [0, pi]; where the gradient is 0 atan2 is 0 or +-pi: any bin
        # then gets a zero vote.
        theta = torch.remainder(torch.atan2(gy, gx), math.pi)
        if n == 1:  # eq. 3 with a single bin centred at 90 degrees
            offset = theta - math.pi / 2
            values = magnitude * (1.0 - offset.abs() / math.pi)
            bins = torch.zeros_like(values, dtype=torch.int64)
            # d value / d theta per unit magnitude, and the filter value
            ctx.save_for_backward(gx, gy, magnitude, offset.sign() * (-1.0 / math.pi), 1.0 - offset.abs() / math.pi)
        else:
            # Eq. 3: f_b = clip(1 - |theta - mu_b| * B / 180, 0, 1), mu_b = (b + 1/2) 180 / B,
            # distance wrapped at 180 degrees. Only the two bins whose centres bracket theta are
            # nonzero, with weights 1 - frac and frac: we write those two, not all B filters.
            position = theta * (n / math.pi) - 0.5
            lower = torch.floor(position)
            upper_weight = position - lower
            lower_bin = torch.remainder(lower, n)  # float remainder: int64's is ~10x slower
            upper_bin = lower_bin + 1.0 - n * _indicator(torch.eq, lower_bin, n - 1)
            values = torch.cat((magnitude * (1.0 - upper_weight), magnitude * upper_weight), dim=1)
            bins = torch.cat((lower_bin, upper_bin), dim=1).to(torch.int64)
            ctx.save_for_backward(gx, gy, magnitude, upper_weight)
        ctx.num_bins = n
        ctx.mark_non_differentiable(bins)
        return values, bins

    @staticmethod
    def backward(ctx, grad_values, _):
        n = ctx.num_bins
        if n == 1:
            gx, gy, magnitude, slope, filter_value = ctx.saved_tensors
            grad_magnitude = grad_values * filter_value
            grad_angle = grad_values * slope  # d / d theta, per unit magnitude
        else:
            gx, gy, magnitude, upper_weight = ctx.saved_tensors
            grad_lower, grad_upper = grad_values[:, :1], grad_values[:, 1:]
            grad_magnitude = grad_lower + (grad_upper - grad_lower) * upper_weight
            grad_angle = (grad_upper - grad_lower) * (n / math.pi)
        # d magnitude = (gx dgx + gy dgy) / m, m d theta = (gx dgy - gy dgx) / m; where m = 0 so
        # are gx and gy, and dividing by 1 there gives 0.
        inverse = 1.0 / (magnitude + _indicator(torch.eq, magnitude, 0))
        grad_gx = (grad_magnitude * gx - grad_angle * gy) * inverse
        grad_gy = (grad_magnitude * gy + grad_angle * gx) * inverse
        return grad_gx, grad_gy, None


def _dalal(image: torch.Tensor, cell_size: int, num_bins: int) -> torch.Tensor:
    """Chiu & Fritz eq. 1-7; see :func:`hog`."""
    if image.shape[1] == 3:  # eq. 1
        gray = rgb_to_gray(image, channel_axis=1).unsqueeze(1)
    else:
        gray = image
    batch, _, height, width = gray.shape
    rows, cols = height // cell_size, width // cell_size
    h, w = _kept_pixels(height, rows, cell_size, 0), _kept_pixels(width, cols, cell_size, 0)
    # [-1, 0, 1] derivative masks; the one-sided border gradient is 0 (as scikit-image's _hog).
    gx, gy = _central_differences(gray, 0, h, w)
    values, bins = _DalalVotes.apply(gx, gy, num_bins)  # eq. 2-3
    cells = _pool_votes(values, bins * (rows * cols), num_bins, rows, cols, cell_size, origin=0)  # eq. 5-6
    # Eq. 7, robust L2 over the whole descriptor of each image.
    norm = (cells.square().sum(dim=(1, 2, 3), keepdim=True) + DALAL_EPS**2).sqrt()
    return cells / norm


# --------------------------------------------------------------------------------------------
# Public entry point
# --------------------------------------------------------------------------------------------
def hog(
    image: torch.Tensor,
    variant: str,
    cell_size: int = 8,
    num_bins: int = 9,
    bilinear_orientation: bool = False,
    *,
    vlfeat_rounding: bool = True,
) -> torch.Tensor:
    """Differentiable HOG features of a batch of images.

    Args:
        image: ``(B, C, H, W)`` float32/float64 tensor, ``C`` = 1 (gray) or 3 (RGB), intensities in
            ``[0, 1]`` (values outside are computed, not rejected), ``H, W >= 2 * cell_size``.
            Any device; the result lives on the same device with the same dtype.
        variant: ``"uoctti"`` (VLFeat ``vl_hog``, UoCTTI) or ``"dalal"`` (Chiu & Fritz eq. 1-7).
        cell_size: cell side ``c`` in pixels.
        num_bins: ``uoctti``: undirected orientations ``n`` (VLFeat's ``numOrientations``);
            ``dalal``: unsigned orientation bins over 0-180°.
        bilinear_orientation: ``uoctti`` only: VLFeat's bilinear orientation assignment instead
            of the hard (nearest bin) one. ``dalal`` always votes with eq. 3's triangular filters.
        vlfeat_rounding: ``uoctti`` + bilinear only. libvl computes the bilinear weight as
            ``acosf`` of a float32 cosine, which near a bin axis is off from the exact angle by up
            to ~1e-4 of a bin (a few 1e-4 in the features). ``True`` (default) reproduces libvl's
            value bit for bit; ``False`` uses the exact angle. The gradient is the exact angle's
            derivative either way (``False`` is what ``gradcheck`` can verify).

    Returns:
        ``uoctti``: ``(B, 3n + 4, Hc, Wc)`` with ``Hc = (H + c // 2) // c`` (VLFeat's grid), channels
        as :func:`feature_channels`. ``dalal``: ``(B, num_bins, H // c, W // c)``, unit L2 norm per
        image (up to :data:`DALAL_EPS`).

    Raises:
        ValueError: wrong type, shape, dtype, channel count, size, parameters or non-finite values.
    """
    _check_inputs(image, variant, cell_size, num_bins)
    cell_size, num_bins = int(cell_size), int(num_bins)
    if variant == "dalal":
        return _dalal(image, cell_size, num_bins)
    rows, cols = hog_cell_grid(image.shape[-2], image.shape[-1], "uoctti", cell_size)
    cells = _uoctti_cells(image, rows, cols, cell_size, num_bins, bool(bilinear_orientation), bool(vlfeat_rounding))
    return _uoctti_normalize(cells, num_bins)


# --------------------------------------------------------------------------------------------
# Star-glyph picture
# --------------------------------------------------------------------------------------------
def _glyph_stack(angles: Sequence[float], size: int) -> np.ndarray:
    """Anti-aliased bars (``len(angles), size, size``) through the glyph centre, 1 px wide."""
    centre = (size - 1) / 2.0
    y, x = np.mgrid[0:size, 0:size].astype(np.float64) - centre
    glyphs = []
    for angle in angles:
        direction = np.array([math.cos(angle), math.sin(angle)])  # image axes: x right, y down
        along = np.abs(x * direction[0] + y * direction[1])
        across = np.abs(-x * direction[1] + y * direction[0])
        bar = np.clip(1.0 - across, 0.0, 1.0) * np.clip(centre + 0.5 - along, 0.0, 1.0)
        glyphs.append(bar)
    return np.stack(glyphs).astype(np.float32)


def hog_glyphs(
    features,
    variant: str,
    num_bins: int | None = None,
    glyph_size: int = 21,
) -> np.ndarray:
    """Render HOG features as the classic star-glyph picture (VLFeat ``vl_hog('render', ...)``).

    Each cell becomes a ``glyph_size x glyph_size`` tile holding one bar per orientation, drawn
    along the *edge* (perpendicular to the gradient), with brightness proportional to the
    orientation's weight: for ``uoctti`` the sum of its two directed and its undirected channels
    (as VLFeat), for ``dalal`` the bin value. Like VLFeat, a tile is clipped to its weights'
    range so crossing bars do not saturate.

    Args:
        features: ``(C, Hc, Wc)`` or ``(1, C, Hc, Wc)`` tensor or array from :func:`hog`.
        variant: ``"uoctti"`` or ``"dalal"``.
        num_bins: orientations; inferred from ``C`` when omitted.
        glyph_size: tile side in pixels (VLFeat uses 21).

    Returns:
        ``(Hc * glyph_size, Wc * glyph_size)`` float32 image in ``[0, 1]`` (0 = no gradient;
        signed inputs such as learnt filters map 0 to 0.5).
    """
    _check_variant(variant)
    if isinstance(features, torch.Tensor):
        features = features.detach().cpu().numpy()
    features = np.asarray(features, dtype=np.float64)
    if features.ndim == 4:
        if features.shape[0] != 1:
            raise ValueError(f"hog_glyphs: expected one image's features, got batch of {features.shape[0]}")
        features = features[0]
    if features.ndim != 3:
        raise ValueError(f"hog_glyphs: features must be (C, Hc, Wc), got shape {features.shape}")
    channels = features.shape[0]
    if num_bins is None:
        num_bins = (channels - 4) // 3 if variant == "uoctti" else channels
    if num_bins < 1 or channels != num_feature_channels(variant, num_bins):
        raise ValueError(f"hog_glyphs: {channels} channels do not fit variant {variant!r} with num_bins={num_bins}")
    if glyph_size < 3:
        raise ValueError(f"hog_glyphs: glyph_size must be >= 3, got {glyph_size}")
    n = num_bins
    if variant == "uoctti":
        weights = features[:n] + features[n : 2 * n] + features[2 * n : 3 * n]
        gradient_angles = [k * math.pi / n for k in range(n)]
    else:
        weights = features
        gradient_angles = [(b + 0.5) * math.pi / n for b in range(n)]
    glyphs = _glyph_stack([a + math.pi / 2 for a in gradient_angles], glyph_size)  # edges ⟂ gradients
    rows, cols = weights.shape[1:]
    tiles = np.einsum("kyx,kuv->yxuv", weights, glyphs)  # (Hc, Wc, g, g)
    low = np.minimum(weights.min(axis=0), 0.0)[..., None, None]
    high = np.maximum(weights.max(axis=0), 0.0)[..., None, None]
    tiles = np.clip(tiles, low, high)
    picture = tiles.transpose(0, 2, 1, 3).reshape(rows * glyph_size, cols * glyph_size)
    scale = np.abs(picture).max()
    if scale <= 0:
        return np.zeros_like(picture, dtype=np.float32)
    if picture.min() < 0:
        return (0.5 + 0.5 * picture / scale).astype(np.float32)
    return (picture / scale).astype(np.float32)


class HOG(torch.nn.Module):
    """``nn.Module`` twin of :func:`hog`: ``(B, C, H, W)`` -> the features of ``variant``.

    Works in ``nn.Sequential`` and under ``torch.compile`` (same values); not under
    ``torch.jit.script`` (keyword-only arguments and ``autograd.Function``s with hand-written
    backward passes are outside TorchScript).
    """

    def __init__(self, variant: str = "uoctti", cell_size: int = 8, num_bins: int = 9,
                 bilinear_orientation: bool = False, *, vlfeat_rounding: bool = True):
        super().__init__()
        _check_variant(variant)
        self.variant, self.cell_size, self.num_bins = variant, int(cell_size), int(num_bins)
        self.bilinear_orientation, self.vlfeat_rounding = bool(bilinear_orientation), bool(vlfeat_rounding)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return hog(image, self.variant, self.cell_size, self.num_bins, self.bilinear_orientation,
                   vlfeat_rounding=self.vlfeat_rounding)

    def extra_repr(self) -> str:
        return (f"variant={self.variant!r}, cell_size={self.cell_size}, num_bins={self.num_bins}, "
                f"bilinear_orientation={self.bilinear_orientation}, vlfeat_rounding={self.vlfeat_rounding}")


# The drop-ins for scikit-image and OpenCV.
from .hog_skimage import SkimageHOG, skimage_hog  # noqa: E402,F401
from .hog_opencv import OpenCVHOG, opencv_hog  # noqa: E402,F401
