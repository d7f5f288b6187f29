"""The last alignment's candidate poses in the panel: storing them, and placing the camera at one.

``scene.gradhog.active_candidate`` applies a candidate when the *user* clicks one in the list. The
add-on changes that index too (new results, the Apply Candidate operator); :func:`select` does so
without applying anything.
"""
from __future__ import annotations

import contextlib

import bpy

from . import api

POSE_FIELDS = ("azimuth", "elevation", "distance", "roll", "shift_x", "shift_y")

# Set while the add-on itself changes ``active_candidate`` so that only a user's click applies one.
_selecting = False


@contextlib.contextmanager
def _quietly():
    global _selecting
    _selecting = True
    try:
        yield
    finally:
        _selecting = False


def select(settings, index: int) -> None:
    """Make candidate ``index`` the active one without placing the camera again."""
    with _quietly():
        settings.active_candidate = index


def _number(value) -> float:
    """A float for a result property (None, from JSON-ready results, becomes NaN)."""
    return float("nan") if value is None else float(value)


def store(settings, result: dict, job: api.AlignJob) -> None:
    """Show ``result`` in the panel and keep its candidates for one-click re-application."""
    with _quietly():
        settings.has_result = True
        settings.result_azimuth = result["azimuth"]
        settings.result_elevation = result["elevation"]
        settings.result_distance = result["distance"]
        settings.result_roll = result["roll"]
        settings.result_score = result["score"]
        settings.result_seconds = result["seconds"]
        settings.result_margin = _number(result.get("margin"))
        settings.result_ambiguous = bool(result.get("ambiguous", False))
        settings.result_iou = _number(result.get("iou"))
        settings.result_camera = bpy.data.objects.get(result["camera"])
        settings.result_target = bpy.data.objects.get(job.object_name)
        settings.result_lens = result["lens_mm"]
        settings.result_lens_source = result.get("lens_source", "given")
        settings.result_lens_range = result.get("lens_range_mm") or (0.0, 0.0)
        settings.result_sensor_width = result["sensor_width_mm"]
        settings.result_width, settings.result_height = result["resolution"]
        settings.candidates.clear()
        for values in result["candidates"]:
            item = settings.candidates.add()
            for name in (*POSE_FIELDS, "score"):
                setattr(item, name, values[name])
            item.lens_mm = values.get("lens_mm", result["lens_mm"])
        settings.active_candidate = 0


def apply(context, index: int) -> str | None:
    """Place the last run's camera at candidate ``index``; returns an error message or None."""
    settings = context.scene.gradhog
    if not (0 <= index < len(settings.candidates)):
        return f"no candidate {index + 1}"
    camera, target = settings.result_camera, settings.result_target
    if camera is None or target is None:
        return "the camera or object of the last alignment no longer exists"
    item = settings.candidates[index]
    values = {name: getattr(item, name) for name in POSE_FIELDS}
    try:
        frame = api.current_frame(target)
        api.place_camera(camera, context.scene, frame, values, lens_mm=item.lens_mm or settings.result_lens,
                         sensor_width_mm=settings.result_sensor_width, sensor_fit=camera.data.sensor_fit,
                         width=settings.result_width, height=settings.result_height,
                         photo=settings.photo_image, score=item.score,
                         lens_source=settings.result_lens_source or "given")
    except api.AlignError as error:
        return str(error)
    settings.result_azimuth, settings.result_elevation = item.azimuth, item.elevation
    settings.result_distance, settings.result_roll, settings.result_score = item.distance, item.roll, item.score
    return None


def active_changed(settings, context) -> None:
    """``active_candidate``'s update callback: a click in the list places the camera there."""
    if _selecting or not (0 <= settings.active_candidate < len(settings.candidates)):
        return
    apply(context, settings.active_candidate)
