"""Install the built add-on zip into a throw-away Blender user folder, enable it, make torch
importable the way a user would, align a small scene and check the camera.

Runs inside a real Blender or inside the ``bpy`` module, as a new user's Blender would run it:

    BLENDER_USER_SCRIPTS=$TMP/scripts BLENDER_USER_CONFIG=$TMP/config ... GRADHOG_TEST_HOME=$TMP \\
    blender -b --factory-startup --python-exit-code 1 --python tests/blender/run_installed_align.py -- \\
        --zip dist/gradhog-0.1.0.zip --mode legacy --torch-folder $TMP/torch --result $TMP/result.json

    (same environment) python tests/blender/run_installed_align.py -- --zip ... --mode extension ...

Modes: ``legacy`` (``preferences.addon_install`` + ``addon_enable``, Blender 3.x-4.1 route) or
``extension`` (``extensions.package_install_files``, Blender 4.2+ "Install from Disk").
``--torch-folder``: a folder holding torch/numpy/pillow, given to the add-on's "PyTorch Folder"
preference (the offline route). ``--probe-wheels``: a folder of ``.whl`` files; the add-on's
Install button operator installs ``--probe-package`` from it (``pip --no-index``) to exercise
the pip code path without downloading PyTorch. ``--align``: render a photo of a small object
with a known camera (Workbench), move the camera, and align it with the installed ``api.align``.

Every check goes to the ``--result`` JSON as it happens; the first failed check exits with 1.
Refuses to run unless Blender's user script folder lies under ``$GRADHOG_TEST_HOME``, so a real
user configuration is never touched.
"""
import argparse
import importlib
import importlib.util
import json
import math
import os
import sys
import time
import traceback

import bpy

RESULT = {"checks": {}, "blender": bpy.app.version_string, "python": sys.version.split()[0]}
ARGS = None


def write_result():
    if ARGS is not None and ARGS.result:
        with open(ARGS.result, "w", encoding="utf-8") as handle:
            json.dump(RESULT, handle, indent=2, default=str)


def check(name, ok, detail=""):
    """Record a check; stop the run (exit 1) on the first failure."""
    RESULT["checks"][name] = {"ok": bool(ok), "detail": str(detail)}
    print(f"[gradhog-install] {'PASS' if ok else 'FAIL'} {name}: {detail}", flush=True)
    write_result()
    if not ok:
        sys.exit(1)


def parse_args():
    argv = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else []
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zip", required=True)
    parser.add_argument("--mode", choices=("legacy", "extension"), default="legacy")
    parser.add_argument("--torch-folder", default="")
    parser.add_argument("--torch-in-default-folder", default="",
                        help="before enabling, link this folder's contents into the add-on's default "
                             "deps folder (the documented manual route: pip install --target there)")
    parser.add_argument("--install-torch", action="store_true",
                        help="press Install PyTorch (CPU) for real: downloads torch (+numpy, pillow if missing)")
    parser.add_argument("--probe-wheels", default="")
    parser.add_argument("--probe-package", default="gradhog_probe")
    parser.add_argument("--align", action="store_true")
    parser.add_argument("--demo", action="store_true",
                        help="align the embedded demo (chair, photo, mask) against its ground truth, then undo")
    parser.add_argument("--result", default="")
    return parser.parse_args(argv)


def isolate_from_checkout():
    """Make sure only the installed copy can be imported: drop editable-install finders."""
    sys.meta_path[:] = [finder for finder in sys.meta_path
                        if not type(finder).__module__.startswith("__editable__")]
    for name in [name for name in sys.modules if name.split(".")[0] in ("blender_gradhog", "torch_backend")]:
        del sys.modules[name]


def under(path, folder):
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return os.path.commonpath([path, folder]) == folder


def install_legacy(zip_path):
    result = bpy.ops.preferences.addon_install(filepath=zip_path, overwrite=True)
    check("install", result == {'FINISHED'}, f"preferences.addon_install -> {result}")
    result = bpy.ops.preferences.addon_enable(module="blender_gradhog")
    check("enable", result == {'FINISHED'}, f"preferences.addon_enable -> {result}")
    return "blender_gradhog"


def install_extension(zip_path):
    check("extensions operator", hasattr(bpy.ops.extensions, "package_install_files"),
          "bpy.ops.extensions.package_install_files exists")
    repos = [repo.module for repo in bpy.context.preferences.extensions.repos if repo.use_custom_directory is False
             and not repo.use_remote_url] or [repo.module for repo in bpy.context.preferences.extensions.repos]
    repo = "user_default" if "user_default" in repos else repos[0]
    result = bpy.ops.extensions.package_install_files(filepath=zip_path, repo=repo, enable_on_install=True)
    check("install", result == {'FINISHED'}, f"extensions.package_install_files(repo={repo!r}) -> {result}")
    package = f"bl_ext.{repo}.gradhog"
    check("enable", package in bpy.context.preferences.addons, f"{package} in preferences.addons")
    return package


def seed_default_folder(source):
    """What `pip install --target <default deps folder> torch numpy pillow` leaves behind."""
    if ARGS.mode == "legacy":
        target = os.path.join(bpy.utils.user_resource('SCRIPTS'), "gradhog_deps")
    else:
        target = os.path.join(os.environ["BLENDER_USER_EXTENSIONS"], ".user", "user_default", "gradhog")
    target = os.path.join(target, f"site-packages-py{sys.version_info[0]}.{sys.version_info[1]}")
    os.makedirs(target, exist_ok=True)
    for name in os.listdir(source):
        link = os.path.join(target, name)
        if not os.path.lexists(link):
            os.symlink(os.path.realpath(os.path.join(source, name)), link)
    check("default deps folder seeded", True, target)


def main():
    global ARGS
    ARGS = parse_args()
    home = os.environ.get("GRADHOG_TEST_HOME", "")
    user_scripts = bpy.utils.user_resource('SCRIPTS')
    if not home or not under(user_scripts, home):
        print(f"refusing to run: Blender's user scripts folder {user_scripts!r} is not under "
              f"$GRADHOG_TEST_HOME={home!r}; set BLENDER_USER_SCRIPTS/CONFIG/DATAFILES/EXTENSIONS to a temp dir",
              file=sys.stderr)
        sys.exit(2)
    isolate_from_checkout()
    zip_path = os.path.abspath(ARGS.zip)
    if ARGS.torch_in_default_folder:
        seed_default_folder(ARGS.torch_in_default_folder)
    package = install_legacy(zip_path) if ARGS.mode == "legacy" else install_extension(zip_path)
    RESULT["package"] = package

    addon = importlib.import_module(package)
    RESULT["module_file"] = addon.__file__
    RESULT["numpy_found_after_enable"] = importlib.util.find_spec("numpy") is not None
    RESULT["torch_found_after_enable"] = importlib.util.find_spec("torch") is not None
    check("installed copy", under(addon.__file__, home), f"{package}.__file__ = {addon.__file__}")

    prefs = getattr(bpy.context.preferences.addons[package], "preferences", None)
    prefs_ok = prefs is not None and hasattr(prefs, "torch_folder")
    RESULT["prefs_registered"] = prefs_ok
    print(f"[gradhog-install] preferences registered: {prefs_ok}", flush=True)
    deps = importlib.import_module(f"{package}.deps")
    default_dir = str(deps.default_deps_dir(package))
    RESULT["default_deps_dir"] = default_dir
    if ARGS.torch_in_default_folder:
        check("default deps folder on sys.path", default_dir in sys.path, default_dir)

    if ARGS.torch_folder:
        if prefs_ok:
            prefs.torch_folder = ARGS.torch_folder  # The update callback puts it on sys.path.
        else:
            deps.add_to_sys_path(ARGS.torch_folder)
        check("torch folder on sys.path", os.path.abspath(ARGS.torch_folder) in sys.path, ARGS.torch_folder)

    if ARGS.install_torch:
        check("install operator registered", prefs_ok, "preferences registered")
        started = time.time()
        result = bpy.ops.gradhog.install_torch()
        RESULT["install_seconds"] = time.time() - started
        check("Install PyTorch (CPU)", result == {'FINISHED'}, f"gradhog.install_torch() -> {result} "
              f"in {RESULT['install_seconds']:.0f} s")
        import torch
        check("torch from the deps folder", under(torch.__file__, default_dir), torch.__file__)

    if prefs_ok:
        result = bpy.ops.gradhog.check_torch()
        status = importlib.import_module(f"{package}.preferences")._status
        RESULT["torch_status"] = status.summary() if status else None
        check("torch importable", result == {'FINISHED'}, RESULT["torch_status"])
    else:
        status = deps.torch_status()
        RESULT["torch_status"] = status.summary()
        check("torch importable", status.importable, status.summary())

    if ARGS.probe_wheels:
        if not prefs_ok:
            check("install operator", False, "preferences (and the Install PyTorch operator) are not registered")
        target = os.path.join(home, "probe_target")
        prefs.wheels_folder = ARGS.probe_wheels
        result = bpy.ops.gradhog.install_torch(target=target, packages=ARGS.probe_package)
        check("install operator", result == {'FINISHED'}, f"gradhog.install_torch(pip --no-index) -> {result}")
        probe = importlib.import_module(ARGS.probe_package)
        check("installed package importable", under(probe.__file__, target), probe.__file__)
        prefs.wheels_folder = ""

    # The core must come from the vendored copy inside the installed add-on.
    backend = importlib.import_module(f"{package}._backend").package
    check("vendored torch_backend", under(backend.__file__, home), backend.__file__)

    if ARGS.align:
        align_small_scene(package)
    if ARGS.demo:
        align_demo_and_undo(package)
    RESULT["ok"] = True
    write_result()
    print("[gradhog-install] ALL CHECKS PASSED", flush=True)


def build_scene():
    """An asymmetric object (a box with a post on one corner) seen by a known camera."""
    from mathutils import Vector

    for obj in list(bpy.data.objects):
        bpy.data.objects.remove(obj, do_unlink=True)
    scene = bpy.context.scene
    mesh = bpy.data.meshes.new("GradhogTarget")
    verts, faces = [], []

    def box(x0, y0, z0, x1, y1, z1):
        base = len(verts)
        verts.extend([(x, y, z) for x in (x0, x1) for y in (y0, y1) for z in (z0, z1)])
        for quad in ((0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)):
            faces.append(tuple(base + i for i in quad))

    box(-0.6, -0.4, 0.0, 0.6, 0.4, 0.5)
    box(0.35, 0.15, 0.5, 0.55, 0.35, 1.3)
    mesh.from_pydata(verts, [], faces)
    mesh.update()
    obj = bpy.data.objects.new("Target", mesh)
    scene.collection.objects.link(obj)
    obj.location = (0.3, -0.2, 0.1)
    obj.rotation_euler = (0.0, 0.0, math.radians(25))

    camera = bpy.data.objects.new("Camera", bpy.data.cameras.new("Camera"))
    scene.collection.objects.link(camera)
    scene.camera = camera
    camera.location = obj.location + Vector((2.2, -3.6, 2.0))
    direction = obj.location + Vector((0, 0, 0.5)) - camera.location
    camera.rotation_euler = direction.to_track_quat('-Z', 'Y').to_euler()
    return scene, obj, camera


def render_photo(scene, path):
    scene.render.engine = 'BLENDER_WORKBENCH'
    scene.render.resolution_x, scene.render.resolution_y = 160, 120
    scene.render.resolution_percentage = 100
    scene.render.film_transparent = True
    scene.render.image_settings.file_format = 'PNG'
    scene.render.image_settings.color_mode = 'RGBA'
    scene.render.filepath = path
    bpy.ops.render.render(write_still=True)


def view_direction(camera):
    from mathutils import Vector

    return (camera.matrix_world.to_3x3() @ Vector((0.0, 0.0, -1.0))).normalized()


def align_small_scene(package):
    api = importlib.import_module(f"{package}.api")
    check("api.align present", hasattr(api, "align"), f"{package}.api.align")
    scene, obj, camera = build_scene()
    photo = os.path.join(os.environ["GRADHOG_TEST_HOME"], "photo.png")
    render_photo(scene, photo)
    check("photo rendered", os.path.exists(photo), photo)
    true_direction = view_direction(camera)
    true_centre = camera.matrix_world.translation.copy()
    # Start from a clearly wrong camera: the aligner must find the view by itself.
    camera.location = obj.location + type(true_centre)((-3.0, 2.5, 0.4))
    camera.rotation_euler = (math.radians(80), 0.0, math.radians(230))
    bpy.context.view_layer.update()
    started_wrong = math.degrees(view_direction(camera).angle(true_direction))
    try:
        result = api.align(photo, obj, camera)
    except Exception:
        traceback.print_exc()
        check("align ran", False, "api.align raised (traceback above)")
    RESULT["align_result"] = {key: value for key, value in dict(result).items()
                              if isinstance(value, (int, float, str))} if hasattr(result, "keys") else str(result)
    bpy.context.view_layer.update()
    angle = math.degrees(view_direction(camera).angle(true_direction))
    # Distance is judged relative to the true camera-object distance (scale is what HOG sees least).
    true_distance = (true_centre - obj.location).length
    distance_error = abs((camera.matrix_world.translation - obj.location).length - true_distance) / true_distance
    RESULT["view_angle_error_deg"] = angle
    RESULT["start_angle_error_deg"] = started_wrong
    RESULT["relative_distance_error"] = distance_error
    check("camera custom properties", "gradhog_score" in camera.keys(), sorted(camera.keys()))
    check("view direction recovered", angle < 15.0,
          f"{angle:.1f} deg from the true view (started {started_wrong:.1f} deg off)")
    check("distance recovered", distance_error < 0.2, f"relative distance error {distance_error:.3f}")


def camera_pose(camera):
    return [list(row) for row in camera.matrix_world]


def align_demo_and_undo(package):
    """The demo through the installed add-on, then Edit > Undo: the camera goes back exactly."""
    from pathlib import Path

    api = importlib.import_module(f"{package}.api")
    backend = importlib.import_module(f"{package}._backend").package
    data = Path(backend.__file__).parent / "data"
    truth = json.loads((data / "demo_truth.json").read_text())
    bpy.ops.wm.read_factory_settings(use_empty=True)
    importer = bpy.ops.wm.obj_import if hasattr(bpy.ops.wm, "obj_import") else bpy.ops.import_scene.obj
    importer(filepath=str(data / truth["mesh"]), forward_axis='Y', up_axis='Z')
    chair = bpy.context.selected_objects[0]
    scene = bpy.context.scene
    camera = bpy.data.objects.new("Camera", bpy.data.cameras.new("Camera"))
    scene.collection.objects.link(camera)
    scene.camera = camera
    camera.location = (4.0, -3.0, 2.0)
    bpy.ops.ed.undo_push(message="before align")
    before = camera_pose(camera)
    started = time.time()
    try:
        result = api.align(str(data / truth["photo"]), chair, camera, mask=str(data / truth["mask"]))
    except Exception:
        traceback.print_exc()
        check("demo aligned", False, "api.align raised (traceback above)")
    RESULT["demo_seconds"] = time.time() - started
    expected = api.camera_matrix(api.current_frame(chair), truth)
    written = [list(row) for row in camera.matrix_world]
    relative = [[sum(expected[k][i] * written[k][j] for k in range(3)) for j in range(3)] for i in range(3)]
    angle = math.degrees(math.acos(max(-1.0, min(1.0, (relative[0][0] + relative[1][1] + relative[2][2] - 1) / 2))))
    distance_error = abs(result["distance"] / truth["distance"] - 1.0)
    RESULT["demo"] = {"rotation_error_deg": angle, "relative_distance_error": distance_error,
                      "azimuth": result["azimuth"], "elevation": result["elevation"], "score": result["score"]}
    check("demo aligned", angle < 3.0 and distance_error < 0.05,
          f"rotation {angle:.2f} deg, distance {100 * distance_error:.1f} % off the truth in {RESULT['demo_seconds']:.0f} s")
    bpy.ops.ed.undo_push(message="Align Camera")
    aligned = camera_pose(bpy.data.objects["Camera"])
    bpy.ops.ed.undo()
    restored = camera_pose(bpy.data.objects["Camera"])  # undo rebuilt the data: look it up again
    check("undo restores the camera", restored == before and aligned != before, "matrix_world as before the alignment")
    bpy.ops.ed.redo()
    check("redo re-applies the alignment", camera_pose(bpy.data.objects["Camera"]) == aligned, "matrix_world as aligned")


if __name__ == "__main__":
    try:
        main()
    except SystemExit:
        raise
    except Exception:
        traceback.print_exc()
        RESULT["exception"] = traceback.format_exc()
        write_result()
        sys.exit(1)
