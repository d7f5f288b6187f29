"""Tests for torch_backend.meshes: procedural objects, primitives, OFF/OBJ reading and writing."""
from collections import Counter

import numpy as np
import pytest
import torch

from torch_backend import meshes


def _boundary_edges(faces):
    """Directed edges without exactly one opposite partner (empty for closed, consistently wound)."""
    edges = Counter()
    for a, b, c in faces:
        for x, y in ((a, b), (b, c), (c, a)):
            edges[(int(x), int(y))] += 1
    return [e for e, n in edges.items() if n != 1 or edges.get((e[1], e[0]), 0) != 1]


# real-world extents (x, y, z) in metres that the docstrings promise
EXPECTED_SIZE = {
    "chair": (0.45, 0.50, 0.90),
    "table": (1.20, 0.80, 0.75),
    "stool": (0.36, 0.36, 0.65),
    "car": (1.70, 4.00, 1.45),
    "mug": (0.08, 0.08, 0.095),
}


@pytest.mark.parametrize("name", sorted(meshes.PROCEDURAL_MESHES))
def test_procedural_mesh_is_valid_closed_and_outward(name):
    v, f = meshes.make_mesh(name)
    assert v.dtype == np.float64 and v.ndim == 2 and v.shape[1] == 3
    assert f.dtype == np.int64 and f.ndim == 2 and f.shape[1] == 3
    assert f.min() >= 0 and f.max() < len(v)
    assert len(np.unique(f, axis=0)) == len(f)
    scale = meshes.mesh_radius(v)
    assert meshes.face_areas(v, f).min() > 1e-8 * scale**2, "degenerate triangle"
    assert _boundary_edges(f) == [], "every part must be closed and consistently wound"
    assert meshes.signed_volume(v, f) > 0, "faces must point outward"
    assert 50 <= len(f) <= 2000, "small enough for fast tests and renders"


@pytest.mark.parametrize("name", sorted(meshes.PROCEDURAL_MESHES))
def test_procedural_mesh_bounding_box_units_and_origin(name):
    v, _ = meshes.make_mesh(name)
    size = meshes.bbox_size(v)
    expected = np.asarray(EXPECTED_SIZE[name])
    # handles, lips and wheels may stick out a little beyond the nominal body size
    assert np.all(size >= expected * 0.99) and np.all(size <= expected * 1.5), size
    np.testing.assert_allclose(meshes.bbox_center(v), 0.0, atol=1e-12)

    v_mm, f_mm = meshes.make_mesh(name, units="mm")
    np.testing.assert_allclose(v_mm, v * 1000.0)
    v_floor, _ = meshes.make_mesh(name, origin="floor")
    lo, hi = meshes.bounding_box(v_floor)
    assert lo[2] == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose((lo + hi)[:2], 0.0, atol=1e-12)


def test_front_faces_minus_y_and_asymmetries():
    v, _ = meshes.chair()
    top = v[v[:, 2] > v[:, 2].max() - 0.1]
    assert top[:, 1].min() > 0, "chair backrest must be at the back (+Y)"
    v, _ = meshes.car()
    roof = v[v[:, 2] > v[:, 2].max() - 0.1]
    assert roof[:, 1].mean() > 0, "car cabin sits toward the rear; the hood faces -Y"
    v, _ = meshes.mug()
    lo, _ = meshes.bounding_box(v)
    base = v[v[:, 2] < lo[2] + 1e-9]
    assert base[:, 0].mean() < -0.01, "the handle on +X pushes the (centred) body toward -X"


def test_unknown_names_and_units():
    with pytest.raises(ValueError, match="unknown mesh"):
        meshes.make_mesh("sofa")
    with pytest.raises(ValueError, match="units"):
        meshes.chair(units="furlong")
    with pytest.raises(ValueError, match="origin"):
        meshes.chair(origin="top")


def test_primitive_volumes():
    v, f = meshes.box((1.0, 2.0, 3.0), center=(5, 5, 5))
    assert meshes.signed_volume(v, f) == pytest.approx(6.0)
    assert _boundary_edges(f) == []
    n, r, h = 12, 0.5, 2.0
    for axis in "xyz":
        v, f = meshes.cylinder(r, h, n, axis=axis)
        polygon_area = 0.5 * n * r * r * np.sin(2 * np.pi / n)
        assert meshes.signed_volume(v, f) == pytest.approx(polygon_area * h)
        assert meshes.bbox_size(v)["xyz".index(axis)] == pytest.approx(h)
    v, f = meshes.torus(1.0, 0.2, 64, 32)
    assert meshes.signed_volume(v, f) == pytest.approx(2 * np.pi**2 * 1.0 * 0.2**2, rel=0.02)
    v, f = meshes.rod((0, 0, 0), (1, 1, 1), 0.1, 16)
    assert meshes.bbox_center(v) == pytest.approx([0.5, 0.5, 0.5])
    assert _boundary_edges(f) == []
    # a square profile extruded is a box
    v, f = meshes.extrude([(0, 0), (0, 1), (2, 1), (2, 0)], 3.0)
    assert meshes.signed_volume(v, f) == pytest.approx(6.0)
    assert _boundary_edges(f) == []


def test_lathe_poles_have_no_degenerate_faces_and_either_winding_is_outward():
    profile = [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)]
    for prof in (profile, profile[::-1]):
        v, f = meshes.lathe(prof, 8)
        assert len(v) == 2 + 2 * 8
        assert meshes.face_areas(v, f).min() > 0
        assert meshes.signed_volume(v, f) > 0
        assert _boundary_edges(f) == []


def test_merge_reindexes_and_transform_flips_mirrored_faces():
    a = meshes.box()
    b = meshes.box(center=(3, 0, 0))
    v, f = meshes.merge(a, b)
    assert v.shape == (16, 3) and f.shape == (24, 3)
    assert f[12:].min() == 8
    assert meshes.merge([a, b])[0].shape == (16, 3)
    mirrored = meshes.transform(a, scale=(-1, 1, 1))
    assert meshes.signed_volume(*mirrored) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        meshes.merge()


def test_as_mesh_errors():
    v, f = meshes.box()
    with pytest.raises(ValueError, match="no vertices"):
        meshes.as_mesh(np.zeros((0, 3)), f)
    with pytest.raises(ValueError, match="no faces"):
        meshes.as_mesh(v, np.zeros((0, 3), dtype=np.int64))
    with pytest.raises(ValueError, match=r"\(V, 3\)"):
        meshes.as_mesh(v[:, :2], f)
    with pytest.raises(ValueError, match="NaN"):
        meshes.as_mesh(np.where(v == v.max(), np.nan, v), f)
    with pytest.raises(ValueError, match="indices"):
        meshes.as_mesh(v, f + 1)


def test_obj_and_off_round_trip(tmp_path):
    v, f = meshes.mug(units="mm")
    path = tmp_path / "mug.obj"
    meshes.write_obj(path, v, f, precision=10)
    v2, f2 = meshes.read_obj(path)
    np.testing.assert_allclose(v2, v, rtol=1e-9)
    np.testing.assert_array_equal(f2, f)
    v3, f3 = meshes.read_mesh(path)
    np.testing.assert_array_equal(f3, f)

    off = tmp_path / "mug.off"
    lines = ["OFF", "# a comment", f"{len(v)} {len(f)} 0"]
    lines += [" ".join(repr(x) for x in row) for row in v]
    lines += ["3 " + " ".join(str(i) for i in row) for row in f]
    off.write_text("\n".join(lines) + "\n")
    v4, f4 = meshes.read_mesh(off)
    np.testing.assert_array_equal(v4, v)
    np.testing.assert_array_equal(f4, f)


def test_polygons_are_triangulated_and_obj_index_forms(tmp_path):
    off = tmp_path / "quad.off"
    off.write_text("OFF4 1 0\n0 0 0\n1 0 0\n1 1 0\n0 1 0\n4 0 1 2 3 255 0 0\n")
    v, f = meshes.read_off(off)
    np.testing.assert_array_equal(f, [[0, 1, 2], [0, 2, 3]])
    obj = tmp_path / "quad.obj"
    obj.write_text(
        "o quad\nv 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nvt 0 0\nvn 0 0 1\n"
        "usemtl red\nf 1/1/1 2/1/1 3//1 4\nf -4 -2 -1\n"
    )
    v, f = meshes.read_obj(obj)
    np.testing.assert_array_equal(f, [[0, 1, 2], [0, 2, 3], [0, 2, 3]])


@pytest.mark.parametrize(
    "name, text, message",
    [
        ("bad.off", "PLY\n3 1 0\n", r"bad\.off:1: not an OFF file"),
        ("short.off", "OFF\n3 1 0\n0 0 0\n1 0 0\n", "truncated"),
        ("vert.off", "OFF\n3 1 0\n0 0 0\n1 0 x\n0 1 0\n3 0 1 2\n", r"vert\.off:4: bad vertex"),
        ("range.off", "OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 7\n", r"range\.off:6: face index out of range"),
        ("counts.off", "OFF\nthree 1 0\n", r"counts\.off:2"),
        ("nofaces.off", "OFF\n3 0 0\n0 0 0\n1 0 0\n0 1 0\n", "no faces"),
        ("empty.off", "# nothing\n", "empty OFF"),
        ("vert.obj", "v 0 0\n", r"vert\.obj:1: bad vertex"),
        ("index.obj", "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 4\n", r"index\.obj:4: .*missing vertex"),
        ("zero.obj", "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 0 1 2\n", r"zero\.obj:4: OBJ indices start at 1"),
        ("token.obj", "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 a 3\n", r"token\.obj:4: bad face index"),
        ("two.obj", "v 0 0 0\nv 1 0 0\nf 1 2\n", r"two\.obj:3: face needs >= 3"),
        ("nofaces.obj", "v 0 0 0\n", "no faces"),
        ("novert.obj", "# empty\n", "no vertices"),
    ],
)
def test_malformed_files_name_file_and_line(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        meshes.read_mesh(path)


def test_missing_file_directory_and_unknown_format(tmp_path):
    with pytest.raises(FileNotFoundError):
        meshes.read_obj(tmp_path / "nope.obj")
    with pytest.raises(ValueError, match="directory"):
        meshes.read_off(tmp_path)
    with pytest.raises(ValueError, match="unsupported"):
        meshes.read_mesh(tmp_path / "x.stl")


def test_radius_and_bbox_helpers():
    v = np.array([[1.0, 2.0, 2.0], [-1.0, 0.0, 0.0]])
    assert meshes.mesh_radius(v) == pytest.approx(3.0)
    assert meshes.mesh_radius(v, center=(1, 2, 2)) == pytest.approx(np.sqrt(12))
    np.testing.assert_allclose(meshes.bbox_size(v), [2, 2, 2])
    np.testing.assert_allclose(meshes.bbox_center(v), [0, 1, 1])
    with pytest.raises(ValueError):
        meshes.mesh_radius(np.zeros((0, 3)))


def test_demo_assets_are_small_and_consistent_with_the_camera_convention():
    import json
    from pathlib import Path

    import torch
    from PIL import Image

    from torch_backend import camera

    data = Path(meshes.__file__).resolve().parent / "data"
    truth = json.loads((data / "demo_truth.json").read_text())
    files = [data / truth[key] for key in ("photo", "mask", "mesh")] + [data / "demo_truth.json"]
    assert sum(f.stat().st_size for f in files) < 300_000
    v, f = meshes.read_obj(data / truth["mesh"])
    assert 100 <= len(f) <= 1000
    photo = Image.open(data / truth["photo"])
    mask = np.asarray(Image.open(data / truth["mask"])) > 127
    assert photo.mode == "RGB" and photo.size == (truth["width"], truth["height"]) == mask.shape[::-1]
    ys, xs = np.nonzero(mask)
    assert [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1] == truth["bbox"]
    # the shipped mesh projected at the true pose covers the rendered mask's box (Cycles agrees
    # with torch_backend.camera to pixel rounding)
    pixels = camera.project_points(
        torch.from_numpy(v), azimuth=truth["azimuth"], elevation=truth["elevation"],
        distance=truth["distance"], roll=truth["roll"], shift_x=truth["shift_x"],
        shift_y=truth["shift_y"], lens_mm=truth["lens_mm"], sensor_width_mm=truth["sensor_width_mm"],
        sensor_fit=truth["sensor_fit"], resolution=(truth["width"], truth["height"]),
    ).numpy()
    projected = np.concatenate([pixels.min(axis=0), pixels.max(axis=0)])
    np.testing.assert_allclose(projected, truth["bbox"], atol=1.5)


# --------------------------------------------------------------------------------------------
# the checked Mesh type
# --------------------------------------------------------------------------------------------
def test_mesh_check_counts_non_finite_vertices():
    v, f = meshes.chair()
    v = v.copy()
    v[[3, 10, 11], 1] = [np.nan, np.inf, -np.inf]
    with pytest.raises(ValueError, match=rf"^chair: vertices: 3 of {len(v)} are not finite \(NaN or inf\)$"):
        meshes.Mesh(v, f, name="chair")
    with pytest.raises(ValueError, match=rf"^vertices: 3 of {len(v)} are not finite"):
        meshes.check_mesh(torch.from_numpy(v), f)


@pytest.mark.parametrize("faces, message", [
    (np.zeros((0, 3), int), "no faces"), (np.array([[0, 1, 2, 3]]), r"\(F, 3\)"),
    (np.array([[0.0, 0.5, 2.0]]), "integer"), (np.array([[True, False, True]]), "integer"),
    (np.array([[0, 1, 8]]), r"indices must lie in \[0, 7\], got \[0, 8\]"),
])
def test_mesh_check_names_the_bad_field(faces, message):
    v, _ = meshes.box()
    with pytest.raises(ValueError, match=message):
        meshes.Mesh(v, faces)


def test_mesh_keeps_dtype_graph_and_shares_numpy():
    v, f = meshes.box()
    mesh = meshes.Mesh(v, f.astype(np.int32))
    assert mesh.vertices.dtype == torch.float64 and mesh.faces.dtype == torch.int64
    assert np.shares_memory(mesh.vertices.numpy(), v)
    grad = torch.tensor(v, dtype=torch.float32, requires_grad=True)
    assert meshes.Mesh(grad, f).vertices is grad
    whole = meshes.Mesh(v.astype(int), f.astype(float))  # whole-number floats are indices too
    assert whole.vertices.dtype == torch.float64 and torch.equal(whole.faces, mesh.faces)
    assert meshes.Mesh.from_arrays(mesh) is mesh
    assert mesh.closed and mesh.outward == 1.0 and mesh.num_faces == 12
    flipped = meshes.Mesh(v, f[:, ::-1].copy())
    assert flipped.closed and flipped.outward == -1.0


def test_mesh_content_hash():
    v, f = meshes.chair()
    digest = meshes.Mesh(v, f).content_hash()
    assert meshes.Mesh(v.copy(), torch.from_numpy(f)).content_hash() == digest
    assert meshes.Mesh(v.astype(np.float32), f).content_hash() == meshes.Mesh(v.astype(np.float32).astype(float), f).content_hash()
    moved = v.copy()
    moved[0, 0] += 1e-9
    assert meshes.Mesh(moved, f).content_hash() != digest
    assert meshes.Mesh(v, f[::-1].copy()).content_hash() != digest
    assert meshes.Mesh(v, f).content_hash("2000") != digest
    mesh = meshes.Mesh(v, f)
    assert mesh.to(dtype=torch.float32).content_hash() == meshes.Mesh(v.astype(np.float32), f).content_hash()
