"""Tests for torch_backend.simplify: triangulation, degenerate faces, clustering to a face budget."""
import numpy as np
import pytest
import torch

from blender_silhouettes import chair, icosphere, uv_sphere
from torch_backend.render import Mesh, render_silhouette
from torch_backend.simplify import cluster_vertices, remove_degenerate_faces, simplify_to_budget, triangulate


def test_triangulate_mixed_polygons_keeps_winding():
    tris = triangulate([[0, 1, 2, 3], [4, 5, 6], [7, 8, 9, 10, 11], [1, 2]])
    assert tris.dtype == np.int64
    assert tris.tolist() == [[0, 1, 2], [0, 2, 3], [4, 5, 6], [7, 8, 9], [7, 9, 10], [7, 10, 11]]
    quads = np.array([[0, 1, 2, 3], [4, 5, 6, 7]])
    assert triangulate(quads).tolist() == [[0, 1, 2], [0, 2, 3], [4, 5, 6], [4, 6, 7]]
    # a unit square in the XY plane, counter-clockwise: both triangles face +Z
    v = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], float)
    t = triangulate([[0, 1, 2, 3]])
    normals = np.cross(v[t[:, 1]] - v[t[:, 0]], v[t[:, 2]] - v[t[:, 0]])
    assert (normals[:, 2] > 0).all()


def test_remove_degenerate_faces():
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [2, 0, 0], [0, 0, 1]], float)
    faces = np.array([[0, 1, 2], [0, 0, 1], [0, 1, 3], [2, 1, 0], [1, 2, 0], [0, 1, 4]])
    kept = remove_degenerate_faces(v, faces)
    # repeated index, collinear (0,1,3) and the duplicates of (0,1,2) in either winding go
    assert kept.tolist() == [[0, 1, 2], [0, 1, 4]]
    assert remove_degenerate_faces(torch.tensor(v), torch.tensor(faces)).tolist() == kept.tolist()
    with pytest.raises(ValueError, match="faces"):
        remove_degenerate_faces(v, np.array([[0, 1, 2, 3]]))
    with pytest.raises(ValueError, match="indices"):
        remove_degenerate_faces(v, np.array([[0, 1, 7]]))


def test_cluster_vertices_merges_within_cells_and_keeps_frame():
    v, f = icosphere(3)
    out = cluster_vertices(v + np.array([5.0, 0.0, 0.0]), f, 0.25)
    assert len(out.faces) < len(f) and out.faces.max() < len(out.vertices)
    # still around (5, 0, 0): no re-centring
    assert abs(out.vertices.mean(0)[0] - 5.0) < 0.05
    assert np.linalg.norm(out.vertices - np.array([5.0, 0, 0]), axis=1).max() <= 1.0 + 1e-9


@pytest.mark.parametrize("budget,min_iou", [(200, 0.85), (1000, 0.95), (3000, 0.97)])
def test_simplify_to_budget_keeps_silhouette(budget, min_iou):
    v, f = uv_sphere(120, 80, bumps=0.05)  # 18960 faces
    out = simplify_to_budget(v, f, budget)
    assert 0 < len(out.faces) <= budget
    assert out.cell_size > 0
    assert len(out.faces) > budget / 5, "bisection should get reasonably close to the budget"
    camera = dict(azimuth=30.0, elevation=20.0, distance=4.0, resolution=(96, 96))
    original = render_silhouette(v, f, **camera) > 0.5
    simplified = render_silhouette(out.vertices, out.faces, **camera) > 0.5
    iou = (original & simplified).sum() / (original | simplified).sum()
    assert iou >= min_iou, iou


def test_simplify_within_budget_only_cleans():
    v, f = chair()
    f = np.concatenate([f, [[0, 0, 1]]])
    out = simplify_to_budget(v, f, 10_000)
    assert out.cell_size == 0.0 and len(out.faces) == len(f) - 1
    assert Mesh.from_arrays(out.vertices, out.faces).closed


def test_simplify_errors():
    v, f = icosphere(1)
    with pytest.raises(ValueError, match="max_faces"):
        simplify_to_budget(v, f, 2)
    with pytest.raises(ValueError, match="finite"):
        simplify_to_budget(np.full((3, 3), np.nan), [[0, 1, 2]], 10)


@pytest.mark.slow
def test_million_faces_to_budget():
    v, f = uv_sphere(1000, 501)  # 1,000,000 faces
    assert len(f) == 1_000_000
    out = simplify_to_budget(v, f, 3000)
    assert 1000 < len(out.faces) <= 3000
