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
  indices, zero area) are removed once when the mesh is prepared (:class:`Mesh`).

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

Faces are ``(F, 3)`` vertex indices; vertices are in the mesh's own frame (the camera looks at its
origin). Big meshes: simplify first (``torch_backend.simplify.simplify_to_budget``). Only relative
imports: this package is vendored into the Blender add-on.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .camera import Intrinsics, _as_param, project_camera_points, transform_points, world_to_camera

__all__ = ["DEFAULT_SHARPNESS", "Mesh", "RenderResult", "render", "render_silhouette"]

DEFAULT_SHARPNESS = 0.5
"""Sigmoid width in pixels used by default (and by the gradient tests)."""

_MARGIN = 5.0  # contour faces' boxes grow by this many sharpness widths; coverage tapers to 0 there
_OCCLUSION_TOLERANCE = 0.02  # contour edges this far (x depth range) behind the z-buffer are hidden
_INTERIOR_MARGIN = 2.0  # other faces (shading only): colours blend across creases within this
_NEAR = 1e-4  # near plane as a fraction of the camera distance
_MIN_AREA = 1e-6  # px^2: smaller projected triangles are dropped


# --------------------------------------------------------------------------------------------
# mesh preparation
# --------------------------------------------------------------------------------------------
def _edge_adjacency(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """Neighbours across the edges of a triangle mesh.

    Returns:
        neighbour (F, 3): the face across edge i (vertex i -> i+1) of each face, -1 for a boundary
            or non-manifold edge (shared by one or by more than two faces);
        opposite (F, 3): that neighbour's vertex off the shared edge (-1 likewise);
        closed: every edge is shared by exactly two faces that traverse it in opposite directions.
    """
    n_faces = len(faces)
    start = np.concatenate([faces[:, 0], faces[:, 1], faces[:, 2]]).astype(np.int64)  # edge-major
    end = np.concatenate([faces[:, 1], faces[:, 2], faces[:, 0]]).astype(np.int64)
    third = np.concatenate([faces[:, 2], faces[:, 0], faces[:, 1]]).astype(np.int64)
    n = int(faces.max()) + 1
    undirected = np.minimum(start, end) * n + np.maximum(start, end)
    order = np.argsort(undirected, kind="stable")
    keys = undirected[order]
    first = np.r_[True, keys[1:] != keys[:-1]]
    group = np.cumsum(first) - 1
    group_size = np.bincount(group)[group]
    neighbour_row = np.full(len(keys), -1, np.int64)
    pair = group_size == 2
    is_first = pair & first
    firsts = np.nonzero(is_first)[0]
    neighbour_row[order[firsts]] = order[firsts + 1]
    neighbour_row[order[firsts + 1]] = order[firsts]
    has = neighbour_row >= 0
    neighbour = np.where(has, neighbour_row % max(n_faces, 1), -1)
    opposite = np.where(has, third[np.where(has, neighbour_row, 0)], -1)
    closed = bool(pair.all()) and bool((start[np.where(has, neighbour_row, 0)] == end)[has].all())
    return neighbour.reshape(3, n_faces).T.copy(), opposite.reshape(3, n_faces).T.copy(), closed


@dataclass(frozen=True)
class Mesh:
    """A triangle mesh prepared for rendering (build it once, render it many times).

    Attributes:
        vertices: (V, 3) float tensor (may require grad).
        faces: (F, 3) long tensor, degenerate faces removed.
        neighbours: (F, 3) long, the face across edge i (vertex i -> i+1) of each face; -1 for
            boundary and non-manifold edges.
        opposite: (F, 3) long, that neighbour's vertex off the shared edge (-1 likewise).
        closed: every edge shared by exactly two faces in opposite directions (back faces can be culled).
        outward: +1 when its faces wind counter-clockwise seen from outside (positive volume), else -1.
    """

    vertices: Tensor
    faces: Tensor
    neighbours: Tensor
    opposite: Tensor
    closed: bool
    outward: float

    @classmethod
    def from_arrays(cls, vertices: Any, faces: Any) -> "Mesh":
        """Validate and prepare ``vertices`` (V, 3) float and ``faces`` (F, 3) int (tensors or arrays).

        Faces with repeated indices or zero 3D area are removed. Raises ``ValueError`` for bad
        shapes/dtypes, out-of-range indices, non-finite vertices or no usable face.
        """
        if isinstance(vertices, Mesh):
            return vertices
        if isinstance(vertices, np.ndarray):
            vertices = torch.from_numpy(np.ascontiguousarray(vertices))
        if isinstance(faces, np.ndarray):
            faces = torch.from_numpy(np.ascontiguousarray(faces))
        if not isinstance(vertices, Tensor) or not isinstance(faces, Tensor):
            raise ValueError("vertices and faces must be tensors or numpy arrays")
        if vertices.dim() != 2 or vertices.shape[1] != 3 or vertices.shape[0] == 0:
            raise ValueError(f"vertices must have shape (V, 3) with V > 0, got {tuple(vertices.shape)}")
        if not vertices.is_floating_point():
            raise ValueError(f"vertices must be float32/float64, got {vertices.dtype}")
        if faces.dim() != 2 or faces.shape[1] != 3 or faces.shape[0] == 0:
            raise ValueError(f"faces must have shape (F, 3) with F > 0 (triangulate polygons first: "
                             f"torch_backend.simplify.triangulate), got {tuple(faces.shape)}")
        if faces.is_floating_point() or faces.dtype == torch.bool:
            raise ValueError(f"faces must be integer vertex indices, got {faces.dtype}")
        if not bool(torch.isfinite(vertices.detach()).all()):
            raise ValueError("vertices must be finite")
        faces = faces.to(device=vertices.device, dtype=torch.long)
        if int(faces.min()) < 0 or int(faces.max()) >= vertices.shape[0]:
            raise ValueError(f"face indices must lie in [0, {vertices.shape[0] - 1}], "
                             f"got [{int(faces.min())}, {int(faces.max())}]")
        v = vertices.detach().to(torch.float64)
        tri = v[faces]
        cross = torch.linalg.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        area2 = torch.linalg.vector_norm(cross, dim=-1)
        scale = float((v.max(0).values - v.min(0).values).norm()) or 1.0
        keep = (area2 > 1e-12 * scale * scale) & (faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) \
            & (faces[:, 2] != faces[:, 0])
        if not bool(keep.any()):
            raise ValueError("the mesh has no face with non-zero area")
        faces = faces[keep]
        neighbours, opposite, closed = _edge_adjacency(faces.cpu().numpy())
        as_long = lambda a: torch.from_numpy(a).to(device=vertices.device, dtype=torch.long)  # noqa: E731
        volume = float((tri[keep, 0] * cross[keep]).sum()) / 6.0
        return cls(vertices, faces, as_long(neighbours), as_long(opposite), closed, 1.0 if volume >= 0 else -1.0)


# --------------------------------------------------------------------------------------------
# rasterization
# --------------------------------------------------------------------------------------------
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


def _camera_setup(mesh: Mesh, camera: dict) -> tuple[Tensor, Tensor, Tensor, Intrinsics, bool, Tensor]:
    vertices = mesh.vertices
    dtype, device = vertices.dtype, vertices.device
    intrinsics = Intrinsics(camera["lens_mm"], camera["sensor_width_mm"], camera["sensor_height_mm"],
                            camera["sensor_fit"], camera["shift_x"], camera["shift_y"], tuple(camera["resolution"]))
    view = world_to_camera(camera["azimuth"], camera["elevation"], camera["distance"], camera["roll"],
                           dtype=dtype, device=device)
    batched = view.dim() == 3
    intrinsic_dims = [_as_param(k, camera[k], dtype, device).dim()
                      for k in ("lens_mm", "sensor_width_mm", "sensor_height_mm", "shift_x", "shift_y")]
    if not batched:
        if any(intrinsic_dims):
            raise ValueError("batched intrinsics need batched pose keywords (tensors of shape (B,))")
        view = view[None]
    points_cam = transform_points(vertices, view)  # (B, V, 3)
    if points_cam.shape[0] != view.shape[0]:
        points_cam = points_cam.expand(view.shape[0], -1, -1)
    screen, depth = project_camera_points(points_cam, intrinsics)
    distance = torch.linalg.vector_norm(view[:, :3, 3], dim=-1)  # (B,)
    return points_cam, screen, depth, intrinsics, batched, distance


def _taper(distance: Tensor, margin: float) -> Tensor:
    """(1 - d / margin)^2 clamped to [0, 1]: 1 at distance 0, exactly 0 from ``margin`` on."""
    return (1.0 - distance / margin).clamp(0.0, 1.0) ** 2


def _rasterize(mesh: Mesh, camera: dict, sharpness: float, backface_culling: Any, shading: bool,
               depth_softness: float, ambient: float, background: float):
    if not (isinstance(sharpness, (int, float)) and np.isfinite(sharpness) and sharpness > 0):
        raise ValueError(f"sharpness must be a positive number of pixels, got {sharpness!r}")
    points_cam, screen, depth, intrinsics, batched, distance = _camera_setup(mesh, camera)
    width, height = intrinsics.resolution
    batch = screen.shape[0]
    faces = mesh.faces
    dtype, device = screen.dtype, screen.device
    n_pixels = batch * height * width
    out_shape = (batch, height, width)

    tri = screen[:, faces]  # (B, F, 3, 2)
    tri_depth = depth[:, faces]  # (B, F, 3)
    with torch.no_grad():
        d01 = tri[..., 1, :] - tri[..., 0, :]
        d02 = tri[..., 2, :] - tri[..., 0, :]
        area2 = d01[..., 0] * d02[..., 1] - d01[..., 1] * d02[..., 0]
        in_front = tri_depth.min(-1).values > _NEAR * distance[:, None]
        valid = in_front & (area2.abs() > 2 * _MIN_AREA)
        cull = mesh.closed if backface_culling == "auto" else bool(backface_culling)
        if cull:
            # y points down in pixels, so a face wound counter-clockwise seen from the camera has
            # a negative signed area; ``outward`` flips this for meshes wound the other way.
            valid &= area2 * mesh.outward < 0
        # Contour edges: where the projected surface folds over (the neighbour across the edge
        # lies on the same side of it as this face), boundary/non-manifold edges, and edges whose
        # neighbour is not drawn. Only faces with a contour edge need the wide soft margin; the
        # others lie inside the silhouette.
        nb = mesh.neighbours.clamp(min=0)
        nb_valid = valid.gather(1, nb.reshape(1, -1).expand(batch, -1)).reshape(batch, -1, 3)
        nb_valid &= (mesh.neighbours >= 0)[None]
        edge_vec = tri.roll(-1, dims=-2) - tri  # (B, F, 3, 2)
        opp = screen[:, mesh.opposite.clamp(min=0)]  # (B, F, 3, 2)
        to_opp = opp - tri
        side_opp = edge_vec[..., 0] * to_opp[..., 1] - edge_vec[..., 1] * to_opp[..., 0]
        folded = side_opp * area2[..., None] >= 0
        contour_edge = valid[..., None] & (~nb_valid | folded)
        has_contour = contour_edge.any(-1)
        margin = torch.where(has_contour, _MARGIN * sharpness, (_INTERIOR_MARGIN * sharpness) if shading else 0.0)
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

    if total == 0:
        empty = (screen.sum() * 0).expand(out_shape)  # keeps the graph (zero gradients, never NaN)
        sil = empty.clone()
        return (sil, torch.full_like(sil, float(background)) + empty, empty.clone()), batched

    with torch.no_grad():
        face_contour = contour_edge[b_idx, f_idx]  # (K, 3)
        face_has_contour = face_contour.any(-1)

        # edge lines (unit normals, no graph) to drop box pixels that are surely beyond the margin
        k_tri = tri[b_idx, f_idx]
        k_edges = k_tri.roll(-1, dims=-2) - k_tri
        k_len = torch.sqrt((k_edges * k_edges).sum(-1) + 1e-20)
        k_area = k_edges[:, 0, 0] * -k_edges[:, 2, 1] + k_edges[:, 0, 1] * k_edges[:, 2, 0]
        k_a = -torch.sign(k_area)[:, None] * k_edges[..., 1] / k_len
        k_b = torch.sign(k_area)[:, None] * k_edges[..., 0] / k_len
        k_c = -(k_a * k_tri[..., 0] + k_b * k_tri[..., 1])
        k_margin = margin[b_idx, f_idx]
        # one (K, 13) table so that each pair needs a single gather
        k_table = torch.cat([k_a, k_b, k_c, k_margin[:, None].to(dtype), x0[:, None].to(dtype), y0[:, None].to(dtype),
                             box_w[:, None].to(dtype), b_idx[:, None].to(dtype)], dim=1)

        def expand(member: Tensor):
            """(face, pixel, centre) for the pixels in the boxes of the faces selected by ``member``
            whose centre may lie within the face's margin."""
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
        contour_group = expand(face_has_contour)
        interior_group = expand(~face_has_contour)

    # Per-face linear functions of the pixel position (one gather per pair instead of gathering
    # vertices): for edge i from v_i to v_{i+1} with length l_i,
    #   line_i(p)    = signed distance to the edge's line, positive on the triangle's side,
    #   tangent_i(p) = position of p's projection along the edge (0 at v_i, 1 at v_{i+1}).
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

    def pair_terms(group, exact: bool):
        """signed distance (sharpness units), inside flag, depth and, when ``exact``, the distance to
        the face's contour edges, for every (face, pixel) pair of ``group``."""
        face, _, centre = group
        coef = [line_a, line_b, line_c, length_area, inv_coef]
        if exact:
            tan_p = edges[..., 0] / (length * length)
            tan_q = edges[..., 1] / (length * length)
            tan_r = -(tan_p * face_tri[..., 0] + tan_q * face_tri[..., 1])
            coef += [tan_p, tan_q, tan_r, length]
        # unbind (not indexing): its backward is one stack, not a zero-filled tensor per slice
        pair_coef = torch.stack(coef, dim=-1).index_select(0, face).unbind(-1)  # each (N, 3)
        x, y = centre[:, 0:1], centre[:, 1:2]
        line = pair_coef[0] * x + pair_coef[1] * y + pair_coef[2]  # (N, 3)
        inside = (line.detach() >= 0).all(dim=-1)
        # Barycentric clipping (SoftRas): negative barycentrics set to 0 and renormalised, so a pixel
        # outside a triangle takes the depth of a point of the triangle, not of its extended plane.
        clipped = line.clamp(min=0.0)
        pair_inv = (clipped * pair_coef[4]).sum(-1) / ((clipped * pair_coef[3]).sum(-1) + 1e-12)
        pair_inv = torch.maximum(torch.minimum(pair_inv, hi_inv[face]), lo_inv[face])  # rounding guard
        line_min = line.min(dim=-1).values  # exact signed distance inside, an underestimate outside
        if not exact:
            return line_min / sharpness, inside, 1.0 / pair_inv, None, line_min / sharpness
        along = pair_coef[5] * x + pair_coef[6] * y + pair_coef[7]
        beyond = (along - along.clamp(0.0, 1.0)) * pair_coef[8]
        edge_dist2 = line * line + beyond * beyond  # squared distance to each edge segment
        outside_dist = torch.sqrt(edge_dist2.min(dim=-1).values + 1e-12)
        signed = torch.where(inside, line_min, -outside_dist) / sharpness
        contour_dist = torch.sqrt(edge_dist2.masked_fill(~face_contour[face], 1e30).min(dim=-1).values + 1e-12)
        return signed, inside, 1.0 / pair_inv, contour_dist / sharpness, line_min / sharpness

    computed = []  # (group, signed, inside, depth, contour distance or None, edge-line distance)
    if contour_group is not None:
        computed.append((contour_group, *pair_terms(contour_group, True)))
    if interior_group is not None:
        # without shading the interior pairs only say "covered" and feed the z-buffer: no graph
        with torch.set_grad_enabled(shading and torch.is_grad_enabled()):
            computed.append((interior_group, *pair_terms(interior_group, False)))

    # The depth range of the drawn faces normalises depth for the soft z-buffer (with gradient:
    # the span does not cancel in the softmax).
    drawn = valid.any(dim=1)
    front_depth = torch.where(valid[..., None], tri_depth, torch.full_like(tri_depth, torch.inf)).amin(dim=(1, 2))
    back_depth = torch.where(valid[..., None], tri_depth, torch.full_like(tri_depth, -torch.inf)).amax(dim=(1, 2))
    front_depth = torch.where(drawn, front_depth, torch.zeros_like(front_depth))
    span = torch.where(drawn, back_depth - front_depth, torch.ones_like(front_depth)).clamp(min=1e-12)

    with torch.no_grad():
        # hard z-buffer of the pixel centres, to tell visible contour edges from occluded ones
        zbuffer = torch.full((n_pixels,), torch.inf, dtype=dtype, device=device)
        for group, _, inside, pair_depth, _, _ in computed:
            zbuffer = zbuffer.scatter_reduce(0, group[1], torch.where(inside, pair_depth.detach(), torch.inf),
                                             reduce="amin")
        inside_any = torch.isfinite(zbuffer)

    # Outside: the sigmoid of the exact signed distance to the projected union, i.e. to the
    # nearest triangle. That lies on a face with a contour edge, so only those count (and
    # overlapping soft edges cannot inflate the coverage as in SoftRas' product).
    nearest = torch.full((n_pixels,), -_MARGIN, dtype=dtype, device=device)
    # Inside: the sigmoid of the distance to the nearest *visible contour edge* (interior edges
    # between visible faces do not count, nor do contours hidden behind a nearer surface), so the
    # coverage is continuous across the silhouette and has no seams inside it.
    inner = torch.full((n_pixels,), _MARGIN, dtype=dtype, device=device)
    if contour_group is not None:
        (face, pixel, _), c_signed, _, c_depth, c_contour, _ = computed[0]
        nearest = nearest.scatter_reduce(0, pixel, c_signed, reduce="amax", include_self=True)
        with torch.no_grad():
            visible = c_depth <= zbuffer[pixel] + _OCCLUSION_TOLERANCE * span.detach()[b_idx[face]]
        inner = inner.scatter_reduce(0, pixel, torch.where(visible, c_contour, torch.full_like(c_contour, _MARGIN)),
                                     reduce="amin", include_self=True)
    outside = torch.sigmoid(nearest) * _taper(-nearest, _MARGIN)
    inside_cover = 1.0 - (1.0 - torch.sigmoid(inner)) * _taper(inner, _MARGIN)
    silhouette = torch.where(inside_any, inside_cover, outside)
    if not shading:
        return (silhouette.reshape(out_shape), None, None), batched

    pair_face = torch.cat([entry[0][0] for entry in computed])
    pixel = torch.cat([entry[0][1] for entry in computed])
    # The edge-line distance (exact inside, an underestimate outside) for every face alike, so
    # that a face gaining or losing a contour edge does not change its weights.
    signed = torch.cat([entry[5] for entry in computed])
    pair_depth = torch.cat([entry[3] for entry in computed])
    # Flat Lambert under a directional head light along the optical axis: |n_z| with n the unit
    # face normal in camera space (a point light at the camera would give the two triangles of a
    # planar quad different flat intensities, i.e. a fake crease).
    cam_tri = points_cam[b_idx[:, None], faces[f_idx]]  # (K, 3, 3)
    normal = torch.linalg.cross(cam_tri[:, 1] - cam_tri[:, 0], cam_tri[:, 2] - cam_tri[:, 0])
    facing = (normal[:, 2] / torch.sqrt((normal * normal).sum(-1) + 1e-30)).abs()
    intensity = ambient + (1.0 - ambient) * facing
    # per-face values gathered once per pair
    pair_front, pair_span, pair_log_facing, pair_intensity = torch.stack(
        [front_depth[b_idx], span[b_idx], torch.log(facing + 1e-6), intensity], dim=-1
    ).index_select(0, pair_face).unbind(-1)
    znorm = (pair_depth - pair_front) / pair_span
    # log of SoftRas' weight D_j exp(-z_j / gamma), D_j tapered to 0 at the interior margin (the
    # same for every face) and scaled by |n_z| so that a face turning edge-on (about to be culled
    # or to flip) fades out instead of vanishing abruptly
    log_presence = F.logsigmoid(signed) + 2.0 * torch.log((1.0 + signed / _INTERIOR_MARGIN).clamp(0.0, 1.0) + 1e-30)
    logits = log_presence + pair_log_facing - znorm / depth_softness
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
    shaded = background + silhouette * presence * (colour - background)
    return (silhouette.reshape(out_shape), shaded.reshape(out_shape), soft_depth.reshape(out_shape)), batched


def _camera_dict(azimuth, elevation, distance, roll, shift_x, shift_y, lens_mm, sensor_width_mm,
                 sensor_height_mm, sensor_fit, resolution) -> dict:
    return dict(azimuth=azimuth, elevation=elevation, distance=distance, roll=roll, shift_x=shift_x,
                shift_y=shift_y, lens_mm=lens_mm, sensor_width_mm=sensor_width_mm,
                sensor_height_mm=sensor_height_mm, sensor_fit=sensor_fit, resolution=resolution)


def render_silhouette(
    vertices,
    faces=None,
    *,
    azimuth,
    elevation,
    distance,
    roll=0.0,
    shift_x=0.0,
    shift_y=0.0,
    lens_mm=50.0,
    sensor_width_mm=36.0,
    sensor_height_mm=24.0,
    sensor_fit: str = "AUTO",
    resolution: Sequence[int] = (1920, 1080),
    sharpness: float = DEFAULT_SHARPNESS,
    backface_culling: Any = "auto",
) -> Tensor:
    """Soft silhouette of a mesh seen by Blender cameras (see the module docstring for the method).

    Args:
        vertices: (V, 3) float tensor/array in the mesh's own frame, or a prepared :class:`Mesh`
            (then ``faces`` is omitted).
        faces: (F, 3) integer tensor/array.
        azimuth, elevation, distance, roll, shift_x, shift_y, lens_mm, sensor_width_mm,
            sensor_height_mm, sensor_fit, resolution: the camera, exactly as in
            :func:`torch_backend.camera.project_points` (degrees; floats or tensors of shape (B,)).
        sharpness: sigmoid width in pixels (smaller = closer to a hard silhouette, sparser gradients).
        backface_culling: "auto" (cull when the mesh is closed and consistently oriented), True, False.

    Returns:
        (H, W) coverage in [0, 1] for scalar pose keywords, (B, H, W) for tensors of shape (B,);
        differentiable w.r.t. the vertices and every camera parameter.
    """
    mesh = vertices if isinstance(vertices, Mesh) else Mesh.from_arrays(vertices, faces)
    camera = _camera_dict(azimuth, elevation, distance, roll, shift_x, shift_y, lens_mm, sensor_width_mm,
                          sensor_height_mm, sensor_fit, resolution)
    (silhouette, _, _), batched = _rasterize(mesh, camera, float(sharpness), backface_culling, False, 1.0, 0.0, 0.0)
    return silhouette if batched else silhouette[0]


def render(
    vertices,
    faces=None,
    *,
    azimuth,
    elevation,
    distance,
    roll=0.0,
    shift_x=0.0,
    shift_y=0.0,
    lens_mm=50.0,
    sensor_width_mm=36.0,
    sensor_height_mm=24.0,
    sensor_fit: str = "AUTO",
    resolution: Sequence[int] = (1920, 1080),
    sharpness: float = DEFAULT_SHARPNESS,
    depth_softness: float = 0.05,
    ambient: float = 0.25,
    background: float = 0.0,
    backface_culling: Any = "auto",
) -> RenderResult:
    """Soft silhouette, flat-shaded gray image and soft depth of a mesh (same camera keywords as
    :func:`render_silhouette`).

    Args:
        depth_softness: SoftRas' gamma on depth normalised to [0, 1] over the mesh's depth range in
            each view (smaller = harder occlusion).
        ambient: intensity of a surface seen edge-on; a surface facing the camera has 1.
        background: gray value outside the silhouette.

    Returns:
        :class:`RenderResult` of (H, W) or (B, H, W) tensors.
    """
    if not (depth_softness > 0):
        raise ValueError(f"depth_softness must be > 0, got {depth_softness!r}")
    if not (0.0 <= ambient <= 1.0):
        raise ValueError(f"ambient must lie in [0, 1], got {ambient!r}")
    mesh = vertices if isinstance(vertices, Mesh) else Mesh.from_arrays(vertices, faces)
    camera = _camera_dict(azimuth, elevation, distance, roll, shift_x, shift_y, lens_mm, sensor_width_mm,
                          sensor_height_mm, sensor_fit, resolution)
    outputs, batched = _rasterize(mesh, camera, float(sharpness), backface_culling, True, float(depth_softness),
                                  float(ambient), float(background))
    if not batched:
        outputs = tuple(o[0] for o in outputs)
    return RenderResult(*outputs)
