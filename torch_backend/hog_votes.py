"""Building blocks shared by both :func:`torch_backend.hog.hog` variants: ``[-1, 0, 1]`` central
differences, the gradient magnitude, and the bilinear spatial voting of per-pixel orientation votes
into cells (Chiu & Fritz eq. 5-6, VLFeat's ``vl_hog_put_image``).

The hot steps are ``torch.autograd.Function``s with hand-written backward passes, and the discrete
decisions avoid ``where``/``argmax``/bool masks (each several times a ``mul`` on CPU): at small
sizes the cost is per-op overhead, not arithmetic. See :mod:`torch_backend.hog`.
"""
from __future__ import annotations

from functools import lru_cache

import torch


def _wide_dtype(device: torch.device) -> torch.dtype:
    """float64 for exact intermediate arithmetic, except on Apple's MPS which has no float64."""
    return torch.float32 if device.type == "mps" else torch.float64


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
