"""blender_gradhog/batch.py: one photo (camera written, .blend saved), folder/manifest mode with one
JSON line per photo and resuming after an interruption, argument errors; also under the real
Blender binary (`blender -b scene.blend --python batch.py -- ...`)."""
from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.bpy

bpy = pytest.importorskip("bpy")
torch = pytest.importorskip("torch")

from mathutils import Matrix  # noqa: E402

from blender_gradhog import api, batch, scene as blender_scene  # noqa: E402
from torch_backend import camera as camera_convention, meshes  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
BATCH_SCRIPT = REPO / "blender_gradhog" / "batch.py"
POSES = [{"azimuth": 47.0, "elevation": 23.0, "distance": 3.3, "roll": 4.0},
         {"azimuth": 212.0, "elevation": 38.0, "distance": 3.0, "roll": -6.0}]
SIZE = (200, 150)


def rotation_error(a, b) -> float:
    relative = np.asarray(a)[:3, :3].T @ np.asarray(b)[:3, :3]
    return math.degrees(math.acos(np.clip((np.trace(relative) - 1.0) / 2.0, -1.0, 1.0)))


@pytest.fixture(scope="module")
def blend_scene(tmp_path_factory):
    """scene.blend (a moved and rotated chair, a camera) and two photos of it at POSES."""
    folder = tmp_path_factory.mktemp("batch")
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    vertices, faces = meshes.chair()
    mesh = bpy.data.meshes.new("Chair")
    mesh.from_pydata(vertices.tolist(), [], faces.tolist())
    chair = bpy.data.objects.new("Chair", mesh)
    scene.collection.objects.link(chair)
    chair.location, chair.rotation_euler = (-0.7, 1.1, 0.3), (0.0, 0.0, math.radians(-60.0))
    bpy.context.view_layer.update()
    camera = blender_scene.new_camera(scene, "Camera")
    render = scene.render
    render.engine = blender_scene.workbench_engine_id()
    render.resolution_x, render.resolution_y = SIZE
    render.film_transparent = True
    render.image_settings.color_mode = 'RGBA'
    scene.display.shading.color_type = 'SINGLE'
    scene.display.shading.single_color = (0.3, 0.5, 0.7)
    photos, truths = folder / "photos", []
    photos.mkdir()
    frame = api.current_frame(chair)
    for index, pose in enumerate(POSES):
        matrix = frame @ camera_convention.camera_to_world(**pose, dtype=torch.float64).numpy()
        camera.matrix_world = Matrix(matrix.tolist())
        render.filepath = str(photos / f"view{index}.png")
        bpy.ops.render.render(write_still=True)
        truths.append(matrix)
    camera.matrix_world = Matrix.Translation((0.0, -8.0, 2.0))
    bpy.ops.wm.save_as_mainfile(filepath=str(folder / "scene.blend"))
    return folder, photos, truths


def test_one_photo_writes_camera_json_and_blend(blend_scene, tmp_path):
    folder, photos, truths = blend_scene
    out, saved = tmp_path / "result.json", tmp_path / "aligned.blend"
    code = batch.run(["--blend", str(folder / "scene.blend"), "--photo", str(photos / "view0.png"),
                      "--object", "Chair", "--camera", "Camera", "--out", str(out), "--save", str(saved),
                      "--no-refine"])
    assert code == 0
    result = json.loads(out.read_text())
    assert {"azimuth", "elevation", "distance", "roll", "score", "candidates"} <= set(result)
    bpy.ops.wm.open_mainfile(filepath=str(saved))
    written = np.array(bpy.data.objects["Camera"].matrix_world)
    # Coarse grid only (10-degree steps) to stay fast; test_addon checks refined accuracy.
    assert rotation_error(written, truths[0]) < 12.0
    assert bpy.data.objects["Camera"]["gradhog_azimuth"] == pytest.approx(result["azimuth"])


def test_folder_mode_writes_one_line_per_photo_and_resumes(blend_scene, tmp_path):
    folder, photos, truths = blend_scene
    work = tmp_path / "photos"
    shutil.copytree(photos, work)
    (work / "broken.png").write_bytes(b"not an image")
    (work / "notes.txt").write_text("not a photo")
    out = tmp_path / "results.jsonl"
    argv = ["--blend", str(folder / "scene.blend"), "--photos", str(work), "--object", "Chair",
            "--out", str(out), "--no-refine"]
    assert batch.run(argv) == 1  # one photo failed
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 3
    by_name = {Path(record["photo"]).name: record for record in lines}
    assert "cannot read the photo" in by_name["broken.png"]["error"]
    for index in range(2):
        record = by_name[f"view{index}.png"]
        recovered = camera_convention.camera_to_world(record["azimuth"], record["elevation"], record["distance"],
                                                      record["roll"], dtype=torch.float64).numpy()
        true = camera_convention.camera_to_world(**POSES[index], dtype=torch.float64).numpy()
        assert rotation_error(recovered, true) < 12.0
    # Folder mode without --cameras leaves the scene alone.
    assert [o.name for o in bpy.data.objects if o.type == 'CAMERA'] == ["Camera"]

    # An interrupted run: the last line is cut in the middle; the rerun redoes only what is missing.
    text = out.read_text().splitlines()
    kept = [line for line in text if "view1.png" not in line]
    out.write_text("\n".join(kept) + "\n" + '{"azimuth": 12.0, "photo": "' + str(work / "view1.png")[:10])
    (work / "broken.png").unlink()
    assert batch.run(argv) == 0
    lines = out.read_text().splitlines()
    assert lines[:len(kept)] == kept  # the finished lines are kept, the cut one is dropped
    records = [json.loads(line) for line in lines[len(kept):]]
    assert [Path(r["photo"]).name for r in records] == ["view1.png"]  # view0 was not redone


def test_manifest_mode_with_boxes(blend_scene, tmp_path):
    folder, photos, _ = blend_scene
    manifest = tmp_path / "list.jsonl"
    manifest.write_text("# photos and boxes\n" + json.dumps({"photo": str(photos / "view0.png")}) + "\n"
                        + str(photos / "view1.png") + "\n")
    out = tmp_path / "results.jsonl"
    assert batch.run(["--blend", str(folder / "scene.blend"), "--manifest", str(manifest), "--object", "Chair",
                      "--out", str(out), "--cameras", "--no-refine"]) == 0
    assert len(out.read_text().splitlines()) == 2
    assert {"GradHOG view0", "GradHOG view1"} <= {o.name for o in bpy.data.objects}


@pytest.mark.parametrize("argv, fragment", [
    (["--object", "Nope"], "no object named 'Nope'"),
    (["--object", "Chair", "--camera", "Chair"], "no camera named 'Chair'"),
])
def test_bad_arguments_exit_2(blend_scene, tmp_path, capsys, argv, fragment):
    folder, photos, _ = blend_scene
    code = batch.run(["--blend", str(folder / "scene.blend"), "--photo", str(photos / "view0.png"),
                      "--out", str(tmp_path / "r.json"), *argv])
    assert code == 2 and fragment in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()


def test_script_arguments_follow_blenders_double_dash():
    assert batch.script_arguments(["blender", "-b", "x.blend", "--python", "batch.py", "--", "--photo", "p"]) == [
        "--photo", "p"]
    assert batch.script_arguments(["batch.py", "--photo", "p"]) == ["--photo", "p"]


@pytest.mark.blender
def test_real_blender_binary_runs_batch_py(tmp_path):
    """`blender -b scene.blend --python-exit-code 1 --python batch.py -- ...` with Debian's Blender
    3.4 (its Python finds torch through PYTHONPATH; .blend files of Blender 5 are unreadable to 3.4,
    so the scene is built by that Blender itself)."""
    blender = shutil.which("blender")
    data = REPO / "torch_backend" / "data"
    setup = tmp_path / "setup.py"
    setup.write_text(
        "import bpy\n"
        "bpy.ops.wm.read_factory_settings(use_empty=True)\n"
        f"bpy.ops.wm.obj_import(filepath={str(data / 'demo_chair.obj')!r}, forward_axis='Y', up_axis='Z')\n"
        "bpy.context.selected_objects[0].name = 'Chair'\n"
        f"bpy.ops.wm.save_as_mainfile(filepath={str(tmp_path / 'scene.blend')!r})\n")
    subprocess.run([blender, "-b", "--factory-startup", "--python-exit-code", "1", "--python", str(setup)],
                   check=True, capture_output=True, timeout=120)
    environment = dict(os.environ, PYTHONPATH=sysconfig.get_paths()["purelib"])
    completed = subprocess.run(
        [blender, "-b", str(tmp_path / "scene.blend"), "--python-use-system-env", "--python-exit-code", "1",
         "--python", str(BATCH_SCRIPT), "--", "--photo", str(data / "demo_photo.png"),
         "--mask", str(data / "demo_mask.png"), "--object", "Chair", "--out", str(tmp_path / "r.json"),
         "--save", str(tmp_path / "out.blend"), "--no-refine"],
        capture_output=True, text=True, timeout=400, env=environment)
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-2000:]
    result = json.loads((tmp_path / "r.json").read_text())
    truth = json.loads((data / "demo_truth.json").read_text())
    assert abs((result["azimuth"] - truth["azimuth"] + 180) % 360 - 180) < 15.0
    assert (tmp_path / "out.blend").is_file()


def test_python_runs_batch_py_as_a_file(blend_scene, tmp_path):
    """The bpy-module form: `python blender_gradhog/batch.py -- --blend scene.blend ...`."""
    folder, photos, _ = blend_scene
    completed = subprocess.run(
        [sys.executable, str(BATCH_SCRIPT), "--", "--blend", str(folder / "scene.blend"), "--photo",
         str(photos / "missing.png"), "--object", "Chair", "--out", str(tmp_path / "r.json")],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert completed.returncode == 1 and "photo not found" in completed.stderr
