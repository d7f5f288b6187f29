"""A differentiable rasterizer in pure torch: soft silhouettes and shaded gray renders of one mesh
seen from B cameras in gradhog's (Blender's) camera convention (``torch_backend.camera``).

Method (after SoftRas, Liu et al., ICCV 2019, with an exact 0.5 level; see docs/render_speed.md)
------------------------------------------------------------------------------------------------
For a pixel centre ``p`` and a projected triangle ``j`` let ``s_j(p)`` be the *signed Euclidean
distance in pixels* from ``p`` to the triangle (positive inside, exact distance to the nearest
edge or vertex outside). ``sharpness`` (pixels) is the width of the sigmoid that turns distances
into coverage: 0.27 -> 0.73 within +-1 sharpness of an edge.

* Contour edges are found per view: edges where the projected surface folds over (the face
  across lies on the same side of the edge on screen), boundary/non-manifold edges, and edges whose
  neighbour is not drawn. Closed, consistently oriented meshes are drawn with back faces culled
  (their projections are covered by front faces anyway); open meshes are drawn two-sided.
* Outside every triangle: ``silhouette = sigmoid(max_j s_j / sharpness)``, the sigmoid of the
  exact signed distance to the projected union. (SoftRas' ``1 - prod_j (1 - sigmoid(s_j))``
  would push the 0.5 level outwards wherever several soft edges overlap.)
* Inside: ``silhouette = sigmoid(d / sharpness)`` with ``d`` the distance to the nearest *visible*
  contour edge (a hard z-buffer of pixel centres hides contours lying more than 2 % of the depth
  range behind the front surface), so interior edges cause no seams. Both formulas give exactly
  0.5 on the silhouette: the coverage is continuous and ``silhouette > 0.5`` is the point-sampled
  coverage that Blender renders without anti-aliasing.
* Both are tapered to exactly 0 / 1 at ``5 * sharpness`` from the contour, so a face only touches
  the pixels of its screen-space box grown by that margin (faces without contour edges: none for
  silhouettes, ``2 * sharpness`` for shading), and box pixels surely beyond it are dropped before
  the differentiable pass: the cost follows covered pixels, not pixels x faces.
* Triangles with a vertex behind the near plane (1e-4 x the camera distance) or with a projected
  area below 1e-6 px^2 are dropped for that camera (no clipping). Degenerate faces (repeated
  indices, zero area) are removed once per mesh (:attr:`Mesh.topology`).

Shading: each face gets a flat Lambertian intensity under a directional head light (along the
camera's optical axis): ``ambient + (1 - ambient) * |cos(angle between face normal and the optical
axis)|`` (two-sided, like Blender's default), so creases between faces show up as intensity steps
(what HOG needs). Colours are blended SoftRas-style with weights ``D_j exp(-z_j / depth_softness)``,
``D_j = sigmoid(s_j / sharpness)`` tapered to 0 at ``2 * sharpness`` outside the face and scaled by
``|n_z|`` (faces turning edge-on fade out), ``z_j`` the
perspective-correct depth of the (barycentric-clipped) point of triangle ``j`` normalised to [0, 1]
over the drawn faces' depth range in that view; the shaded image is
``background + silhouette * presence * (colour - background)``, where ``presence`` (the largest
tapered ``D_j`` at the pixel, / 0.05, clipped at 1) fades the colour out just outside the
silhouette, where every weight has tapered to 0 and the normalised colour would jump.

Stages (the code follows them): :func:`torch_backend.rasterize.rasterize` (per (face, pixel) soft
coverage, barycentric depth and contour distances: :class:`~torch_backend.rasterize.Fragments`) ->
:func:`torch_backend.rasterize.silhouette` -> :func:`shade` (here). ``tests/reference_render.py``
holds a slow per-pixel implementation of the same maths that the tests compare with.

Faces are ``(F, 3)`` vertex indices; vertices are in the mesh's own frame (the camera looks at its
origin). Meshes are :class:`torch_backend.meshes.Mesh` (``render.Mesh`` is the same class) or plain
arrays. Big meshes: simplify first (``torch_backend.simplify.simplify_to_budget``). Only relative
imports: this package is vendored into the Blender add-on.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .camera import Camera, _camera_argument
from .rasterize import (DEFAULT_SHARPNESS, INTERIOR_MARGIN, Fragments, RasterizationSettings, rasterize,
                        silhouette as _silhouette)
from .triangle_mesh import Mesh

__all__ = ["DEFAULT_SHARPNESS", "Mesh", "RasterizationSettings", "ShadingSettings", "RenderResult", "render",
           "render_silhouette", "shade"]


@dataclass(frozen=True)
class ShadingSettings:
    """Flat head-light shading and SoftRas colour blending.

    Attributes:
        depth_softness: SoftRas' gamma on depth normalised to [0, 1] over the mesh's depth range in
            each view (smaller = harder occlusion).
        ambient: intensity of a surface seen edge-on; a surface facing the camera has 1.
        background: gray value outside the silhouette.
    """

    depth_softness: float = 0.05
    ambient: float = 0.25
    background: float = 0.0

    def __post_init__(self):
        if not (self.depth_softness > 0):
            raise ValueError(f"depth_softness must be > 0, got {self.depth_softness!r}")
        if not (0.0 <= self.ambient <= 1.0):
            raise ValueError(f"ambient must lie in [0, 1], got {self.ambient!r}")
        for name in ("depth_softness", "ambient", "background"):
            object.__setattr__(self, name, float(getattr(self, name)))


class RenderResult(NamedTuple):
    """Outputs of :func:`render`, each (H, W) or (B, H, W).

    silhouette: soft coverage in [0, 1].
    shaded: gray image in [0, 1] (flat Lambertian head light + ambient over ``background``).
    depth: soft depth (distance along the camera's viewing axis, scene units) of the visible
        surface; 0 where no triangle is within the sharpness margin.
    """

    silhouette: Tensor
    shaded: Tensor
    depth: Tensor


def _face_intensity(fragments: Fragments, ambient: float) -> tuple[Tensor, Tensor]:
    """(K,) |n_z| of each drawn face's unit normal in camera space, and its flat intensity.

    A directional head light along the optical axis: a point light at the camera would give the
    two triangles of a planar quad different flat intensities, i.e. a fake crease.
    """
    b_idx, f_idx = fragments.face_batch, fragments.face_index
    cam_tri = fragments.points_cam[b_idx[:, None], fragments.faces[f_idx]]  # (K, 3, 3)
    normal = torch.linalg.cross(cam_tri[:, 1] - cam_tri[:, 0], cam_tri[:, 2] - cam_tri[:, 0])
    facing = (normal[:, 2] / torch.sqrt((normal * normal).sum(-1) + 1e-30)).abs()
    return facing, ambient + (1.0 - ambient) * facing


def shade(fragments: Fragments, silhouette: Tensor, settings: ShadingSettings) -> tuple[Tensor, Tensor]:
    """Stage 3: shaded gray image and soft depth, each (B, H, W), from the fragments of a
    ``rasterize(..., shading=True)`` call and their silhouette (see the module docstring)."""
    background = settings.background
    if fragments.empty is not None:
        return torch.full_like(silhouette, background) + fragments.empty, fragments.empty.clone()
    n_pixels = silhouette.numel()
    dtype, device = silhouette.dtype, silhouette.device
    groups = fragments.groups
    pair_face = torch.cat([group.face for group in groups])
    pixel = torch.cat([group.pixel for group in groups])
    # The edge-line distance (exact inside, an underestimate outside) for every face alike, so
    # that a face gaining or losing a contour edge does not change its weights.
    signed = torch.cat([group.edge for group in groups])
    pair_depth = torch.cat([group.depth for group in groups])
    facing, intensity = _face_intensity(fragments, settings.ambient)
    b_idx = fragments.face_batch
    # per-face values gathered once per pair
    pair_front, pair_span, pair_log_facing, pair_intensity = torch.stack(
        [fragments.front_depth[b_idx], fragments.span[b_idx], torch.log(facing + 1e-6), intensity], dim=-1
    ).index_select(0, pair_face).unbind(-1)
    znorm = (pair_depth - pair_front) / pair_span
    # log of SoftRas' weight D_j exp(-z_j / gamma), D_j tapered to 0 at the interior margin (the
    # same for every face) and scaled by |n_z| so that a face turning edge-on (about to be culled
    # or to flip) fades out instead of vanishing abruptly
    log_presence = F.logsigmoid(signed) + 2.0 * torch.log((1.0 + signed / INTERIOR_MARGIN).clamp(0.0, 1.0) + 1e-30)
    logits = log_presence + pair_log_facing - znorm / settings.depth_softness
    # Where every face's weight tapers to 0 (just outside the silhouette) the normalised colour
    # would jump to 0: fade it to the background with the largest tapered coverage instead.
    presence = torch.zeros(n_pixels, dtype=dtype, device=device)
    presence = presence.scatter_reduce(0, pixel, torch.exp(log_presence), reduce="amax", include_self=True)
    presence = (presence / 0.05).clamp(max=1.0)
    with torch.no_grad():
        peak = torch.full((n_pixels,), -torch.inf, dtype=dtype, device=device)
        peak = peak.scatter_reduce(0, pixel, logits, reduce="amax", include_self=True)
    weight = torch.exp(logits - peak[pixel])

    zeros = torch.zeros(n_pixels, dtype=dtype, device=device)
    weight_sum = zeros.index_add(0, pixel, weight)
    colour = zeros.index_add(0, pixel, weight * pair_intensity) / weight_sum.clamp(min=1e-30)
    soft_depth = zeros.index_add(0, pixel, weight * pair_depth) / weight_sum.clamp(min=1e-30)
    shaded = background + silhouette.reshape(-1) * presence * (colour - background)
    return shaded.reshape(fragments.shape), soft_depth.reshape(fragments.shape)


_RASTER_FIELDS = tuple(f.name for f in fields(RasterizationSettings))
_SHADING_FIELDS = tuple(f.name for f in fields(ShadingSettings))


def _settings(cls, given, keywords: dict, names: tuple, caller: str):
    """``given`` settings, or ``cls`` built from (and popped out of) the flat keywords."""
    flat = {name: keywords.pop(name) for name in names if name in keywords}
    if given is None:
        return cls(**flat)
    if flat:
        raise TypeError(f"{caller}: give {cls.__name__} or its keywords, not both (got {sorted(flat)})")
    return given


def render_silhouette(vertices, faces=None, camera: Camera | None = None, *,
                      raster_settings: RasterizationSettings | None = None, **keywords) -> Tensor:
    """Soft silhouette of a mesh seen by Blender cameras (see the module docstring for the method).

    Args:
        vertices: (V, 3) float tensor/array in the mesh's own frame, or a :class:`Mesh` (then
            ``faces`` is omitted).
        faces: (F, 3) integer tensor/array.
        camera: :class:`~torch_backend.camera.Camera`; or instead its flat keywords ``azimuth,
            elevation, distance, roll, shift_x, shift_y, lens_mm, sensor_width_mm,
            sensor_height_mm, sensor_fit, resolution``, exactly as in
            :func:`torch_backend.camera.project_points` (degrees; floats or tensors of shape (B,)).
        raster_settings: :class:`RasterizationSettings`; or instead its keywords ``sharpness``
            (sigmoid width in pixels) and ``backface_culling`` ("auto", True, False).

    Returns:
        (H, W) coverage in [0, 1] for an unbatched camera, (B, H, W) for a batched one;
        differentiable w.r.t. the vertices and every camera parameter.
    """
    raster_settings = _settings(RasterizationSettings, raster_settings, keywords, _RASTER_FIELDS, "render_silhouette")
    camera = _camera_argument(camera, keywords, "render_silhouette")
    mesh = Mesh.from_arrays(vertices, faces)
    fragments = rasterize(mesh, camera, raster_settings, shading=False)
    coverage = _silhouette(fragments)
    return coverage if fragments.batched else coverage[0]


def render(vertices, faces=None, camera: Camera | None = None, *,
           raster_settings: RasterizationSettings | None = None, shading_settings: ShadingSettings | None = None,
           **keywords) -> RenderResult:
    """Soft silhouette, flat-shaded gray image and soft depth of a mesh (mesh, camera and
    rasterization arguments as in :func:`render_silhouette`).

    Args:
        shading_settings: :class:`ShadingSettings`; or instead its keywords ``depth_softness``,
            ``ambient`` and ``background``.

    Returns:
        :class:`RenderResult` of (H, W) or (B, H, W) tensors.
    """
    shading_settings = _settings(ShadingSettings, shading_settings, keywords, _SHADING_FIELDS, "render")
    raster_settings = _settings(RasterizationSettings, raster_settings, keywords, _RASTER_FIELDS, "render")
    camera = _camera_argument(camera, keywords, "render")
    mesh = Mesh.from_arrays(vertices, faces)
    fragments = rasterize(mesh, camera, raster_settings, shading=True)
    coverage = _silhouette(fragments)
    shaded, depth = shade(fragments, coverage, shading_settings)
    outputs = (coverage, shaded, depth)
    if not fragments.batched:
        outputs = tuple(o[0] for o in outputs)
    return RenderResult(*outputs)
