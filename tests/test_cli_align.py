"""`gradhog align` and `gradhog demo` through the bpy module: importers, result JSON, overlay,
.blend, exit codes and one-line errors."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.bpy

bpy = pytest.importorskip("bpy")
torch = pytest.importorskip("torch")

from blender_gradhog import cli, cli_align, options  # noqa: E402
from torch_backend import meshes  # noqa: E402

DATA = Path(cli_align.demo_assets())
TRUTH = json.loads((DATA / "demo_truth.json").read_text())
RESULT_KEYS = {"azimuth", "elevation", "roll", "distance", "shift_x", "shift_y", "lens_mm",
               "sensor_width_mm", "score", "seconds", "candidates"}


def rotation_error(result: dict) -> float:
    return cli_align.rotation_error_degrees(result, TRUTH)


def run_cli(argv, capsys):
    code = cli.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_align_demo_photo_with_mask_writes_json_overlay_and_blend(tmp_path, capsys):
    out, overlay, blend = tmp_path / "result.json", tmp_path / "overlay.png", tmp_path / "aligned.blend"
    code, stdout, _ = run_cli([
        "align", "--photo", str(DATA / TRUTH["photo"]), "--mesh", str(DATA / TRUTH["mesh"]),
        "--mask", str(DATA / TRUTH["mask"]), "--out", str(out), "--overlay", str(overlay),
        "--save-blend", str(blend), "--top-k", "3", "--no-refine", "--quiet"], capsys)
    assert code == 0, stdout
    result = json.loads(out.read_text())
    assert RESULT_KEYS <= set(result)
    assert 1 <= len(result["candidates"]) <= 3
    error = rotation_error(result)
    print(f"demo mask mode: rotation error {error:.2f} deg, distance {result['distance']:.4f} vs {TRUTH['distance']}")
    # Coarse grid only (10-degree steps) to stay fast; test_addon checks the refined accuracy.
    assert error < 12.0
    assert abs(result["distance"] / TRUTH["distance"] - 1.0) < 0.10
    assert result["resolution"] == [TRUTH["width"], TRUTH["height"]]
    from PIL import Image

    with Image.open(overlay) as picture:
        assert picture.size == (TRUTH["width"], TRUTH["height"])
    # The saved .blend holds the camera at the written pose with the photo behind it.
    bpy.ops.wm.open_mainfile(filepath=str(blend))
    camera = bpy.data.objects["GradHOG Camera"]
    assert camera["gradhog_azimuth"] == pytest.approx(result["azimuth"])
    assert camera.data.background_images[0].image is not None
    scene = bpy.context.scene
    assert (scene.render.resolution_x, scene.render.resolution_y) == (TRUTH["width"], TRUTH["height"])


def test_demo_subcommand_prints_recovered_and_true_pose(tmp_path, capsys):
    overlay = tmp_path / "demo.png"
    code, stdout, _ = run_cli(["demo", "--overlay", str(overlay), "--out", str(tmp_path / "demo.json"),
                               "--no-refine"], capsys)
    assert code == 0
    assert "recovered" in stdout and "true" in stdout and "rotation" in stdout
    assert overlay.is_file()
    assert rotation_error(json.loads((tmp_path / "demo.json").read_text())) < 12.0


# --------------------------------------------------------------------------------------------
# Importers: every format lands in the same frame as torch_backend.meshes
# --------------------------------------------------------------------------------------------

def _export(path: Path, vertices, faces) -> None:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    mesh = bpy.data.meshes.new("part")
    mesh.from_pydata(vertices.tolist(), [], faces.tolist())
    obj = bpy.data.objects.new("part", mesh)
    bpy.context.scene.collection.objects.link(obj)
    bpy.context.view_layer.objects.active = obj
    obj.select_set(True)
    suffix = path.suffix
    if suffix == ".ply":
        bpy.ops.wm.ply_export(filepath=str(path), forward_axis='Y', up_axis='Z', ascii_format=True)
    elif suffix == ".stl":
        bpy.ops.wm.stl_export(filepath=str(path), forward_axis='Y', up_axis='Z')
    elif suffix == ".glb":
        bpy.ops.export_scene.gltf(filepath=str(path), export_format='GLB')
    elif suffix == ".fbx":
        bpy.ops.export_scene.fbx(filepath=str(path))


@pytest.mark.parametrize("suffix", [".obj", ".off", ".ply", ".stl", ".glb"])
def test_import_mesh_keeps_the_mesh_frame(tmp_path, suffix):
    vertices, faces = meshes.chair()
    path = tmp_path / f"chair{suffix}"
    if suffix == ".obj":
        meshes.write_obj(path, vertices, faces)
    elif suffix == ".off":
        lines = ["OFF", f"{len(vertices)} {len(faces)} 0"]
        lines += [" ".join(f"{c:.6f}" for c in v) for v in vertices]
        lines += ["3 " + " ".join(str(int(i)) for i in f) for f in faces]
        path.write_text("\n".join(lines) + "\n")
    else:
        _export(path, vertices, faces)
    cli_align.fresh_scene()
    obj = cli_align.import_mesh(path)
    from blender_gradhog import scene as blender_scene

    data = blender_scene.mesh_arrays(obj)
    np.testing.assert_allclose(data.frame, np.eye(4), atol=1e-9)
    np.testing.assert_allclose(data.vertices.min(axis=0), vertices.min(axis=0), atol=1e-4)
    np.testing.assert_allclose(data.vertices.max(axis=0), vertices.max(axis=0), atol=1e-4)
    assert len(data.faces) == len(faces)
    assert [o.name for o in bpy.data.objects] == [obj.name]  # the importer's objects are gone


def test_obj_with_y_up_axis_option_rotates_like_blender(tmp_path):
    vertices, faces = meshes.box((1.0, 2.0, 3.0))
    path = tmp_path / "box.obj"
    meshes.write_obj(path, vertices, faces)
    cli_align.fresh_scene()
    obj = cli_align.import_mesh(path, up_axis="Y")
    from blender_gradhog import scene as blender_scene

    extent = np.ptp(blender_scene.mesh_arrays(obj).vertices, axis=0)
    np.testing.assert_allclose(extent, (1.0, 3.0, 2.0), atol=1e-5)  # file Y (2) became Blender Z


# --------------------------------------------------------------------------------------------
# Bad input: exit 2 with one line naming the problem
# --------------------------------------------------------------------------------------------

def _base(tmp_path, **changes):
    args = {"--photo": str(DATA / TRUTH["photo"]), "--mesh": str(DATA / TRUTH["mesh"]),
            "--out": str(tmp_path / "r.json")}
    args.update(changes)
    argv = ["align"]
    for key, value in args.items():
        if value is None:
            continue
        argv += [key, *value] if isinstance(value, list) else [key, value]
    return argv


@pytest.mark.parametrize("changes, fragment", [
    ({"--photo": "/nonexistent/photo.png"}, "no such photo"),
    ({"--mesh": "/nonexistent/chair.obj"}, "no such mesh"),
    ({"--mesh": "chair.xyz"}, "unsupported mesh format"),
    ({"--lens-mm": "-5"}, "positive"),
    ({"--out": "/nonexistent/folder/r.json"}, "does not exist"),
    ({"--bbox": ["900", "900", "950", "950"]}, "outside"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, changes, fragment):
    code, stdout, stderr = run_cli(_base(tmp_path, **changes), capsys)
    assert code == 2
    lines = [line for line in stderr.splitlines() if line.startswith("gradhog align: error:")]
    assert len(lines) == 1 and fragment in lines[0], stderr
    assert not (tmp_path / "r.json").exists()


def test_mesh_without_faces_exits_2(tmp_path, capsys):
    path = tmp_path / "points.off"
    path.write_text("OFF\n3 0 0\n0 0 0\n1 0 0\n0 1 0\n")
    code, _, stderr = run_cli(_base(tmp_path, **{"--mesh": str(path)}), capsys)
    assert code == 2 and "gradhog align: error:" in stderr and "face" in stderr.lower()


def test_unreadable_photo_exits_2(tmp_path, capsys):
    photo = tmp_path / "broken.jpg"
    photo.write_bytes(b"\xff\xd8 not really a jpeg")
    code, _, stderr = run_cli(_base(tmp_path, **{"--photo": str(photo)}), capsys)
    assert code == 2 and "cannot read the photo" in stderr


def test_json_ready_turns_non_finite_into_null():
    assert options.json_ready({"a": [1.0, math.inf], "b": math.nan}) == {"a": [1.0, None], "b": None}
