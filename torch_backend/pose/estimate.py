"""``estimate_pose``: camera pose from a photo of a known mesh, as the stages of this package.

1. **Cues** (:mod:`.prepare`): the object's mask from the photo's alpha or a mask image (mask
   mode); a box around the object (box mode); or the photo alone (photo mode: box mode on each
   automatic object box, GrabCut inside the frame at two insets, and the best estimate wins).
2. **Coarse grid** (:mod:`.views`, :mod:`.coarse`): views over azimuth x elevation, rendered once
   per mesh and lens, each aligned to the mask or box by a 2-D similarity and rolled in-plane,
   scored by the cues of :mod:`.cues`.
3. **Refinement** (:mod:`.refine`): the best distinct grid poses and their near-symmetric twins,
   refined by Adam through the soft rasterizer from coarse to fine; ``top_k`` distinct poses
   (>= 15 deg apart) are returned.

Internally the mesh is scaled by its bounding radius about the origin (so any unit works) and the
photo is resampled to working sizes; the reported distance is in the mesh's units and the shift
is resolution-independent.
"""
from __future__ import annotations

import dataclasses
import math
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from .. import masks as _masks
from ..intrinsics import Intrinsics
from .coarse import ROLL_SIGN, coarse_search
from .cues import box_iou, is_gray
from .options import PoseOptions
from .prepare import Observation, PreparedMesh, load_photo, prepare_mesh
from .refine import candidate_lenses, distinct, lens_range_mm, refine_poses, to_pose
from .types import CoarseViews, Pose, PoseResult, Progress
from .views import DEFAULT_CACHE, CoarseViewCache, ViewSet, views_from_user, views_within

__all__ = ["estimate_pose"]


def estimate_pose(
    photo,
    vertices,
    faces,
    camera_intrinsics,
    *,
    bbox: Optional[Sequence[float]] = None,
    mask=None,
    coarse_views: Optional[CoarseViews] = None,
    initial_pose: Union[Pose, Mapping[str, float], Sequence[float], None] = None,
    options: Optional[PoseOptions] = None,
    cache: Optional[CoarseViewCache] = None,
    device: Union[str, torch.device, None] = None,
    callback: Optional[Callable[[float, str], Optional[bool]]] = None,
    **overrides: Any,
) -> PoseResult:
    """Estimate the camera pose of a photo of a known mesh.

    Args:
        photo: ``(H, W, 3|4)`` NumPy float in ``[0, 1]`` or uint8, a ``(3|4, H, W)`` tensor, or an
            image path. A 4th channel (alpha) is used as the object mask unless ``use_alpha=False``.
        vertices: ``(V, 3)`` mesh vertices in scene units (any unit); faces: ``(F, 3)`` triangles.
        camera_intrinsics: ``camera.Intrinsics`` or a dict of its keywords (``lens_mm,
            sensor_width_mm, sensor_height_mm, sensor_fit, resolution`` = the photo's ``(W, H)``).
        bbox: ``(x0, y0, x1, y1)`` pixel box around the object (box mode).
        mask: ``(H, W)`` object mask, values as coverage (mask mode, overrides alpha).
        coarse_views: pre-rendered views (:class:`CoarseViews`), e.g. from Blender; default renders
            (and caches) them here.
        initial_pose: where to start instead of the global search (rough is enough): a
            :class:`Pose`, a mapping with ``azimuth, elevation`` (and ``roll``), or a sequence
            ``(azimuth, elevation[, distance, roll])`` in degrees. Only views within
            ``options.initial_reach`` degrees of it are searched, rolls around its roll, no twins.
        options: a :class:`PoseOptions` (default: its defaults).
        cache: where coarse views are cached (default: one process-wide :class:`CoarseViewCache`).
        device: torch device of the refinement (default: CPU).
        callback: ``callback(progress in [0, 1], message)``; returning ``False`` raises
            :class:`Cancelled`.
        overrides: any :class:`PoseOptions` field by name (``top_k=5``, ``seed=1``, ...), applied
            on top of ``options``.

    Returns:
        :class:`PoseResult`.

    Raises:
        ValueError: unreadable photo, empty mesh or no faces, bbox outside the photo, mask of
            another size or empty, non-finite or mismatched intrinsics, unknown option.
        Cancelled: the callback returned ``False``.
    """
    started = time.perf_counter()
    options = PoseOptions.from_mapping(overrides, base=options)
    progress = Progress(callback)
    rgb, alpha = load_photo(photo)
    cam = Intrinsics.coerce(camera_intrinsics)
    if (cam.width, cam.height) != (rgb.shape[1], rgb.shape[0]):
        raise ValueError(
            f"camera_intrinsics: resolution {cam.width}x{cam.height} differs from the photo's {rgb.shape[1]}x{rgb.shape[0]}"
        )
    tick = time.perf_counter()
    mesh = prepare_mesh(vertices, faces, options.max_faces)
    timings = {"prepare_mesh": time.perf_counter() - tick}
    object_mask, box, mode = _choose_cue(rgb, alpha, bbox, mask, options)
    progress(0.0, "reading inputs")
    find = dict(coarse_views=coarse_views, cache=cache, device=device, initial=_initial_view(initial_pose))
    if mode == "photo" and options.proposals:
        return _estimate_from_proposals(rgb, cam, mesh, options, progress, started, timings, **find)
    return _estimate_with_cue(rgb, cam, mesh, mode, object_mask, box, options, progress, started, timings, **find)


def _choose_cue(rgb: np.ndarray, alpha: Optional[np.ndarray], bbox, mask, options: PoseOptions
                ) -> Tuple[Optional[np.ndarray], Optional[Tuple[float, ...]], str]:
    """The cue to trust, in order: explicit mask, alpha, box, the photo alone."""
    size = rgb.shape[:2]
    box = _masks.validate_box(bbox, size) if bbox is not None else None
    if mask is not None:
        return _masks.as_mask(mask, size), box, "mask"
    if alpha is not None and options.use_alpha and _masks.alpha_mask(alpha) is not None:
        return _masks.alpha_mask(alpha), box, "mask"
    return None, box, "box" if box is not None else "photo"


def _estimate_with_cue(rgb: np.ndarray, cam: Intrinsics, mesh: PreparedMesh, mode: str, object_mask: Optional[np.ndarray],
                       box, options: PoseOptions, progress: Progress, started: float, timings: Dict[str, float],
                       **find: Any) -> PoseResult:
    """The estimate for a mask or a box, in the window of the photo around the object when the
    object is small in it: the working sizes then sample the object, not the whole frame (a 100-pixel
    object in a 640-pixel photo would be 20 pixels across at the 128-pixel working size)."""
    region = box if box is not None else _masks.mask_to_box(object_mask) if object_mask is not None else None
    window = object_window(region, rgb.shape[:2], options.crop_context) if mode != "photo" else None
    if window is None:
        return _estimate_in_frame(rgb, cam, mesh, mode, object_mask, box, options, progress, started, timings,
                                  search_cam=cam, **find)
    x0, y0, x1, y1 = window
    crop = cam.cropped(x0, y0, x1, y1)
    result = _estimate_in_frame(
        np.ascontiguousarray(rgb[y0:y1, x0:x1]), crop, mesh, mode,
        object_mask[y0:y1, x0:x1] if object_mask is not None else None,
        (box[0] - x0, box[1] - y0, box[2] - x0, box[3] - y0) if box is not None else None,
        options, progress, started, timings, search_cam=cam, **find)
    return _in_full_frame(result, crop, cam, window)


def object_window(region: Optional[Sequence[float]], size: Tuple[int, int], context: float
                  ) -> Optional[Tuple[int, int, int, int]]:
    """The ``(x0, y0, x1, y1)`` window (whole pixels) of a photo of ``size = (H, W)`` around the
    object's ``region`` box: a square of ``context`` times its longer side, centred on it and moved
    (then clipped) to stay inside the photo. None when it would cover most of the photo anyway
    (over half of it), or ``context`` is 0."""
    if region is None or context <= 0:
        return None
    height, width = size
    x0, y0, x1, y1 = (float(v) for v in region)
    side = context * max(x1 - x0, y1 - y0)
    window_w, window_h = min(width, math.ceil(side)), min(height, math.ceil(side))
    if window_w * window_h > 0.5 * width * height:
        return None
    left = int(round(min(max(0.5 * (x0 + x1) - 0.5 * window_w, 0.0), width - window_w)))
    top = int(round(min(max(0.5 * (y0 + y1) - 0.5 * window_h, 0.0), height - window_h)))
    return left, top, left + window_w, top + window_h


def _in_full_frame(result: PoseResult, crop: Intrinsics, cam: Intrinsics, window: Tuple[int, int, int, int]) -> PoseResult:
    """``result`` found in the window seen by ``crop``, with its lens shifts for the whole photo (``cam``)."""
    def moved(pose: Pose) -> Pose:
        cx, cy = crop.with_shift(pose.shift_x, pose.shift_y).principal_point
        full = cam.with_principal_point(cx + window[0], cy + window[1])
        return dataclasses.replace(pose, shift_x=float(full.shift_x), shift_y=float(full.shift_y))

    candidates = [(moved(pose), score) for pose, score in result.candidates]
    return dataclasses.replace(result, pose=candidates[0][0], candidates=candidates, coarse_pose=moved(result.coarse_pose))


def _estimate_in_frame(rgb: np.ndarray, cam: Intrinsics, mesh: PreparedMesh, mode: str, object_mask: Optional[np.ndarray],
                       box, options: PoseOptions, progress: Progress, started: float, timings: Dict[str, float], *,
                       coarse_views: Optional[CoarseViews], cache: Optional[CoarseViewCache], device,
                       initial: Optional[Tuple[float, float, float]], search_cam: Intrinsics) -> PoseResult:
    """Coarse grid, then refinement, for a mask, a box, or (``proposals=False``) GrabCut's mask of the
    frame; ``timings`` (seconds per stage so far) is extended. ``search_cam``: the whole photo's
    camera, whose field of view the focal-length search spans."""
    timings = dict(timings)
    tick = time.perf_counter()
    height, width = rgb.shape[:2]
    grab_region = box
    if mode == "box":
        object_mask = _masks.grabcut_from_box(rgb, box)
    elif mode == "photo":
        inset = 0.03
        grab_region = (width * inset, height * inset, width * (1 - inset), height * (1 - inset))
        object_mask = _masks.grabcut_from_box(rgb, grab_region)
    timings["cues"] = time.perf_counter() - tick
    options = options.for_mode(mode)
    rgb_t = torch.from_numpy(rgb).permute(2, 0, 1)
    observation = Observation(rgb_t, cam, mode, torch.from_numpy(object_mask.astype(np.float32))[None], box,
                              grab_region, gray=is_gray(rgb_t), search_cam=search_cam)
    if float(observation.working(options.work_size)[2].sum()) < 1.0:
        raise ValueError("mask: the object covers less than one pixel at the working resolution")

    scores, params, views, rolls = _coarse_stage(observation, mesh, options, progress, timings, coarse_views, cache,
                                                 initial)
    order = torch.argsort(scores, descending=True).tolist()
    coarse_pose, coarse_score = to_pose(params[order[0]], mesh.radius), float(scores[order[0]])

    if options.refine:
        params, scores, ious = refine_poses(observation, mesh, views, scores, params, len(rolls), options,
                                            progress, timings, device, twins=initial is None)
        order = torch.argsort(scores, descending=True).tolist()
    chosen = distinct(order, params, max(options.top_k, 2), min_gap=15.0)
    margin = float(scores[chosen[0]] - scores[chosen[1]]) if len(chosen) > 1 else float("nan")
    candidates = [(to_pose(params[i], mesh.radius), float(scores[i])) for i in chosen[:options.top_k]]
    lens_range = None
    if options.focal == "estimate" and options.refine:
        tick = time.perf_counter()
        lens_range = lens_range_mm(observation, mesh, params[chosen[0]], options, progress, device)
        timings["lens_range"] = time.perf_counter() - tick
    progress(1.0, "done")
    return PoseResult(pose=candidates[0][0], score=candidates[0][1], candidates=candidates,
                      seconds=time.perf_counter() - started, mode=mode, coarse_pose=coarse_pose,
                      coarse_score=coarse_score, iou=float(ious[chosen[0]]) if options.refine else float("nan"),
                      timings=timings, margin=margin, lens_mm=candidates[0][0].lens_mm or float(cam.lens_mm),
                      lens_source="estimated" if options.focal == "estimate" else "given", lens_range_mm=lens_range)


def _coarse_stage(observation: Observation, mesh: PreparedMesh, options: PoseOptions, progress: Progress,
                  timings: Dict[str, float], coarse_views: Optional[CoarseViews], cache: Optional[CoarseViewCache],
                  initial: Optional[Tuple[float, float, float]]
                  ) -> Tuple[torch.Tensor, torch.Tensor, ViewSet, Tuple[float, ...]]:
    """Score the view grid (for each candidate lens when the focal length is estimated): returns
    ``scores (M,)``, ``params (M, 6|7)`` (7th column: lens, mm), the views and the rolls, where
    ``M`` is (lenses x) views x rolls, lens-major."""
    tick = time.perf_counter()
    progress(0.02, "coarse views")
    cache = cache if cache is not None else DEFAULT_CACHE
    lenses = candidate_lenses(observation.search_cam or observation.cam, options) if options.focal == "estimate" else [None]
    rolls = _search_rolls(options, initial[2] if initial else 0.0)
    weights = {"iou": options.iou_weight, "hog": options.hog_weight, "box": options.box_weight, "color": options.color_weight}
    all_scores, all_params = [], []
    work_cam, photo_gray, mask_t = observation.working(options.work_size)
    for number, lens in enumerate(lenses):
        cam = observation.cam if lens is None else observation.cam.replace(lens_mm=lens)
        if coarse_views is not None and lens is None:
            views = views_from_user(coarse_views, mesh)
        else:
            views = cache.get(mesh, cam, options.azimuth_step, options.elevations)
        views = views_within(views, options.elevation_range, initial[:2] if initial else None, options.initial_reach)
        timings["coarse_views"] = timings.get("coarse_views", 0.0) + time.perf_counter() - tick
        tick = time.perf_counter()
        lens_cam = work_cam.replace(lens_mm=cam.lens_mm)
        part = progress.part(number / len(lenses), (number + 1) / len(lenses)) if lens is not None else progress
        scores, params = coarse_search(views, photo_gray, mask_t, lens_cam, rolls, weights, part,
                                       box=observation.box_at(lens_cam), photo_rgb=observation.rgb_at(lens_cam),
                                       hog_variant=options.hog_variant, gray=observation.gray)
        if lens is not None:
            params = torch.cat([params, torch.full_like(params[:, :1], float(lens))], 1)
        all_scores.append(scores)
        all_params.append(params)
        timings["coarse_search"] = timings.get("coarse_search", 0.0) + time.perf_counter() - tick
        tick = time.perf_counter()
    return torch.cat(all_scores), torch.cat(all_params), views, rolls


def _initial_view(initial_pose) -> Optional[Tuple[float, float, float]]:
    """``(azimuth, elevation, roll)`` degrees of a user's initial pose, or None."""
    if initial_pose is None:
        return None
    if isinstance(initial_pose, Pose):
        values = (initial_pose.azimuth, initial_pose.elevation, initial_pose.roll)
    elif isinstance(initial_pose, Mapping):
        values = (initial_pose.get("azimuth"), initial_pose.get("elevation"), initial_pose.get("roll", 0.0))
    else:
        sequence = list(initial_pose)
        if len(sequence) not in (2, 3, 4):
            raise ValueError(f"initial_pose: expected (azimuth, elevation[, distance, roll]), got {initial_pose!r}")
        values = (sequence[0], sequence[1], sequence[3] if len(sequence) == 4 else 0.0)
    try:
        azimuth, elevation, roll = (float(v) for v in values)
    except (TypeError, ValueError):
        raise ValueError(f"initial_pose: azimuth, elevation and roll must be numbers, got {values}") from None
    if not all(math.isfinite(v) for v in (azimuth, elevation, roll)) or abs(elevation) > 90:
        raise ValueError(f"initial_pose: expected finite angles with |elevation| <= 90, got {values}")
    return azimuth, elevation, roll


def _search_rolls(options: PoseOptions, initial_roll: float) -> Tuple[float, ...]:
    """In-plane rotations of the coarse search: none for a level camera, else centred on the
    initial roll (the grid's views have roll 0; :data:`ROLL_SIGN` maps image rotation to roll)."""
    if options.level_camera:
        return (0.0,)
    if initial_roll == 0.0:
        return options.rolls
    return tuple(r + initial_roll / ROLL_SIGN for r in options.rolls)


def photo_proposals(rgb: np.ndarray, insets: Sequence[float] = (0.03, 0.10)) -> List[Tuple[float, float, float, float]]:
    """Object boxes for photo-only mode from an ``(H, W, 3)`` photo: the box of GrabCut's object
    inside the photo's frame inset by each of ``insets`` (fractions of the size; a small inset keeps
    objects that reach near the border, a larger one gives GrabCut more background to model), and
    the box of its piece nearest the centre (:func:`~torch_backend.masks.central_component`: in
    clutter, GrabCut keeps bits of background that blow up the whole mask's box); near-duplicates
    are dropped. Boxes are ``(x0, y0, x1, y1)`` pixels."""
    height, width = rgb.shape[:2]
    proposals = []
    for inset in insets:
        frame = (width * inset, height * inset, width * (1 - inset), height * (1 - inset))
        mask = _masks.grabcut_from_box(rgb, frame)
        proposals.append(_masks.mask_to_box(mask))
        proposals.append(_masks.mask_to_box(_masks.central_component(mask)))
    boxes: List[Tuple[float, float, float, float]] = []
    for proposal in proposals:
        if all(float(box_iou(torch.tensor([proposal]), torch.tensor([other]))) < 0.85 for other in boxes):
            boxes.append(proposal)
    return boxes


def _estimate_from_proposals(rgb: np.ndarray, cam: Intrinsics, mesh: PreparedMesh, options: PoseOptions,
                             progress: Progress, started: float, timings: Dict[str, float], **find: Any) -> PoseResult:
    """Photo-only mode: box mode on each automatic object box (:func:`photo_proposals`); the
    estimate with the best objective wins and the candidates of all are pooled."""
    tick = time.perf_counter()
    boxes = [_masks.validate_box(proposal, rgb.shape[:2]) for proposal in photo_proposals(rgb)]
    cues_seconds = time.perf_counter() - tick
    if len(boxes) > options.proposals_refined:
        # Refine only the object boxes whose coarse grid fits best (each refinement costs seconds).
        coarse = dataclasses.replace(options, refine=False)
        looks = [_estimate_with_cue(rgb, cam, mesh, "box", None, box, coarse, progress.part(0.0, 0.1), started, {},
                                    **find).coarse_score for box in boxes]
        order = sorted(range(len(boxes)), key=lambda index: -looks[index])
        boxes = [boxes[index] for index in sorted(order[:options.proposals_refined])]
        progress = progress.part(0.1, 1.0)
    results: List[PoseResult] = []
    for number, proposal in enumerate(boxes):
        part = progress.part(number / len(boxes), (number + 1) / len(boxes),
                             f" (object guess {number + 1}/{len(boxes)})")
        part(0.0, "reading inputs")
        results.append(_estimate_with_cue(rgb, cam, mesh, "box", None, proposal, options, part, started, {}, **find))
    best = max(results, key=lambda result: result.score)
    pooled = sorted((pair for result in results for pair in result.candidates), key=lambda pair: -pair[1])
    directions = torch.tensor([[p.azimuth, p.elevation] for p, _ in pooled], dtype=torch.float64)
    chosen = distinct(range(len(pooled)), directions, max(options.top_k, 2), min_gap=15.0)
    candidates = [pooled[i] for i in chosen[:options.top_k]]
    margin = candidates[0][1] - pooled[chosen[1]][1] if len(chosen) > 1 else float("nan")
    timings = dict(timings, cues=cues_seconds)
    for result in results:
        for key, value in result.timings.items():
            timings[key] = timings.get(key, 0.0) + value
    return dataclasses.replace(best, mode="photo", candidates=candidates, pose=candidates[0][0], score=candidates[0][1],
                               seconds=time.perf_counter() - started, timings=timings, margin=margin)
