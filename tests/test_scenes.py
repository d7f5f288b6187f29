"""Unusual scenes an artist meets, through ``api.align`` and the operators (bpy as a module).

Each case ends either in a correct alignment or in one :class:`AlignError` line that names the
problem, and then the scene is exactly as before (:func:`snapshot`). The photos are Workbench
renders of a small asymmetric object from a known camera; the alignments run the coarse grid
only (``FAST``), so "correct" means within the grid's reach (view direction within 12 degrees).
"""
from __future__ import annotations

import math
import os

import numpy as np
import pytest

pytestmark = pytest.mark.bpy

bpy = pytest.importorskip("bpy")
torch = pytest.importorskip("torch")

from mathutils import Matrix, Vector  # noqa: E402

import blender_gradhog as addon  # noqa: E402
from blender_gradhog import api, operators, scene as blender_scene  # noqa: E402
from torch_backend import camera as camera_convention, meshes  # noqa: E402

TRUE_POSE = {"azimuth": 47.0, "elevation": 23.0, "distance": 3.3, "roll": 0.0}
PHOTO_SIZE = (120, 90)
FAST = {"refine": False, "top_k": 1}


# --------------------------------------------------------------------------------------------
# Scene building and the snapshot every case compares
# --------------------------------------------------------------------------------------------

def fresh_blender():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    addon.register()


def add_mesh_object(name, vertices, faces, data=None):
    if data is None:
        data = bpy.data.meshes.new(name)
        data.from_pydata(np.asarray(vertices).tolist(), [], np.asarray(faces).tolist())
        data.update()
    obj = bpy.data.objects.new(name, data)
    bpy.context.scene.collection.objects.link(obj)
    return obj


def render_photo(path, camera_matrix, size=PHOTO_SIZE):
    """Render the scene's visible objects from ``camera_matrix`` with a temporary camera."""
    scene = bpy.context.scene
    data = bpy.data.cameras.new("Photographer")
    photographer = bpy.data.objects.new("Photographer", data)
    scene.collection.objects.link(photographer)
    photographer.matrix_world = Matrix(np.asarray(camera_matrix).tolist())
    saved_camera = scene.camera
    scene.camera = photographer
    render = scene.render
    render.engine = blender_scene.workbench_engine_id()
    render.resolution_x, render.resolution_y = size
    render.resolution_percentage = 100
    render.film_transparent = True
    render.image_settings.color_mode = 'RGBA'
    scene.display.shading.light = 'STUDIO'
    scene.display.shading.color_type = 'SINGLE'
    scene.display.shading.single_color = (0.55, 0.35, 0.2)
    render.filepath = str(path)
    bpy.ops.render.render(write_still=True)
    scene.camera = saved_camera
    bpy.data.objects.remove(photographer)
    bpy.data.cameras.remove(data)
    render.resolution_x, render.resolution_y = 640, 480
    return path


def true_camera(obj, pose=TRUE_POSE):
    frame = api.current_frame(obj)
    return frame @ camera_convention.camera_to_world(**pose, dtype=torch.float64).numpy()


def make_scene(tmp_path, build=None):
    """A chair (or what ``build()`` returns) moved and turned, its photo, and a camera elsewhere;
    returns (object, camera, photo path, true camera matrix)."""
    fresh_blender()
    chair = build() if build else add_mesh_object("Chair", *meshes.chair())
    chair.location = (1.5, -2.0, 0.4)
    chair.rotation_euler[2] += math.radians(35.0)
    bpy.context.view_layer.update()
    truth = true_camera(chair)
    photo = render_photo(tmp_path / "photo.png", truth)
    camera = blender_scene.new_camera(bpy.context.scene, "Camera")
    bpy.context.scene.camera = camera
    camera.matrix_world = Matrix.Translation((4.0, 5.0, 6.0))
    bpy.context.view_layer.update()
    return chair, camera, photo, truth


def view_error_degrees(camera, truth) -> float:
    bpy.context.view_layer.update()
    axis = -np.array(camera.matrix_world)[:3, 2]
    true_axis = -np.asarray(truth)[:3, 2]
    return math.degrees(math.acos(np.clip(axis @ true_axis / np.linalg.norm(axis) / np.linalg.norm(true_axis), -1, 1)))


def assert_aligned(camera, truth, limit=12.0):
    error = view_error_degrees(camera, truth)
    assert error < limit, f"view direction {error:.1f} degrees off"
    world = np.array(camera.matrix_world)
    np.testing.assert_allclose(world[:3, :3] @ world[:3, :3].T, np.eye(3), atol=1e-4)  # rigid, unscaled


def snapshot() -> dict:
    """Everything an alignment may touch, as plain values (for exact comparison)."""
    scene = bpy.context.scene
    render = scene.render
    cameras = {}
    for obj in bpy.data.objects:
        if obj.type != 'CAMERA':
            continue
        data = obj.data
        cameras[obj.name] = {
            "matrix_world": [tuple(row) for row in obj.matrix_world],
            "matrix_basis": [tuple(row) for row in obj.matrix_basis],
            "lens": data.lens, "type": data.type, "sensor": (data.sensor_width, data.sensor_height, data.sensor_fit),
            "shift": (data.shift_x, data.shift_y), "show_background_images": data.show_background_images,
            "background_images": [(bg.image.name if bg.image else None, bg.frame_method, bg.show_background_image,
                                   bg.alpha, bg.rotation, bg.scale) for bg in data.background_images],
            "properties": sorted(obj.keys()),
        }
    return {
        "cameras": cameras,
        "scene_camera": scene.camera.name if scene.camera else None,
        "resolution": (render.resolution_x, render.resolution_y, render.resolution_percentage),
        "pixel_aspect": (render.pixel_aspect_x, render.pixel_aspect_y),
        "selection": sorted(obj.name for obj in scene.objects if obj.select_get()),
        "active": bpy.context.view_layer.objects.active.name if bpy.context.view_layer.objects.active else None,
        "frame": scene.frame_current,
        "datablocks": {name: sorted(block.name for block in getattr(bpy.data, name))
                       for name in ("objects", "meshes", "cameras", "scenes", "images")},
        "has_result": scene.gradhog.has_result,
    }


def expect_refusal(fragment, *args, **kwargs):
    """``api.align(*args, **kwargs)`` raises one AlignError line matching ``fragment``; nothing changes."""
    before = snapshot()
    with pytest.raises(api.AlignError, match=fragment) as caught:
        api.align(*args, **{**FAST, **kwargs})
    message = str(caught.value)
    assert "\n" not in message and len(message) < 200, message
    assert snapshot() == before
    return message


def configure_panel(target, camera, photo):
    settings = bpy.context.scene.gradhog
    settings.photo_path = str(photo)
    settings.target = target
    settings.camera = camera
    settings.refine = False
    settings.top_k = 1
    return settings


def expect_operator_refusal(fragment):
    before = snapshot()
    with pytest.raises(RuntimeError, match=fragment):
        bpy.ops.gradhog.align_camera()
    assert snapshot() == before


# --------------------------------------------------------------------------------------------
# The object
# --------------------------------------------------------------------------------------------

def test_parented_non_uniformly_scaled_object(tmp_path):
    def build():
        parent = bpy.data.objects.new("Rig", None)
        bpy.context.scene.collection.objects.link(parent)
        parent.location, parent.rotation_euler = (0.5, 0.2, -0.3), (0.0, 0.0, math.radians(-20.0))
        chair = add_mesh_object("Chair", *meshes.chair())
        chair.parent = parent
        chair.scale = (1.3, 0.8, 1.1)
        return chair

    chair, camera, photo, truth = make_scene(tmp_path, build)
    api.align(str(photo), chair, camera, **FAST)
    assert_aligned(camera, truth)


def test_modifiers_are_evaluated(tmp_path):
    """An array modifier makes two chairs out of one: the aligner must see both."""
    vertices, faces = meshes.chair()

    def build():
        chair = add_mesh_object("Chair", vertices, faces)
        chair.modifiers.new("Array", 'ARRAY').count = 2
        return chair

    chair, camera, photo, truth = make_scene(tmp_path, build)
    job = api.prepare(str(photo), chair, camera, coarse_views=False, **FAST)
    assert len(job.mesh.vertices) == 2 * len(vertices)
    api.align(str(photo), chair, camera, **FAST)
    assert_aligned(camera, truth)


def test_linked_duplicate_uses_its_own_transform(tmp_path):
    chair, camera, photo, _ = make_scene(tmp_path)
    twin = add_mesh_object("Chair twin", None, None, data=chair.data)
    twin.location, twin.rotation_euler = (-3.0, 1.0, 0.0), (0.0, 0.0, math.radians(-60.0))
    bpy.context.view_layer.update()
    truth = true_camera(twin)
    chair.hide_render = True
    photo = render_photo(tmp_path / "twin.png", truth)
    api.align(str(photo), twin, camera, **FAST)
    assert_aligned(camera, truth)


def test_text_object_is_converted_to_a_mesh(tmp_path):
    def build():
        curve = bpy.data.curves.new("Label", 'FONT')
        curve.body = "F"
        curve.extrude = 0.3
        text = bpy.data.objects.new("Label", curve)
        bpy.context.scene.collection.objects.link(text)
        text.rotation_euler = (math.radians(90.0), 0.0, 0.0)
        return text

    text, camera, photo, truth = make_scene(tmp_path, build)
    api.align(str(photo), text, camera, **FAST)
    assert_aligned(camera, truth)


def test_curve_without_faces_is_refused(tmp_path):
    chair, camera, photo, _ = make_scene(tmp_path)
    curve = bpy.data.curves.new("Wire", 'CURVE')
    curve.splines.new('POLY').points.add(3)
    wire = bpy.data.objects.new("Wire", curve)
    bpy.context.scene.collection.objects.link(wire)
    expect_refusal(r"'Wire' is a curve without faces.*bevel", str(photo), wire, camera)


@pytest.mark.parametrize("kind", ["empty", "light", "camera"])
def test_an_object_without_geometry_is_refused(tmp_path, kind):
    chair, camera, photo, _ = make_scene(tmp_path)
    if kind == "empty":
        obj = bpy.data.objects.new("Nothing", None)
    elif kind == "light":
        obj = bpy.data.objects.new("Nothing", bpy.data.lights.new("Lamp", 'POINT'))
    else:
        obj = bpy.data.objects.new("Nothing", bpy.data.cameras.new("Lens"))
    bpy.context.scene.collection.objects.link(obj)
    expect_refusal(rf"'Nothing' is a{'n' if kind == 'empty' else ''} {kind}.*not a mesh", str(photo), obj, camera)


def test_non_finite_vertices_are_counted_before_any_rendering(tmp_path, monkeypatch):
    chair, camera, photo, _ = make_scene(tmp_path)
    coordinates = np.empty(3 * len(chair.data.vertices), dtype=np.float32)
    chair.data.vertices.foreach_get("co", coordinates)
    coordinates[[0, 16]] = float("nan"), float("inf")  # vertices 0 and 5
    chair.data.vertices.foreach_set("co", coordinates)
    chair.data.update()
    monkeypatch.setattr(blender_scene.ViewRenderer, "__init__", lambda *a, **k: pytest.fail("rendered"))
    count = len(chair.data.vertices)
    expect_refusal(rf"'Chair'.*2 of {count} are not finite \(NaN or inf\)", str(photo), chair, camera)


# --------------------------------------------------------------------------------------------
# The camera
# --------------------------------------------------------------------------------------------

def test_parented_camera_gets_the_right_world_pose(tmp_path):
    chair, camera, photo, truth = make_scene(tmp_path)
    rig = bpy.data.objects.new("Camera rig", None)
    bpy.context.scene.collection.objects.link(rig)
    rig.location, rig.rotation_euler, rig.scale = (2.0, -1.0, 0.5), (0.2, -0.1, 0.7), (2.0, 2.0, 2.0)
    camera.parent = rig
    bpy.context.view_layer.update()
    result = api.align(str(photo), chair, camera, **FAST)
    assert_aligned(camera, truth)
    expected = api.camera_matrix(api.current_frame(chair), result)
    np.testing.assert_allclose(np.array(camera.matrix_world), expected, atol=1e-4)
    assert camera.parent == rig  # the hierarchy is kept


def test_camera_under_a_non_uniformly_scaled_parent_is_refused(tmp_path):
    chair, camera, photo, _ = make_scene(tmp_path)
    rig = bpy.data.objects.new("Squashed rig", None)
    bpy.context.scene.collection.objects.link(rig)
    rig.rotation_euler, rig.scale = (0.3, 0.0, 0.5), (1.0, 2.0, 1.0)
    camera.parent = rig
    bpy.context.view_layer.update()
    expect_refusal(r"'Camera'.*'Squashed rig'.*scaled non-uniformly", str(photo), chair, camera)


def test_camera_with_constraints_is_refused_and_muted_ones_are_ignored(tmp_path):
    chair, camera, photo, truth = make_scene(tmp_path)
    track = camera.constraints.new('TRACK_TO')
    track.target = chair
    bpy.context.view_layer.update()
    expect_refusal(r"'Camera'.*constraint.*Track To", str(photo), chair, camera)
    track.mute = True
    bpy.context.view_layer.update()
    api.align(str(photo), chair, camera, **FAST)
    assert_aligned(camera, truth)


@pytest.mark.parametrize("kind", ["ORTHO", "PANO"])
def test_orthographic_and_panoramic_cameras_are_refused(tmp_path, kind):
    chair, camera, photo, _ = make_scene(tmp_path)
    camera.data.type = kind
    word = {"ORTHO": "orthographic", "PANO": "panoramic"}[kind]
    expect_refusal(rf"'Camera' is {word}.*perspective", str(photo), chair, camera)


def test_pixel_aspect_and_render_percentage(tmp_path):
    """Pixel aspect becomes 1 (the photo's pixels are square); the preview percentage is kept."""
    chair, camera, photo, truth = make_scene(tmp_path)
    render = bpy.context.scene.render
    render.pixel_aspect_x, render.pixel_aspect_y, render.resolution_percentage = 2.0, 1.0, 37
    api.align(str(photo), chair, camera, **FAST)
    assert_aligned(camera, truth)
    assert (render.resolution_x, render.resolution_y) == PHOTO_SIZE
    assert (render.pixel_aspect_x, render.pixel_aspect_y) == (1.0, 1.0)
    assert render.resolution_percentage == 37


def test_existing_background_images_are_kept_and_ours_added_once(tmp_path):
    chair, camera, photo, truth = make_scene(tmp_path)
    data = camera.data
    others = [bpy.data.images.new(f"Plate {i}", 8, 8) for i in range(2)]
    for index, image in enumerate(others):
        background = data.background_images.new()
        background.image, background.alpha, background.frame_method = image, 0.3 + 0.2 * index, 'STRETCH'
    before = [(bg.image.name, bg.alpha, bg.frame_method) for bg in data.background_images]
    api.align(str(photo), chair, camera, **FAST)
    api.align(str(photo), chair, camera, **FAST)  # a second run replaces ours, adds nothing
    after = [(bg.image.name, bg.alpha, bg.frame_method) for bg in data.background_images]
    assert after[:2] == before and len(after) == 3
    assert data.background_images[2].image.filepath == str(photo) and data.show_background_images


# --------------------------------------------------------------------------------------------
# The photo
# --------------------------------------------------------------------------------------------

def test_packed_photo_without_its_file(tmp_path):
    chair, camera, photo, truth = make_scene(tmp_path)
    image = bpy.data.images.load(str(photo))
    image.pack()
    os.remove(photo)
    api.align(image, chair, camera, **FAST)
    assert_aligned(camera, truth)


def test_relative_photo_path_in_an_unsaved_file(tmp_path):
    chair, camera, photo, _ = make_scene(tmp_path)
    assert bpy.data.filepath == ""
    expect_refusal(r"'//photo.png' is relative to the \.blend file.*not saved", "//photo.png", chair, camera)
    image = bpy.data.images.load(str(photo))
    image.filepath = "//photo.png"
    image.reload()
    expect_refusal(r"'photo.png'.*'//photo.png' is relative to the \.blend file.*not saved", image, chair, camera)


def test_missing_photo_file(tmp_path):
    chair, camera, photo, _ = make_scene(tmp_path)
    expect_refusal(r"photo not found: .*gone\.png", str(tmp_path / "gone.png"), chair, camera)
    image = bpy.data.images.load(str(photo))
    os.remove(photo)
    image.reload()
    expect_refusal(r"'photo.png'.*file not found.*photo\.png", image, chair, camera)


def test_movie_clip_is_refused(tmp_path):
    chair, camera, photo, _ = make_scene(tmp_path)
    movie = tmp_path / "take.mp4"
    movie.write_bytes(b"\x00" * 64)
    expect_refusal(r"take\.mp4.*movie.*still image", str(movie), chair, camera)
    image = bpy.data.images.load(str(photo))
    image.source = 'MOVIE'
    expect_refusal(r"'photo.png' is a movie.*still image", image, chair, camera)
    clip = bpy.data.movieclips.new("Clip") if hasattr(bpy.data.movieclips, "new") else None
    if clip is not None:
        expect_refusal(r"movie clip.*still image", clip, chair, camera)


# --------------------------------------------------------------------------------------------
# Running, cancelling, undoing
# --------------------------------------------------------------------------------------------

def test_a_second_align_while_one_runs_is_refused(tmp_path):
    chair, camera, photo, _ = make_scene(tmp_path)
    configure_panel(chair, camera, photo)
    operators.RUNNING.add("Scene")  # what a running modal alignment holds
    try:
        expect_operator_refusal(r"(?i)already running.*Esc")
    finally:
        operators.RUNNING.clear()
    assert bpy.ops.gradhog.align_camera() == {'FINISHED'}
    assert not operators.RUNNING


@pytest.mark.parametrize("stop_after", [0, 2, 6])
def test_cancel_during_the_solve_changes_nothing(tmp_path, stop_after):
    chair, camera, photo, _ = make_scene(tmp_path)
    calls = []

    def callback(progress, message):
        calls.append(message)
        return len(calls) <= stop_after

    before = snapshot()
    with pytest.raises(api.AlignCancelled):
        api.align(str(photo), chair, camera, callback=callback, **{**FAST, "refine": True, "iterations": 2})
    assert len(calls) == stop_after + 1
    assert snapshot() == before


def test_cancel_while_rendering_the_coarse_views_changes_nothing(tmp_path):
    chair, camera, photo, _ = make_scene(tmp_path)
    before = snapshot()
    job = api.prepare(str(photo), chair, camera, coarse_views='later', azimuth_step=40.0, **FAST)
    assert job.pending_views is not None
    job.pending_views.render_some(seconds=0.0)  # one view, then Esc
    assert 0.0 < job.pending_views.progress < 1.0
    job.pending_views.close()
    api.discard(job)
    assert snapshot() == before


def test_operator_errors_leave_the_scene_alone(tmp_path):
    chair, camera, photo, _ = make_scene(tmp_path)
    configure_panel(chair, camera, photo)
    camera.data.type = 'ORTHO'
    expect_operator_refusal(r"'Camera' is orthographic")
    camera.data.type = 'PERSP'
    chair.data.vertices[0].co = (float("nan"), 0.0, 0.0)
    expect_operator_refusal(r"not finite")


def test_undo_and_redo_after_an_alignment(tmp_path):
    chair, camera, photo, truth = make_scene(tmp_path)
    configure_panel(chair, camera, photo)
    chair.select_set(True)
    bpy.context.view_layer.objects.active = chair
    bpy.ops.ed.undo_push(message="before align")
    before = snapshot()
    assert bpy.ops.gradhog.align_camera() == {'FINISHED'}
    bpy.ops.ed.undo_push(message="Align Camera")  # what the UI pushes after an UNDO operator
    aligned = snapshot()
    assert aligned != before
    bpy.ops.ed.undo()
    assert snapshot() == before
    bpy.ops.ed.redo()
    assert snapshot() == aligned
    assert_aligned(bpy.data.objects["Camera"], truth)
