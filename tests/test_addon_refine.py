"""The artist's way out (issue 12 §3), headless through the bpy module: Refine from Camera (camera
<-> pose round trip, recovery from a rough camera, cancel), the constraints from the panel and
``gradhog align``, and the result's confidence (margin, ambiguous, IoU) in JSON and on the scene."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from panel_layout import FakeLayout

pytestmark = pytest.mark.bpy

bpy = pytest.importorskip("bpy")
torch = pytest.importorskip("torch")

from mathutils import Matrix  # noqa: E402

import blender_gradhog as addon  # noqa: E402
from blender_gradhog import api, cli, cli_align, operators, options, panel, scene as blender_scene  # noqa: E402
from torch_backend.pose import AMBIGUOUS_MARGIN  # noqa: E402

DATA = Path(cli_align.demo_assets())
TRUTH = json.loads((DATA / "demo_truth.json").read_text())
TRUE_POSE = {name: TRUTH[name] for name in ("azimuth", "elevation", "distance", "roll")}


def turned(pose: dict, degrees: float, towards: float) -> dict:
    """``pose`` with its viewing direction turned by exactly ``degrees``, ``towards`` degrees
    counter-clockwise from the direction of increasing azimuth (roll and distance kept)."""
    az, el, turn, phi = (math.radians(v) for v in (pose["azimuth"], pose["elevation"], degrees, towards))
    view = np.array([math.cos(el) * math.sin(az), -math.cos(el) * math.cos(az), math.sin(el)])
    east = np.array([math.cos(az), math.sin(az), 0.0])
    north = np.cross(east, view)
    new = math.cos(turn) * view + math.sin(turn) * (math.cos(phi) * east + math.sin(phi) * north)
    return {**pose, "azimuth": math.degrees(math.atan2(new[0], -new[1])), "elevation": math.degrees(math.asin(new[2]))}


def rotation_error(a: dict, b: dict) -> float:
    return cli_align.rotation_error_degrees(a, b)


def demo_scene(*, moved: bool = True):
    """The demo chair (moved, rotated and scaled unless ``moved=False``) and a camera with the demo's lens."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    addon.register()
    scene = bpy.context.scene
    chair = cli_align.import_mesh(DATA / TRUTH["mesh"], name="Chair")
    if moved:
        chair.location, chair.rotation_euler, chair.scale = (1.5, -2.0, 0.4), (0.0, 0.0, math.radians(35.0)), (1.0,) * 3
    camera = blender_scene.new_camera(scene, "Camera")
    camera.data.lens, camera.data.sensor_width, camera.data.sensor_fit = TRUTH["lens_mm"], TRUTH["sensor_width_mm"], 'AUTO'
    bpy.context.view_layer.update()
    return scene, chair, camera


def place(camera, chair, pose: dict) -> None:
    """Put ``camera`` at ``pose`` relative to ``chair`` as the add-on writes cameras."""
    camera.matrix_world = Matrix(api.camera_matrix(api.current_frame(chair), pose).tolist())
    bpy.context.view_layer.update()


def configure(chair, camera, **values):
    settings = bpy.context.scene.gradhog
    settings.photo_path = str(DATA / TRUTH["photo"])
    settings.mask_source = 'IMAGE'
    settings.mask_image = bpy.data.images.load(str(DATA / TRUTH["mask"]))
    settings.target, settings.camera, settings.focal_length = chair, camera, 'CAMERA'
    for name, value in values.items():
        setattr(settings, name, value)
    return settings


# --------------------------------------------------------------------------------------------
# Camera <-> pose
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("pose", [
    {"azimuth": 35.0, "elevation": 20.0, "distance": 3.0, "roll": 4.0},
    {"azimuth": -150.0, "elevation": -35.0, "distance": 0.7, "roll": -25.0},
    {"azimuth": 91.0, "elevation": 84.0, "distance": 12.0, "roll": 10.0},
])
def test_camera_pose_reads_back_the_pose_apply_wrote(pose):
    _, chair, camera = demo_scene()
    chair.scale = (2.0, 2.0, 2.0)  # the object's scale is not part of its frame
    bpy.context.view_layer.update()
    place(camera, chair, pose)
    camera.scale = (0.5, 0.5, 0.5)  # nor the camera's
    bpy.context.view_layer.update()
    back = api.camera_pose(camera, chair)
    for name in ("azimuth", "elevation", "roll"):
        difference = (back[name] - pose[name] + 180.0) % 360.0 - 180.0
        assert abs(difference) <= 1e-4, (name, back, pose)
    assert back["distance"] == pytest.approx(pose["distance"], rel=1e-6)


def test_camera_pose_refuses_a_camera_at_the_object_origin():
    _, chair, camera = demo_scene()
    camera.matrix_world = chair.matrix_world.copy()
    bpy.context.view_layer.update()
    with pytest.raises(api.AlignError, match="origin"):
        api.camera_pose(camera, chair)


# --------------------------------------------------------------------------------------------
# Refine from Camera
# --------------------------------------------------------------------------------------------

def test_refine_from_a_camera_25_degrees_off_recovers_the_demo_pose():
    _, chair, camera = demo_scene()
    start = turned(TRUE_POSE, 25.0, towards=135.0)
    place(camera, chair, start)
    settings = configure(chair, camera)
    assert rotation_error(start, TRUE_POSE) > 20.0
    assert bpy.ops.gradhog.refine_camera() == {'FINISHED'}
    found = api.camera_pose(camera, chair)
    error = rotation_error(found, TRUE_POSE)
    print(f"refine from 25 deg off: rotation error {error:.2f} deg, distance {found['distance']:.3f} "
          f"vs {TRUE_POSE['distance']:.3f}")
    assert error < 3.0
    assert found["distance"] == pytest.approx(TRUE_POSE["distance"], rel=0.05)
    # The confidence reaches the scene's result properties.
    assert settings.has_result and 0.5 < settings.result_iou <= 1.0
    margin = settings.result_margin
    assert settings.result_ambiguous == (margin == margin and margin < AMBIGUOUS_MARGIN)
    assert {'REGISTER', 'UNDO'} <= operators.GRADHOG_OT_refine_camera.bl_options


def test_script_refine_starts_from_the_camera_and_reports_confidence():
    _, chair, camera = demo_scene()
    start = turned(TRUE_POSE, 30.0, towards=-60.0)
    place(camera, chair, start)
    result = api.refine(str(DATA / TRUTH["photo"]), chair, camera, mask=str(DATA / TRUTH["mask"]),
                        focal_length='CAMERA', refine=False)
    assert result["camera"] == camera.name
    for name in ("azimuth", "elevation", "roll"):
        assert result["initial_pose"][name] == pytest.approx(start[name], abs=1e-4)
    # Only views within the reach of the start are searched (45 degrees, plus the grid's spacing).
    assert rotation_error(result, start) < 50.0
    assert rotation_error(result, TRUE_POSE) < 12.0  # coarse grid only
    assert set(result) >= {"margin", "ambiguous", "iou"}
    assert result["ambiguous"] == bool(result["margin"] < AMBIGUOUS_MARGIN)
    assert 0.0 < result["iou"] <= 1.0 or math.isnan(result["iou"])
    json.dumps(options.json_ready(result), allow_nan=False)  # strict JSON (a missing margin is null)
    # A start far from the truth keeps the search there: the global search is really skipped.
    far = turned(TRUE_POSE, 120.0, towards=0.0)
    place(camera, chair, far)
    result = api.refine(str(DATA / TRUTH["photo"]), chair, camera, mask=str(DATA / TRUTH["mask"]),
                        focal_length='CAMERA', refine=False)
    assert rotation_error(result, far) < 50.0 and rotation_error(result, TRUE_POSE) > 60.0


def test_refine_without_a_camera_says_to_place_one():
    scene, chair, camera = demo_scene()
    bpy.data.objects.remove(camera)
    assert scene.camera is None
    with pytest.raises(api.AlignError, match="place a camera"):
        api.refine(str(DATA / TRUTH["photo"]), chair)
    configure(chair, None)
    with pytest.raises(RuntimeError, match="(?i)place one roughly"):
        bpy.ops.gradhog.refine_camera()


def test_cancelling_refine_changes_nothing():
    scene, chair, camera = demo_scene()
    place(camera, chair, turned(TRUE_POSE, 20.0, towards=0.0))
    configure(chair, camera, refine=False)
    before = blender_scene.camera_state(camera, scene)
    counts = {name: len(getattr(bpy.data, name)) for name in ("objects", "cameras", "scenes")}
    with pytest.raises(api.AlignCancelled):
        api.refine(str(DATA / TRUTH["photo"]), chair, camera, callback=lambda progress, message: False)
    assert blender_scene.camera_state(camera, scene) == before
    # The modal operator's worker: Esc sets the cancel flag the same way.
    job = operators.prepare_job(bpy.context, from_camera=True)
    assert job.initial_pose is not None
    worker = operators.AlignWorker(job)
    worker.cancel()
    worker.start()
    assert worker.wait(timeout=60)
    assert isinstance(worker.error, api.AlignCancelled) and worker.result is None
    assert blender_scene.camera_state(camera, scene) == before
    assert {name: len(getattr(bpy.data, name)) for name in counts} == counts
    assert not scene.gradhog.has_result


# --------------------------------------------------------------------------------------------
# Panel: constraints, the Refine button, the confidence line
# --------------------------------------------------------------------------------------------

def test_panel_constraints_reach_pose_options():
    demo_scene()
    settings = bpy.context.scene.gradhog
    assert options.from_panel(settings)["options"] == options.PoseOptions()
    settings.level_camera = True
    assert options.from_panel(settings)["options"].level_camera
    settings.on_ground = True
    assert options.from_panel(settings)["options"].elevation_range == (0.0, 90.0)
    settings.use_elevation_range = True
    settings.elevation_range = (-20.0, 55.0)
    assert options.from_panel(settings)["options"].elevation_range == (0.0, 55.0)  # above the ground
    settings.on_ground = False
    assert options.from_panel(settings)["options"].elevation_range == (-20.0, 55.0)
    settings.use_elevation_range = False
    assert options.from_panel(settings)["options"].elevation_range == options.PoseOptions.default("elevation_range")


def _draw(*panels):
    log = []

    class Context:
        scene = bpy.context.scene
        area = None
        region_data = None

    for cls in panels:
        cls.draw(type("Holder", (), {"layout": FakeLayout(log)})(), Context)
    return log


def test_panel_draws_refine_button_and_constraints():
    demo_scene()
    log = _draw(bpy.types.GRADHOG_PT_align, bpy.types.GRADHOG_PT_constraints)
    assert {"gradhog.align_camera", "gradhog.refine_camera"} <= {args[0] for name, args, _ in log if name == "operator"}
    assert {"level_camera", "on_ground", "use_elevation_range", "elevation_range"} <= {
        args[1] for name, args, _ in log if name == "prop"}


def test_result_box_warns_of_a_close_call_above_the_candidates():
    demo_scene()
    settings = bpy.context.scene.gradhog
    settings.has_result = True
    for _ in range(3):
        settings.candidates.add()
    settings.result_margin, settings.result_ambiguous, settings.result_iou = 0.004, True, 0.93
    log = _draw(bpy.types.GRADHOG_PT_results)
    labels = [(kwargs.get("text"), kwargs.get("icon")) for name, _, kwargs in log if name == "label"]
    assert (panel.CLOSE_CALL, 'ERROR') in labels
    assert any("Margin 0.004" in (text or "") and "0.93" in text for text, _ in labels)
    order = [name for name, _, _ in log]
    warning = next(i for i, (name, _, kwargs) in enumerate(log) if kwargs.get("text") == panel.CLOSE_CALL)
    assert warning < order.index("template_list")
    settings.result_margin, settings.result_ambiguous = 0.2, False
    log = _draw(bpy.types.GRADHOG_PT_results)
    assert all(kwargs.get("text") != panel.CLOSE_CALL for _, _, kwargs in log)
    settings.result_margin = float("nan")
    log = _draw(bpy.types.GRADHOG_PT_results)
    assert any("No other distinct pose" in (kwargs.get("text") or "") for _, _, kwargs in log)


# --------------------------------------------------------------------------------------------
# gradhog align --init-pose and the constraint flags
# --------------------------------------------------------------------------------------------

def test_cli_init_pose_and_level_camera(tmp_path, capsys):
    start = turned(TRUE_POSE, 25.0, towards=45.0)
    out = tmp_path / "pose.json"
    code = cli.main(["align", "--photo", str(DATA / TRUTH["photo"]), "--mesh", str(DATA / TRUTH["mesh"]),
                     "--mask", str(DATA / TRUTH["mask"]), "--lens-mm", "50", "--out", str(out), "--quiet",
                     "--no-refine", "--level-camera", "--on-ground",
                     "--init-pose", str(start["azimuth"]), str(start["elevation"]), "3", "4"])
    capsys.readouterr()
    assert code == 0
    result = json.loads(out.read_text())
    assert result["initial_pose"] == pytest.approx({"azimuth": start["azimuth"], "elevation": start["elevation"],
                                                    "distance": 3.0, "roll": 4.0})
    assert rotation_error(result, start) < 50.0 and rotation_error(result, TRUE_POSE) < 12.0
    assert result["roll"] == pytest.approx(0.0, abs=1e-6)  # level camera
    assert result["elevation"] >= 0.0
    assert {"margin", "ambiguous", "iou"} <= set(result)
    assert result["margin"] is None or result["ambiguous"] == (result["margin"] < AMBIGUOUS_MARGIN)


def test_cli_rejects_a_bad_init_pose(tmp_path, capsys):
    code = cli.main(["align", "--photo", str(DATA / TRUTH["photo"]), "--mesh", str(DATA / TRUTH["mesh"]),
                     "--out", str(tmp_path / "pose.json"), "--init-pose", "10", "120", "3", "0"])
    assert code != 0
    assert "elevation" in capsys.readouterr().err
