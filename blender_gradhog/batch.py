"""Batch alignment inside Blender: one photo, or a folder / manifest of photos, in one process.

One photo (the camera is written, optionally saved)::

    blender -b scene.blend --python-exit-code 1 --python blender_gradhog/batch.py -- \\
        --photo photo.jpg --object Chair [--camera Camera] --out result.json [--save out.blend]

Many photos of the same object (one JSON line per photo, appended as each finishes; a rerun skips
photos already in the output, so an interrupted batch resumes where it stopped)::

    blender -b scene.blend --python blender_gradhog/batch.py -- \\
        --photos photos/ --object Chair --out results.jsonl [--cameras] [--save out.blend]
    ... --manifest list.txt ...   (one photo path per line, or JSON lines with "photo", "bbox", "mask")

The lens: ``--lens-mm exif`` (default: the photo's EXIF lens, else the camera's), a number of mm,
or ``auto`` (estimated with the pose; ``lens_range_mm`` in the result). Every result says
``lens_mm``, ``sensor_width_mm`` and ``lens_source``. Photos are read upright (EXIF orientation),
boxes are in upright pixels, masks and alpha are coverage (>= one half is the object).

Without the Blender binary, the bpy module runs the same code: ``python blender_gradhog/batch.py
--blend scene.blend -- ...`` (or ``python -m blender_gradhog.batch``). Exit status 0 on success,
1 when a photo failed (its line has ``"error"``), 2 for bad arguments.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".exr", ".webp", ".tga"}


class BatchError(Exception):
    """A problem with the arguments or the scene (one line, exit status 2)."""


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    from . import options  # not at the top: this file also runs as a script (see the end)

    parser = argparse.ArgumentParser(
        prog="batch.py", description="Align a camera to photos of an object of a .blend scene.")
    photos = parser.add_mutually_exclusive_group(required=True)
    photos.add_argument("--photo", help="one photo: the camera is aligned to it")
    photos.add_argument("--photos", help="a folder of photos (one result line each)")
    photos.add_argument("--manifest", help="a text file with one photo per line (or JSON lines)")
    parser.add_argument("--object", required=True, help="name of the mesh object seen in the photos")
    parser.add_argument("--camera", help="camera object to align (default: the scene camera, or a new one)")
    parser.add_argument("--out", required=True, help="result JSON (--photo) or JSON lines (--photos/--manifest)")
    parser.add_argument("--save", help="save the .blend here afterwards")
    parser.add_argument("--cameras", action="store_true",
                        help="folder/manifest mode: add one camera per photo, named after it")
    parser.add_argument("--blend", help="open this .blend first (for the bpy module; blender -b does it itself)")
    options.add_arguments(parser)
    return parser.parse_args(argv)


def script_arguments(argv: list[str]) -> list[str]:
    """The arguments meant for this script: everything after ``--`` when present (Blender's rule)."""
    return argv[argv.index("--") + 1:] if "--" in argv else argv[1:]


def list_photos(args) -> list[dict]:
    """Photo entries (``{"photo": path, ...}``) of a folder or a manifest, in a stable order."""
    if args.photos:
        folder = Path(args.photos)
        if not folder.is_dir():
            raise BatchError(f"{folder}: not a folder")
        return [{"photo": str(path)} for path in sorted(folder.iterdir())
                if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()]
    manifest = Path(args.manifest)
    if not manifest.is_file():
        raise BatchError(f"{manifest}: no such manifest")
    entries = []
    for number, line in enumerate(manifest.read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("{"):
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as error:
                raise BatchError(f"{manifest}:{number}: bad JSON ({error.msg})") from None
            if "photo" not in entry:
                raise BatchError(f"{manifest}:{number}: no \"photo\" key")
        else:
            entry = {"photo": line}
        path = Path(entry["photo"])
        entry["photo"] = str(path if path.is_absolute() else manifest.parent / path)
        entries.append(entry)
    return entries


def done_photos(out: Path) -> set[str]:
    """Photos that already have a result line in ``out`` (a partial last line is ignored)."""
    if not out.is_file():
        return set()
    done = set()
    for line in out.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # the process was killed while writing this line
        if "photo" in record and "error" not in record:
            done.add(os.path.abspath(record["photo"]))
    return done


def drop_partial_line(out: Path) -> None:
    """Cut an unfinished last line (a batch killed while writing) so that appending starts clean."""
    if not out.is_file():
        return
    data = out.read_bytes()
    if data and not data.endswith(b"\n"):
        out.write_bytes(data[: data.rfind(b"\n") + 1])


def run(argv: list[str]) -> int:
    """Run a batch with the script arguments ``argv``; returns the exit status."""
    try:
        args = parse_arguments(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    import bpy

    from . import api, options, scene as blender_scene

    try:
        if args.blend:
            if not Path(args.blend).is_file():
                raise BatchError(f"{args.blend}: no such .blend file")
            bpy.ops.wm.open_mainfile(filepath=os.path.abspath(args.blend))
        scene = bpy.context.scene
        obj = bpy.data.objects.get(args.object)
        if obj is None:
            raise BatchError(f"no object named {args.object!r} in {bpy.data.filepath or 'the scene'}")
        camera = None
        if args.camera:
            camera = bpy.data.objects.get(args.camera)
            if camera is None or camera.type != 'CAMERA':
                raise BatchError(f"no camera named {args.camera!r}")
        try:
            keywords = options.from_arguments(args)
        except api.AlignError as error:
            raise BatchError(str(error)) from None
        if args.photo:
            status = _one_photo(args, scene, obj, camera, api, keywords)
        else:
            status = _many_photos(args, scene, obj, camera, api, blender_scene)
    except BatchError as error:
        print(f"batch.py: error: {error}", file=sys.stderr)
        return 2
    if args.save:
        bpy.ops.wm.save_as_mainfile(filepath=os.path.abspath(args.save), check_existing=False)
    return status


def _one_photo(args, scene, obj, camera, api, keywords: dict) -> int:
    from .options import json_ready

    try:
        result = api.align(os.path.abspath(args.photo), obj, camera, scene=scene, **keywords)
    except api.AlignError as error:
        print(f"batch.py: {args.photo}: {error}", file=sys.stderr)
        return 1
    result["photo"] = os.path.abspath(args.photo)
    Path(args.out).write_text(json.dumps(json_ready(result), indent=1) + "\n")
    print(f"{args.photo}: azimuth {result['azimuth']:.2f} elevation {result['elevation']:.2f} "
          f"roll {result['roll']:.2f} distance {result['distance']:.4g} score {result['score']:.3f}")
    return 0


def _many_photos(args, scene, obj, camera, api, blender_scene) -> int:
    from .options import from_arguments, json_ready

    entries = list_photos(args)
    out = Path(args.out)
    drop_partial_line(out)
    done = done_photos(out)
    failures = 0
    with out.open("a") as stream:
        for entry in entries:
            photo = os.path.abspath(entry["photo"])
            if photo in done:
                continue
            started = time.perf_counter()
            try:
                job = api.prepare(photo, obj, camera or scene.camera, scene=scene, **from_arguments(args, entry))
                result = api.solve(job)
                if args.cameras:
                    target = blender_scene.new_camera(scene, f"GradHOG {Path(photo).stem}")
                    if camera is not None or scene.camera is not None:
                        source = (camera or scene.camera).data
                        target.data.lens, target.data.sensor_width = source.lens, source.sensor_width
                        target.data.sensor_fit = source.sensor_fit
                    record = api.apply(job, result, camera=target)
                else:
                    record = api.result_dict(job, result)  # the scene is left as it was
            except api.AlignError as error:
                failures += 1
                record = {"error": str(error)}
            record.update(photo=photo, total_seconds=time.perf_counter() - started)
            # One complete line per photo, flushed at once: a killed batch loses at most this one.
            stream.write(json.dumps(json_ready(record)) + "\n")
            stream.flush()
            print(f"{photo}: " + (record["error"] if "error" in record else
                                  "azimuth {azimuth:.2f} elevation {elevation:.2f} score {score:.3f}".format(**record)))
    return 1 if failures else 0


def _prepare_blender_python() -> None:
    """Find a PyTorch installed by the add-on's preferences and keep Blender 3.x from crashing at
    exit after torch was imported from a ``--python`` script (see ``deps``)."""
    from . import deps

    deps.ensure_torch_path(__package__)
    deps.protect_multiprocessing_main()


def main() -> int:
    _prepare_blender_python()
    try:
        return run(script_arguments(sys.argv))
    finally:
        from . import deps

        deps.hide_torch_from_addon_utils()


if __name__ == "__main__":
    if not __package__:  # run as a file by `blender --python` or `python`: import as the package
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        from blender_gradhog import batch as _batch

        sys.exit(_batch.main())
    sys.exit(main())
