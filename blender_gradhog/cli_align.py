"""``gradhog align`` and ``gradhog demo``: camera pose from a photo and a mesh file, headless.

Runs Blender as a Python module (``pip install bpy``): the mesh is imported with Blender's own
importers (OBJ, PLY, STL, glTF/GLB, FBX; OFF through ``torch_backend.meshes.read_off``) into a fresh
scene, the coarse views are rendered by Blender's Workbench and the pose is refined by
``torch_backend.pose`` -- the same code path as the add-on's Align Camera button
(:mod:`blender_gradhog.api`). ``bpy`` is imported only when a command runs.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

from . import options, runs
from ._backend import cli as torch_cli, core, package
from .errors import AlignError

CliError = torch_cli.CliError

MESH_FORMATS = (".obj", ".ply", ".stl", ".gltf", ".glb", ".fbx", ".off")
BPY_MISSING = "needs Blender as a Python module: pip install bpy==5.0.1 (Python 3.11)"


# --------------------------------------------------------------------------------------------
# Argument parsing
# --------------------------------------------------------------------------------------------

def add_parser(subparsers) -> None:
    """Register ``align`` and ``demo`` (see ``torch_backend.cli``)."""
    align = subparsers.add_parser(
        "align", help="camera pose (azimuth, elevation, distance, roll) of a photo of a known mesh",
        description="Find the camera that took PHOTO of the object MESH; writes the pose as JSON. "
                    "Runs Blender headless (the bpy module).")
    align.add_argument("--photo", help="photo of the object, read upright (EXIF orientation); its alpha "
                                       "channel, if any, is the mask (alpha >= half = object); or a folder "
                                       "of photos of MESH (one JSON line each)")
    align.add_argument("--mesh", help=f"the object's mesh ({', '.join(MESH_FORMATS)}); with --manifest, "
                                      "the mesh of rows without one")
    align.add_argument("--out", required=True, help="result JSON file (JSON lines with --manifest or a folder)")
    align.add_argument("--manifest", help="CSV or JSON lines: photo, mesh, optional mask, bbox, lens_mm, "
                                          "sensor_width_mm (paths relative to the manifest); resumable")
    align.add_argument("--jobs", type=int, default=1, help="many photos: local worker processes (default 1)")
    align.add_argument("--scheduler", help="many photos: run on the Dask cluster at this address (tcp://host:8786)")
    align.add_argument("--retry-failed", action="store_true",
                       help="many photos: run the photos whose line has an error again")
    add_common_arguments(align)
    align.set_defaults(func=run_align)

    demo = subparsers.add_parser(
        "demo", help="align the embedded demo photo and compare with its ground truth",
        description="Runs `gradhog align` on the demo chair photo shipped with gradhog, prints the "
                    "recovered and the true pose and writes an overlay picture.")
    demo.add_argument("--cue", choices=("mask", "box", "photo"), default="mask",
                      help="what to tell about the object: its mask (default), a box, or nothing")
    demo.add_argument("--overlay", default="gradhog_demo_overlay.png", help="overlay PNG to write")
    demo.add_argument("--out", default=None, help="also write the result JSON here")
    options.add_arguments(demo, cues=False, lens=False)
    demo.set_defaults(func=run_demo)


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    options.add_arguments(parser)
    parser.add_argument("--up-axis", choices=("Z", "Y"), default="Z",
                        help="up axis of OBJ/PLY/STL files (default Z: coordinates as in the file, "
                             "like torch_backend.meshes; Y: Blender's OBJ import convention)")
    parser.add_argument("--overlay", help="write the fitted silhouette and outline over the photo (PNG)")
    parser.add_argument("--save-blend", help="save a .blend with the mesh, the aligned camera and the photo")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")


# --------------------------------------------------------------------------------------------
# Blender helpers (bpy imported lazily)
# --------------------------------------------------------------------------------------------

def import_bpy():
    try:
        import bpy
    except ImportError:
        raise CliError(BPY_MISSING) from None
    return bpy


def fresh_scene():
    """An empty Blender session (no default cube, light or camera)."""
    bpy = import_bpy()
    bpy.ops.wm.read_factory_settings(use_empty=True)
    return bpy.context.scene


def _axis_arguments(up_axis: str) -> dict:
    # Blender's importers convert axes on import; Z keeps the file's coordinates unchanged.
    return {"forward_axis": 'Y', "up_axis": 'Z'} if up_axis == "Z" else {"forward_axis": 'NEGATIVE_Z', "up_axis": 'Y'}


def import_mesh(path: str | os.PathLike, *, up_axis: str = "Z", name: str | None = None):
    """Import a mesh file into the current scene as ONE mesh object at the world origin.

    Every mesh object the importer creates is merged (in world space, so the file's own origin
    stays the origin the poses refer to) and the importer's objects are removed.

    Raises:
        CliError: unknown format, unreadable file or no faces.
    """
    bpy = import_bpy()
    import numpy as np

    from . import scene as blender_scene

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in MESH_FORMATS:
        raise CliError(f"{path}: unsupported mesh format {suffix or '(none)'}; use one of {', '.join(MESH_FORMATS)}")
    if not path.is_file():
        raise CliError(f"{path}: no such file")
    scene = bpy.context.scene
    name = name or path.stem
    if suffix == ".off":
        try:
            vertices, faces = core().meshes.read_off(path)
        except ValueError as error:
            raise CliError(str(error)) from None
        return _mesh_object(scene, name, np.asarray(vertices), np.asarray(faces))
    before = set(bpy.data.objects)
    operators = {
        ".obj": (bpy.ops.wm.obj_import, _axis_arguments(up_axis)),
        ".ply": (bpy.ops.wm.ply_import, _axis_arguments(up_axis)),
        ".stl": (bpy.ops.wm.stl_import, _axis_arguments(up_axis)),
        ".gltf": (bpy.ops.import_scene.gltf, {}),
        ".glb": (bpy.ops.import_scene.gltf, {}),
        ".fbx": (bpy.ops.import_scene.fbx, {}),
    }
    operator, arguments = operators[suffix]
    try:
        operator(filepath=str(path), **arguments)
    except (RuntimeError, AttributeError) as error:
        raise CliError(f"{path}: Blender could not import it ({str(error).strip().splitlines()[-1]})") from None
    created = [obj for obj in bpy.data.objects if obj not in before]
    depsgraph = bpy.context.evaluated_depsgraph_get()
    parts_v, parts_f, offset = [], [], 0
    for obj in created:
        if obj.type != 'MESH':
            continue
        try:
            data = blender_scene.mesh_arrays(obj, depsgraph)
        except blender_scene.SceneError:
            continue
        world = data.vertices @ data.frame[:3, :3].T + data.frame[:3, 3]
        parts_v.append(world)
        parts_f.append(data.faces + offset)
        offset += len(world)
    for obj in created:
        bpy.data.objects.remove(obj)
    if not parts_v:
        raise CliError(f"{path}: no mesh with faces in the file")
    return _mesh_object(scene, name, np.concatenate(parts_v), np.concatenate(parts_f))


def _mesh_object(scene, name: str, vertices, faces):
    bpy = import_bpy()
    import numpy as np

    if len(vertices) == 0 or len(faces) == 0:
        raise CliError(f"{name}: the mesh is empty (no faces)")
    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata(np.asarray(vertices, dtype=np.float64).tolist(), [],
                     np.asarray(faces, dtype=np.int64).tolist())
    mesh.update()
    obj = bpy.data.objects.new(name, mesh)
    scene.collection.objects.link(obj)
    return obj


def overlay_picture(photo, obj, camera, scene):
    """The photo with the fitted mesh's silhouette (tinted) and outline, rendered by Blender.

    Returns a float32 ``(H, W, 3)`` array in ``[0, 1]``.
    """
    import numpy as np

    from . import api, scene as blender_scene

    image = api.resolve_photo(photo)
    rgb = blender_scene.read_photo(image).rgb  # upright, as the pose was found
    height, width = rgb.shape[:2]
    mesh = blender_scene.mesh_arrays(obj)
    # The camera in the object's mesh frame, exactly as written to the scene.
    camera_in_frame = np.linalg.inv(mesh.frame) @ np.array(camera.matrix_world)
    data = camera.data
    settings = {"lens": data.lens, "sensor_width": data.sensor_width, "sensor_height": data.sensor_height,
                "sensor_fit": data.sensor_fit}
    _, silhouettes = blender_scene.render_views(mesh.vertices, mesh.faces, [camera_in_frame], camera=settings,
                                                width=width, height=height, shifts=[(data.shift_x, data.shift_y)])
    coverage = silhouettes[0]
    inside = coverage > 0.5
    eroded = inside.copy()
    for axis in (0, 1):
        for step in (1, -1):
            eroded &= np.roll(inside, step, axis=axis)
    outline = inside & ~eroded
    tint = np.array([0.1, 0.8, 1.0], dtype=np.float32)
    picture = rgb * (1.0 - 0.25 * coverage[..., None]) + tint * 0.25 * coverage[..., None]
    picture[outline] = (1.0, 0.85, 0.0)
    return np.clip(picture, 0.0, 1.0).astype(np.float32)


def save_png(path, picture) -> None:
    core().images.save_image(path, picture)


# --------------------------------------------------------------------------------------------
# The commands
# --------------------------------------------------------------------------------------------

def _progress_printer(quiet: bool):
    if quiet:
        return None
    last = [-1]

    def report(progress: float, message: str) -> bool:
        percent = int(100 * progress)
        if percent // 10 != last[0] // 10 or percent == 100:
            print(f"  {percent:3d} %  {message}", file=sys.stderr, flush=True)
            last[0] = percent
        return True

    return report


def _check_inputs(args) -> None:
    if not Path(args.photo).is_file():
        raise CliError(f"{args.photo}: no such photo")
    if args.mask and not Path(args.mask).is_file():
        raise CliError(f"{args.mask}: no such mask image")
    if Path(args.mesh).suffix.lower() not in MESH_FORMATS:
        raise CliError(f"{args.mesh}: unsupported mesh format; use one of {', '.join(MESH_FORMATS)}")
    if not Path(args.mesh).is_file():
        raise CliError(f"{args.mesh}: no such mesh file")
    for name in ("lens_mm", "sensor_width_mm"):
        value = getattr(args, name, None)
        if isinstance(value, float) and not (math.isfinite(value) and value > 0):
            raise CliError(f"--{name.replace('_', '-')} must be a positive number, got {value}")
    for name in ("out", "overlay", "save_blend"):
        value = getattr(args, name, None)
        if value and not Path(value).resolve().parent.is_dir():
            raise CliError(f"{value}: the folder {Path(value).resolve().parent} does not exist")


def align_files(args) -> dict:
    """The shared body of ``align`` and ``demo``: returns the result dict (also written to --out)."""
    _check_inputs(args)
    try:
        keywords = options.from_arguments(args)
    except AlignError as error:
        raise CliError(str(error)) from None
    import_bpy()
    from . import api

    started = time.perf_counter()
    scene = fresh_scene()
    obj = import_mesh(args.mesh, up_axis=getattr(args, "up_axis", "Z"))
    try:
        # No camera yet: the lens is the given one, the photo's EXIF one, or Blender's 50 mm on
        # 36 mm ("default"); api.apply adds "GradHOG Camera" with it.
        result = api.align(os.path.abspath(args.photo), obj, None, scene=scene,
                           callback=_progress_printer(args.quiet), **keywords)
    except AlignError as error:
        raise CliError(str(error)) from None
    import bpy

    camera = bpy.data.objects[result["camera"]]
    result.update(photo=os.path.abspath(args.photo), mesh=os.path.abspath(args.mesh),
                  total_seconds=time.perf_counter() - started)
    if args.overlay:
        save_png(args.overlay, overlay_picture(result["photo"], obj, camera, scene))
    if args.save_blend:
        bpy.ops.wm.save_as_mainfile(filepath=os.path.abspath(args.save_blend), check_existing=False)
    if args.out:
        Path(args.out).write_text(json.dumps(options.json_ready(result), indent=1, allow_nan=False) + "\n")
    return result


def align_one(job: dict) -> dict:
    """Align one photo of a manifest (:func:`align_files`); returns its results line, never raises.

    The line holds the single-photo result's fields plus ``photo``, ``mesh`` and ``key``; a failed
    photo gets ``error`` (one line of text) instead of a pose.
    """
    started = time.perf_counter()
    try:

        args = argparse.Namespace(**{
            **_align_defaults(), **job.get("options", {}),
            "photo": job["photo"], "mesh": job["mesh"], "mask": job.get("mask"), "bbox": job.get("bbox"),
            "lens_mm": job["lens_mm"], "sensor_width_mm": job["sensor_width_mm"], "out": None,
            "overlay": None, "save_blend": None, "quiet": True})

        runs.drop_inherited_blender_paths()
        with runs.BPY_LOCK:
            result = align_files(args)
        record = {"photo": job["photo"], **options.json_ready(result)}
    except Exception as error:  # noqa: BLE001 -- one bad photo is reported in its line
        kind = "" if type(error).__name__ == "CliError" else f"{type(error).__name__}: "
        record = {"photo": job["photo"], "error": kind + (str(error).strip().splitlines() or [""])[-1],
                  "total_seconds": time.perf_counter() - started}
    record.update(photo=job["photo"], mesh=job["mesh"], key=job["key"])
    return record


def _align_defaults() -> dict:
    """The default of every ``gradhog align`` flag (by attribute name), read from its parser."""
    subparsers = argparse.ArgumentParser().add_subparsers()
    add_parser(subparsers)
    return {action.dest: action.default for action in subparsers.choices["align"]._actions
            if action.dest not in ("help", "func")}


def run_align(args) -> int:
    if runs.is_batch(args):
        return runs.run_from_args(args, align=align_one)
    runs.check_single(args)
    result = align_files(args)
    lens = "lens {lens_mm:.1f} mm ({lens_source}".format(**result)
    if result.get("lens_range_mm"):
        lens += ", {:.0f}-{:.0f} mm possible".format(*result["lens_range_mm"])
    print("azimuth {azimuth:.2f}  elevation {elevation:.2f}  roll {roll:.2f}  distance {distance:.4g}  "
          "{lens})  score {score:.3f}  ({seconds:.1f} s) -> {out}".format(**result, lens=lens, out=args.out))
    if result.get("ambiguous"):
        print(f"close call: margin {result['margin']:.3f} to the next distinct pose; check the candidates in {args.out}")
    return 0


# --------------------------------------------------------------------------------------------
# Demo
# --------------------------------------------------------------------------------------------

def demo_assets() -> Path:
    """Folder of the embedded demo (the chair mesh, its photo, mask and ground truth)."""
    folder = Path(package.__file__).resolve().parent / "data"
    if not (folder / "demo_truth.json").is_file():
        raise CliError(f"the demo assets are missing from {folder}")
    return folder


def rotation_error_degrees(result: dict, truth: dict) -> float:
    """Geodesic angle (degrees) between the recovered and the true camera rotation."""
    import torch

    camera = core().camera
    a = camera.camera_to_world(result["azimuth"], result["elevation"], 1.0, result["roll"], dtype=torch.float64)
    b = camera.camera_to_world(truth["azimuth"], truth["elevation"], 1.0, truth["roll"], dtype=torch.float64)
    relative = a[:3, :3].T @ b[:3, :3]
    cosine = float(((torch.trace(relative) - 1.0) / 2.0).clamp(-1.0, 1.0))
    return math.degrees(math.acos(cosine))


def run_demo(args) -> int:
    folder = demo_assets()
    truth = json.loads((folder / "demo_truth.json").read_text())
    namespace = argparse.Namespace(
        photo=str(folder / truth["photo"]), mesh=str(folder / truth["mesh"]), out=args.out,
        lens_mm=float(truth.get("lens_mm", 50.0)), sensor_width_mm=float(truth.get("sensor_width_mm", 36.0)),
        bbox=truth["bbox"] if args.cue == "box" else None,
        mask=str(folder / truth["mask"]) if args.cue == "mask" else None,
        no_alpha_mask=args.cue != "mask", up_axis="Z", overlay=args.overlay, save_blend=None, quiet=False,
        device=args.device, **{name: getattr(args, name) for name in options.EXPOSED})
    print(f"gradhog demo: {truth['photo']} ({truth['width']}x{truth['height']}) of {truth['mesh']}, "
          f"cue: {args.cue}")
    result = align_files(namespace)
    print(f"{'':10s}{'azimuth':>9s}{'elevation':>11s}{'roll':>8s}{'distance':>10s}")
    for label, pose in (("recovered", result), ("true", truth)):
        print(f"{label:10s}{pose['azimuth']:9.2f}{pose['elevation']:11.2f}{pose['roll']:8.2f}{pose['distance']:10.4f}")
    azimuth_error = abs((result["azimuth"] - truth["azimuth"] + 180.0) % 360.0 - 180.0)
    print(f"errors: azimuth {azimuth_error:.2f} deg, elevation {abs(result['elevation'] - truth['elevation']):.2f} deg, "
          f"rotation {rotation_error_degrees(result, truth):.2f} deg, distance "
          f"{100 * abs(result['distance'] / truth['distance'] - 1):.1f} %; {result['seconds']:.1f} s")
    print(f"overlay: {os.path.abspath(args.overlay)}")
    return 0
