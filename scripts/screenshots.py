"""Screenshots of the add-on at work in a real Blender window, for the README and docs.

    .venv/bin/python scripts/screenshots.py            # writes docs/screenshots/*.png

What it does, as a user would: builds ``dist``'s zip into a temp folder, starts Blender (the
``blender`` on PATH; Debian's 3.4.1 in CI) under Xvfb at 1600x1000 with a throw-away user folder,
installs the zip (Preferences > Add-ons > Install...), puts torch where the add-on looks for it (the
documented manual route, symlinked from this Python's site-packages: no download), opens the demo
scene that ships with the add-on (``torch_backend/data``: a chair mesh, its photo and mask), shows
the photo as the camera background with the mesh as an orange wireframe over it, opens the sidebar's
GradHOG tab, runs **Align Camera** (the modal operator, as a click would), and saves

- ``align_before.png``: window before aligning (camera at a wrong pose),
- ``align_after.png``: window after aligning (the wireframe lies on the chair in the photo),
- ``panel.png``: the GradHOG sidebar with the result.

Blender has no API to pick a sidebar tab in 3.4, so the script starts Blender with
``--enable-event-simulate`` and sends Ctrl+Wheel over the sidebar, which is what a user's Ctrl+Wheel
does. Needs ``xvfb-run`` (Debian package ``xvfb``).
"""
import json
import os
import sys

INSIDE_FLAG = "--inside-blender"


# ---------------------------------------------------------------------------------------------
# Driver: runs with the project's Python.
# ---------------------------------------------------------------------------------------------

def driver(argv):
    import argparse
    import shutil
    import subprocess
    import tempfile
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root))
    sys.path.insert(0, str(root / "tests" / "blender"))
    import build_addon
    import helpers

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=root / "docs" / "screenshots")
    parser.add_argument("--blender", default=shutil.which("blender") or "blender")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds before giving up")
    parser.add_argument("--keep-log", action="store_true", help="write Blender's output to OUT/blender.log")
    parser.add_argument("--only-preferences", action="store_true",
                        help="skip the alignment: only the preferences screenshot and the Install button")
    args = parser.parse_args(argv)
    if shutil.which("xvfb-run") is None:
        sys.exit("screenshots.py: xvfb-run not found (apt-get install xvfb)")
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gradhog-shots-") as tmp:
        tmp = Path(tmp)
        zip_path = build_addon.build(tmp / "dist")
        torch_folder = helpers.link_torch_folder(tmp / "torch_site")
        home = tmp / "home"
        home.mkdir()
        raw = tmp / "raw"
        raw.mkdir()
        wheels = helpers.make_probe_wheel(tmp / "wheels").parent
        command = [
            "xvfb-run", "-a", "-s", "-screen 0 1600x1000x24",
            args.blender, "--factory-startup", "--enable-event-simulate", "--window-geometry", "0", "0", "1600", "1000",
            "--python", str(Path(__file__).resolve()), "--",
            INSIDE_FLAG, str(zip_path), str(torch_folder), str(raw), str(wheels),
            "only-preferences" if args.only_preferences else "all",
        ]
        print("running:", " ".join(command), flush=True)
        log_path = args.out / "blender.log" if args.keep_log else tmp / "blender.log"
        with open(log_path, "w", encoding="utf-8") as log_file:
            run = subprocess.run(command, env=helpers.blender_user_env(home), cwd=tmp,
                                 stdout=log_file, stderr=subprocess.STDOUT, text=True, timeout=args.timeout)
        log = log_path.read_text(encoding="utf-8", errors="replace")
        state_path = raw / "state.json"
        state = json.loads(state_path.read_text()) if state_path.exists() else {}
        if not state.get("ok"):
            print(log[-6000:])
            sys.exit(f"screenshots.py: Blender did not finish (exit {run.returncode}): {state.get('error')}")
        if not args.only_preferences:
            crop_panel(raw / "after.png", state["sidebar"], args.out / "panel.png")
            save_png(raw / "before.png", args.out / "align_before.png")
            save_png(raw / "after.png", args.out / "align_after.png")
        save_png(raw / "preferences.png", args.out / "preferences.png")
        print("Install button (modal, local test wheel):", state.get("install_message"))
        print(json.dumps(state.get("result", {}), indent=1))
        for name in ("align_before.png", "align_after.png", "panel.png", "preferences.png"):
            if (args.out / name).exists():
                print(args.out / name)


def save_png(source, target):
    """Re-save without alpha and with zlib's best effort (the window shots are ~20% smaller)."""
    from PIL import Image

    with Image.open(source) as image:
        image.convert("RGB").save(target, optimize=True)


def crop_panel(window_png, sidebar, out_png):
    """Cut the sidebar region (window coordinates, origin bottom-left) out of a window screenshot."""
    from PIL import Image

    with Image.open(window_png) as image:
        height = image.height
        box = (sidebar["x"], height - sidebar["y"] - sidebar["height"], sidebar["x"] + sidebar["width"],
               height - sidebar["y"])
        image.convert("RGB").crop(box).save(out_png, optimize=True)


# ---------------------------------------------------------------------------------------------
# Inside Blender (UI mode under Xvfb): a timer-driven sequence of steps.
# ---------------------------------------------------------------------------------------------

def inside_blender(zip_path, torch_folder, raw_dir, wheels_dir, what="all"):
    import importlib
    import math
    import traceback

    import bpy

    state = {"ok": False, "error": None}

    def save_state():
        with open(os.path.join(raw_dir, "state.json"), "w", encoding="utf-8") as handle:
            json.dump(state, handle, indent=1, default=str)

    def fail(message):
        state["error"] = message
        save_state()
        print("screenshots:", message, flush=True)
        bpy.ops.wm.quit_blender()

    # No splash ("Quick Setup" on a fresh user folder): its popup would swallow the clicks and timer
    # events that the Align operator waits for.
    bpy.context.preferences.view.show_splash = False

    # The documented manual route: torch in the add-on's default folder before enabling it.
    deps_dir = os.path.join(bpy.utils.user_resource('SCRIPTS'), "gradhog_deps",
                            f"site-packages-py{sys.version_info[0]}.{sys.version_info[1]}")
    os.makedirs(deps_dir, exist_ok=True)
    for name in os.listdir(torch_folder):
        link = os.path.join(deps_dir, name)
        if not os.path.lexists(link):
            os.symlink(os.path.realpath(os.path.join(torch_folder, name)), link)
    bpy.ops.preferences.addon_install(filepath=zip_path, overwrite=True)
    bpy.ops.preferences.addon_enable(module="blender_gradhog")
    addon = importlib.import_module("blender_gradhog")
    meshes = importlib.import_module("blender_gradhog.torch_backend.meshes")
    data_dir = os.path.join(os.path.dirname(addon.__file__), "torch_backend", "data")

    def setup_scene():
        scene = bpy.context.scene
        for obj in list(scene.objects):
            if obj.type == 'MESH':
                bpy.data.objects.remove(obj, do_unlink=True)
        vertices, faces = meshes.read_obj(os.path.join(data_dir, "demo_chair.obj"))
        mesh = bpy.data.meshes.new("Chair")
        mesh.from_pydata([list(map(float, v)) for v in vertices], [], [list(map(int, f)) for f in faces])
        mesh.update()
        chair = bpy.data.objects.new("Chair", mesh)
        scene.collection.objects.link(chair)
        chair.display_type = 'WIRE'
        chair.show_in_front = True
        for obj in scene.objects:
            obj.select_set(False)
        chair.select_set(True)
        bpy.context.view_layer.objects.active = chair

        truth = json.load(open(os.path.join(data_dir, "demo_truth.json"), encoding="utf-8"))
        photo = bpy.data.images.load(os.path.join(data_dir, truth["photo"]))
        mask = bpy.data.images.load(os.path.join(data_dir, truth["mask"]))
        camera = scene.camera
        camera.data.lens = truth["lens_mm"]
        camera.data.sensor_width = truth["sensor_width_mm"]
        scene.render.resolution_x, scene.render.resolution_y = truth["width"], truth["height"]
        # A plausible but wrong first guess, as a user's camera would be.
        camera.location = (1.2, -2.6, 0.9)
        camera.rotation_euler = (math.radians(80), 0.0, math.radians(20))
        camera.data.show_background_images = True
        background = camera.data.background_images.new()
        background.image = photo
        background.alpha = 1.0

        settings = scene.gradhog
        settings.photo_image = photo
        settings.target = chair
        settings.camera = camera
        settings.mask_source = 'IMAGE'
        settings.mask_image = mask
        state["truth"] = {key: truth[key] for key in ("azimuth", "elevation", "distance", "roll")}

    window = bpy.context.window_manager.windows[0]

    def view3d():
        area = next(area for area in window.screen.areas if area.type == 'VIEW_3D')
        return area, next(r for r in area.regions if r.type == 'WINDOW'), next(r for r in area.regions if r.type == 'UI')

    steps = []

    def report_worker(waited):
        import threading

        frames = sys._current_frames()
        for thread in threading.enumerate():
            if thread.name == "gradhog-align":
                frame = frames.get(thread.ident)
                where = []
                while frame is not None and len(where) < 4:
                    where.append(f"{os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno} {frame.f_code.co_name}")
                    frame = frame.f_back
                print(f"screenshots: {waited:.0f} s, worker at", " < ".join(where), flush=True)
                return
        print(f"screenshots: {waited:.0f} s, no worker thread", flush=True)

    def step(function):
        steps.append(function)
        return function

    @step
    def maximize_view():
        setup_scene()

    @step
    def camera_view():
        area, region, _ = view3d()
        space = area.spaces.active
        space.show_region_ui = True
        space.region_3d.view_perspective = 'CAMERA'
        space.overlay.show_floor = False
        space.overlay.show_axis_x = space.overlay.show_axis_y = False
        space.shading.type = 'SOLID'
        with bpy.context.temp_override(window=window, area=area, region=region):
            bpy.ops.view3d.view_center_camera()

    @step
    def close_splash():
        _, region, _ = view3d()
        x, y = region.x + 40, region.y + region.height // 2
        window.event_simulate(type='MOUSEMOVE', value='NOTHING', x=x, y=y)
        window.event_simulate(type='ESC', value='PRESS', x=x, y=y)
        window.event_simulate(type='ESC', value='RELEASE', x=x, y=y)

    @step
    def open_gradhog_tab():
        area, region, sidebar = view3d()
        with bpy.context.temp_override(window=window, area=area, region=region):
            bpy.ops.view3d.view_center_camera()
        x, y = sidebar.x + sidebar.width // 2, sidebar.y + sidebar.height // 2
        window.event_simulate(type='MOUSEMOVE', value='NOTHING', x=x, y=y)
        # Factory tabs: Item, Tool, View; the add-on's tab comes last.
        for _ in range(3):
            window.event_simulate(type='WHEELDOWNMOUSE', value='PRESS', x=x, y=y, ctrl=True)

    @step
    def shot_before():
        with bpy.context.temp_override(window=window):
            bpy.ops.screen.screenshot(filepath=os.path.join(raw_dir, "before.png"))

    @step
    def run_align():
        area, region, _ = view3d()
        with bpy.context.temp_override(window=window, area=area, region=region):
            result = bpy.ops.gradhog.align_camera('INVOKE_DEFAULT')
        state["align_invoke"] = sorted(result)
        state["align_started"] = __import__("time").time()

    @step
    def wait_for_result():
        settings = bpy.context.scene.gradhog
        if not settings.has_result:
            waited = __import__("time").time() - state["align_started"]
            if int(waited) % 20 == 0:
                report_worker(waited)
            if waited > float(os.environ.get("GRADHOG_SHOTS_ALIGN_TIMEOUT", "600")):
                raise RuntimeError(f"Align Camera did not finish within {waited:.0f} s")
            return "again"
        state["result"] = {key: getattr(settings, f"result_{key}")
                           for key in ("azimuth", "elevation", "distance", "roll", "score", "seconds")}
        area, region, _ = view3d()
        with bpy.context.temp_override(window=window, area=area, region=region):
            bpy.ops.view3d.view_center_camera()

    @step
    def shot_after():
        _, _, sidebar = view3d()
        state["sidebar"] = {"x": sidebar.x, "y": sidebar.y, "width": sidebar.width, "height": sidebar.height}
        with bpy.context.temp_override(window=window):
            bpy.ops.screen.screenshot(filepath=os.path.join(raw_dir, "after.png"))

    def preferences_window():
        return next(w for w in bpy.context.window_manager.windows
                    if any(a.type == 'PREFERENCES' for a in w.screen.areas))

    @step
    def open_preferences():
        import addon_utils

        bpy.context.preferences.active_section = 'ADDONS'
        bpy.context.window_manager.addon_search = "GradHOG"
        with bpy.context.temp_override(window=window):
            bpy.ops.screen.userpref_show()

    @step
    def expand_addon():
        import addon_utils

        # The Add-ons list draws from addon_utils' parsed ("fake") modules, not the imported one.
        addon_utils.modules(refresh=False)
        fake = addon_utils.addons_fake_modules.get("blender_gradhog")
        addon_utils.module_bl_info(fake)["show_expanded"] = True
        for area in preferences_window().screen.areas:
            area.tag_redraw()

    @step
    def shot_preferences():
        with bpy.context.temp_override(window=preferences_window()):
            bpy.ops.screen.screenshot(filepath=os.path.join(raw_dir, "preferences.png"))

    @step
    def press_install():
        # The button's modal path (pip in the background, progress from a timer), fed a tiny local
        # wheel so that nothing is downloaded and the torch already set up stays untouched.
        prefs_window = preferences_window()
        area = next(a for a in prefs_window.screen.areas if a.type == 'PREFERENCES')
        bpy.context.preferences.addons["blender_gradhog"].preferences.wheels_folder = wheels_dir
        with bpy.context.temp_override(window=prefs_window, area=area):
            state["install_invoke"] = sorted(bpy.ops.gradhog.install_torch(
                'INVOKE_DEFAULT', target=os.path.join(raw_dir, "probe_target"), packages="gradhog_probe"))
        state["install_started"] = __import__("time").time()

    @step
    def wait_install():
        preferences = importlib.import_module("blender_gradhog.preferences")
        job = preferences._install_job
        if job is None or job.returncode is None or preferences._last_message.startswith("Installing"):
            if __import__("time").time() - state["install_started"] > 300:
                raise RuntimeError("the Install operator did not finish within 300 s")
            return "again"
        state["install_message"] = preferences._last_message
        state["install_progress"] = job.progress
        if job.returncode != 0:
            raise RuntimeError(f"Install operator failed: {preferences._last_message}")
        bpy.context.preferences.addons["blender_gradhog"].preferences.wheels_folder = ""

    @step
    def finish():
        state["ok"] = True
        save_state()
        bpy.ops.wm.quit_blender()

    if what == "only-preferences":
        alignment_steps = {"shot_before", "run_align", "wait_for_result", "shot_after"}
        steps[:] = [function for function in steps if function.__name__ not in alignment_steps]

    def tick():
        try:
            if not steps:
                return None
            print("screenshots: step", steps[0].__name__, flush=True)
            again = steps[0]()
            if again != "again":
                print("screenshots: done", steps[0].__name__, flush=True)
                steps.pop(0)
            return 1.0
        except Exception:
            traceback.print_exc()
            fail(traceback.format_exc().strip().splitlines()[-1])
            return None

    bpy.app.timers.register(tick, first_interval=2.0)


if __name__ == "__main__":
    if INSIDE_FLAG in sys.argv:
        index = sys.argv.index(INSIDE_FLAG)
        inside_blender(*sys.argv[index + 1:index + 6])
    else:
        driver(sys.argv[1:])
