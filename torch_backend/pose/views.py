"""The coarse stage's views of the mesh: which viewpoints (the grid), the camera they are rendered
with (the photo's field of view, square, no shift), a quick hard renderer for them, the views made
ready for scoring (centroid, radius of gyration), and a cache so a batch of photos of one mesh
renders its grid once. Blender may supply the renders instead (:class:`CoarseViews`)."""
from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..intrinsics import Intrinsics
from ..lru import LRU
from ..meshes import check_mesh
from .cues import moments
from .options import DEFAULT_AZIMUTH_STEP, DEFAULT_ELEVATIONS
from .prepare import PreparedMesh, project
from .types import CoarseViews, Pose

__all__ = ["COARSE_VIEW_SIZE", "coarse_view_intrinsics", "coarse_view_poses", "render_coarse_views", "ViewSet",
           "CoarseViewCache", "DEFAULT_CACHE", "views_from_user", "views_within"]

#: Side (pixels) of the square coarse renders.
COARSE_VIEW_SIZE = 96
#: Fraction of the coarse view's side covered by the mesh's bounding sphere.
_COARSE_FILL = 0.8


def _coarse_camera(cam: Intrinsics, size: int = COARSE_VIEW_SIZE) -> Intrinsics:
    """Square camera with (about) the photo's angular field of view along its fit axis, no shift.

    The focal/side ratio is rounded to powers of sqrt(2) so that photos taken with similar lenses
    share one cached grid; the coarse stage only needs the perspective roughly right (the grid pose
    is refined with the photo's exact camera).
    """
    fov_scale = cam.focal_px / cam.fit_span_px  # focal / fit side: same angles at any size
    fov_scale = 2.0 ** (round(2.0 * math.log2(fov_scale)) / 2.0)
    # A square sensor whose side gives the same focal/side ratio (lens kept for readability).
    sensor = cam.lens_mm / fov_scale
    return Intrinsics(cam.lens_mm, sensor, sensor, "AUTO", 0.0, 0.0, (size, size))


def _coarse_distance(cam: Intrinsics) -> float:
    """Distance (mesh radii) at which the bounding sphere fills ``_COARSE_FILL`` of a coarse view."""
    tan_half = _COARSE_FILL * 0.5 * cam.fit_span_px / cam.focal_px
    return 1.0 / math.sin(math.atan(tan_half))


def coarse_view_intrinsics(camera_intrinsics: Any, size: int = COARSE_VIEW_SIZE) -> Dict[str, Any]:
    """Intrinsics to render the coarse views with: square ``size`` x ``size``, the photo's field of
    view along its sensor-fit axis, no shift. Returns a dict (``lens_mm, sensor_width_mm,
    sensor_height_mm, sensor_fit, shift_x, shift_y, resolution``)."""
    return _coarse_camera(Intrinsics.coerce(camera_intrinsics), size).as_dict()


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
    verts, _ = check_mesh(vertices, np.zeros((0, 3), np.int64), allow_no_faces=True)
    radius = float(verts.double().norm(dim=-1).max())
    if not radius > 0:
        raise ValueError("vertices: no extent about the origin")
    coarse = _coarse_camera(Intrinsics.coerce(camera_intrinsics))
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

    cam = Intrinsics.coerce(intrinsics, name="intrinsics")
    verts = torch.as_tensor(np.asarray(vertices, dtype=np.float64))
    tris = torch.as_tensor(np.asarray(faces, dtype=np.int64))
    params = torch.tensor(
        [[p.azimuth, p.elevation, p.distance, p.roll, p.shift_x, p.shift_y] for p in poses], dtype=torch.float64
    )
    pixels, depth = project(verts, params, cam)
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
class ViewSet:
    """Coarse views in a form ready for scoring (all float32, CPU)."""

    images: torch.Tensor  # (N, h, w)
    silhouettes: torch.Tensor  # (N, h, w)
    params: torch.Tensor  # (N, 4) az, el, dist (normalised mesh units), roll
    cam: Intrinsics
    centroids: torch.Tensor  # (N, 2) pixels
    radii: torch.Tensor  # (N,) radius of gyration, pixels
    outlines: Optional[torch.Tensor] = None  # (N, P, 2) outline points, filled lazily

    def subset(self, keep: torch.Tensor) -> "ViewSet":
        """The views where the boolean ``keep (N,)`` is true (at least one must be)."""
        if not bool(keep.any()):
            raise ValueError("coarse views: no view satisfies the constraints")
        outlines = self.outlines[keep] if self.outlines is not None else None
        return ViewSet(self.images[keep], self.silhouettes[keep], self.params[keep], self.cam, self.centroids[keep],
                       self.radii[keep], outlines)


def views_within(views: ViewSet, elevation_range: Tuple[float, float],
                 around: Optional[Tuple[float, float]] = None, reach: float = 180.0) -> ViewSet:
    """The views a constrained search needs: elevations inside ``elevation_range`` (degrees,
    widened to the nearest grid row on each side so that the refinement can reach the bounds) and,
    with ``around = (azimuth, elevation)``, viewing directions within ``reach`` degrees of it."""
    elevations = views.params[:, 1]
    rows = torch.unique(elevations)
    low, high = elevation_range
    below, above = rows[rows <= low], rows[rows >= high]
    low = float(below.max()) if below.numel() else float(rows.min())
    high = float(above.min()) if above.numel() else float(rows.max())
    keep = (elevations >= low - 1e-3) & (elevations <= high + 1e-3)
    if around is not None and reach < 180.0:
        deg = math.pi / 180.0
        az, el = views.params[:, 0].double() * deg, elevations.double() * deg
        az0, el0 = around[0] * deg, around[1] * deg
        cosine = torch.sin(el) * math.sin(el0) + torch.cos(el) * math.cos(el0) * torch.cos(az - az0)
        keep &= torch.rad2deg(torch.arccos(cosine.clamp(-1, 1))) <= reach
        if not bool(keep.any()):  # a reach finer than the grid: the nearest view
            keep[int(torch.argmax(cosine))] = True
    if bool(keep.all()):
        return views
    return views.subset(keep)


def view_set(images, silhouettes, params: torch.Tensor, cam: Intrinsics) -> ViewSet:
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
    centroids, _, radii = moments(silhouettes)
    return ViewSet(images, silhouettes, params, cam, centroids, radii)


#: Changes whenever the renders of :func:`render_coarse_views` would change: files written by
#: another version are not read.
DISK_FORMAT = "coarse-views-1"


class CoarseViewCache:
    """Coarse views per (mesh, field of view, grid): a batch of photos of one mesh renders the
    grid once. Kept in memory (the ``max_entries`` most recent) and, with a ``directory``, on disk
    as well, so that later processes (another ``gradhog align``, batch workers) skip the renders.

    Disk entries are written whole to a temporary file and renamed into place, so concurrent
    writers never leave a torn file (the last rename wins; both wrote the same content).
    Unreadable or foreign files are ignored and rewritten. Thread-unsafe in memory.
    """

    def __init__(self, max_entries: int = 12, directory: Optional[os.PathLike] = None):
        self._entries = LRU(max_entries)
        self.directory = Path(directory) if directory is not None else None
        self.hits = 0
        self.disk_hits = 0
        self.misses = 0

    def get(self, mesh: PreparedMesh, cam: Intrinsics, azimuth_step: float, elevations: Sequence[float]) -> ViewSet:
        """The views of ``mesh`` for ``cam``'s field of view and the grid (rendered on a miss)."""
        coarse = _coarse_camera(cam)
        key = (mesh.key, round(coarse.focal_px / coarse.fit_span_px, 4), float(azimuth_step), tuple(float(e) for e in elevations))
        if key in self._entries:
            self.hits += 1
            return self._entries.get(key)
        distance = _coarse_distance(coarse)
        count = int(round(360.0 / azimuth_step))
        poses = [Pose(a * azimuth_step, float(e), distance) for e in elevations for a in range(count)]
        rendered = self._read(key)
        if rendered is None:
            self.misses += 1
            rendered = render_coarse_views(mesh.vertices.double().numpy(), mesh.faces.numpy(), poses, coarse.as_dict())
            self._write(key, *rendered)
        else:
            self.disk_hits += 1
        params = torch.tensor([[p.azimuth, p.elevation, p.distance, p.roll] for p in poses], dtype=torch.float32)
        return self._entries.put(key, view_set(*rendered, params, coarse))

    def clear(self) -> None:
        """Forget the views held in memory (files on disk stay)."""
        self._entries.clear()

    def _path(self, key: tuple) -> Path:
        digest = hashlib.sha1(repr((DISK_FORMAT, key)).encode()).hexdigest()
        return self.directory / f"{DISK_FORMAT}-{digest}.npz"

    def _read(self, key: tuple) -> Optional[Tuple[torch.Tensor, torch.Tensor]]:
        if self.directory is None:
            return None
        try:
            with np.load(self._path(key)) as stored:
                # Pillow's renders are whole 8-bit shades and 0/1 coverage: stored exactly.
                images = torch.from_numpy(stored["shades"].astype(np.float32) / 255.0)
                silhouettes = torch.from_numpy(stored["silhouettes"].astype(np.float32))
        except (OSError, KeyError, ValueError):
            return None
        return images, silhouettes

    def _write(self, key: tuple, images: torch.Tensor, silhouettes: torch.Tensor) -> None:
        if self.directory is None:
            return
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=path.parent, prefix=path.stem, suffix=".tmp", delete=False) as handle:
                np.savez_compressed(handle, shades=np.round(images.numpy() * 255.0).astype(np.uint8),
                                    silhouettes=silhouettes.numpy() > 0.5)
            os.replace(handle.name, path)
        except OSError as error:  # a read-only or full cache folder costs speed, not the result
            warnings.warn(f"coarse-view cache: could not write {path}: {error}")
            try:
                os.unlink(handle.name)
            except (OSError, UnboundLocalError):
                pass


#: The process-wide cache used when no other is given.
DEFAULT_CACHE = CoarseViewCache()


def views_from_user(coarse_views: CoarseViews, mesh: PreparedMesh) -> ViewSet:
    cam = Intrinsics.coerce(coarse_views.intrinsics, name="coarse_views.intrinsics")
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
    return view_set(coarse_views.images, coarse_views.silhouettes, params, cam)
