"""Coarse search: every grid view, rotated in-plane by every roll, is aligned to the photo by a
2-D similarity (fitted into the box, or matched to the mask's centroid and radius of gyration) and
scored by the cues of :mod:`.cues`; the similarity then gives each entry's full camera pose."""
from __future__ import annotations

import dataclasses
import math
from typing import Callable, Dict, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from ..intrinsics import Intrinsics
from .cues import color_bins, hog_cells, masked_hog_cosine, moments, region_color_information, silhouette_iou
from .views import ViewSet

__all__ = ["coarse_search", "box_alignment", "similarity_to_params", "ROLL_SIGN"]

#: Camera roll per degree of image rotation in the pixel frame (y down, so +angle is clockwise on
#: screen): camera.py's positive roll turns the picture counter-clockwise. Checked by a test.
ROLL_SIGN = -1.0
_PATCH = 64  # coarse patch side (pixels): 8 x 8 HOG cells of 8 pixels
_PATCH_EXTENT = 2.4  # patch half-width in radii of gyration


def _patch_grid(centre: torch.Tensor, radius: torch.Tensor, angle_deg: torch.Tensor, size_hw: Tuple[int, int]) -> torch.Tensor:
    """grid_sample grids ``(B, P, P, 2)`` over squares of half-width ``_PATCH_EXTENT * radius``
    around ``centre (B, 2)`` rotated by ``-angle`` (so sampled content appears rotated by +angle)."""
    lin = (torch.arange(_PATCH, dtype=torch.float32) + 0.5) / _PATCH * 2 - 1
    qy, qx = torch.meshgrid(lin, lin, indexing="ij")
    a = -angle_deg * (math.pi / 180.0)
    cos_a, sin_a = torch.cos(a)[:, None, None], torch.sin(a)[:, None, None]
    half = (_PATCH_EXTENT * radius)[:, None, None]
    px = centre[:, 0, None, None] + half * (cos_a * qx - sin_a * qy)
    py = centre[:, 1, None, None] + half * (sin_a * qx + cos_a * qy)
    height, width = size_hw
    return torch.stack([px / width * 2 - 1, py / height * 2 - 1], dim=-1)


def _outline_points(views: ViewSet, count: int = 256) -> torch.Tensor:
    """``(N, count, 2)`` outline pixel centres of each view's silhouette, relative to its centroid
    (the rotated box of a silhouette is the rotated box of its outline)."""
    if views.outlines is not None:
        return views.outlines
    solid = (views.silhouettes > 0.5).float()[:, None]
    inner = -F.max_pool2d(-solid, 3, stride=1, padding=1)
    outline = (solid - inner)[:, 0] > 0.5
    points = torch.zeros(solid.shape[0], count, 2)
    generator = torch.Generator().manual_seed(0)
    for index in range(solid.shape[0]):
        ys, xs = torch.nonzero(outline[index], as_tuple=True)
        if ys.numel() == 0:
            points[index] = views.centroids[index]
            continue
        pick = torch.randint(0, ys.numel(), (count,), generator=generator) if ys.numel() > count else torch.arange(count) % ys.numel()
        points[index, :, 0] = xs[pick].float() + 0.5
        points[index, :, 1] = ys[pick].float() + 0.5
    views.outlines = points - views.centroids[:, None, :]
    return views.outlines


def box_alignment(views: ViewSet, rolls: torch.Tensor, box: Sequence[float]) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per (view, roll): photo position ``(N, R, 2)`` of the view's centroid and scale ``(N, R)``
    (photo pixels per view pixel) that fit the rotated silhouette's box into ``box``, and the IoU
    ``(N, R)`` of the fitted box with ``box`` (aspect-ratio agreement)."""
    outline = _outline_points(views)  # (N, P, 2)
    ang = rolls * (math.pi / 180.0)
    cos_a, sin_a = torch.cos(ang)[None, :, None], torch.sin(ang)[None, :, None]
    x, y = outline[:, None, :, 0], outline[:, None, :, 1]
    rx, ry = cos_a * x - sin_a * y, sin_a * x + cos_a * y  # (N, R, P)
    x0, x1, y0, y1 = rx.amin(-1), rx.amax(-1) + 1.0, ry.amin(-1), ry.amax(-1) + 1.0
    box_w, box_h = box[2] - box[0], box[3] - box[1]
    scale = torch.sqrt(box_w * box_h / ((x1 - x0) * (y1 - y0)).clamp_min(1e-6))
    centre_x = (box[0] + box[2]) / 2 - scale * (x0 + x1) / 2
    centre_y = (box[1] + box[3]) / 2 - scale * (y0 + y1) / 2
    fit_w, fit_h = scale * (x1 - x0), scale * (y1 - y0)
    inter = torch.minimum(fit_w, torch.tensor(box_w)) * torch.minimum(fit_h, torch.tensor(box_h))
    box_iou = inter / (fit_w * fit_h + box_w * box_h - inter)
    return torch.stack([centre_x, centre_y], -1), scale, box_iou


@dataclasses.dataclass
class _PatchSampler:
    """Square patches around each (view, roll) entry's object, from the view and from the photo,
    at the same scale and rotation, so that the cues compare them cell by cell."""

    views: ViewSet
    rolls: torch.Tensor  # (R,) degrees
    centres: torch.Tensor  # (N, R, 2) photo pixels of each rotated view's centroid
    scale: torch.Tensor  # (N, R) photo pixels per view pixel
    photo_stack: torch.Tensor  # (1, L, H, W) mask, gray [, r, g, b, inside]
    shared_patch: Optional[torch.Tensor]  # (1, L, P, P) the photo patch when every entry shares it (mask mode)

    def sample(self, view_index: torch.Tensor, roll_index: torch.Tensor, entries: torch.Tensor, offset: int,
               with_images: bool) -> Tuple[torch.Tensor, torch.Tensor]:
        """View patches (silhouette [+ image]) and photo patches of the given (view, roll) entries;
        ``offset`` is the index of the chunk's first entry in the whole grid."""
        views_at, rolls_at = view_index[entries], roll_index[entries]
        radii = self.views.radii[views_at]
        vh, vw = self.views.images.shape[1:]
        grid = _patch_grid(self.views.centroids[views_at], radii, self.rolls[rolls_at], (vh, vw))
        layers = [self.views.silhouettes[views_at]] + ([self.views.images[views_at]] if with_images else [])
        patches = F.grid_sample(torch.stack(layers, 1), grid, align_corners=False, padding_mode="zeros")
        if self.shared_patch is not None:
            return patches, self.shared_patch.expand(patches.shape[0], -1, -1, -1)
        local = entries + offset
        height, width = self.photo_stack.shape[-2:]
        photo_grid = _patch_grid(self.centres.reshape(-1, 2)[local], radii * self.scale.reshape(-1)[local],
                                 torch.zeros(entries.shape[0]), (height, width))
        photo_patch = F.grid_sample(self.photo_stack.expand(entries.shape[0], -1, -1, -1), photo_grid,
                                    align_corners=False, padding_mode="zeros")
        return patches, photo_patch


def coarse_search(
    views: ViewSet,
    photo_gray: torch.Tensor,
    mask: torch.Tensor,
    cam: Intrinsics,
    rolls: Sequence[float],
    weights: Dict[str, float],
    check: Callable[[float, str], None],
    box: Optional[Sequence[float]] = None,
    hog_rolls: int = 3,
    photo_rgb: Optional[torch.Tensor] = None,
    hog_variant: str = "uoctti",
    gray: bool = False,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Score every (view, roll) aligned to the photo; return ``(scores (N*R,), params (N*R, 6))``
    with params in normalised mesh units (az, el, dist, roll, shift_x, shift_y).

    Alignment: with a ``box`` (working pixels) each rotated view is fitted into the box; otherwise
    its centroid and radius of gyration are matched to the mask's. Score: weighted mean of the soft
    IoU with ``mask`` ``(H, W)``, the unsigned-HOG cosine inside the object region, (box) the box
    IoU and (``photo_rgb`` ``(3, H, W)`` given) how well the photo's colours predict the silhouette
    (:func:`region_color_information`, over the whole patch; ``gray``: by intensity, see
    :func:`color_bins`). ``weights``: ``iou, hog, box, color``.
    """
    height, width = photo_gray.shape
    m_centre, _, m_radius = moments(mask[None])
    n_views, n_rolls = views.images.shape[0], len(rolls)
    roll_t = torch.tensor(list(rolls), dtype=torch.float32)
    if box is not None:
        centres, scale, box_fit = box_alignment(views, roll_t, box)
    else:
        scale = (m_radius / views.radii)[:, None].expand(n_views, n_rolls)
        centres = m_centre.expand(n_views * n_rolls, 2).reshape(n_views, n_rolls, 2)
        box_fit = None
    w_iou, w_hog, w_box = weights.get("iou", 1.0), weights.get("hog", 0.0), weights.get("box", 0.0) if box is not None else 0.0
    w_color = weights.get("color", 0.0) if photo_rgb is not None else 0.0
    used = {"iou": w_iou, "hog": w_hog, "box": w_box, "color": w_color}
    total = max(w_iou + w_hog + w_box + w_color, 1e-9)
    layers = [mask, photo_gray]
    if w_color > 0:  # colours and an "inside the photo" channel (zero padding marks outside)
        layers += [photo_rgb[0], photo_rgb[1], photo_rgb[2], torch.ones_like(mask)]
    photo_stack = torch.stack(layers)[None]
    shared_patch = None
    if box is None:
        grid = _patch_grid(m_centre, m_radius, torch.zeros(1), (height, width))
        shared_patch = F.grid_sample(photo_stack, grid, align_corners=False, padding_mode="zeros")
    sampler = _PatchSampler(views, roll_t, centres, scale, photo_stack, shared_patch)
    scores = torch.empty(n_views, n_rolls)
    chunk = max(1, 2048 // n_rolls)
    for start in range(0, n_views, chunk):
        check(0.05 + 0.25 * start / n_views, "coarse grid")
        stop = min(n_views, start + chunk)
        chunk_box_fit = box_fit[start:stop] if box_fit is not None else None
        score = _score_chunk(sampler, start, stop, n_rolls, chunk_box_fit, used, min(hog_rolls, n_rolls), hog_variant,
                             gray)
        scores[start:stop] = (score / total).view(stop - start, n_rolls)
    params = similarity_to_params(views, centres, scale, roll_t, cam)
    return scores.reshape(-1), params.reshape(-1, 6)


def _score_chunk(sampler: _PatchSampler, start: int, stop: int, n_rolls: int, box_fit: Optional[torch.Tensor],
                 weights: Dict[str, float], top: int, hog_variant: str, gray: bool) -> torch.Tensor:
    """Weighted (unnormalised) scores ``((stop - start) * R,)`` of views ``start..stop`` at every roll."""
    count = stop - start
    view_index = torch.arange(start, stop).repeat_interleave(n_rolls)
    roll_index = torch.arange(n_rolls).repeat(count)
    offset = start * n_rolls
    # Cheap cues for every roll: the box fit (from the outlines) and the IoU with the mask.
    score = torch.zeros(count * n_rolls)
    if box_fit is not None and weights["box"] > 0:
        score = score + weights["box"] * box_fit.reshape(-1)
    everything = torch.arange(count * n_rolls)
    if weights["iou"] > 0:
        patches, photo_patch = sampler.sample(view_index, roll_index, everything, offset, with_images=False)
        score = score + weights["iou"] * silhouette_iou(patches[:, 0], photo_patch[:, 0])
    w_hog, w_color = weights["hog"], weights["color"]
    if w_hog > 0 or w_color > 0:
        # The costly cues only for each view's best few rolls by the cheap ones: the outline
        # fixes the roll well; HOG and colour are needed to tell the views apart.
        best_rolls = torch.topk(score.view(count, n_rolls), top, dim=1).indices
        picked = (best_rolls + torch.arange(count)[:, None] * n_rolls).reshape(-1)
        patches, photo_patch = sampler.sample(view_index, roll_index, picked, offset, with_images=w_hog > 0)
        costly = torch.zeros(picked.shape[0])
        if w_color > 0:
            bins = color_bins(photo_patch[:, 2:5], gray=gray).flatten(1)
            inside = (photo_patch[:, 5] > 0.5).flatten(1)
            costly = costly + w_color * region_color_information(patches[:, 0].flatten(1), bins, inside)
        if w_hog > 0:
            hog_view = hog_cells(patches[:, 1], hog_variant)
            if sampler.shared_patch is None:
                hog_photo = hog_cells(photo_patch[:, 1], hog_variant)
            else:
                hog_photo = hog_cells(sampler.shared_patch[:, 1], hog_variant).expand_as(hog_view)
            cells = hog_view.shape[-2:]
            region = torch.maximum(F.adaptive_avg_pool2d(photo_patch[:, :1], cells), F.adaptive_avg_pool2d(patches[:, :1], cells))[:, 0]
            costly = costly + w_hog * masked_hog_cosine(hog_view, hog_photo, (region > 0.05).to(hog_view.dtype))
        unscored = torch.full_like(score, -w_hog)  # rolls left out rank below the scored ones
        unscored[picked] = costly
        score = score + unscored
    return score


def similarity_to_params(views: ViewSet, centres: torch.Tensor, scale: torch.Tensor, rolls: torch.Tensor, cam: Intrinsics) -> torch.Tensor:
    """Poses ``(N, R, 6)`` implied by mapping view n, rotated by roll r about its centroid, onto the
    photo: the centroid lands at ``centres[n, r]`` (pixels) and ``scale[n, r]`` photo pixels per
    view pixel."""
    n = views.params.shape[0]
    deg = math.pi / 180.0
    view_cx, view_cy = views.cam.principal_point
    offset = torch.tensor([view_cx, view_cy]) - views.centroids  # origin's image relative to centroid
    ang = rolls * deg
    cos_a, sin_a = torch.cos(ang)[None], torch.sin(ang)[None]
    ox, oy = offset[:, 0, None], offset[:, 1, None]
    px = centres[..., 0] + scale * (cos_a * ox - sin_a * oy)
    py = centres[..., 1] + scale * (sin_a * ox + cos_a * oy)
    shift_x = (cam.width / 2.0 - px) / cam.fit_span_px
    shift_y = (py - cam.height / 2.0) / cam.fit_span_px
    distance = views.params[:, 2, None] * (cam.focal_px / views.cam.focal_px) / scale
    out = torch.empty(n, rolls.shape[0], 6)
    out[..., 0] = views.params[:, 0, None]
    out[..., 1] = views.params[:, 1, None]
    out[..., 2] = distance
    out[..., 3] = views.params[:, 3, None] + ROLL_SIGN * rolls[None]
    out[..., 4] = shift_x
    out[..., 5] = shift_y
    return out

