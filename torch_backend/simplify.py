"""Mesh cleaning for the renderer: triangulation, degenerate-face removal and vertex-clustering
simplification to a face budget (numpy; meshes are fixed data, nothing here needs gradients).

The optimizer renders the mesh hundreds of times, and the renderer's cost grows with the number of
faces, so big CAD meshes (up to millions of faces) are first reduced with *vertex clustering*
(Rossignac & Borrel, "Multi-resolution 3D approximations for rendering complex scenes", 1993):
vertices are snapped to a uniform grid, all vertices of a cell merge into their mean, and faces
that collapse (two corners in one cell) or duplicate another face disappear. It is fast (a few
sorts), keeps the mesh in its own frame (the camera convention needs the original origin) and keeps
silhouettes within about one cell of the original; it does not preserve topology (thin parts
thinner than a cell may vanish or merge), so pick the budget so that a cell stays well under a
pixel of the renders (``simplify_to_budget`` reports the cell size).
"""
from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import numpy as np

from .triangle_mesh import check_mesh

__all__ = ["SimplifiedMesh", "triangulate", "remove_degenerate_faces", "cluster_vertices", "simplify_to_budget"]


def _checked(vertices: Any, faces: Any) -> tuple[np.ndarray, np.ndarray]:
    """(V, 3) float64 and (F, 3) int64 numpy arrays through the package's one mesh check (F may be 0)."""
    v, f = check_mesh(vertices, faces, allow_no_faces=True)
    return v.detach().cpu().numpy().astype(np.float64, copy=False), f.cpu().numpy()


def triangulate(polygons: Sequence[Sequence[int]] | np.ndarray) -> np.ndarray:
    """Fan-triangulate polygons given as vertex-index lists (any mix of sizes >= 3).

    The fan ``(p0, p_i, p_i+1)`` keeps each polygon's winding (hence its normal direction) and is
    exact for convex polygons (Blender/CAD quads and n-gons are usually convex; triangulate
    concave n-gons in Blender first). Polygons with fewer than 3 indices are dropped.

    Args:
        polygons: sequence of index sequences, or an (F, K) integer array.

    Returns:
        (T, 3) int64 triangles.
    """
    if isinstance(polygons, np.ndarray) and polygons.ndim == 2:
        if polygons.shape[1] < 3:
            return np.zeros((0, 3), np.int64)
        k = polygons.shape[1]
        fan = [np.stack([polygons[:, 0], polygons[:, i], polygons[:, i + 1]], 1) for i in range(1, k - 1)]
        return np.stack(fan, 1).reshape(-1, 3).astype(np.int64)
    triangles: list[tuple[int, int, int]] = []
    for polygon in polygons:
        polygon = [int(i) for i in polygon]
        for i in range(1, len(polygon) - 1):
            triangles.append((polygon[0], polygon[i], polygon[i + 1]))
    return np.array(triangles, np.int64).reshape(-1, 3)


def remove_degenerate_faces(vertices: Any, faces: Any, *, relative_area: float = 1e-12) -> np.ndarray:
    """Drop faces with repeated indices, (near) zero area and exact duplicates (same vertex set).

    Args:
        vertices: (V, 3) float array/tensor.
        faces: (F, 3) int array/tensor.
        relative_area: faces with twice their area below ``relative_area * diagonal**2`` of the
            mesh's bounding box are degenerate.

    Returns:
        (F', 3) int64 faces, in their original order and winding.
    """
    return _drop_degenerate(*_checked(vertices, faces), relative_area)


def _drop_degenerate(vertices: np.ndarray, faces: np.ndarray, relative_area: float) -> np.ndarray:
    if len(faces) == 0:
        return faces
    distinct = (faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 2] != faces[:, 0])
    tri = vertices[faces]
    area2 = np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    diagonal = np.linalg.norm(vertices.max(0) - vertices.min(0)) or 1.0
    keep = distinct & (area2 > relative_area * diagonal * diagonal)
    faces = faces[keep]
    if len(faces) == 0:
        return faces
    ordered = np.sort(faces, axis=1)
    n = int(faces.max()) + 1
    if n < 2_000_000:  # one int64 key per face: much faster than a row-wise unique
        _, first = np.unique((ordered[:, 0] * n + ordered[:, 1]) * n + ordered[:, 2], return_index=True)
    else:
        _, first = np.unique(ordered, axis=0, return_index=True)
    return faces[np.sort(first)]


class SimplifiedMesh(NamedTuple):
    """Result of :func:`cluster_vertices` / :func:`simplify_to_budget`.

    vertices: (V', 3) float64; faces: (F', 3) int64; cell_size: grid cell edge in scene units
    (0 when nothing was clustered).
    """

    vertices: np.ndarray
    faces: np.ndarray
    cell_size: float


def cluster_vertices(vertices: Any, faces: Any, cell_size: float) -> SimplifiedMesh:
    """Vertex clustering on a uniform grid of ``cell_size`` (scene units) anchored at the bounding
    box minimum; each cell's vertices merge into their mean, collapsed/duplicate faces are removed
    and unused vertices dropped.
    """
    if not (cell_size > 0 and np.isfinite(cell_size)):
        raise ValueError(f"cell_size must be a positive number, got {cell_size!r}")
    return _cluster(*_checked(vertices, faces), float(cell_size))


def _cluster(vertices: np.ndarray, faces: np.ndarray, cell_size: float) -> SimplifiedMesh:
    cells = np.floor((vertices - vertices.min(0)) / cell_size).astype(np.int64)
    side = int(cells.max()) + 1
    if side ** 3 < 2 ** 62:
        _, cluster = np.unique((cells[:, 0] * side + cells[:, 1]) * side + cells[:, 2], return_inverse=True)
    else:
        _, cluster = np.unique(cells, axis=0, return_inverse=True)
    cluster = cluster.reshape(-1)
    n_clusters = int(cluster.max()) + 1
    counts = np.bincount(cluster, minlength=n_clusters).astype(np.float64)
    merged = np.stack([np.bincount(cluster, vertices[:, k], n_clusters) for k in range(3)], 1) / counts[:, None]
    new_faces = _drop_degenerate(merged, cluster[faces], relative_area=0.0)
    used, remap = np.unique(new_faces.reshape(-1), return_inverse=True)
    return SimplifiedMesh(merged[used], remap.reshape(-1, 3).astype(np.int64), float(cell_size))


def simplify_to_budget(vertices: Any, faces: Any, max_faces: int) -> SimplifiedMesh:
    """Clean a mesh and, if it has more than ``max_faces`` faces, vertex-cluster it on the finest
    uniform grid that meets the budget (bisection on the number of cells along the longest side).

    Args:
        vertices: (V, 3) float array/tensor in the mesh's own frame (kept: no re-centring).
        faces: (F, 3) int array/tensor (triangulate polygons first).
        max_faces: face budget, >= 4.

    Returns:
        :class:`SimplifiedMesh`; ``cell_size`` is 0 when the cleaned mesh already fits.
    """
    if int(max_faces) < 4:
        raise ValueError(f"max_faces must be at least 4, got {max_faces!r}")
    vertices, faces = _checked(vertices, faces)
    faces = _drop_degenerate(vertices, faces, 1e-12)
    if len(faces) == 0:
        raise ValueError("the mesh has no face with non-zero area")
    if len(faces) <= max_faces:
        used, remap = np.unique(faces.reshape(-1), return_inverse=True)
        return SimplifiedMesh(vertices[used], remap.reshape(-1, 3).astype(np.int64), 0.0)
    extent = float((vertices.max(0) - vertices.min(0)).max())
    low, high = 1, 4096  # cells along the longest side: low always fits (or is the coarsest we try)
    best = _cluster(vertices, faces, extent / low * (1 + 1e-9))
    while high - low > 1:
        middle = (low + high) // 2
        candidate = _cluster(vertices, faces, extent / middle * (1 + 1e-9))
        if len(candidate.faces) <= max_faces:
            low, best = middle, candidate
        else:
            high = middle
    if len(best.faces) == 0:
        raise ValueError(f"max_faces={max_faces} is too small for this mesh (everything collapses)")
    return best
