"""The UoCTTI variant of :func:`torch_backend.hog.hog`: VLFeat 0.9.21's ``vl_hog`` with
``VlHogVariantUoctti`` (vl/hog.c: ``vl_hog_put_image`` + ``vl_hog_extract``).

Orientation decisions are taken in VLFeat's float32 arithmetic (so exact ties go to the same bin);
magnitudes, bilinear weights and the block normalisation are then differentiable in the input's
dtype. See :mod:`torch_backend.hog` for the descriptor's layout.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from .hog_votes import (
    _central_differences,
    _differences,
    _indicator,
    _kept_pixels,
    _MagnitudeVotes,
    _pool_votes,
    _SafeMagnitude,
    _vote_table,
    _wide_dtype,
)

#: VLFeat clips every block-normalised value at 0.2 (Dalal & Triggs' "L2-Hys" threshold).
UOCTTI_CLIP = 0.2
#: vl_hog_extract adds 1e-4 to each block's squared norm before the inverse square root.
_UOCTTI_NORM_EPS = 1e-4
#: vl_hog_extract scales the texture energies by the float constant ``1.0f / sqrtf(18.0f)`` --
#: 18 = 2 * 9 orientations, hard-coded whatever ``num_bins`` is.
_UOCTTI_TEXTURE_SCALE = float(np.float32(1.0) / np.sqrt(np.float32(18.0)))


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
