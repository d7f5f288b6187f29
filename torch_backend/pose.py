"""Camera pose from a photo of a known mesh: coarse viewpoint grid, then ∇HOG / silhouette refinement.

``estimate_pose(photo, vertices, faces, intrinsics)`` returns the Blender-style camera pose
(azimuth, elevation, distance, roll, lens shift; see :mod:`torch_backend.camera`) under which the
mesh looks like the object in the photo.

Pipeline (Chiu & Fritz, BMVC 2015, Sec. 4.2, extended to the exact-CAD setting):

1. **Cues.** The object's mask comes from the photo's alpha or a mask image (mask mode). With a
   box (box mode) every candidate view is fitted into the box. With the photo alone (photo mode)
   box mode runs on each automatic object box (GrabCut inside the photo's frame, two insets) and
   the best estimate wins. Without a mask, the outline of a candidate is judged by how well the
   photo's colours predict it (mutual information of the object/background label and the colour,
   re-estimated per candidate as in PWP3D-style region methods), which needs no segmentation of
   the photo: GrabCut masks lose thin legs and take in clutter.
2. **Coarse grid.** Views of the mesh over azimuth x elevation (-10..85 deg) are rendered once per
   mesh and lens (cached; Blender may supply them, see :func:`coarse_view_poses`). Each view is
   aligned to the mask (centroid, radius of gyration) or box by a 2-D similarity and rotated
   in-plane for the roll; candidates are scored by silhouette IoU (mask), or by the box fit, the
   colour term and HOG similarity inside the object region (box, photo).
3. **Refinement.** The best distinct candidates plus their 180 deg (front/back), mirrored
   (left/right) and, for the best, 3- and 4-fold turned twins are refined jointly by Adam through
   the soft rasterizer (:mod:`torch_backend.render`): first all starts for a few steps at low
   resolution, then the best distinct ones (and the best one's twins) at the working resolution
   with the blur annealed to 0.4 px (the soft silhouette's 0.5 level is then the exact outline, so
   distance is not biased), then the finalists for a few steps at (up to) the photo's resolution,
   where a stool's back lip or a thin leg is more than a pixel. Objective: soft silhouette IoU
   with the mask; without a mask, the colour term over the box's surroundings, unsigned ∇HOG
   cosine inside the render's own region (a bigger render gains nothing by covering clutter) and
   the box IoU of the projected mesh. The best iterate of each start is kept; with a mask,
   near-ties between twins are broken by the ∇HOG cosine; ``top_k`` distinct poses (>= 15 deg
   apart) are returned.

Internally the mesh is scaled by its bounding radius about the origin (so any unit works) and the
photo is resampled to a working size (longest side ``work_size`` pixels, 128 by default); the
reported distance is in the mesh's units and the shift is resolution-independent.
"""
from __future__ import annotations

import collections
import dataclasses
import hashlib
import math
import os
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

from . import masks as _masks
from .images import rgb_to_gray

__all__ = [
    "Pose",
    "PoseResult",
    "CoarseViews",
    "CoarseViewCache",
    "Cancelled",
    "estimate_pose",
    "coarse_view_poses",
    "coarse_view_intrinsics",
    "render_coarse_views",
    "DEFAULT_ELEVATIONS",
]

#: Elevations (degrees) of the coarse grid: table-top photos look down steeply, so the grid
#: reaches 85 deg; below -10 deg is rare for photos of objects standing on the ground.
DEFAULT_ELEVATIONS: Tuple[float, ...] = (-10.0, 0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 62.0, 74.0, 85.0)
DEFAULT_AZIMUTH_STEP = 10.0
DEFAULT_ROLLS: Tuple[float, ...] = (-40.0, -30.0, -20.0, -10.0, 0.0, 10.0, 20.0, 30.0, 40.0)
#: Side (pixels) of the square coarse renders.
COARSE_VIEW_SIZE = 96
#: Fraction of the coarse view's side covered by the mesh's bounding sphere.
_COARSE_FILL = 0.8


class Cancelled(Exception):
    """Raised by :func:`estimate_pose` when the progress callback returns ``False``."""


@dataclasses.dataclass(frozen=True)
class Pose:
    """A camera pose in the convention of :mod:`torch_backend.camera`.

    Attributes:
        azimuth, elevation, roll: degrees. The camera sits at
            ``distance * (cos el sin az, -cos el cos az, sin el)``, looks at the mesh origin with +Z
            up, and is rolled about its viewing direction.
        distance: camera centre to mesh origin, in the mesh's units.
        shift_x, shift_y: Blender lens shift (fractions of the larger sensor side).
    """

    azimuth: float
    elevation: float
    distance: float
    roll: float = 0.0
    shift_x: float = 0.0
    shift_y: float = 0.0

    def as_dict(self) -> Dict[str, float]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class PoseResult:
    """What :func:`estimate_pose` found.

    Attributes:
        pose: the best pose.
        score: its objective value (higher is better; silhouette IoU and HOG cosine in [0, 1]).
        candidates: the ``top_k`` best distinct poses with their scores, best first (``pose`` first).
        seconds: wall-clock time of the call.
        mode: which cue drove it: ``"mask"`` (alpha or mask given), ``"box"`` or ``"photo"``.
        coarse_pose, coarse_score: the best grid pose before refinement.
        iou: silhouette IoU of ``pose`` with the object mask used (given or derived), at working size.
        timings: seconds per stage.
    """

    pose: Pose
    score: float
    candidates: List[Tuple[Pose, float]]
    seconds: float
    mode: str
    coarse_pose: Pose
    coarse_score: float
    iou: float = float("nan")
    timings: Dict[str, float] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class CoarseViews:
    """Pre-rendered views of a mesh (e.g. by Blender's Workbench) for the coarse stage.

    Attributes:
        images: ``(N, h, w)`` gray renders in ``[0, 1]`` (shading only, background 0 is fine).
        silhouettes: ``(N, h, w)`` object coverage in ``[0, 1]``.
        poses: ``N`` :class:`Pose` (roll and shift must be 0) or an ``(N, 4)`` array of
            azimuth, elevation, distance, roll.
        intrinsics: the camera the views were rendered with (a ``camera.Intrinsics`` or dict with
            ``lens_mm, sensor_width_mm, sensor_height_mm, sensor_fit, resolution``); see
            :func:`coarse_view_intrinsics`.
    """

    images: Any
    silhouettes: Any
    poses: Any
    intrinsics: Any


# --------------------------------------------------------------------------------------------
# Intrinsics
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Cam:
    """Resolved pinhole camera at some pixel size: focal and principal point in pixels."""

    lens_mm: float
    sensor_width_mm: float
    sensor_height_mm: float
    sensor_fit: str
    shift_x: float
    shift_y: float
    width: int
    height: int

    def intrinsics(self) -> "Intrinsics":
        """The same camera as :class:`torch_backend.camera.Intrinsics` (which owns the pixel maths)."""
        from .camera import Intrinsics

        return Intrinsics(self.lens_mm, self.sensor_width_mm, self.sensor_height_mm, self.sensor_fit,
                          self.shift_x, self.shift_y, (self.width, self.height))

    @property
    def fit_pixels(self) -> float:
        """Pixels spanned by the fitted sensor size (Blender's sensor fit; also the lens-shift unit)."""
        return float(self.intrinsics().fit_span_px)

    @property
    def focal_pixels(self) -> float:
        return float(self.intrinsics().tensors(torch.float64)["focal_px"])

    @property
    def principal_point(self) -> Tuple[float, float]:
        """Where the optical axis (and so the mesh origin) lands, in continuous pixel coordinates."""
        centre = self.intrinsics().tensors(torch.float64)
        return float(centre["cx"]), float(centre["cy"])

    def scaled(self, width: int, height: int) -> "_Cam":
        return dataclasses.replace(self, width=int(width), height=int(height))

    def with_shift(self, shift_x: float, shift_y: float) -> "_Cam":
        return dataclasses.replace(self, shift_x=float(shift_x), shift_y=float(shift_y))

    def as_dict(self) -> Dict[str, Any]:
        return {
            "lens_mm": self.lens_mm,
            "sensor_width_mm": self.sensor_width_mm,
            "sensor_height_mm": self.sensor_height_mm,
            "sensor_fit": self.sensor_fit,
            "shift_x": self.shift_x,
            "shift_y": self.shift_y,
            "resolution": (self.width, self.height),
        }


def _get(source: Any, names: Sequence[str], default: Any = None) -> Any:
    for name in names:
        if isinstance(source, dict) and name in source:
            return source[name]
        if not isinstance(source, dict) and hasattr(source, name):
            return getattr(source, name)
    return default


def _resolve_intrinsics(intrinsics: Any, *, name: str = "camera_intrinsics") -> _Cam:
    """Accept a ``camera.Intrinsics`` (duck-typed) or a dict with the same keywords."""
    if intrinsics is None:
        raise ValueError(f"{name}: required (lens_mm, sensor_width_mm, ..., resolution)")
    lens = _get(intrinsics, ("lens_mm", "lens"), 50.0)
    sensor_w = _get(intrinsics, ("sensor_width_mm", "sensor_width"), 36.0)
    sensor_h = _get(intrinsics, ("sensor_height_mm", "sensor_height"), 24.0)
    fit = str(_get(intrinsics, ("sensor_fit",), "AUTO")).upper()
    shift = _get(intrinsics, ("shift",), None)
    if shift is not None:
        shift_x, shift_y = shift
    else:
        shift_x = _get(intrinsics, ("shift_x",), 0.0)
        shift_y = _get(intrinsics, ("shift_y",), 0.0)
    resolution = _get(intrinsics, ("resolution",), None)
    if resolution is None:
        width, height = _get(intrinsics, ("width", "resolution_x")), _get(intrinsics, ("height", "resolution_y"))
    else:
        width, height = resolution
    if fit not in ("AUTO", "HORIZONTAL", "VERTICAL"):
        raise ValueError(f"{name}: sensor_fit must be AUTO, HORIZONTAL or VERTICAL, got {fit!r}")
    try:
        values = [float(v) for v in (lens, sensor_w, sensor_h, shift_x, shift_y)]
    except (TypeError, ValueError):
        raise ValueError(f"{name}: lens, sensor and shift must be numbers") from None
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"{name}: non-finite value in lens/sensor/shift {values}")
    if values[0] <= 0 or values[1] <= 0 or values[2] <= 0:
        raise ValueError(f"{name}: lens_mm and sensor sizes must be positive, got {values[:3]}")
    if width is None or height is None:
        raise ValueError(f"{name}: resolution (width, height) is required")
    if not (float(width) > 0 and float(height) > 0 and math.isfinite(float(width)) and math.isfinite(float(height))):
        raise ValueError(f"{name}: resolution must be positive and finite, got {(width, height)}")
    return _Cam(values[0], values[1], values[2], fit, values[3], values[4], int(round(float(width))), int(round(float(height))))


# --------------------------------------------------------------------------------------------
# Geometry: camera convention of torch_backend.camera
# --------------------------------------------------------------------------------------------


def _project(points: torch.Tensor, params: torch.Tensor, cam: _Cam) -> Tuple[torch.Tensor, torch.Tensor]:
    """Project ``(N, 3)`` points for ``(B, 6)`` poses (az, el, dist, roll deg; shift_x, shift_y) with
    :mod:`torch_backend.camera` (THE convention). Returns ``(B, N, 2)`` pixels and ``(B, N)`` depths."""
    from .camera import project_camera_points, transform_points, world_to_camera

    view = world_to_camera(params[:, 0], params[:, 1], params[:, 2], params[:, 3])
    points_cam = transform_points(points.to(params.dtype), view)
    intrinsics = cam.intrinsics().replace(shift_x=params[:, 4], shift_y=params[:, 5])
    return project_camera_points(points_cam, intrinsics)


# --------------------------------------------------------------------------------------------
# Mesh handling
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class _Mesh:
    vertices: torch.Tensor  # (V, 3) float32, scaled to unit bounding radius about the origin
    faces: torch.Tensor  # (F, 3) int64
    radius: float  # scene units per normalised unit
    key: str


def _prepare_mesh(vertices, faces, max_faces: int = 2000) -> _Mesh:
    """Validate, simplify to ``max_faces`` (vertex clustering, :mod:`torch_backend.simplify`: the
    silhouette and the HOG of a 128-pixel render do not need more) and scale to unit radius."""
    verts = torch.as_tensor(np.asarray(vertices.detach().cpu() if isinstance(vertices, torch.Tensor) else vertices, dtype=np.float64))
    tris = torch.as_tensor(np.asarray(faces.detach().cpu() if isinstance(faces, torch.Tensor) else faces))
    if verts.ndim != 2 or verts.shape[-1] != 3:
        raise ValueError(f"vertices: expected shape (V, 3), got {tuple(verts.shape)}")
    if verts.shape[0] == 0:
        raise ValueError("vertices: the mesh is empty (0 vertices)")
    if not torch.isfinite(verts).all():
        raise ValueError("vertices: contain NaN or inf")
    if tris.numel() == 0:
        raise ValueError("faces: the mesh has no faces")
    if tris.ndim != 2 or tris.shape[-1] != 3:
        raise ValueError(f"faces: expected triangles of shape (F, 3), got {tuple(tris.shape)}")
    if tris.dtype.is_floating_point:
        if not torch.equal(tris, tris.round()):
            raise ValueError("faces: indices must be integers")
    tris = tris.to(torch.int64)
    if int(tris.min()) < 0 or int(tris.max()) >= verts.shape[0]:
        raise ValueError(f"faces: indices must lie in [0, {verts.shape[0] - 1}]")
    radius = float(verts.norm(dim=-1).max())
    if not radius > 0:
        raise ValueError("vertices: all vertices sit at the origin; the mesh has no extent")
    digest = hashlib.sha1()
    digest.update(np.ascontiguousarray(verts.numpy()).tobytes())
    digest.update(np.ascontiguousarray(tris.numpy()).tobytes())
    digest.update(str(int(max_faces)).encode())
    key = digest.hexdigest()
    if key in _PREPARED_MESHES:  # a batch of photos of one mesh simplifies it once
        _PREPARED_MESHES.move_to_end(key)
        return _PREPARED_MESHES[key]
    if tris.shape[0] > max_faces:
        from .simplify import simplify_to_budget

        simplified = simplify_to_budget(verts.numpy(), tris.numpy(), int(max_faces))
        verts = torch.as_tensor(simplified.vertices, dtype=torch.float64)
        tris = torch.as_tensor(simplified.faces, dtype=torch.int64)
    prepared = _Mesh((verts / radius).to(torch.float32), tris, radius, key)
    _PREPARED_MESHES[key] = prepared
    while len(_PREPARED_MESHES) > 4:
        _PREPARED_MESHES.popitem(last=False)
    return prepared


#: Prepared (validated, simplified, scaled) meshes by content hash, most recent last.
_PREPARED_MESHES: "collections.OrderedDict[str, _Mesh]" = collections.OrderedDict()


# --------------------------------------------------------------------------------------------
# Coarse views: which poses, rendering, caching
# --------------------------------------------------------------------------------------------


def _coarse_camera(cam: _Cam, size: int = COARSE_VIEW_SIZE) -> _Cam:
    """Square camera with (about) the photo's angular field of view along its fit axis, no shift.

    The focal/side ratio is rounded to powers of sqrt(2) so that photos taken with similar lenses
    share one cached grid; the coarse stage only needs the perspective roughly right (the grid pose
    is refined with the photo's exact camera).
    """
    fov_scale = cam.focal_pixels / cam.fit_pixels  # focal / fit side: same angles at any size
    fov_scale = 2.0 ** (round(2.0 * math.log2(fov_scale)) / 2.0)
    # A square sensor whose side gives the same focal/side ratio (lens kept for readability).
    sensor = cam.lens_mm / fov_scale
    return _Cam(cam.lens_mm, sensor, sensor, "AUTO", 0.0, 0.0, size, size)


def _coarse_distance(cam: _Cam) -> float:
    """Distance (mesh radii) at which the bounding sphere fills ``_COARSE_FILL`` of a coarse view."""
    tan_half = _COARSE_FILL * 0.5 * cam.fit_pixels / cam.focal_pixels
    return 1.0 / math.sin(math.atan(tan_half))


def coarse_view_intrinsics(camera_intrinsics: Any, size: int = COARSE_VIEW_SIZE) -> Dict[str, Any]:
    """Intrinsics to render the coarse views with: square ``size`` x ``size``, the photo's field of
    view along its sensor-fit axis, no shift. Returns a dict (``lens_mm, sensor_width_mm,
    sensor_height_mm, sensor_fit, shift_x, shift_y, resolution``)."""
    return _coarse_camera(_resolve_intrinsics(camera_intrinsics), size).as_dict()


def coarse_view_poses(
    vertices,
    camera_intrinsics: Any,
    *,
    azimuth_step: float = DEFAULT_AZIMUTH_STEP,
    elevations: Sequence[float] = DEFAULT_ELEVATIONS,
) -> List[Pose]:
    """The grid of views the coarse stage wants, e.g. for Blender to pre-render.

    Args:
        vertices: ``(V, 3)`` mesh vertices (scene units); only their bounding radius is used.
        camera_intrinsics: the photo's camera (only its field of view matters).
        azimuth_step: degrees between azimuths (0 .. 360).
        elevations: degrees.

    Returns:
        ``len(elevations) * 360 / azimuth_step`` poses (roll 0, shift 0) at the distance where the
        bounding sphere fills 80 % of a view rendered with :func:`coarse_view_intrinsics`.
    """
    verts = np.asarray(vertices, dtype=np.float64)
    if verts.ndim != 2 or verts.shape[-1] != 3 or verts.shape[0] == 0:
        raise ValueError(f"vertices: expected a non-empty (V, 3) array, got shape {verts.shape}")
    radius = float(np.linalg.norm(verts, axis=-1).max())
    if not (radius > 0 and math.isfinite(radius)):
        raise ValueError("vertices: no finite extent about the origin")
    coarse = _coarse_camera(_resolve_intrinsics(camera_intrinsics))
    distance = _coarse_distance(coarse) * radius
    count = int(round(360.0 / azimuth_step))
    return [
        Pose(float(a * azimuth_step), float(e), distance, 0.0, 0.0, 0.0)
        for e in elevations
        for a in range(count)
    ]


def render_coarse_views(
    vertices, faces, poses: Sequence[Pose], intrinsics: Any
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Hard (non-differentiable) gray + silhouette renders for the coarse grid.

    A painter's-algorithm polygon fill (Pillow): faces are drawn far to near, shaded by a
    head light plus a top light, so creases show as edges for HOG. Used when no Blender renders are
    supplied; the renders only seed the refinement, which uses the differentiable renderer.

    Args:
        vertices: ``(V, 3)``; faces: ``(F, 3)``; poses: N poses (scene units);
        intrinsics: camera of the views (see :func:`coarse_view_intrinsics`).

    Returns:
        ``images (N, h, w)`` gray in ``[0, 1]`` and ``silhouettes (N, h, w)`` in ``{0, 1}``, float32.
    """
    from PIL import Image, ImageDraw

    cam = _resolve_intrinsics(intrinsics, name="intrinsics")
    verts = torch.as_tensor(np.asarray(vertices, dtype=np.float64))
    tris = torch.as_tensor(np.asarray(faces, dtype=np.int64))
    params = torch.tensor(
        [[p.azimuth, p.elevation, p.distance, p.roll, p.shift_x, p.shift_y] for p in poses], dtype=torch.float64
    )
    pixels, depth = _project(verts, params, cam)
    deg = math.pi / 180.0
    # Camera positions for shading: normals facing the camera are bright, plus light from above.
    az, el = params[:, 0] * deg, params[:, 1] * deg
    view_dir = torch.stack([torch.cos(el) * torch.sin(az), -torch.cos(el) * torch.cos(az), torch.sin(el)], -1)
    tri_verts = verts[tris]  # (F, 3, 3)
    normals = torch.cross(tri_verts[:, 1] - tri_verts[:, 0], tri_verts[:, 2] - tri_verts[:, 0], dim=-1)
    normals = normals / normals.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    head = (normals[None] * view_dir[:, None]).sum(-1).abs()  # (N, F)
    top = normals[:, 2].clamp_min(0)[None].expand_as(head)
    shade = (0.25 + 0.55 * head + 0.2 * top).clamp(0.25, 1)
    face_depth = depth[:, tris].mean(-1)  # (N, F)
    images = np.zeros((len(poses), cam.height, cam.width), np.float32)
    silhouettes = np.zeros_like(images)
    pixels_np = pixels.numpy()
    order = torch.argsort(face_depth, dim=1, descending=True).numpy()
    shade_np = (shade.numpy() * 255).astype(np.uint8)
    tris_np = tris.numpy()
    for index in range(len(poses)):
        gray = Image.new("L", (cam.width, cam.height), 0)
        draw = ImageDraw.Draw(gray)
        coords = pixels_np[index]
        for face in order[index]:
            a, b, c = tris_np[face]
            draw.polygon(
                [tuple(coords[a]), tuple(coords[b]), tuple(coords[c])], fill=int(shade_np[index, face])
            )
        values = np.asarray(gray, np.float32)
        images[index] = values / 255.0
        silhouettes[index] = values > 0  # every face is drawn with a shade >= 0.25
    return torch.from_numpy(images), torch.from_numpy(silhouettes)


@dataclasses.dataclass
class _ViewSet:
    """Coarse views in a form ready for scoring (all float32, CPU)."""

    images: torch.Tensor  # (N, h, w)
    silhouettes: torch.Tensor  # (N, h, w)
    params: torch.Tensor  # (N, 4) az, el, dist (normalised mesh units), roll
    cam: _Cam
    centroids: torch.Tensor  # (N, 2) pixels
    radii: torch.Tensor  # (N,) radius of gyration, pixels
    outlines: Optional[torch.Tensor] = None  # (N, P, 2) outline points, filled lazily


def _moments(weights: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
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


def _view_set(images, silhouettes, params: torch.Tensor, cam: _Cam) -> _ViewSet:
    images = torch.as_tensor(np.asarray(images, dtype=np.float32))
    silhouettes = torch.as_tensor(np.asarray(silhouettes, dtype=np.float32))
    if images.ndim == 4 and images.shape[1] == 1:
        images = images[:, 0]
    if silhouettes.ndim == 4 and silhouettes.shape[1] == 1:
        silhouettes = silhouettes[:, 0]
    if images.ndim != 3 or silhouettes.shape != images.shape:
        raise ValueError(
            f"coarse_views: images {tuple(images.shape)} and silhouettes {tuple(silhouettes.shape)} must both be (N, h, w)"
        )
    if params.shape[0] != images.shape[0]:
        raise ValueError(f"coarse_views: {images.shape[0]} images but {params.shape[0]} poses")
    if (images.shape[2], images.shape[1]) != (cam.width, cam.height):
        cam = cam.scaled(images.shape[2], images.shape[1])
    if not (torch.isfinite(images).all() and torch.isfinite(silhouettes).all()):
        raise ValueError("coarse_views: images or silhouettes contain NaN or inf")
    silhouettes = silhouettes.clamp(0, 1)
    keep = silhouettes.sum((1, 2)) > 0
    if not bool(keep.any()):
        raise ValueError("coarse_views: every silhouette is empty")
    images, silhouettes, params = images[keep], silhouettes[keep], params[keep]
    centroids, _, radii = _moments(silhouettes)
    return _ViewSet(images, silhouettes, params, cam, centroids, radii)


class CoarseViewCache:
    """LRU cache of coarse views per (mesh, field of view, grid): a batch of photos of one mesh
    renders the grid once. Thread-unsafe; one process-wide instance is used by default."""

    def __init__(self, max_entries: int = 4):
        self.max_entries = int(max_entries)
        self._entries: "collections.OrderedDict[tuple, _ViewSet]" = collections.OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, mesh: _Mesh, cam: _Cam, azimuth_step: float, elevations: Sequence[float]) -> _ViewSet:
        coarse = _coarse_camera(cam)
        key = (mesh.key, round(coarse.focal_pixels / coarse.fit_pixels, 4), float(azimuth_step), tuple(float(e) for e in elevations))
        if key in self._entries:
            self._entries.move_to_end(key)
            self.hits += 1
            return self._entries[key]
        self.misses += 1
        distance = _coarse_distance(coarse)
        count = int(round(360.0 / azimuth_step))
        poses = [Pose(a * azimuth_step, float(e), distance) for e in elevations for a in range(count)]
        images, silhouettes = render_coarse_views(mesh.vertices.double().numpy(), mesh.faces.numpy(), poses, coarse.as_dict())
        params = torch.tensor([[p.azimuth, p.elevation, p.distance, p.roll] for p in poses], dtype=torch.float32)
        views = _view_set(images, silhouettes, params, coarse)
        self._entries[key] = views
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return views

    def clear(self) -> None:
        self._entries.clear()


_DEFAULT_CACHE = CoarseViewCache()


def _views_from_user(coarse_views: CoarseViews, mesh: _Mesh) -> _ViewSet:
    cam = _resolve_intrinsics(coarse_views.intrinsics, name="coarse_views.intrinsics")
    poses = coarse_views.poses
    if isinstance(poses, (list, tuple)) and poses and isinstance(poses[0], Pose):
        params = torch.tensor([[p.azimuth, p.elevation, p.distance, p.roll] for p in poses], dtype=torch.float32)
        if any(abs(p.shift_x) > 1e-9 or abs(p.shift_y) > 1e-9 for p in poses):
            raise ValueError("coarse_views: views must be rendered without lens shift")
    else:
        params = torch.as_tensor(np.asarray(poses, dtype=np.float32))
        if params.ndim != 2 or params.shape[1] < 3:
            raise ValueError(f"coarse_views.poses: expected (N, 4) az/el/dist/roll, got {tuple(params.shape)}")
        if params.shape[1] == 3:
            params = torch.cat([params, torch.zeros_like(params[:, :1])], 1)
        params = params[:, :4].clone()
    if not torch.isfinite(params).all() or bool((params[:, 2] <= 0).any()):
        raise ValueError("coarse_views.poses: distances must be positive and finite")
    params[:, 2] = params[:, 2] / mesh.radius  # scene units -> normalised
    if abs(cam.shift_x) > 1e-9 or abs(cam.shift_y) > 1e-9:
        raise ValueError("coarse_views.intrinsics: views must be rendered without lens shift")
    return _view_set(coarse_views.images, coarse_views.silhouettes, params, cam)


# --------------------------------------------------------------------------------------------
# Photo handling
# --------------------------------------------------------------------------------------------


def _load_photo(photo) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """Return ``(H, W, 3)`` float32 RGB in [0, 1] and the alpha channel ``(H, W)`` or None."""
    if isinstance(photo, (str, os.PathLike)):
        from .images import load_image

        rgba = load_image(photo, mode="rgba")
        alpha = rgba[..., 3]
        return rgba[..., :3], (None if bool((alpha >= 0.999).all()) else alpha)
    if isinstance(photo, torch.Tensor):
        tensor = photo.detach().to("cpu", torch.float32)
        if tensor.ndim == 4 and tensor.shape[0] == 1:
            tensor = tensor[0]
        if tensor.ndim != 3 or tensor.shape[0] not in (1, 3, 4):
            raise ValueError(f"photo: expected a (3, H, W) or (4, H, W) tensor, got {tuple(photo.shape)}")
        array = tensor.permute(1, 2, 0).numpy()
    else:
        try:
            array = np.asarray(photo)
        except Exception:
            raise ValueError(f"photo: cannot read an image from {type(photo).__name__}") from None
        if array.dtype == object or array.dtype.kind not in "uif b":
            raise ValueError(f"photo: unreadable (dtype {array.dtype})")
        if array.dtype == np.uint8:
            array = array.astype(np.float32) / 255.0
        elif array.dtype == np.uint16:
            array = array.astype(np.float32) / 65535.0
        else:
            array = array.astype(np.float32)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 3, 4):
        raise ValueError(f"photo: expected an (H, W, 3) or (H, W, 4) image, got shape {array.shape}")
    if array.shape[0] < 8 or array.shape[1] < 8:
        raise ValueError(f"photo: too small ({array.shape[1]}x{array.shape[0]} pixels)")
    if not np.all(np.isfinite(array)):
        raise ValueError("photo: contains NaN or inf")
    array = np.clip(array, 0.0, 1.0)
    alpha = array[..., 3] if array.shape[-1] == 4 else None
    rgb = np.repeat(array, 3, axis=-1) if array.shape[-1] == 1 else array[..., :3]
    return np.ascontiguousarray(rgb), alpha


def _resize(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``(C, H, W)`` -> ``(C, height, width)``, antialiased when shrinking."""
    if image.shape[-2:] == (height, width):
        return image
    return F.interpolate(image[None], size=(height, width), mode="bilinear", align_corners=False, antialias=True)[0]


# --------------------------------------------------------------------------------------------
# Coarse scoring
# --------------------------------------------------------------------------------------------

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


def _soft_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Soft IoU over the last two dimensions: sum(a*b) / sum(a + b - a*b)."""
    inter = (a * b).sum((-2, -1))
    return inter / (a.sum((-2, -1)) + b.sum((-2, -1)) - inter).clamp_min(1e-6)


def _outline_points(views: _ViewSet, count: int = 256) -> torch.Tensor:
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


def _box_alignment(views: _ViewSet, rolls: torch.Tensor, box: Sequence[float]) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
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


def _coarse_search(
    views: _ViewSet,
    photo_gray: torch.Tensor,
    mask: torch.Tensor,
    cam: _Cam,
    rolls: Sequence[float],
    weights: Dict[str, float],
    check: Callable[[float, str], None],
    box: Optional[Sequence[float]] = None,
    hog_rolls: int = 3,
    photo_rgb: Optional[torch.Tensor] = None,
    hog_variant: str = "uoctti",
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Score every (view, roll) aligned to the photo; return ``(scores (N*R,), params (N*R, 6))``
    with params in normalised mesh units (az, el, dist, roll, shift_x, shift_y).

    Alignment: with a ``box`` (working pixels) each rotated view is fitted into the box; otherwise
    its centroid and radius of gyration are matched to the mask's. Score: weighted mean of the soft
    IoU with ``mask``, the unsigned-HOG cosine inside the object region, (box) the box IoU and
    (``photo_rgb`` ``(3, H, W)`` given) how well the photo's colours predict the silhouette
    (:func:`_label_color_information`, over the whole patch).
    """
    height, width = photo_gray.shape
    m_centre, _, m_radius = _moments(mask[None])
    n_views, n_rolls = views.images.shape[0], len(rolls)
    roll_t = torch.tensor(list(rolls), dtype=torch.float32)
    if box is not None:
        centres, scale, box_iou = _box_alignment(views, roll_t, box)
    else:
        scale = (m_radius / views.radii)[:, None].expand(n_views, n_rolls)
        centres = m_centre.expand(n_views * n_rolls, 2).reshape(n_views, n_rolls, 2)
        box_iou = None
    w_iou, w_hog, w_box = weights.get("iou", 1.0), weights.get("hog", 0.0), weights.get("box", 0.0) if box is not None else 0.0
    w_color = weights.get("color", 0.0) if photo_rgb is not None else 0.0
    total = max(w_iou + w_hog + w_box + w_color, 1e-9)
    layers = [mask, photo_gray]
    if w_color > 0:  # colours and an "inside the photo" channel (zero padding marks outside)
        layers += [photo_rgb[0], photo_rgb[1], photo_rgb[2], torch.ones_like(mask)]
    photo_stack = torch.stack(layers)[None]
    shared_patch = None
    if box is None:
        grid = _patch_grid(m_centre, m_radius, torch.zeros(1), (height, width))
        shared_patch = F.grid_sample(photo_stack, grid, align_corners=False, padding_mode="zeros")
    scores = torch.empty(n_views, n_rolls)
    chunk = max(1, 2048 // n_rolls)
    vh, vw = views.images.shape[1:]
    top = min(hog_rolls, n_rolls)
    for start in range(0, n_views, chunk):
        check(0.05 + 0.25 * start / n_views, "coarse grid")
        stop = min(n_views, start + chunk)
        count = stop - start
        view_index = torch.arange(start, stop).repeat_interleave(n_rolls)
        roll_index = torch.arange(n_rolls).repeat(count)

        def sample(entries: torch.Tensor, with_images: bool) -> Tuple[torch.Tensor, torch.Tensor]:
            """View patches (silhouette [+ image]) and photo patches of the given (view, roll) entries."""
            views_at, rolls_at = view_index[entries], roll_index[entries]
            radii = views.radii[views_at]
            grid = _patch_grid(views.centroids[views_at], radii, roll_t[rolls_at], (vh, vw))
            layers = [views.silhouettes[views_at]] + ([views.images[views_at]] if with_images else [])
            patches = F.grid_sample(torch.stack(layers, 1), grid, align_corners=False, padding_mode="zeros")
            if shared_patch is not None:
                return patches, shared_patch.expand(patches.shape[0], -1, -1, -1)
            local = entries + start * n_rolls
            photo_grid = _patch_grid(centres.reshape(-1, 2)[local], radii * scale.reshape(-1)[local],
                                     torch.zeros(entries.shape[0]), (height, width))
            photo_patch = F.grid_sample(photo_stack.expand(entries.shape[0], -1, -1, -1), photo_grid,
                                        align_corners=False, padding_mode="zeros")
            return patches, photo_patch

        # Cheap cues for every roll: the box fit (from the outlines) and the IoU with the mask.
        score = torch.zeros(count * n_rolls)
        if box_iou is not None and w_box > 0:
            score = score + w_box * box_iou[start:stop].reshape(-1)
        everything = torch.arange(count * n_rolls)
        if w_iou > 0:
            patches, photo_patch = sample(everything, with_images=False)
            score = score + w_iou * _soft_iou(patches[:, 0], photo_patch[:, 0])
        if w_hog > 0 or w_color > 0:
            # The costly cues only for each view's best few rolls by the cheap ones: the outline
            # fixes the roll well; HOG and colour are needed to tell the views apart.
            best_rolls = torch.topk(score.view(count, n_rolls), top, dim=1).indices
            picked = (best_rolls + torch.arange(count)[:, None] * n_rolls).reshape(-1)
            patches, photo_patch = sample(picked, with_images=w_hog > 0)
            costly = torch.zeros(picked.shape[0])
            if w_color > 0:
                color_bins = _color_bins(photo_patch[:, 2:5]).flatten(1)
                inside = (photo_patch[:, 5] > 0.5).flatten(1)
                costly = costly + w_color * _label_color_information(patches[:, 0].flatten(1), color_bins, inside)
            if w_hog > 0:
                hog_view = _hog_cells(patches[:, 1], hog_variant)
                if shared_patch is None:
                    hog_photo = _hog_cells(photo_patch[:, 1], hog_variant)
                else:
                    hog_photo = _hog_cells(shared_patch[:, 1], hog_variant).expand_as(hog_view)
                cells = hog_view.shape[-2:]
                region = torch.maximum(F.adaptive_avg_pool2d(photo_patch[:, :1], cells), F.adaptive_avg_pool2d(patches[:, :1], cells))[:, 0]
                costly = costly + w_hog * _masked_cosine(hog_view, hog_photo, (region > 0.05).to(hog_view.dtype))
            unscored = torch.full_like(score, -w_hog)  # rolls left out rank below the scored ones
            unscored[picked] = costly
            score = score + unscored
        scores[start:stop] = (score / total).view(count, n_rolls)
    params = _similarity_to_params(views, centres, scale, roll_t, cam)
    return scores.reshape(-1), params.reshape(-1, 6)


def _similarity_to_params(views: _ViewSet, centres: torch.Tensor, scale: torch.Tensor, rolls: torch.Tensor, cam: _Cam) -> torch.Tensor:
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
    shift_x = (cam.width / 2.0 - px) / cam.fit_pixels
    shift_y = (py - cam.height / 2.0) / cam.fit_pixels
    distance = views.params[:, 2, None] * (cam.focal_pixels / views.cam.focal_pixels) / scale
    out = torch.empty(n, rolls.shape[0], 6)
    out[..., 0] = views.params[:, 0, None]
    out[..., 1] = views.params[:, 1, None]
    out[..., 2] = distance
    out[..., 3] = views.params[:, 3, None] + _ROLL_SIGN * rolls[None]
    out[..., 4] = shift_x
    out[..., 5] = shift_y
    return out


#: Camera roll per degree of image rotation in the pixel frame (y down, so +angle is clockwise on
#: screen): camera.py's positive roll turns the picture counter-clockwise. Checked by a test.
_ROLL_SIGN = -1.0


#: HOG flavours the pose objective can compare (the add-on's "HOG Variant" option).
HOG_VARIANTS = ("uoctti", "dalal", "skimage")


def _hog_cells(gray: torch.Tensor, variant: str = "uoctti") -> torch.Tensor:
    """Contrast-insensitive HOG cells ``(B, 9, h/8, w/8)`` of ``(B, h, w)`` gray patches.

    ``uoctti``: the 9 unsigned orientations of Felzenszwalb et al.'s 31 (object and background
    may swap brightness between photo and render, so only the unsigned part compares fairly);
    ``dalal``: Dalal-Triggs cells; ``skimage``: scikit-image's HOG with one-cell L2-Hys blocks.
    """
    from .hog import hog, skimage_hog

    if variant == "uoctti":
        return hog(gray[:, None], "uoctti", cell_size=8, num_bins=9)[:, 18:27]
    if variant == "dalal":
        return hog(gray[:, None], "dalal", cell_size=8, num_bins=9)
    if variant == "skimage":
        cells = skimage_hog(gray, orientations=9, pixels_per_cell=(8, 8), cells_per_block=(1, 1), feature_vector=False)
        return cells[:, :, :, 0, 0, :].permute(0, 3, 1, 2)
    raise ValueError(f"hog_variant must be one of {HOG_VARIANTS}, got {variant!r}")


def _masked_cosine(a: torch.Tensor, b: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of HOG maps ``(B, D, c, c)`` restricted to cells where ``region (B, c, c)``."""
    a = a * region[:, None]
    b = b * region[:, None]
    dot = (a * b).sum((1, 2, 3))
    return dot / (a.flatten(1).norm(dim=1) * b.flatten(1).norm(dim=1)).clamp_min(1e-8)


#: Colour quantisation of the region term: bins per RGB channel (8**3 = 512 joint bins).
_COLOR_BINS = 8


def _color_bins(rgb: torch.Tensor, bins: int = _COLOR_BINS) -> torch.Tensor:
    """Joint RGB bin index ``(..., H, W)`` (int64 in ``[0, bins**3)``) of ``(..., 3, H, W)`` colours in [0, 1]."""
    q = (rgb.clamp(0, 1) * (bins - 1e-3)).long()
    return (q[..., 0, :, :] * bins + q[..., 1, :, :]) * bins + q[..., 2, :, :]


def _label_color_information(silhouette: torch.Tensor, bins: torch.Tensor, valid: torch.Tensor,
                             n_bins: int = _COLOR_BINS**3) -> torch.Tensor:
    """How well the photo's colours predict a candidate's silhouette: mutual information of the
    (soft) object/background label and the colour bin, divided by the label's entropy.

    The region term of segmentation-driven pose methods (PWP3D, Prisacariu & Reid 2012, with
    histograms re-estimated per candidate as in MI segmentation, Kim et al. 2005): the right pose
    puts the object's outline on a colour boundary, whatever the colours are -- no segmentation of
    the photo (and none of GrabCut's losses of thin parts) is needed. Differentiable in ``silhouette``.

    Args:
        silhouette: ``(B, N)`` object coverage in [0, 1] of N sample pixels.
        bins: ``(B, N)`` or ``(N,)`` colour bin of each sample (:func:`_color_bins`).
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


def _gradient_magnitude(gray: torch.Tensor) -> torch.Tensor:
    """Gradient magnitude ``(H, W)`` of a ``(H, W)`` image after a 3x3 binomial blur (sensor noise)."""
    kernel = torch.tensor([1.0, 2.0, 1.0], dtype=gray.dtype, device=gray.device)
    kernel = (kernel[:, None] * kernel[None, :] / 16.0)[None, None]
    smooth = F.conv2d(F.pad(gray[None, None], (1, 1, 1, 1), mode="replicate"), kernel)
    padded = F.pad(smooth, (1, 1, 1, 1), mode="replicate")[0, 0]
    gx = (padded[1:-1, 2:] - padded[1:-1, :-2]) / 2
    gy = (padded[2:, 1:-1] - padded[:-2, 1:-1]) / 2
    return torch.sqrt(gx * gx + gy * gy)


def _occlusion_edge_evidence(silhouette: torch.Tensor, depth: torch.Tensor, photo_edges: torch.Tensor,
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
        photo_edges: ``(H, W)`` photo gradient magnitude (:func:`_gradient_magnitude`).
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


# --------------------------------------------------------------------------------------------
# Candidate selection
# --------------------------------------------------------------------------------------------


def _angle_gap(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.remainder(a - b + 180.0, 360.0) - 180.0


def _distinct(order: Sequence[int], params: torch.Tensor, count: int, min_gap: float) -> List[int]:
    """Greedy non-maximum suppression on viewing direction (great-circle angle, degrees)."""
    chosen: List[int] = []
    directions = _directions(params)
    for index in order:
        if len(chosen) >= count:
            break
        if chosen:
            cosines = directions[chosen] @ directions[index]
            if float(torch.rad2deg(torch.arccos(cosines.clamp(-1, 1))).min()) < min_gap:
                continue
        chosen.append(int(index))
    return chosen


def _directions(params: torch.Tensor) -> torch.Tensor:
    az = torch.deg2rad(params[:, 0].double())
    el = torch.deg2rad(params[:, 1].double())
    return torch.stack([torch.cos(el) * torch.sin(az), -torch.cos(el) * torch.cos(az), torch.sin(el)], -1)


def _to_pose(row: torch.Tensor, radius: float) -> Pose:
    az = float(torch.remainder(row[0], 360.0))
    roll = float(_angle_gap(row[3], torch.zeros(())))
    return Pose(az, float(row[1]), float(row[2]) * radius, roll, float(row[4]), float(row[5]))


# --------------------------------------------------------------------------------------------
# Fine stage: multi-start gradient refinement through the soft rasterizer
# --------------------------------------------------------------------------------------------


#: Azimuth maps of the near-symmetries common in man-made objects: front/back (180 deg), mirror
#: (left/right, front/back), and the 3- and 4-fold turns of stools and square tables.
_TWIN_MAPS: Tuple[Tuple[float, float], ...] = ((1.0, 180.0), (-1.0, 0.0), (-1.0, 180.0))
_TURN_MAPS: Tuple[Tuple[float, float], ...] = ((1.0, 120.0), (1.0, 240.0), (1.0, 90.0), (1.0, 270.0))


def _twin_starts(params: torch.Tensor, scores: torch.Tensor, n_views: int, n_rolls: int, views: _ViewSet, index: int,
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


def _twins_among(params: torch.Tensor, best: int, chosen: Sequence[int], reach: float = 25.0,
                 maps: Sequence[Tuple[float, float]] = ((1.0, 180.0), (1.0, 120.0), (1.0, 240.0))) -> List[int]:
    """Indices of ``params (B, 6)`` rows closest to the front/back and 3-fold twins of row ``best``
    (within ``reach`` degrees of viewing direction), not within 15 deg of ``chosen`` or each other.

    The polish must see the best pose's twins: when their silhouettes are identical (a mug with its
    handle hidden or in front) only the shading can tell them apart, and it can only choose among
    what was polished."""
    directions = _directions(params)
    az, el = float(params[best, 0]), float(params[best, 1])
    picked: List[int] = []
    for sign, offset in maps:
        target = _directions(torch.tensor([[sign * az + offset, el]], dtype=torch.float64))[0]
        gaps = torch.rad2deg(torch.arccos((directions @ target).clamp(-1, 1)))
        index = int(torch.argmin(gaps))
        if float(gaps[index]) > reach:
            continue
        taken = list(chosen) + picked
        if taken and float(torch.rad2deg(torch.arccos((directions[taken] @ directions[index]).clamp(-1, 1))).min()) < 15.0:
            continue
        picked.append(index)
    return picked


def _render_arguments(params: torch.Tensor, cam: _Cam, sharpness: float) -> Dict[str, Any]:
    """Keyword arguments of :mod:`torch_backend.render` for ``(B, 6)`` params seen by ``cam``."""
    return dict(
        azimuth=params[:, 0], elevation=params[:, 1], distance=params[:, 2], roll=params[:, 3],
        shift_x=params[:, 4], shift_y=params[:, 5], lens_mm=cam.lens_mm,
        sensor_width_mm=cam.sensor_width_mm, sensor_height_mm=cam.sensor_height_mm,
        sensor_fit=cam.sensor_fit, resolution=(cam.width, cam.height), sharpness=sharpness,
    )


class _Objective:
    """Differentiable pose score at the working resolution (higher is better).

    ``iou``: soft silhouette IoU with the object mask. ``hog``: cosine similarity of unsigned
    ∇HOG cells of the render and the photo, restricted to the cells the *render* covers (dilated),
    so a larger render cannot gain by covering clutter (the failure the feasibility study found
    with whole-image HOG).
    """

    def __init__(self, mesh: _Mesh, cam: _Cam, mask: torch.Tensor, photo_gray: torch.Tensor, hog_weight: float, iou_weight: float,
                 box: Optional[torch.Tensor] = None, box_weight: float = 0.0,
                 photo_rgb: Optional[torch.Tensor] = None, color_weight: float = 0.0, hog_variant: str = "uoctti"):
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
            self.color_bins = _color_bins(photo_rgb).flatten()
        self.mask, self.photo_gray = mask, photo_gray
        self.hog_weight, self.iou_weight = float(hog_weight), float(iou_weight)
        self._photo_hog: Optional[torch.Tensor] = None
        self.render_mesh = None

    @property
    def photo_hog(self) -> torch.Tensor:
        """Unsigned HOG cells ``(1, 9, h/8, w/8)`` of the photo (computed on first use)."""
        if self._photo_hog is None:
            self._photo_hog = _hog_cells(self.photo_gray[None], self.hog_variant)
        return self._photo_hog

    def render(self, params: torch.Tensor, sigma: float, *, with_depth: bool = False) -> Tuple[torch.Tensor, ...]:
        """Soft silhouettes and gray renders ``(B, H, W)`` for ``(B, 6)`` params (the silhouette
        stands in for the gray render when HOG is not scored); ``with_depth`` adds the depths
        (mesh radii)."""
        from . import render as _render

        if self.render_mesh is None:
            self.render_mesh = _render.Mesh.from_arrays(self.mesh.vertices, self.mesh.faces)
        kwargs = _render_arguments(params, self.cam, sigma)
        if self.hog_weight == 0 and not with_depth:
            silhouette = _render.render_silhouette(self.render_mesh, **kwargs)
            return silhouette, silhouette
        result = _render.render(self.render_mesh, **kwargs)
        return tuple(result) if with_depth else (result.silhouette, result.shaded)

    def hog_similarity(self, silhouette: torch.Tensor, gray: torch.Tensor) -> torch.Tensor:
        """``(B,)`` cosine of the unsigned HOG cells of renders and photo, over the cells the render
        covers plus one cell of context."""
        render_hog = _hog_cells(gray, self.hog_variant)
        cells = render_hog.shape[-2:]
        region = F.adaptive_max_pool2d(silhouette[:, None], cells)
        region = F.max_pool2d(region, 3, stride=1, padding=1)[:, 0]
        return _masked_cosine(render_hog, self.photo_hog.expand_as(render_hog), region)

    def __call__(self, params: torch.Tensor, sigma: float) -> Tuple[torch.Tensor, torch.Tensor]:
        """Score ``(B,)`` and IoU ``(B,)`` for ``(B, 6)`` params."""
        silhouette, gray = self.render(params, sigma)
        iou = _soft_iou(silhouette, self.mask[None])
        score = self.iou_weight * iou
        if self.hog_weight > 0:
            score = score + self.hog_weight * self.hog_similarity(silhouette, gray)
        if self.color_weight > 0:
            score = score + self.color_weight * _label_color_information(silhouette.flatten(1), self.color_bins, self.color_region)
        if self.box is not None and self.box_weight > 0:
            # The silhouette's box is exactly the box of the projected vertices (every vertex lies
            # on a drawn face), so the user's box constrains scale and position directly, however
            # poor the GrabCut mask is.
            pixels, _ = _project(self.mesh.vertices.to(params.dtype), params, self.cam)
            render_box = torch.stack([pixels[..., 0].amin(1), pixels[..., 1].amin(1), pixels[..., 0].amax(1), pixels[..., 1].amax(1)], -1)
            score = score + self.box_weight * _box_iou(render_box, self.box[None])
        return score, iou


def _box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of ``(B, 4)`` and ``(1|B, 4)`` boxes ``(x0, y0, x1, y1)``; differentiable."""
    width = (torch.minimum(a[:, 2], b[:, 2]) - torch.maximum(a[:, 0], b[:, 0])).clamp_min(0)
    height = (torch.minimum(a[:, 3], b[:, 3]) - torch.maximum(a[:, 1], b[:, 1])).clamp_min(0)
    inter = width * height
    area_a = (a[:, 2] - a[:, 0]).clamp_min(0) * (a[:, 3] - a[:, 1]).clamp_min(0)
    area_b = (b[:, 2] - b[:, 0]).clamp_min(0) * (b[:, 3] - b[:, 1]).clamp_min(0)
    return inter / (area_a + area_b - inter).clamp_min(1e-6)


def _refine(
    starts: torch.Tensor,
    objective: _Objective,
    *,
    iterations: int,
    learning_rate: float,
    check: Callable[[float, str], None],
    progress: Tuple[float, float],
    sharpness: Tuple[float, float] = (2.0, 0.5),
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Adam ascent on ``(B, 6)`` starts; returns the best iterate of each start, its score and IoU.

    The variables are scaled so that one unit is comparable for all of them: degrees for the
    angles, ``log(distance)`` in 1/50ths and the shift in 1/500ths of the image span. The soft
    rasterizer's blur is annealed (``sharpness``, pixels, geometric schedule): a wide blur gives gradients far from
    the optimum, and a narrow one removes the blur's bias on the silhouette size (and so on the
    distance) before the best iterate is picked.
    """
    scale = torch.tensor([1.0, 1.0, 0.02, 1.0, 0.002, 0.002], dtype=starts.dtype)
    base = starts.clone()
    base[:, 2] = torch.log(starts[:, 2])
    sine = torch.sin(torch.deg2rad(starts[:, 1:2])).detach()
    coupling = sine * sine.abs() ** 7
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
        params = torch.cat([values[:, :2], values[:, 2:3].exp(), values[:, 3:]], 1)
        params = torch.cat([params[:, :1], params[:, 1:2].clamp(-89.0, 89.0), params[:, 2:]], 1)
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


def _photo_proposals(rgb: np.ndarray, insets: Sequence[float] = (0.03, 0.10)) -> List[Tuple[float, float, float, float]]:
    """Object boxes for photo-only mode: the box of GrabCut's object inside the photo's frame inset
    by each of ``insets`` (fractions of the size; a small inset keeps objects that reach near the
    border, a larger one gives GrabCut more background to model); near-duplicates are dropped."""
    height, width = rgb.shape[:2]
    proposals = []
    for inset in insets:
        frame = (width * inset, height * inset, width * (1 - inset), height * (1 - inset))
        proposals.append(_masks.mask_to_box(_masks.grabcut_from_box(rgb, frame)))
    boxes: List[Tuple[float, float, float, float]] = []
    for proposal in proposals:
        if all(float(_box_iou(torch.tensor([proposal]), torch.tensor([other]))) < 0.85 for other in boxes):
            boxes.append(proposal)
    return boxes


def _estimate_from_proposals(rgb: np.ndarray, vertices, faces, camera_intrinsics, *, started: float, top_k: int,
                             callback, **kwargs) -> PoseResult:
    """Photo-only mode: box mode on each automatic object box (:func:`_photo_proposals`); the
    estimate with the best objective wins and the candidates of all are pooled."""
    tick = time.perf_counter()
    boxes = _photo_proposals(rgb)
    cues_seconds = time.perf_counter() - tick
    kwargs["use_alpha"] = False  # photo mode: the alpha, if any, is no mask
    results: List[PoseResult] = []
    for number, proposal in enumerate(boxes):
        low, high = number / len(boxes), (number + 1) / len(boxes)

        def progress(fraction: float, message: str, low=low, high=high, number=number):
            if callback is None:
                return None
            return callback(low + (high - low) * fraction, f"{message} (object guess {number + 1}/{len(boxes)})")

        results.append(estimate_pose(rgb, vertices, faces, camera_intrinsics, bbox=proposal, top_k=top_k,
                                     callback=progress, **kwargs))
    best = max(results, key=lambda result: result.score)
    pooled = sorted((pair for result in results for pair in result.candidates), key=lambda pair: -pair[1])
    directions = torch.tensor([[p.azimuth, p.elevation] for p, _ in pooled], dtype=torch.float64)
    candidates = [pooled[i] for i in _distinct(range(len(pooled)), directions, max(int(top_k), 1), min_gap=15.0)]
    timings: Dict[str, float] = {"cues": cues_seconds}
    for result in results:
        for key, value in result.timings.items():
            timings[key] = timings.get(key, 0.0) + value
    return dataclasses.replace(best, mode="photo", candidates=candidates, pose=candidates[0][0], score=candidates[0][1],
                               seconds=time.perf_counter() - started, timings=timings)


# --------------------------------------------------------------------------------------------
# Public entry point
# --------------------------------------------------------------------------------------------


def estimate_pose(
    photo,
    vertices,
    faces,
    camera_intrinsics,
    *,
    bbox: Optional[Sequence[float]] = None,
    mask=None,
    coarse_views: Optional[CoarseViews] = None,
    top_k: int = 3,
    device: Union[str, torch.device, None] = None,
    callback: Optional[Callable[[float, str], Optional[bool]]] = None,
    seed: int = 0,
    **options,
) -> PoseResult:
    """Estimate the camera pose of a photo of a known mesh.

    Args:
        photo: ``(H, W, 3|4)`` NumPy float in ``[0, 1]`` or uint8, a ``(3|4, H, W)`` tensor, or an
            image path. A 4th channel (alpha) is used as the object mask unless ``use_alpha=False``.
        vertices: ``(V, 3)`` mesh vertices in scene units (any unit); faces: ``(F, 3)`` triangles.
        camera_intrinsics: ``camera.Intrinsics`` or a dict of its keywords (``lens_mm,
            sensor_width_mm, sensor_height_mm, sensor_fit, resolution`` = the photo's ``(W, H)``).
        bbox: ``(x0, y0, x1, y1)`` pixel box around the object (box mode).
        mask: ``(H, W)`` object mask; any non-zero is object (mask mode, overrides alpha).
        coarse_views: pre-rendered views (:class:`CoarseViews`), e.g. from Blender; default renders
            (and caches) them here.
        top_k: number of distinct poses returned in ``candidates``.
        device: torch device of the refinement (default: CPU).
        callback: ``callback(progress in [0, 1], message)``; returning ``False`` raises
            :class:`Cancelled`.
        seed: seeds the (small) random parts; the same seed gives the same result.
        options: ``use_alpha=True``; grid: ``azimuth_step=10``, ``elevations``, ``rolls``
            (degrees); sizes: ``work_size=128`` (polish), ``explore_size=80`` (first steps),
            ``final_size=256`` (last look, capped at the photo's size), ``max_faces=2000``
            (vertex-clustering budget); refinement: ``refine=True``, ``starts=4`` (+ twins),
            ``explore_iterations=12``, ``iterations=20``, ``final_iterations=8``, ``keep=2``,
            ``learning_rate=1.0``; weights: ``iou_weight`` (1 with a mask, else 0: IoU with the
            GrabCut mask), ``hog_weight`` (coarse), ``refine_hog_weight``, ``color_weight=1.5``
            (coarse), ``refine_color_weight=1.0`` (colour term, box/photo), ``box_weight=0.5``,
            ``tie_hog_weight=0.1``, ``occlusion_weight=0.5`` and ``occlusion_margin=0.01``
            (near-tie break by occlusion edges); ``hog_variant="uoctti"`` (or ``"dalal"``,
            ``"skimage"``: the HOG compared between photo and renders); ``regrab=True`` (GrabCut again seeded by the first estimate,
            when ``iou_weight > 0`` without a mask); ``proposals=True`` (photo mode: box mode on
            automatic object boxes; False: one GrabCut mask of the whole frame); ``cache``
            (a :class:`CoarseViewCache`).

    Returns:
        :class:`PoseResult`.

    Raises:
        ValueError: unreadable photo, empty mesh or no faces, bbox outside the photo, mask of
            another size or empty, non-finite or mismatched intrinsics, unknown option.
        Cancelled: the callback returned ``False``.
    """
    started = time.perf_counter()
    timings: Dict[str, float] = {}
    known = {
        "use_alpha", "work_size", "azimuth_step", "elevations", "rolls", "refine", "iterations",
        "starts", "hog_weight", "refine_hog_weight", "cache", "learning_rate", "explore_size",
        "explore_iterations", "keep", "max_faces", "box_weight", "iou_weight", "regrab", "tie_hog_weight",
        "color_weight", "refine_color_weight", "final_size", "final_iterations", "proposals",
        "occlusion_weight", "occlusion_margin", "hog_variant",
    }
    unknown = set(options) - known
    if unknown:
        raise ValueError(f"estimate_pose: unknown option(s) {sorted(unknown)}; known: {sorted(known)}")
    if int(top_k) < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    hog_variant = str(options.get("hog_variant", "uoctti"))
    if hog_variant not in HOG_VARIANTS:
        raise ValueError(f"hog_variant must be one of {HOG_VARIANTS}, got {hog_variant!r}")

    def check(progress: float, message: str) -> None:
        if callback is not None and callback(float(progress), message) is False:
            raise Cancelled(f"cancelled during {message}")

    rgb, alpha = _load_photo(photo)
    height, width = rgb.shape[:2]
    cam = _resolve_intrinsics(camera_intrinsics)
    if (cam.width, cam.height) != (width, height):
        raise ValueError(
            f"camera_intrinsics: resolution {cam.width}x{cam.height} differs from the photo's {width}x{height}"
        )
    mesh = _prepare_mesh(vertices, faces, int(options.get("max_faces", 2000)))

    # Cues, in order of trust: explicit mask, alpha, box (GrabCut), photo only (GrabCut in frame).
    box = _masks.validate_box(bbox, (height, width)) if bbox is not None else None
    object_mask: Optional[np.ndarray] = None
    if mask is not None:
        object_mask = _masks.as_mask(mask, (height, width))
        mode = "mask"
    elif alpha is not None and options.get("use_alpha", True) and _masks.alpha_mask(alpha) is not None:
        object_mask = _masks.alpha_mask(alpha)
        mode = "mask"
    elif box is not None:
        mode = "box"
    else:
        mode = "photo"
    check(0.0, "reading inputs")
    if mode == "photo" and options.get("proposals", True):
        return _estimate_from_proposals(rgb, vertices, faces, camera_intrinsics, started=started, coarse_views=coarse_views,
                                        top_k=top_k, device=device, callback=callback, seed=seed, **options)
    tick = time.perf_counter()
    if mode == "box":
        object_mask = _masks.grabcut_from_box(rgb, box)
    elif mode == "photo":
        inset = 0.03
        frame = (width * inset, height * inset, width * (1 - inset), height * (1 - inset))
        object_mask = _masks.grabcut_from_box(rgb, frame)
    timings["cues"] = time.perf_counter() - tick

    # Without a given mask the GrabCut mask is only a weak cue (it loses thin legs, takes in
    # clutter): the colour region term replaces it unless asked for.
    iou_weight = float(options.get("iou_weight", 1.0 if mode == "mask" else 0.0))

    # Working resolution: longest side work_size, same field of view and shift.
    rgb_t = torch.from_numpy(rgb).permute(2, 0, 1)
    mask_full = torch.from_numpy(object_mask.astype(np.float32))[None]

    def working(size: int) -> Tuple[_Cam, torch.Tensor, torch.Tensor]:
        factor = size / max(width, height)
        work_w, work_h = max(8, round(width * factor)), max(8, round(height * factor))
        gray = rgb_to_gray(_resize(rgb_t, work_h, work_w), channel_axis=0)
        soft_mask = _resize(mask_full, work_h, work_w)[0].clamp(0, 1)
        return cam.scaled(work_w, work_h), gray, soft_mask

    work_size = int(options.get("work_size", 128))
    explore_size = int(options.get("explore_size", 80))
    work_cam, photo_gray, mask_t = working(work_size)
    if float(mask_t.sum()) < 1.0:
        raise ValueError("mask: the object covers less than one pixel at the working resolution")

    # Coarse stage.
    tick = time.perf_counter()
    check(0.02, "coarse views")
    azimuth_step = float(options.get("azimuth_step", DEFAULT_AZIMUTH_STEP))
    elevations = tuple(options.get("elevations", DEFAULT_ELEVATIONS))
    if coarse_views is not None:
        views = _views_from_user(coarse_views, mesh)
    else:
        cache = options.get("cache", _DEFAULT_CACHE)
        views = cache.get(mesh, cam, azimuth_step, elevations)
    timings["coarse_views"] = time.perf_counter() - tick
    tick = time.perf_counter()
    rolls = tuple(options.get("rolls", DEFAULT_ROLLS))
    coarse_weights = {
        "iou": iou_weight,
        "hog": float(options.get("hog_weight", 0.0 if mode == "mask" else 1.5)),
        "box": float(options.get("box_weight", 0.5)),
        "color": float(options.get("color_weight", 0.0 if mode == "mask" else 1.5)),
    }
    work_box = None
    if mode == "box":
        factor = work_cam.width / width
        work_box = [v * factor for v in box]
    work_rgb = _resize(rgb_t, work_cam.height, work_cam.width)
    scores, params = _coarse_search(views, photo_gray, mask_t, work_cam, rolls, coarse_weights, check, box=work_box,
                                    photo_rgb=work_rgb, hog_variant=hog_variant)
    timings["coarse_search"] = time.perf_counter() - tick
    order = torch.argsort(scores, descending=True).tolist()
    best = order[0]
    coarse_pose = _to_pose(params[best], mesh.radius)
    coarse_score = float(scores[best])

    n_views, n_rolls = views.params.shape[0], len(rolls)
    if not options.get("refine", True):
        chosen = _distinct(order, params, max(int(top_k), 1), min_gap=15.0)
        candidates = [(_to_pose(params[i], mesh.radius), float(scores[i])) for i in chosen]
        final_pose, final_score = candidates[0]
        final_iou = float("nan")
    else:
        tick = time.perf_counter()
        torch.manual_seed(int(seed))
        starts_count = int(options.get("starts", 4))
        start_ids = _distinct(order, params, starts_count, min_gap=20.0)
        for rank, index in enumerate(list(start_ids[:2])):
            maps = _TWIN_MAPS + (_TURN_MAPS if rank == 0 else ())
            for twin in _twin_starts(params, scores, n_views, n_rolls, views, index, maps):
                if twin not in start_ids:
                    start_ids.append(twin)
        dtype = torch.float32
        dev = torch.device(device) if device is not None else torch.device("cpu")
        device_mesh = _Mesh(mesh.vertices.to(dev), mesh.faces.to(dev), mesh.radius, mesh.key)
        hog_weight_fine = float(options.get("refine_hog_weight", 0.0 if mode == "mask" else 0.3))

        box_weight = float(options.get("box_weight", 0.5)) if mode == "box" else 0.0
        color_weight_fine = float(options.get("refine_color_weight", 0.0 if mode == "mask" else 1.0))

        def objective_at(size: int) -> _Objective:
            size_cam, size_gray, size_mask = working(size)
            size_box = None
            if box is not None:
                factor = size_cam.width / width
                size_box = torch.tensor([v * factor for v in box], dtype=dtype, device=dev)
            return _Objective(device_mesh, size_cam, size_mask.to(dev, dtype), size_gray.to(dev, dtype),
                              hog_weight=hog_weight_fine,
                              iou_weight=iou_weight,
                              box=size_box, box_weight=box_weight,
                              photo_rgb=_resize(rgb_t, size_cam.height, size_cam.width).to(dev, dtype),
                              color_weight=color_weight_fine, hog_variant=hog_variant)

        # Phase 1 (explore): every start, a few steps at low resolution with a wide blur.
        starts = params[start_ids].to(dev, dtype)
        explored, explored_score, _ = _refine(
            starts, objective_at(explore_size),
            iterations=int(options.get("explore_iterations", 12)),
            learning_rate=1.5 * float(options.get("learning_rate", 1.0)),
            check=check, progress=(0.35, 0.6), sharpness=(1.5, 0.7),
        )
        timings["explore"] = time.perf_counter() - tick
        tick = time.perf_counter()
        if mode != "mask" and options.get("regrab", True) and iou_weight > 0:
            # Re-segment with the first estimate's render as GrabCut's seed: the box-initialised
            # mask loses thin parts (legs) and takes in background between them.
            best_explored = explored[int(torch.argmax(explored_score))][None].detach().cpu()
            guess_cam, _, _ = working(240)
            from . import render as _render

            guess = _render.render_silhouette(mesh.vertices, mesh.faces, **_render_arguments(best_explored, guess_cam, 0.3))[0]
            guess = _resize(guess[None].float(), height, width)[0].numpy() > 0.5
            if guess.any():
                object_mask = _masks.grabcut_from_mask(rgb, guess, box if box is not None else frame)
                mask_full = torch.from_numpy(object_mask.astype(np.float32))[None]
            timings["regrab"] = time.perf_counter() - tick
        # Phase 2 (polish): the best distinct ones at the working resolution, blur annealed to
        # 0.4 px so that the silhouette's 0.5 level is the exact outline (no size bias on distance).
        explored_order = torch.argsort(explored_score.cpu(), descending=True).tolist()
        keep = _distinct(explored_order, explored.cpu(), max(int(top_k), int(options.get("keep", 2))), min_gap=15.0)
        keep += _twins_among(explored.cpu(), explored_order[0], keep)
        tie_weight = float(options.get("tie_hog_weight", 0.1))
        occlusion_weight = float(options.get("occlusion_weight", 0.5))

        occlusion_margin = float(options.get("occlusion_margin", 0.01))

        def polish(candidates: torch.Tensor, size: int, iterations: int, learning_rate: float,
                   sharpness: Tuple[float, float], progress: Tuple[float, float], last: bool):
            objective = objective_at(size)
            polished, score, iou = _refine(candidates, objective, iterations=iterations,
                                           learning_rate=learning_rate * float(options.get("learning_rate", 1.0)),
                                           check=check, progress=progress, sharpness=sharpness)
            # Near-symmetric objects (front/back, 3-fold legs) give their twins almost the same
            # silhouette IoU; the shading inside the outline (∇HOG cosine) and, among near-ties at
            # the last look, occlusion edges break such ties. One render serves both.
            judge_shading = hog_weight_fine == 0 and tie_weight > 0 and polished.shape[0] > 1
            judge_occlusion = last and occlusion_weight > 0 and polished.shape[0] > 1
            if not (judge_shading or judge_occlusion):
                return polished, score, iou
            with torch.no_grad():
                silhouette, gray, depth = objective.render(polished, sharpness[1], with_depth=True)
                if judge_shading:
                    score = score + tie_weight * objective.hog_similarity(silhouette, gray)
                if judge_occlusion:
                    evidence = _occlusion_edge_evidence(silhouette, depth, _gradient_magnitude(objective.photo_gray))
                    # A tie-break, not a score: its size grows with the number of self-occluding parts.
                    tied = score >= score.max() - occlusion_margin
                    bonus = occlusion_weight * (evidence - evidence[tied].min())
                    score = torch.where(tied, score + bonus, score)
            return polished, score, iou

        final_size = min(int(options.get("final_size", 256)), max(width, height))
        final_iterations = int(options.get("final_iterations", 8))
        two_stage = final_size > work_size and final_iterations > 0
        refined, refined_score, refined_iou = polish(
            explored[keep], work_size, int(options.get("iterations", 20)), 0.6, (0.8, 0.4),
            (0.6, 0.85 if two_stage else 0.98), last=not two_stage)
        if two_stage:
            # Last look at (up to) the photo's own resolution for the finalists and the best one's
            # twins: a stool's back lip or a thin leg is a few pixels there and under one at the
            # working size, and that is what separates near-symmetric twins.
            order_cpu = torch.argsort(refined_score.cpu(), descending=True).tolist()
            finalists = _distinct(order_cpu, refined.cpu(), max(int(top_k), 3), min_gap=15.0)
            finalists += _twins_among(refined.cpu(), order_cpu[0], finalists)
            refined, refined_score, refined_iou = polish(
                refined[finalists], final_size, final_iterations, 0.3, (0.5, 0.3), (0.85, 0.98), last=True)
        refined, refined_score, refined_iou = refined.cpu(), refined_score.cpu(), refined_iou.cpu()
        timings["refine"] = time.perf_counter() - tick
        ranking = torch.argsort(refined_score, descending=True).tolist()
        chosen = _distinct(ranking, refined, max(int(top_k), 1), min_gap=15.0)
        candidates = [(_to_pose(refined[i], mesh.radius), float(refined_score[i])) for i in chosen]
        final_pose, final_score = candidates[0]
        final_iou = float(refined_iou[chosen[0]])
    check(1.0, "done")
    return PoseResult(
        pose=final_pose,
        score=final_score,
        candidates=candidates,
        seconds=time.perf_counter() - started,
        mode=mode,
        coarse_pose=coarse_pose,
        coarse_score=coarse_score,
        iou=final_iou,
        timings=timings,
    )
