"""One alignment's settings, wherever they come from: the panel, ``gradhog align``, the batch script.

Each front-end turns its settings into the keywords of :func:`blender_gradhog.api.prepare` (what
glTF-Blender-IO's ``as_keywords()`` does for its operators): where the object is in the photo
(``bbox``, ``mask``, ``mask_source``), where torch computes (``device``), and ``options``, one
:class:`PoseOptions`. The pose settings' defaults, types and help texts are read from
``PoseOptions`` and nowhere else. No ``bpy`` and no torch here.
"""
from __future__ import annotations

import argparse
import math
import os
from typing import Any, Mapping

from . import _backend
from .errors import AlignError

PoseOptions = _backend.pose_options.PoseOptions
HOG_VARIANTS = _backend.pose_options.HOG_VARIANTS

#: The pose settings the panel and both command lines offer; the others keep their defaults.
EXPOSED = ("top_k", "seed", "refine", "starts", "iterations", "hog_variant", "level_camera")
#: "The object stands on the ground": the camera is above it (elevations from 0 degrees up).
ON_GROUND = (0.0, 90.0)
ON_GROUND_HELP = "the object stands on the ground: the camera is not below it (elevation >= 0)"
DEVICES = ("cpu", "cuda")
#: Who renders the coarse views for the command lines (the first is the default).
COARSE_RENDERERS = ("torch", "blender")


def pose_options(values: Mapping[str, Any], base: PoseOptions | None = None) -> PoseOptions:
    """``base`` (default: the defaults) with ``values`` (any of its fields) replaced; :class:`AlignError`
    names a bad or unknown one."""
    try:
        return PoseOptions.from_mapping(values, base=base)
    except ValueError as error:
        raise AlignError(str(error)) from None


POSE_NAMES = ("azimuth", "elevation", "distance", "roll")


def start_pose(value) -> dict | None:
    """A start pose as ``{"azimuth", "elevation", "distance", "roll"}`` (degrees, scene units; a
    missing distance is NaN, a missing roll 0) from a mapping, a backend ``Pose`` or a sequence
    ``(azimuth, elevation[, distance, roll])``; None stays None. :class:`AlignError` if malformed."""
    if value is None:
        return None
    if isinstance(value, dict) or hasattr(value, "azimuth"):
        get = value.get if isinstance(value, dict) else lambda name, default: getattr(value, name, default)
        values = [get(name, default) for name, default in zip(POSE_NAMES, (None, None, float("nan"), 0.0))]
    else:
        values = list(value)
        if len(values) not in (2, 3, 4):
            raise AlignError(f"initial pose: expected azimuth, elevation[, distance, roll], got {value!r}")
        values += [float("nan"), 0.0][len(values) - 2:]
    try:
        pose = {name: float(number) for name, number in zip(POSE_NAMES, values)}
    except (TypeError, ValueError):
        raise AlignError(f"initial pose: expected numbers (degrees), got {value!r}") from None
    angles = (pose["azimuth"], pose["elevation"], pose["roll"])
    if not all(math.isfinite(angle) for angle in angles) or abs(pose["elevation"]) > 90.0:
        raise AlignError(f"initial pose: expected finite angles with |elevation| <= 90, got {value!r}")
    return pose


def elevation_limits(on_ground: bool = False, elevation_range=None) -> dict:
    """The ``elevation_range`` option (as a ``PoseOptions`` keyword, empty for the default) from the
    artist's "on the ground" and an optional ``(low, high)`` range (degrees); both together keep the
    part of the range above the ground. :class:`AlignError` when nothing is left."""
    low, high = PoseOptions.default("elevation_range")
    if elevation_range is not None:
        low, high = (float(value) for value in elevation_range)
    if on_ground:
        if high < ON_GROUND[0]:
            raise AlignError(f"on the ground needs elevations >= 0, but the elevation range is {low:g}..{high:g} degrees")
        low = max(low, ON_GROUND[0])
    if (low, high) == tuple(PoseOptions.default("elevation_range")):
        return {}
    return {"elevation_range": (low, high)}


def from_panel(settings) -> dict:
    """``api.prepare`` keywords from the panel's settings (``scene.gradhog``)."""
    limits = elevation_limits(settings.on_ground, settings.elevation_range if settings.use_elevation_range else None)
    return {
        "bbox": tuple(settings.box) if settings.use_box else None,
        "mask_source": settings.mask_source,
        "mask": settings.mask_image if settings.mask_source == 'IMAGE' else None,
        "device": settings.device,
        "lock_focal_length": settings.lock_focal_length,
        "focal_length": settings.focal_length,
        "options": pose_options({**{name: getattr(settings, name) for name in EXPOSED}, **limits}),
    }


def from_arguments(args: argparse.Namespace, entry: Mapping[str, Any] | None = None) -> dict:
    """``api.prepare`` keywords from parsed :func:`add_arguments` flags; ``entry`` (a batch manifest
    line) overrides ``bbox`` and ``mask`` for one photo."""
    entry = entry or {}
    mask = entry.get("mask", getattr(args, "mask", None))
    lens = getattr(args, "lens_mm", LENS_EXIF)
    limits = elevation_limits(getattr(args, "on_ground", False), getattr(args, "elevation_range", None))
    return {
        **lens_keywords(lens, getattr(args, "sensor_width_mm", None)),
        "bbox": entry.get("bbox", getattr(args, "bbox", None)),
        # "//" is Blender's .blend-relative prefix: left for bpy.path.abspath to resolve.
        "mask": os.path.abspath(mask) if mask and not str(mask).startswith("//") else mask,
        "mask_source": 'NONE' if getattr(args, "no_alpha_mask", False) else 'ALPHA',
        "device": args.device,
        "options": pose_options({**{name: getattr(args, name) for name in EXPOSED if hasattr(args, name)}, **limits}),
        "initial_pose": start_pose(entry.get("initial_pose", getattr(args, "init_pose", None))),
        **coarse_view_keywords(args),
    }


def coarse_view_keywords(args: argparse.Namespace) -> dict:
    """``api.prepare``'s ``coarse_views`` and ``cache_dir`` from ``--coarse-renderer``, ``--cache-dir``
    and ``--no-cache``."""
    renderer = getattr(args, "coarse_renderer", COARSE_RENDERERS[0])
    cache_dir = None
    if renderer == "torch" and not getattr(args, "no_cache", False):
        cache_dir = getattr(args, "cache_dir", None) or default_cache_dir()
    return {"coarse_views": renderer == "blender", "cache_dir": cache_dir}


def default_cache_dir() -> str:
    """The user's cache folder for gradhog (``platformdirs``; ``~/.cache/gradhog`` on Linux)."""
    try:
        import platformdirs
    except ImportError:  # the add-on inside Blender may lack it
        return os.path.join(os.path.expanduser("~"), ".cache", "gradhog")
    return platformdirs.user_cache_dir("gradhog", appauthor=False)


#: ``--lens-mm`` words: the photo's EXIF lens (else 50 mm, or the .blend camera's), or estimate it.
LENS_EXIF, LENS_AUTO = "exif", "auto"


def lens_value(text: str):
    """``--lens-mm``'s type: ``"exif"``, ``"auto"`` or a positive number of millimetres."""
    word = str(text).strip().lower()
    if word in (LENS_EXIF, LENS_AUTO):
        return word
    try:
        return float(word)  # its sign is checked with the other inputs (one-line error, exit 2)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {LENS_EXIF!r}, {LENS_AUTO!r} or millimetres, got {text!r}") from None


def _millimetres(text: str) -> float:
    value = lens_value(text)
    if isinstance(value, str):
        raise argparse.ArgumentTypeError(f"expected millimetres, got {text!r}")
    return value


def lens_keywords(lens, sensor_width_mm: float | None = None) -> dict:
    """``api.prepare``'s ``focal_length``, ``lens_mm``, ``sensor_width_mm`` from a ``--lens-mm`` value;
    :class:`AlignError` for a length that is not a positive number."""
    for name, value in (("--lens-mm", lens), ("--sensor-width-mm", sensor_width_mm)):
        if isinstance(value, (int, float)) and not (math.isfinite(value) and value > 0):
            raise AlignError(f"{name} must be a positive number of millimetres, got {value}")
    if lens == LENS_AUTO:
        return {"focal_length": 'ESTIMATE', "lens_mm": None, "sensor_width_mm": sensor_width_mm}
    if lens == LENS_EXIF or lens is None:
        return {"focal_length": 'EXIF', "lens_mm": None, "sensor_width_mm": sensor_width_mm}
    return {"focal_length": 'CAMERA', "lens_mm": float(lens), "sensor_width_mm": sensor_width_mm}


def add_arguments(parser: argparse.ArgumentParser, *, cues: bool = True, lens: bool = True) -> None:
    """Add the alignment flags (``--top-k``, ``--seed``, ``--no-refine``..., the constraints
    ``--level-camera``, ``--on-ground``, ``--elevation-range``, ``--device``, with ``lens``
    ``--lens-mm`` / ``--sensor-width-mm``, and with ``cues`` ``--bbox``, ``--mask`` /
    ``--no-alpha-mask`` and ``--init-pose``) to a ``gradhog`` or batch parser."""
    if lens:
        parser.add_argument(
            "--lens-mm", type=lens_value, default=LENS_EXIF, metavar="{exif,auto,MM}",
            help="focal length: 'exif' (default) reads it from the photo's EXIF (without EXIF: the "
                 "camera's, or 50 mm for a new camera), 'auto' estimates it with the pose and "
                 "reports its range, a number is the lens in mm")
        parser.add_argument("--sensor-width-mm", type=_millimetres, default=None,
                            help="sensor width in mm (default: the camera's, or 36 for a new camera; "
                                 "an EXIF lens brings its own)")
    if cues:
        parser.add_argument("--bbox", type=float, nargs=4, metavar=("X0", "Y0", "X1", "Y1"),
                            help="box around the object in upright photo pixels (origin top-left)")
        masks = parser.add_mutually_exclusive_group()
        masks.add_argument("--mask", help="mask image of the object, photo-sized: its values are coverage "
                                          "(at least half = object; its alpha if it has one)")
        masks.add_argument("--no-alpha-mask", action="store_true",
                           help="ignore the photo's alpha channel (otherwise alpha >= half is the object)")
        parser.add_argument("--init-pose", type=float, nargs=4, metavar=("AZ", "EL", "DIST", "ROLL"),
                            help="start from this rough camera pose (degrees, mesh units; 20-30 degrees off "
                                 "is enough) instead of the global search; only views within "
                                 f"{PoseOptions.default('initial_reach'):g} degrees of it are searched")
    for name in EXPOSED:
        default, help_text = PoseOptions.default(name), PoseOptions.help(name)
        flag = "--" + name.replace("_", "-")
        if isinstance(default, bool) and default:  # on by default: the flag turns it off
            parser.add_argument(f"--no-{flag[2:]}", dest=name, action="store_false", default=default,
                                help=f"turn off: {help_text}")
        elif isinstance(default, bool):
            parser.add_argument(flag, action="store_true", help=help_text)
        elif name == "hog_variant":
            parser.add_argument(flag, choices=HOG_VARIANTS, default=default, help=f"{help_text} (default {default})")
        else:
            parser.add_argument(flag, type=type(default), default=default, help=f"{help_text} (default {default})")
    parser.add_argument("--on-ground", action="store_true", help=ON_GROUND_HELP)
    parser.add_argument("--elevation-range", type=float, nargs=2, metavar=("LOW", "HIGH"), default=None,
                        help=PoseOptions.help("elevation_range") + " (default {:g} {:g})".format(
                            *PoseOptions.default("elevation_range")))
    parser.add_argument("--device", choices=DEVICES, default=DEVICES[0], help="where PyTorch computes")
    parser.add_argument("--coarse-renderer", choices=COARSE_RENDERERS, default=COARSE_RENDERERS[0],
                        help="who renders the coarse views: torch (fast, cached on disk) or Blender's Workbench")
    parser.add_argument("--cache-dir", default=None,
                        help="folder of the coarse-view cache (default: the user's cache folder)")
    parser.add_argument("--no-cache", action="store_true", help="do not read or write the on-disk coarse-view cache")


def json_ready(value):
    """``value`` with non-finite floats as ``None`` (strict JSON has no NaN or Infinity)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(item) for item in value]
    return value
