"""The rasterizer's first two stages: per (face, pixel) soft coverage, then the soft silhouette.

The method is described in :mod:`torch_backend.render`, which adds the third stage (shading) and
the public functions. The stages:

1. :func:`rasterize` projects the mesh, picks the faces drawn in each view and their contour edges,
   lists the (face, pixel) pairs near each face and computes, per pair, the signed distance,
   whether the pixel centre is inside, the perspective-correct depth and the distance to the face's
   contour edges (:class:`Fragments`, like PyTorch3D's).
2. :func:`silhouette` aggregates the pairs into the soft silhouette (a hard z-buffer tells visible
   contour edges from hidden ones).

Only relative imports: this package is vendored into the Blender add-on.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple, Optional

import torch
from torch import Tensor

from .camera import Camera, transform_points
from .intrinsics import project_camera_points
from .triangle_mesh import Mesh

__all__ = ["DEFAULT_SHARPNESS", "RasterizationSettings", "PairTerms", "Fragments", "rasterize", "silhouette"]

DEFAULT_SHARPNESS = 0.5
"""Sigmoid width in pixels used by default (and by the gradient tests)."""

MARGIN = 5.0  # contour faces' boxes grow by this many sharpness widths; coverage tapers to 0 there
OCCLUSION_TOLERANCE = 0.02  # contour edges this far (x depth range) behind the z-buffer are hidden
INTERIOR_MARGIN = 2.0  # other faces (shading only): colours blend across creases within this
NEAR = 1e-4  # near plane as a fraction of the camera distance
MIN_AREA = 1e-6  # px^2: smaller projected triangles are dropped


@dataclass(frozen=True)
class RasterizationSettings:
    """How faces turn into soft coverage (the image size is the camera's resolution).

    Attributes:
        sharpness: sigmoid width in pixels (smaller = closer to a hard silhouette, sparser gradients).
        backface_culling: "auto" (cull when the mesh is closed and consistently oriented), True, False.
    """

    sharpness: float = DEFAULT_SHARPNESS
    backface_culling: Any = "auto"

    def __post_init__(self):
        try:
            sharpness = float(self.sharpness)
        except (TypeError, ValueError):
            sharpness = math.nan
        if not (math.isfinite(sharpness) and sharpness > 0):
            raise ValueError(f"sharpness must be a positive number of pixels, got {self.sharpness!r}")
        object.__setattr__(self, "sharpness", sharpness)


class PairTerms(NamedTuple):
    """Per-pair values for N (face, pixel) pairs; distances in sharpness units.

    face: (N,) row into the drawn faces (:attr:`Fragments.face_batch`); pixel: (N,) flat index into
    (B, H, W); centre: (N, 2) pixel centre; signed: exact signed distance to the face (positive
    inside) for faces with a contour edge, else the edge-line distance; inside: (N,) bool;
    depth: (N,) perspective-correct depth of the barycentric-clipped point; contour: (N,) distance
    to the face's contour edges (None for faces without one); edge: (N,) the edge-line distance
    (exact inside, an underestimate outside).
    """

    face: Tensor
    pixel: Tensor
    centre: Tensor
    signed: Tensor
    inside: Tensor
    depth: Tensor
    contour: Optional[Tensor]
    edge: Tensor


class Fragments(NamedTuple):
    """Output of :func:`rasterize` for B views of H x W pixels.

    groups: :class:`PairTerms` of the faces with a contour edge, then of the others (absent groups
        left out); empty when nothing is drawn.
    face_batch, face_index: (K,) view and face (row of ``faces``) of each drawn face.
    faces: (F', 3) the mesh's drawable faces; points_cam: (B, V, 3) camera-space vertices.
    front_depth, span: (B,) nearest drawn depth and depth range of the drawn faces (span >= 1e-12).
    shape: (B, H, W); batched: whether the camera was batched.
    empty: when no face touches a pixel, a zero (B, H, W) tensor that keeps the graph, else None.
    """

    groups: list
    face_batch: Tensor
    face_index: Tensor
    faces: Tensor
    points_cam: Tensor
    front_depth: Tensor
    span: Tensor
    shape: tuple
    batched: bool
    empty: Optional[Tensor]


class _Boxes(NamedTuple):
    """Drawn faces (K of them) and their pixel boxes, from :func:`_select_faces` (no graph)."""

    valid: Tensor  # (B, F) drawn faces
    face_batch: Tensor  # (K,)
    face_index: Tensor  # (K,)
    contour: Tensor  # (K, 3) contour edges
    margin: Tensor  # (K,) pixels
    x0: Tensor  # (K,) first box column / row, long
    y0: Tensor
    box_w: Tensor  # (K,) box width, long
    counts: Tensor  # (K,) pixels in the box
    total: int


def _project(mesh: Mesh, camera: Camera) -> tuple[Tensor, Tensor, Tensor, Tensor, bool]:
    """Camera-space vertices (B, V, 3), pixels (B, V, 2), depths (B, V), distances (B,), batched."""
    vertices = mesh.vertices
    view = camera.world_to_camera(dtype=vertices.dtype, device=vertices.device)
    batched = view.dim() == 3
    if not batched:
        view = view[None]
    points_cam = transform_points(vertices, view)  # (B, V, 3)
    if points_cam.shape[0] != view.shape[0]:
        points_cam = points_cam.expand(view.shape[0], -1, -1)
    screen, depth = project_camera_points(points_cam, camera.intrinsics)
    distance = torch.linalg.vector_norm(view[:, :3, 3], dim=-1)  # (B,)
    return points_cam, screen, depth, distance, batched


@torch.no_grad()
def _select_faces(mesh: Mesh, screen: Tensor, tri: Tensor, tri_depth: Tensor, distance: Tensor,
                  settings: RasterizationSettings, shading: bool, size: tuple[int, int]) -> _Boxes:
    """Faces drawn in each view, their contour edges and their screen boxes grown by the margin."""
    topology = mesh.topology
    batch = screen.shape[0]
    width, height = size
    sharpness = settings.sharpness
    d01 = tri[..., 1, :] - tri[..., 0, :]
    d02 = tri[..., 2, :] - tri[..., 0, :]
    area2 = d01[..., 0] * d02[..., 1] - d01[..., 1] * d02[..., 0]
    in_front = tri_depth.min(-1).values > NEAR * distance[:, None]
    valid = in_front & (area2.abs() > 2 * MIN_AREA)
    cull = topology.closed if settings.backface_culling == "auto" else bool(settings.backface_culling)
    if cull:
        # y points down in pixels, so a face wound counter-clockwise seen from the camera has
        # a negative signed area; ``outward`` flips this for meshes wound the other way.
        valid &= area2 * topology.outward < 0
    # Contour edges: where the projected surface folds over (the neighbour across the edge
    # lies on the same side of it as this face), boundary/non-manifold edges, and edges whose
    # neighbour is not drawn. Only faces with a contour edge need the wide soft margin; the
    # others lie inside the silhouette.
    nb = topology.neighbours.clamp(min=0)
    nb_valid = valid.gather(1, nb.reshape(1, -1).expand(batch, -1)).reshape(batch, -1, 3)
    nb_valid &= (topology.neighbours >= 0)[None]
    edge_vec = tri.roll(-1, dims=-2) - tri  # (B, F, 3, 2)
    opp = screen[:, topology.opposite.clamp(min=0)]  # (B, F, 3, 2)
    to_opp = opp - tri
    side_opp = edge_vec[..., 0] * to_opp[..., 1] - edge_vec[..., 1] * to_opp[..., 0]
    folded = side_opp * area2[..., None] >= 0
    contour_edge = valid[..., None] & (~nb_valid | folded)
    has_contour = contour_edge.any(-1)
    margin = torch.where(has_contour, MARGIN * sharpness, (INTERIOR_MARGIN * sharpness) if shading else 0.0)
    lo = tri.min(dim=-2).values - margin[..., None]  # (B, F, 2)
    hi = tri.max(dim=-2).values + margin[..., None]
    # pixel i is touched when its centre i + 0.5 lies in [lo, hi]
    x0 = torch.ceil(lo[..., 0] - 0.5).clamp(min=0)
    x1 = torch.floor(hi[..., 0] - 0.5).clamp(max=width - 1)
    y0 = torch.ceil(lo[..., 1] - 0.5).clamp(min=0)
    y1 = torch.floor(hi[..., 1] - 0.5).clamp(max=height - 1)
    valid &= (x1 >= x0) & (y1 >= y0)
    b_idx, f_idx = valid.nonzero(as_tuple=True)
    x0, y0 = x0[b_idx, f_idx].long(), y0[b_idx, f_idx].long()
    box_w = x1[b_idx, f_idx].long() - x0 + 1
    box_h = y1[b_idx, f_idx].long() - y0 + 1
    counts = box_w * box_h
    total = int(counts.sum()) if counts.numel() else 0
    return _Boxes(valid, b_idx, f_idx, contour_edge[b_idx, f_idx], margin[b_idx, f_idx], x0, y0, box_w, counts, total)


@torch.no_grad()
def _candidate_pairs(tri: Tensor, boxes: _Boxes, size: tuple[int, int]) -> tuple[Optional[tuple], Optional[tuple]]:
    """``(face, pixel, centre)`` of the box pixels whose centre may lie within the face's margin,
    for the faces with a contour edge and for the others (None for an empty group)."""
    width, height = size
    dtype, device = tri.dtype, tri.device
    b_idx, f_idx, counts = boxes.face_batch, boxes.face_index, boxes.counts
    face_has_contour = boxes.contour.any(-1)
    # edge lines (unit normals, no graph) to drop box pixels that are surely beyond the margin
    k_tri = tri[b_idx, f_idx]
    k_edges = k_tri.roll(-1, dims=-2) - k_tri
    k_len = torch.sqrt((k_edges * k_edges).sum(-1) + 1e-20)
    k_area = k_edges[:, 0, 0] * -k_edges[:, 2, 1] + k_edges[:, 0, 1] * k_edges[:, 2, 0]
    k_a = -torch.sign(k_area)[:, None] * k_edges[..., 1] / k_len
    k_b = torch.sign(k_area)[:, None] * k_edges[..., 0] / k_len
    k_c = -(k_a * k_tri[..., 0] + k_b * k_tri[..., 1])
    # one (K, 14) table so that each pair needs a single gather
    k_table = torch.cat([k_a, k_b, k_c, boxes.margin[:, None].to(dtype), boxes.x0[:, None].to(dtype),
                         boxes.y0[:, None].to(dtype), boxes.box_w[:, None].to(dtype), b_idx[:, None].to(dtype)], dim=1)

    def expand(member: Tensor):
        chosen = member.nonzero(as_tuple=True)[0]
        chosen_counts = counts[chosen]
        n = int(chosen_counts.sum()) if chosen.numel() else 0
        if n == 0:
            return None
        owner = torch.repeat_interleave(torch.arange(chosen.numel(), device=device), chosen_counts, output_size=n)
        face = chosen.index_select(0, owner)
        local = torch.arange(n, device=device) - (torch.cumsum(chosen_counts, 0) - chosen_counts).index_select(0, owner)
        table = k_table.index_select(0, face)
        box_width = table[:, 12].long()
        px = table[:, 10].long() + local % box_width
        py = table[:, 11].long() + local // box_width
        centre = torch.stack([px, py], dim=-1).to(dtype) + 0.5
        # the distance to a triangle is at least its largest edge-line violation
        line = table[:, 0:3] * centre[:, 0:1] + table[:, 3:6] * centre[:, 1:2] + table[:, 6:9]
        near = (line.min(dim=-1).values >= -table[:, 9]).nonzero(as_tuple=True)[0]
        face, px, py, centre = (t.index_select(0, near) for t in (face, px, py, centre))
        batch_of = table[:, 13].index_select(0, near).long()
        if face.numel() == 0:
            return None
        pixel = (batch_of * height + py) * width + px  # flat index into (B, H, W)
        return face, pixel, centre

    # faces with a contour edge need exact distances; the others only cover (and shade)
    return expand(face_has_contour), expand(~face_has_contour)


def _face_coefficients(tri: Tensor, tri_depth: Tensor, b_idx: Tensor, f_idx: Tensor) -> dict:
    """Per drawn face, linear functions of the pixel position (with gradients).

    For edge i from v_i to v_{i+1} with length l_i: ``line_i(p)`` is the signed distance to the
    edge's line, positive on the triangle's side, and ``tangent_i(p)`` the position of p's
    projection along the edge (0 at v_i, 1 at v_{i+1}). One gather per pair later instead of
    gathering vertices.
    """
    face_tri = tri[b_idx, f_idx]  # (K, 3, 2) with grad
    edges = face_tri.roll(-1, dims=-2) - face_tri
    length = torch.sqrt((edges * edges).sum(-1) + 1e-20)  # (K, 3)
    face_area2 = edges[:, 0, 0] * -edges[:, 2, 1] + edges[:, 0, 1] * edges[:, 2, 0]  # e0 x (v2 - v0)
    orient = torch.sign(face_area2.detach())[:, None]
    line_a = -orient * edges[..., 1] / length
    line_b = orient * edges[..., 0] / length
    line_c = -(line_a * face_tri[..., 0] + line_b * face_tri[..., 1])
    # 1/depth is linear in screen space: its barycentric weights are line_i * l_i / |area| (the
    # weight of the vertex opposite edge i).
    inv_depth = 1.0 / tri_depth[b_idx, f_idx]  # (K, 3)
    area_abs = face_area2.abs()
    length_area = length / area_abs[:, None]
    inv_coef = length_area * inv_depth.roll(-2, dims=-1)
    with torch.no_grad():
        lo_inv, hi_inv = inv_depth.min(-1).values, inv_depth.max(-1).values
    return dict(face_tri=face_tri, edges=edges, length=length, line=[line_a, line_b, line_c],
                length_area=length_area, inv_coef=inv_coef, lo_inv=lo_inv, hi_inv=hi_inv)


def _pair_terms(group: tuple, coef: dict, face_contour: Optional[Tensor], sharpness: float) -> PairTerms:
    """Signed distance, inside flag, depth, edge-line distance and, when ``face_contour`` (K, 3) is
    given, the distance to the face's contour edges, for every (face, pixel) pair of ``group``."""
    face, pixel, centre = group
    exact = face_contour is not None
    length, edges, face_tri = coef["length"], coef["edges"], coef["face_tri"]
    columns = coef["line"] + [coef["length_area"], coef["inv_coef"]]
    if exact:
        tan_p = edges[..., 0] / (length * length)
        tan_q = edges[..., 1] / (length * length)
        tan_r = -(tan_p * face_tri[..., 0] + tan_q * face_tri[..., 1])
        columns += [tan_p, tan_q, tan_r, length]
    # unbind (not indexing): its backward is one stack, not a zero-filled tensor per slice
    pair_coef = torch.stack(columns, dim=-1).index_select(0, face).unbind(-1)  # each (N, 3)
    x, y = centre[:, 0:1], centre[:, 1:2]
    line = pair_coef[0] * x + pair_coef[1] * y + pair_coef[2]  # (N, 3)
    inside = (line.detach() >= 0).all(dim=-1)
    # Barycentric clipping (SoftRas): negative barycentrics set to 0 and renormalised, so a pixel
    # outside a triangle takes the depth of a point of the triangle, not of its extended plane.
    clipped = line.clamp(min=0.0)
    pair_inv = (clipped * pair_coef[4]).sum(-1) / ((clipped * pair_coef[3]).sum(-1) + 1e-12)
    pair_inv = torch.maximum(torch.minimum(pair_inv, coef["hi_inv"][face]), coef["lo_inv"][face])  # rounding guard
    line_min = line.min(dim=-1).values  # exact signed distance inside, an underestimate outside
    if not exact:
        return PairTerms(face, pixel, centre, line_min / sharpness, inside, 1.0 / pair_inv, None, line_min / sharpness)
    along = pair_coef[5] * x + pair_coef[6] * y + pair_coef[7]
    beyond = (along - along.clamp(0.0, 1.0)) * pair_coef[8]
    edge_dist2 = line * line + beyond * beyond  # squared distance to each edge segment
    outside_dist = torch.sqrt(edge_dist2.min(dim=-1).values + 1e-12)
    signed = torch.where(inside, line_min, -outside_dist) / sharpness
    contour_dist = torch.sqrt(edge_dist2.masked_fill(~face_contour[face], 1e30).min(dim=-1).values + 1e-12)
    return PairTerms(face, pixel, centre, signed, inside, 1.0 / pair_inv, contour_dist / sharpness,
                     line_min / sharpness)


def _depth_range(valid: Tensor, tri_depth: Tensor) -> tuple[Tensor, Tensor]:
    """(B,) nearest depth and depth range of the drawn faces, which normalise depth for the soft
    z-buffer (with gradient: the span does not cancel in the softmax)."""
    drawn = valid.any(dim=1)
    front_depth = torch.where(valid[..., None], tri_depth, torch.full_like(tri_depth, torch.inf)).amin(dim=(1, 2))
    back_depth = torch.where(valid[..., None], tri_depth, torch.full_like(tri_depth, -torch.inf)).amax(dim=(1, 2))
    front_depth = torch.where(drawn, front_depth, torch.zeros_like(front_depth))
    span = torch.where(drawn, back_depth - front_depth, torch.ones_like(front_depth)).clamp(min=1e-12)
    return front_depth, span


def rasterize(mesh: Mesh, camera: Camera, settings: RasterizationSettings, *, shading: bool = False) -> Fragments:
    """Stage 1: soft coverage of every (face, pixel) pair near a face of ``mesh`` seen by ``camera``.

    Args:
        mesh: a checked :class:`~torch_backend.triangle_mesh.Mesh`.
        camera: :class:`~torch_backend.camera.Camera` (B views, or one).
        settings: :class:`RasterizationSettings`.
        shading: the fragments will be shaded, so faces without a contour edge also need a
            margin and gradients.

    Returns:
        :class:`Fragments`; differentiable w.r.t. the vertices and every camera parameter.
    """
    points_cam, screen, depth, distance, batched = _project(mesh, camera)
    width, height = camera.resolution
    shape = (screen.shape[0], height, width)
    faces = mesh.topology.faces
    tri = screen[:, faces]  # (B, F, 3, 2)
    tri_depth = depth[:, faces]  # (B, F, 3)
    boxes = _select_faces(mesh, screen, tri, tri_depth, distance, settings, shading, (width, height))
    b_idx, f_idx = boxes.face_batch, boxes.face_index
    if boxes.total == 0:
        empty = (screen.sum() * 0).expand(shape)  # keeps the graph (zero gradients, never NaN)
        return Fragments([], b_idx, f_idx, faces, points_cam, None, None, shape, batched, empty)
    contour_group, interior_group = _candidate_pairs(tri, boxes, (width, height))
    coef = _face_coefficients(tri, tri_depth, b_idx, f_idx)
    groups = []
    if contour_group is not None:
        groups.append(_pair_terms(contour_group, coef, boxes.contour, settings.sharpness))
    if interior_group is not None:
        # without shading the interior pairs only say "covered" and feed the z-buffer: no graph
        with torch.set_grad_enabled(shading and torch.is_grad_enabled()):
            groups.append(_pair_terms(interior_group, coef, None, settings.sharpness))
    front_depth, span = _depth_range(boxes.valid, tri_depth)
    return Fragments(groups, b_idx, f_idx, faces, points_cam, front_depth, span, shape, batched, None)


def taper(distance: Tensor, margin: float) -> Tensor:
    """(1 - d / margin)^2 clamped to [0, 1]: 1 at distance 0, exactly 0 from ``margin`` on."""
    return (1.0 - distance / margin).clamp(0.0, 1.0) ** 2


def silhouette(fragments: Fragments) -> Tensor:
    """Stage 2: soft silhouette (B, H, W) in [0, 1] from the fragments.

    Outside every triangle: the sigmoid of the exact signed distance to the projected union, i.e.
    to the nearest triangle (that lies on a face with a contour edge, so only those count, and
    overlapping soft edges cannot inflate the coverage as in SoftRas' product). Inside: the sigmoid
    of the distance to the nearest *visible contour edge* (interior edges between visible faces do
    not count, nor do contours hidden behind a nearer surface), so the coverage is continuous
    across the silhouette and has no seams inside it.
    """
    if fragments.empty is not None:
        return fragments.empty.clone()
    n_pixels = math.prod(fragments.shape)
    dtype, device = fragments.span.dtype, fragments.span.device
    with torch.no_grad():
        # hard z-buffer of the pixel centres, to tell visible contour edges from occluded ones
        zbuffer = torch.full((n_pixels,), torch.inf, dtype=dtype, device=device)
        for group in fragments.groups:
            zbuffer = zbuffer.scatter_reduce(0, group.pixel, torch.where(group.inside, group.depth.detach(), torch.inf),
                                             reduce="amin")
        inside_any = torch.isfinite(zbuffer)
    nearest = torch.full((n_pixels,), -MARGIN, dtype=dtype, device=device)
    inner = torch.full((n_pixels,), MARGIN, dtype=dtype, device=device)
    contour = fragments.groups[0] if fragments.groups and fragments.groups[0].contour is not None else None
    if contour is not None:
        nearest = nearest.scatter_reduce(0, contour.pixel, contour.signed, reduce="amax", include_self=True)
        with torch.no_grad():
            tolerance = OCCLUSION_TOLERANCE * fragments.span.detach()[fragments.face_batch[contour.face]]
            visible = contour.depth <= zbuffer[contour.pixel] + tolerance
        inner = inner.scatter_reduce(0, contour.pixel,
                                     torch.where(visible, contour.contour, torch.full_like(contour.contour, MARGIN)),
                                     reduce="amin", include_self=True)
    outside = torch.sigmoid(nearest) * taper(-nearest, MARGIN)
    inside_cover = 1.0 - (1.0 - torch.sigmoid(inner)) * taper(inner, MARGIN)
    return torch.where(inside_any, inside_cover, outside).reshape(fragments.shape)
