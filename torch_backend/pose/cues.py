"""Scoring terms of the pose search, one function each: how well a candidate (its silhouette,
shading and depth, or its projected box) explains the photo. All are batched over candidates,
differentiable where the refinement uses them, and tested by their names.
"""
from __future__ import annotations

from typing import Tuple

import torch
import torch.nn.functional as F

from ..hog import hog, skimage_hog
from .options import HOG_VARIANTS

__all__ = [
    "moments", "silhouette_iou", "box_iou", "hog_cells", "masked_hog_cosine", "COLOR_BINS", "GRAY_LEVELS", "color_bins", "is_gray",
    "region_color_information", "gradient_magnitude", "occlusion_edge_evidence",
]


def moments(weights: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Centroid ``(N, 2)``, area ``(N,)`` and radius of gyration ``(N,)`` of ``(N, h, w)`` weights."""
    n, h, w = weights.shape
    ys = torch.arange(h, dtype=weights.dtype, device=weights.device) + 0.5
    xs = torch.arange(w, dtype=weights.dtype, device=weights.device) + 0.5
    area = weights.sum((1, 2)).clamp_min(1e-6)
    cx = (weights.sum(1) * xs).sum(-1) / area
    cy = (weights.sum(2) * ys).sum(-1) / area
    var_x = (weights.sum(1) * xs**2).sum(-1) / area - cx**2
    var_y = (weights.sum(2) * ys**2).sum(-1) / area - cy**2
    return torch.stack([cx, cy], -1), area, (var_x + var_y).clamp_min(1e-6).sqrt()


def silhouette_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Soft IoU over the last two dimensions: sum(a*b) / sum(a + b - a*b)."""
    inter = (a * b).sum((-2, -1))
    return inter / (a.sum((-2, -1)) + b.sum((-2, -1)) - inter).clamp_min(1e-6)


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of ``(B, 4)`` and ``(1|B, 4)`` boxes ``(x0, y0, x1, y1)``; differentiable."""
    width = (torch.minimum(a[:, 2], b[:, 2]) - torch.maximum(a[:, 0], b[:, 0])).clamp_min(0)
    height = (torch.minimum(a[:, 3], b[:, 3]) - torch.maximum(a[:, 1], b[:, 1])).clamp_min(0)
    inter = width * height
    area_a = (a[:, 2] - a[:, 0]).clamp_min(0) * (a[:, 3] - a[:, 1]).clamp_min(0)
    area_b = (b[:, 2] - b[:, 0]).clamp_min(0) * (b[:, 3] - b[:, 1]).clamp_min(0)
    return inter / (area_a + area_b - inter).clamp_min(1e-6)


def hog_cells(gray: torch.Tensor, variant: str = "uoctti") -> torch.Tensor:
    """Contrast-insensitive HOG cells ``(B, 9, h/8, w/8)`` of ``(B, h, w)`` gray patches.

    ``uoctti``: the 9 unsigned orientations of Felzenszwalb et al.'s 31 (object and background
    may swap brightness between photo and render, so only the unsigned part compares fairly);
    ``dalal``: Dalal-Triggs cells; ``skimage``: scikit-image's HOG with one-cell L2-Hys blocks.
    """
    if variant == "uoctti":
        return hog(gray[:, None], "uoctti", cell_size=8, num_bins=9)[:, 18:27]
    if variant == "dalal":
        return hog(gray[:, None], "dalal", cell_size=8, num_bins=9)
    if variant == "skimage":
        cells = skimage_hog(gray, orientations=9, pixels_per_cell=(8, 8), cells_per_block=(1, 1), feature_vector=False)
        return cells[:, :, :, 0, 0, :].permute(0, 3, 1, 2)
    raise ValueError(f"hog_variant must be one of {HOG_VARIANTS}, got {variant!r}")


def masked_hog_cosine(a: torch.Tensor, b: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of HOG maps ``(B, D, c, c)`` restricted to cells where ``region (B, c, c)``."""
    a = a * region[:, None]
    b = b * region[:, None]
    dot = (a * b).sum((1, 2, 3))
    return dot / (a.flatten(1).norm(dim=1) * b.flatten(1).norm(dim=1)).clamp_min(1e-8)


#: Colour quantisation of the region term: bins per RGB channel (8**3 = 512 joint bins).
COLOR_BINS = 8


#: Intensity levels of the region term on gray photos (their colours all lie on the gray axis,
#: where the joint RGB bins leave only ``COLOR_BINS`` of them).
GRAY_LEVELS = 32


def color_bins(rgb: torch.Tensor, bins: int = COLOR_BINS, gray: bool = False) -> torch.Tensor:
    """Joint RGB bin index ``(..., H, W)`` (int64 in ``[0, bins**3)``) of ``(..., 3, H, W)`` colours
    in [0, 1]; with ``gray`` (a black-and-white photo), one of :data:`GRAY_LEVELS` intensity levels."""
    if gray:
        return (rgb[..., 0, :, :].clamp(0, 1) * (GRAY_LEVELS - 1e-3)).long()
    q = (rgb.clamp(0, 1) * (bins - 1e-3)).long()
    return (q[..., 0, :, :] * bins + q[..., 1, :, :]) * bins + q[..., 2, :, :]


def is_gray(rgb: torch.Tensor, tolerance: float = 2.0 / 255.0) -> bool:
    """True when a ``(3, H, W)`` photo is black and white (its channels agree to ``tolerance``
    almost everywhere: JPEG leaves a little chroma noise)."""
    spread = (rgb.amax(0) - rgb.amin(0)).flatten()
    return bool(torch.quantile(spread[:: max(1, spread.numel() // 100000)], 0.99) <= tolerance)


def region_color_information(silhouette: torch.Tensor, bins: torch.Tensor, valid: torch.Tensor,
                             n_bins: int = COLOR_BINS**3) -> torch.Tensor:
    """How well the photo's colours predict a candidate's silhouette: mutual information of the
    (soft) object/background label and the colour bin, divided by the label's entropy.

    The region term of segmentation-driven pose methods (PWP3D, Prisacariu & Reid 2012, with
    histograms re-estimated per candidate as in MI segmentation, Kim et al. 2005): the right pose
    puts the object's outline on a colour boundary, whatever the colours are -- no segmentation of
    the photo (and none of GrabCut's losses of thin parts) is needed. Differentiable in ``silhouette``.

    Args:
        silhouette: ``(B, N)`` object coverage in [0, 1] of N sample pixels.
        bins: ``(B, N)`` or ``(N,)`` colour bin of each sample (:func:`color_bins`).
        valid: ``(B, N)`` or ``(N,)`` weight of each sample (0 outside the photo or region).

    Returns:
        ``(B,)`` uncertainty coefficient in [0, 1] (plug-in estimate: slightly biased upward, the
        same for candidates with the same number of samples).
    """
    batch = silhouette.shape[0]
    bins = bins.expand_as(silhouette)
    valid = valid.to(silhouette.dtype).expand_as(silhouette)
    fg_weight = silhouette * valid
    bg_weight = (1 - silhouette) * valid
    fg = silhouette.new_zeros(batch, n_bins).scatter_add(1, bins, fg_weight)
    bg = silhouette.new_zeros(batch, n_bins).scatter_add(1, bins, bg_weight)
    total = valid.sum(1, keepdim=True).clamp_min(1e-6)
    p_fg, p_bg = fg / total, bg / total
    p_color = p_fg + p_bg
    label_fg = p_fg.sum(1, keepdim=True).clamp(1e-6, 1 - 1e-6)
    label_bg = 1 - label_fg

    def plogq(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        return torch.where(p > 0, p * torch.log(p.clamp_min(1e-12) / q.clamp_min(1e-12)), torch.zeros_like(p))

    information = (plogq(p_fg, label_fg * p_color) + plogq(p_bg, label_bg * p_color)).sum(1)
    label_entropy = -(label_fg * label_fg.log() + label_bg * label_bg.log())[:, 0]
    return information / label_entropy


def gradient_magnitude(gray: torch.Tensor) -> torch.Tensor:
    """Gradient magnitude ``(H, W)`` of a ``(H, W)`` image after a 3x3 binomial blur (sensor noise)."""
    kernel = torch.tensor([1.0, 2.0, 1.0], dtype=gray.dtype, device=gray.device)
    kernel = (kernel[:, None] * kernel[None, :] / 16.0)[None, None]
    smooth = F.conv2d(F.pad(gray[None, None], (1, 1, 1, 1), mode="replicate"), kernel)
    padded = F.pad(smooth, (1, 1, 1, 1), mode="replicate")[0, 0]
    gx = (padded[1:-1, 2:] - padded[1:-1, :-2]) / 2
    gy = (padded[2:, 1:-1] - padded[:-2, 1:-1]) / 2
    return torch.sqrt(gx * gx + gy * gy)


def occlusion_edge_evidence(silhouette: torch.Tensor, depth: torch.Tensor, photo_edges: torch.Tensor,
                             jump: float = 0.05, quantile: float = 0.7) -> torch.Tensor:
    """Does the photo show the edges where a candidate's parts occlude each other? ``(B,)``.

    Inside the outline, a depth jump of more than ``jump`` (mesh radii) between neighbouring
    pixels is an occlusion edge of the candidate (a mug's handle in front of its body, a stool's
    leg before another). Shading creases and texture vary with lights and materials; occlusion
    edges are geometry, so the photo has an edge there whatever they are. Each such pixel scores
    ``(g - t) / t``: ``g`` the photo's gradient magnitude, ``t`` its ``quantile`` inside the
    candidate's outline (a typical textured pixel). A hallucinated handle over a plain body scores
    below zero, a real one above, a candidate without occlusion edges zero. Normalised by the
    interior area so that it does not grow with the object's size.

    Args:
        silhouette, depth: ``(B, H, W)`` render (depth in mesh radii, 0 outside).
        photo_edges: ``(H, W)`` photo gradient magnitude (:func:`gradient_magnitude`).
    """
    solid = (silhouette > 0.5).to(depth.dtype)[:, None]
    interior = (-F.max_pool2d(-solid, 5, stride=1, padding=2))[:, 0] > 0.5  # 2 px from the outline
    padded = F.pad(depth[:, None], (1, 1, 1, 1), mode="replicate")[:, 0]
    jumps = torch.maximum((padded[:, 1:-1, 2:] - padded[:, 1:-1, :-2]).abs(), (padded[:, 2:, 1:-1] - padded[:, :-2, 1:-1]).abs())
    edges = (jumps > jump) & interior
    scores = torch.zeros(depth.shape[0], dtype=depth.dtype, device=depth.device)
    for index in range(depth.shape[0]):
        inside = photo_edges[interior[index]]
        if inside.numel() < 16 or not bool(edges[index].any()):
            continue
        typical = torch.quantile(inside, quantile).clamp_min(1e-6)
        scores[index] = ((photo_edges[edges[index]] - typical) / typical).sum() / inside.numel()
    return scores
