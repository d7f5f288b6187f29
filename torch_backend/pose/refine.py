"""Gradient refinement: the best distinct coarse poses and their near-symmetric twins are refined
jointly by Adam through the soft rasterizer (:mod:`torch_backend.render`), from coarse to fine:
explore (every start, low resolution, wide blur), polish (the best distinct ones, working
resolution, blur annealed to 0.4 px so the silhouette's 0.5 level is the exact outline) and a last
look (the finalists at up to the photo's resolution). Near-ties between twins are broken by the
shading (∇HOG) and by occlusion edges."""
from __future__ import annotations

import dataclasses
import math
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from .. import masks as _masks
from .. import render as _render
from ..intrinsics import Intrinsics
from .cues import (box_iou, color_bins, gradient_magnitude, hog_cells, masked_hog_cosine, occlusion_edge_evidence,
                   region_color_information, silhouette_iou)
from .options import PoseOptions
from .prepare import Observation, PreparedMesh, camera_for, project, resize
from .types import Pose
from .views import ViewSet

__all__ = ["Objective", "refine", "refine_poses", "distinct", "view_directions", "to_pose", "twin_starts", "twins_among"]


def _angle_gap(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.remainder(a - b + 180.0, 360.0) - 180.0


def distinct(order: Sequence[int], params: torch.Tensor, count: int, min_gap: float) -> List[int]:
    """Greedy non-maximum suppression on viewing direction (great-circle angle, degrees)."""
    chosen: List[int] = []
    directions = view_directions(params)
    for index in order:
        if len(chosen) >= count:
            break
        if chosen:
            cosines = directions[chosen] @ directions[index]
            if float(torch.rad2deg(torch.arccos(cosines.clamp(-1, 1))).min()) < min_gap:
                continue
        chosen.append(int(index))
    return chosen


def view_directions(params: torch.Tensor) -> torch.Tensor:
    """Unit viewing directions ``(B, 3)`` (float64) of ``(B, >=2)`` params (azimuth, elevation in degrees)."""
    az = torch.deg2rad(params[:, 0].double())
    el = torch.deg2rad(params[:, 1].double())
    return torch.stack([torch.cos(el) * torch.sin(az), -torch.cos(el) * torch.cos(az), torch.sin(el)], -1)


def to_pose(row: torch.Tensor, radius: float) -> Pose:
    """The :class:`Pose` of one ``(6,)`` params row (``(7,)`` with the lens), distance back in
    scene units (``radius`` per unit)."""
    az = float(torch.remainder(row[0], 360.0))
    roll = float(_angle_gap(row[3], torch.zeros(())))
    lens = float(row[6]) if row.shape[0] == 7 else None
    return Pose(az, float(row[1]), float(row[2]) * radius, roll, float(row[4]), float(row[5]), lens)


#: Azimuth maps of the near-symmetries common in man-made objects: front/back (180 deg), mirror
#: (left/right, front/back), and the 3- and 4-fold turns of stools and square tables.
_TWIN_MAPS: Tuple[Tuple[float, float], ...] = ((1.0, 180.0), (-1.0, 0.0), (-1.0, 180.0))
_TURN_MAPS: Tuple[Tuple[float, float], ...] = ((1.0, 120.0), (1.0, 240.0), (1.0, 90.0), (1.0, 270.0))


def twin_starts(params: torch.Tensor, scores: torch.Tensor, n_views: int, n_rolls: int, views: ViewSet, index: int,
                 maps: Sequence[Tuple[float, float]] = _TWIN_MAPS) -> List[int]:
    """Grid entries of the twins of entry ``index`` under the azimuth ``maps`` ``az -> sign * az + offset``
    (default: ``az + 180``, ``-az``, ``180 - az``) at the same elevation, each with its best roll.
    Silhouettes (and often shading) of near-symmetric objects confuse exactly these views."""
    view = index // n_rolls
    az, el = views.params[view, 0], views.params[view, 1]
    twins: List[int] = []
    same_el = torch.nonzero((views.params[:, 1] - el).abs() < 1e-3).flatten()
    per_view = scores.view(n_views, n_rolls)
    for target in (sign * az + offset for sign, offset in maps):
        gap = _angle_gap(views.params[same_el, 0], target).abs()
        other = int(same_el[int(torch.argmin(gap))])
        if other == view:
            continue
        twins.append(other * n_rolls + int(torch.argmax(per_view[other])))
    return twins


def twins_among(params: torch.Tensor, best: int, chosen: Sequence[int], reach: float = 25.0,
                 maps: Sequence[Tuple[float, float]] = ((1.0, 180.0), (1.0, 120.0), (1.0, 240.0))) -> List[int]:
    """Indices of ``params (B, 6)`` rows closest to the front/back and 3-fold twins of row ``best``
    (within ``reach`` degrees of viewing direction), not within 15 deg of ``chosen`` or each other.

    The polish must see the best pose's twins: when their silhouettes are identical (a mug with its
    handle hidden or in front) only the shading can tell them apart, and it can only choose among
    what was polished."""
    directions = view_directions(params)
    az, el = float(params[best, 0]), float(params[best, 1])
    picked: List[int] = []
    for sign, offset in maps:
        target = view_directions(torch.tensor([[sign * az + offset, el]], dtype=torch.float64))[0]
        gaps = torch.rad2deg(torch.arccos((directions @ target).clamp(-1, 1)))
        index = int(torch.argmin(gaps))
        if float(gaps[index]) > reach:
            continue
        taken = list(chosen) + picked
        if taken and float(torch.rad2deg(torch.arccos((directions[taken] @ directions[index]).clamp(-1, 1))).min()) < 15.0:
            continue
        picked.append(index)
    return picked


class Objective:
    """Differentiable pose score at the working resolution (higher is better).

    ``iou``: soft silhouette IoU with the object mask. ``hog``: cosine similarity of unsigned
    ∇HOG cells of the render and the photo, restricted to the cells the *render* covers (dilated),
    so a larger render cannot gain by covering clutter (the failure the feasibility study found
    with whole-image HOG).
    """

    def __init__(self, mesh: PreparedMesh, cam: Intrinsics, mask: torch.Tensor, photo_gray: torch.Tensor, hog_weight: float, iou_weight: float,
                 box: Optional[torch.Tensor] = None, box_weight: float = 0.0,
                 photo_rgb: Optional[torch.Tensor] = None, color_weight: float = 0.0, hog_variant: str = "uoctti",
                 gray: bool = False):
        self.mesh, self.cam = mesh, cam
        self.hog_variant = hog_variant
        self.box, self.box_weight = box, float(box_weight)
        self.color_weight = float(color_weight) if photo_rgb is not None else 0.0
        if self.color_weight > 0:
            # Region of the colour term: the box with a margin of 30 % of its size (the background
            # next to the object is what tells the outline), else the whole photo.
            height, width = photo_rgb.shape[-2:]
            region = torch.ones(height, width, dtype=photo_gray.dtype, device=photo_gray.device)
            if box is not None:
                x0, y0, x1, y1 = (float(v) for v in box)
                margin = 0.3 * max(x1 - x0, y1 - y0)
                ys = torch.arange(height, device=region.device, dtype=region.dtype) + 0.5
                xs = torch.arange(width, device=region.device, dtype=region.dtype) + 0.5
                inside_y = (ys > y0 - margin) & (ys < y1 + margin)
                inside_x = (xs > x0 - margin) & (xs < x1 + margin)
                region = (inside_y[:, None] & inside_x[None, :]).to(region.dtype)
            self.color_region = region.flatten()
            self.color_bins = color_bins(photo_rgb, gray=gray).flatten()
        self.mask, self.photo_gray = mask, photo_gray
        self.hog_weight, self.iou_weight = float(hog_weight), float(iou_weight)
        self._photo_hog: Optional[torch.Tensor] = None

    @property
    def photo_hog(self) -> torch.Tensor:
        """Unsigned HOG cells ``(1, 9, h/8, w/8)`` of the photo (computed on first use)."""
        if self._photo_hog is None:
            self._photo_hog = hog_cells(self.photo_gray[None], self.hog_variant)
        return self._photo_hog

    def render(self, params: torch.Tensor, sigma: float, *, with_depth: bool = False) -> Tuple[torch.Tensor, ...]:
        """Soft silhouettes and gray renders ``(B, H, W)`` for ``(B, 6)`` params (the silhouette
        stands in for the gray render when HOG is not scored); ``with_depth`` adds the depths
        (mesh radii)."""
        camera = camera_for(params, self.cam)
        if self.hog_weight == 0 and not with_depth:
            silhouette = _render.render_silhouette(self.mesh.mesh, camera=camera, sharpness=sigma)
            return silhouette, silhouette
        result = _render.render(self.mesh.mesh, camera=camera, sharpness=sigma)
        return tuple(result) if with_depth else (result.silhouette, result.shaded)

    def hog_similarity(self, silhouette: torch.Tensor, gray: torch.Tensor) -> torch.Tensor:
        """``(B,)`` cosine of the unsigned HOG cells of renders and photo, over the cells the render
        covers plus one cell of context."""
        render_hog = hog_cells(gray, self.hog_variant)
        cells = render_hog.shape[-2:]
        region = F.adaptive_max_pool2d(silhouette[:, None], cells)
        region = F.max_pool2d(region, 3, stride=1, padding=1)[:, 0]
        return masked_hog_cosine(render_hog, self.photo_hog.expand_as(render_hog), region)

    def __call__(self, params: torch.Tensor, sigma: float) -> Tuple[torch.Tensor, torch.Tensor]:
        """Score ``(B,)`` and IoU ``(B,)`` for ``(B, 6)`` params."""
        silhouette, gray = self.render(params, sigma)
        iou = silhouette_iou(silhouette, self.mask[None])
        score = self.iou_weight * iou
        if self.hog_weight > 0:
            score = score + self.hog_weight * self.hog_similarity(silhouette, gray)
        if self.color_weight > 0:
            score = score + self.color_weight * region_color_information(silhouette.flatten(1), self.color_bins, self.color_region)
        if self.box is not None and self.box_weight > 0:
            # The silhouette's box is exactly the box of the projected vertices (every vertex lies
            # on a drawn face), so the user's box constrains scale and position directly, however
            # poor the GrabCut mask is.
            pixels, _ = project(self.mesh.vertices.to(params.dtype), params, self.cam)
            render_box = torch.stack([pixels[..., 0].amin(1), pixels[..., 1].amin(1), pixels[..., 0].amax(1), pixels[..., 1].amax(1)], -1)
            score = score + self.box_weight * box_iou(render_box, self.box[None])
        return score, iou


def refine(
    starts: torch.Tensor,
    objective: Objective,
    *,
    iterations: int,
    learning_rate: float,
    check: Callable[[float, str], None],
    progress: Tuple[float, float],
    sharpness: Tuple[float, float] = (2.0, 0.5),
    elevation_bounds: Tuple[float, float] = (-89.0, 89.0),
    roll_free: bool = True,
    lens_free: bool = True,
    lens_bounds: Tuple[float, float] = (0.0, math.inf),
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Adam ascent on ``(B, 6)`` starts (``(B, 7)`` with the lens in mm as a 7th column: the focal
    length is estimated too); returns the best iterate of each start, its score and IoU.

    ``elevation_bounds`` (degrees) clamp the elevation; ``roll_free=False`` keeps each start's
    roll, ``lens_free=False`` each start's lens; ``lens_bounds`` (mm) clamp an estimated lens.

    The variables are scaled so that one unit is comparable for all of them: degrees for the
    angles, ``log(distance)`` in 1/50ths and the shift in 1/500ths of the image span. The soft
    rasterizer's blur is annealed (``sharpness``, pixels, geometric schedule): a wide blur gives gradients far from
    the optimum, and a narrow one removes the blur's bias on the silhouette size (and so on the
    distance) before the best iterate is picked. The lens is ``log(lens)`` in 1/20ths, and the
    distance follows it (a dolly zoom): the image size stays, so the lens variable changes only
    the perspective, which is what tells focal length from distance.
    """
    focal = starts.shape[1] == 7
    scale = torch.tensor([1.0, 1.0, 0.02, 1.0 if roll_free else 0.0, 0.002, 0.002]
                         + ([0.05 if lens_free else 0.0] if focal else []), dtype=starts.dtype)
    base = starts.clone()
    base[:, 2] = torch.log(starts[:, 2])
    if focal:
        base[:, 6] = torch.log(starts[:, 6])
    sine = torch.sin(torch.deg2rad(starts[:, 1:2])).detach()
    coupling = sine * sine.abs() ** 7 if roll_free else torch.zeros_like(sine)
    variables = torch.zeros_like(base, requires_grad=True)
    optimizer = torch.optim.Adam([variables], lr=learning_rate)
    best_params = starts.clone()
    best_score = torch.full((starts.shape[0],), -float("inf"), dtype=starts.dtype)
    best_iou = torch.zeros_like(best_score)
    for step in range(iterations + 1):
        fraction = step / max(iterations, 1)
        check(progress[0] + (progress[1] - progress[0]) * fraction, "refining")
        sigma = sharpness[0] * (sharpness[1] / sharpness[0]) ** fraction
        values = base + variables * scale
        # Near the poles a turn in azimuth is mostly an image rotation, which roll also makes: there
        # roll follows azimuth (camera.py: at el = 90 deg, az + d with roll + d is the same camera)
        # so that the two variables stay independent. The weight sin(el)^8 keeps it to steep views:
        # the full sin(el) also at mid elevations (60 deg) converged worse there (measured).
        values = torch.cat([values[:, :3], values[:, 3:4] + (values[:, :1] - base[:, :1]) * coupling, values[:, 4:]], 1)
        if focal:
            values = torch.cat([values[:, :2], values[:, 2:3] + (values[:, 6:7] - base[:, 6:7]), values[:, 3:]], 1)
        params = torch.cat([values[:, :2], values[:, 2:3].exp(), values[:, 3:6]]
                           + ([values[:, 6:].exp().clamp(*lens_bounds)] if focal else []), 1)
        params = torch.cat([params[:, :1], params[:, 1:2].clamp(*elevation_bounds), params[:, 2:]], 1)
        score, iou = objective(params, sigma)
        # Compare iterates only once the blur is narrow: wide-blur scores are biased.
        if fraction >= 0.5:
            better = score.detach() > best_score
            best_score = torch.where(better, score.detach(), best_score)
            best_iou = torch.where(better, iou.detach(), best_iou)
            best_params[better] = params.detach()[better]
        if step == iterations:
            break
        optimizer.zero_grad()
        (-score.sum()).backward()
        optimizer.step()
        for group in optimizer.param_groups:
            group["lr"] = learning_rate * (0.1 + 0.9 * (1 - fraction))
    return best_params, best_score, best_iou


def refine_poses(observation: Observation, mesh: PreparedMesh, views: ViewSet, scores: torch.Tensor,
                 params: torch.Tensor, n_rolls: int, options: PoseOptions, check: Callable[[float, str], None],
                 timings: Dict[str, float], device: Any = None, twins: bool = True
                 ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """From the coarse grid's ``scores (N*R,)`` and ``params (N*R, 6)`` to refined poses: explore,
    (re-segment,) polish, last look. Returns ``(params (K, 6), scores (K,), ious (K,))`` on the CPU.
    ``options`` must be resolved for the observation's mode (:meth:`PoseOptions.for_mode`);
    ``twins=False`` refines only what the grid found (the artist's start is trusted)."""
    tick = time.perf_counter()
    torch.manual_seed(int(options.seed))
    order = torch.argsort(scores, descending=True).tolist()
    start_ids = distinct(order, params, options.starts, min_gap=20.0)
    block = views.params.shape[0] * n_rolls  # one grid per candidate lens, lens-major
    for rank, index in enumerate(list(start_ids[:2]) if twins else []):
        maps = _TWIN_MAPS + (_TURN_MAPS if rank == 0 else ())
        offset = index - index % block
        grid = slice(offset, offset + block)
        for twin in twin_starts(params[grid], scores[grid], views.params.shape[0], n_rolls, views, index - offset, maps):
            if twin + offset not in start_ids:
                start_ids.append(twin + offset)
    dev = torch.device(device) if device is not None else torch.device("cpu")
    device_mesh = mesh.to(dev)
    objective_at = _ObjectiveFactory(observation, device_mesh, options, dev)
    constraints = _constraints(options, observation)

    # Explore: every start, a few steps at low resolution with a wide blur.
    explored, explored_score, _ = refine(
        params[start_ids].to(dev, torch.float32), objective_at(options.explore_size),
        iterations=options.explore_iterations, learning_rate=1.5 * options.learning_rate,
        check=check, progress=(0.35, 0.6), sharpness=(1.5, 0.7), **constraints,
    )
    timings["explore"] = time.perf_counter() - tick
    tick = time.perf_counter()
    if observation.mode != "mask" and options.regrab and options.iou_weight > 0:
        _regrab(observation, mesh, explored[int(torch.argmax(explored_score))][None].detach().cpu())
        timings["regrab"] = time.perf_counter() - tick
    # Polish: the best distinct ones at the working resolution, blur annealed to 0.4 px so that
    # the silhouette's 0.5 level is the exact outline (no size bias on distance).
    explored_order = torch.argsort(explored_score.cpu(), descending=True).tolist()
    keep = distinct(explored_order, explored.cpu(), max(options.top_k, options.keep), min_gap=15.0)
    if twins:
        keep += twins_among(explored.cpu(), explored_order[0], keep)
    height, width = observation.size
    final_size = min(options.final_size, max(width, height))
    two_stage = final_size > options.work_size and options.final_iterations > 0
    refined, refined_score, refined_iou = _polish(
        objective_at(options.work_size), explored[keep], options, check, options.iterations, 0.6, (0.8, 0.4),
        (0.6, 0.85 if two_stage else 0.98), last=not two_stage, constraints=constraints)
    if two_stage:
        # Last look at (up to) the photo's own resolution for the finalists and the best one's
        # twins: a stool's back lip or a thin leg is a few pixels there and under one at the
        # working size, and that is what separates near-symmetric twins.
        order_cpu = torch.argsort(refined_score.cpu(), descending=True).tolist()
        finalists = distinct(order_cpu, refined.cpu(), max(options.top_k, 3), min_gap=15.0)
        if twins:
            finalists += twins_among(refined.cpu(), order_cpu[0], finalists)
        refined, refined_score, refined_iou = _polish(
            objective_at(final_size), refined[finalists], options, check, options.final_iterations, 0.3, (0.5, 0.3),
            (0.85, 0.98), last=True, constraints=constraints)
    timings["refine"] = time.perf_counter() - tick
    return refined.cpu(), refined_score.cpu(), refined_iou.cpu()


def _constraints(options: PoseOptions, observation: Optional[Observation] = None) -> Dict[str, Any]:
    """What the artist knows (and, estimating the focal length, the lenses searched), as
    :func:`refine`'s keyword arguments."""
    low, high = options.elevation_range
    constraints = {"elevation_bounds": (max(low, -89.0), min(high, 89.0)), "roll_free": not options.level_camera}
    if observation is not None and options.focal == "estimate":
        lenses = candidate_lenses(observation.search_cam or observation.cam, options)
        constraints["lens_bounds"] = (min(lenses), max(lenses))
    return constraints


class _ObjectiveFactory:
    """Builds the :class:`Objective` of an observation at any working size (the mask is read at
    each call, so a re-segmentation reaches the later stages)."""

    def __init__(self, observation: Observation, mesh: PreparedMesh, options: PoseOptions, device: torch.device):
        self.observation, self.mesh, self.options, self.device = observation, mesh, options, device

    def __call__(self, size: int) -> Objective:
        dtype, dev, options = torch.float32, self.device, self.options
        cam, gray, mask = self.observation.working(size)
        box = self.observation.box_at(cam)
        return Objective(self.mesh, cam, mask.to(dev, dtype), gray.to(dev, dtype),
                         hog_weight=options.refine_hog_weight, iou_weight=options.iou_weight,
                         box=None if box is None else torch.tensor(box, dtype=dtype, device=dev),
                         box_weight=options.box_weight if self.observation.mode == "box" else 0.0,
                         photo_rgb=self.observation.rgb_at(cam).to(dev, dtype),
                         color_weight=options.refine_color_weight, hog_variant=options.hog_variant,
                         gray=self.observation.gray)


def _regrab(observation: Observation, mesh: PreparedMesh, best: torch.Tensor) -> None:
    """Re-segment with the first estimate's render as GrabCut's seed: the box-initialised mask
    loses thin parts (legs) and takes in background between them."""
    guess_cam, _, _ = observation.working(240)
    guess = _render.render_silhouette(mesh.mesh, camera=camera_for(best, guess_cam), sharpness=0.3)[0]
    height, width = observation.size
    guess = resize(guess[None].float(), height, width)[0].numpy() > 0.5
    if guess.any():
        rgb = np.ascontiguousarray(observation.rgb.permute(1, 2, 0).numpy())
        object_mask = _masks.grabcut_from_mask(rgb, guess, observation.grab_region)
        observation.mask = torch.from_numpy(object_mask.astype(np.float32))[None]


def _polish(objective: Objective, candidates: torch.Tensor, options: PoseOptions, check: Callable[[float, str], None],
            iterations: int, learning_rate: float, sharpness: Tuple[float, float], progress: Tuple[float, float],
            last: bool, constraints: Dict[str, Any]) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Refine ``candidates (B, 6|7)`` with ``objective`` under ``constraints`` (:func:`_constraints`),
    then break near-ties between twins."""
    polished, score, iou = refine(candidates, objective, iterations=iterations,
                                  learning_rate=learning_rate * options.learning_rate,
                                  check=check, progress=progress, sharpness=sharpness, **constraints)
    # Near-symmetric objects (front/back, 3-fold legs) give their twins almost the same
    # silhouette IoU; the shading inside the outline (∇HOG cosine) and, among near-ties at
    # the last look, occlusion edges break such ties. One render serves both.
    judge_shading = options.refine_hog_weight == 0 and options.tie_hog_weight > 0 and polished.shape[0] > 1
    judge_occlusion = last and options.occlusion_weight > 0 and polished.shape[0] > 1
    if not (judge_shading or judge_occlusion):
        return polished, score, iou
    with torch.no_grad():
        silhouette, gray, depth = objective.render(polished, sharpness[1], with_depth=True)
        if judge_shading:
            score = score + options.tie_hog_weight * objective.hog_similarity(silhouette, gray)
        if judge_occlusion:
            evidence = occlusion_edge_evidence(silhouette, depth, gradient_magnitude(objective.photo_gray))
            # A tie-break, not a score: its size grows with the number of self-occluding parts.
            tied = score >= score.max() - options.occlusion_margin
            bonus = options.occlusion_weight * (evidence - evidence[tied].min())
            score = torch.where(tied, score + bonus, score)
    return polished, score, iou


def candidate_lenses(cam: Intrinsics, options: PoseOptions) -> List[float]:
    """Focal lengths (mm) whose fields of view along the sensor-fit side are ``options.fov_count``
    log-spaced values over ``options.fov_range`` (degrees), widest first."""
    low, high = options.fov_range
    count = options.fov_count
    fovs = [high] if count == 1 else [high * (low / high) ** (i / (count - 1)) for i in range(count)]
    return [lens_for_fov(cam, fov) for fov in fovs]


def lens_for_fov(cam: Intrinsics, fov_deg: float) -> float:
    """The focal length (mm) giving ``cam`` a field of view of ``fov_deg`` along its sensor-fit side."""
    sensor = cam.lens_mm * cam.fit_span_px / cam.focal_px  # mm spanned by the fitted side
    return 0.5 * sensor / math.tan(math.radians(fov_deg) / 2)


def lens_range_mm(observation: Observation, mesh: PreparedMesh, best: torch.Tensor, options: PoseOptions,
                  check: Callable[[float, str], None], device: Any = None) -> Tuple[float, float]:
    """The focal lengths (mm) the photo cannot tell from the estimate ``best (7,)``.

    The best pose is dolly-zoomed to log-spaced lenses over the searched fields of view and near
    the estimate (image size kept), each is refined with its lens fixed, and the lenses whose score is within
    ``options.lens_tolerance`` of the best of them span the range.
    """
    estimate = float(best[6])
    near = {estimate * 2.0 ** (step / 8.0) for step in range(-3, 4)}  # within 30 %, steps of 9 %
    lenses = sorted(set(candidate_lenses(observation.search_cam or observation.cam, dataclasses.replace(options, fov_count=13))) | near)
    starts = best[None].repeat(len(lenses), 1).clone()
    lens_t = torch.tensor(lenses, dtype=starts.dtype)
    starts[:, 2] = best[2] * lens_t / best[6]
    starts[:, 6] = lens_t
    dev = torch.device(device) if device is not None else torch.device("cpu")
    objective = _ObjectiveFactory(observation, mesh.to(dev), options, dev)(options.work_size)
    constraints = dict(_constraints(options, observation), lens_free=False)
    _, scores, _ = refine(starts.to(dev), objective, iterations=max(options.iterations // 2, 1),
                          learning_rate=0.6 * options.learning_rate, check=check, progress=(0.98, 0.99),
                          sharpness=(0.8, 0.4), **constraints)
    scores = scores.cpu()
    possible = lens_t[scores >= scores.max() - options.lens_tolerance]
    # The estimate itself was refined further (at the photo's resolution) than this sweep.
    return min(float(possible.min()), estimate), max(float(possible.max()), estimate)
