"""What goes into and comes out of :func:`torch_backend.pose.estimate_pose`: poses, results,
pre-rendered views, and the progress/cancel protocol."""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, List, Optional, Tuple

__all__ = ["Pose", "PoseResult", "CoarseViews", "Cancelled", "Progress", "AMBIGUOUS_MARGIN"]

#: Score margin under which a result is flagged ambiguous (:attr:`PoseResult.ambiguous`).
AMBIGUOUS_MARGIN = 0.02


class Cancelled(Exception):
    """Raised by :func:`estimate_pose` when the progress callback returns ``False``."""


@dataclasses.dataclass
class Pose:
    """A camera pose in the convention of :mod:`torch_backend.camera`.

    Attributes:
        azimuth, elevation, roll: degrees. The camera sits at
            ``distance * (cos el sin az, -cos el cos az, sin el)``, looks at the mesh origin with +Z
            up, and is rolled about its viewing direction.
        distance: camera centre to mesh origin, in the mesh's units.
        shift_x, shift_y: Blender lens shift (fractions of the larger sensor side).
        lens_mm: the focal length when it was estimated with the pose (None: the given lens).
    """

    azimuth: float
    elevation: float
    distance: float
    roll: float = 0.0
    shift_x: float = 0.0
    shift_y: float = 0.0
    lens_mm: Optional[float] = None

    def as_dict(self) -> Dict[str, float]:
        """The fields as a dict (``lens_mm`` only when estimated)."""
        values = dataclasses.asdict(self)
        if values["lens_mm"] is None:
            del values["lens_mm"]
        return values


@dataclasses.dataclass
class PoseResult:
    """What :func:`estimate_pose` found.

    Attributes:
        pose: the best pose.
        score: its objective value (higher is better; silhouette IoU and HOG cosine in [0, 1]).
        candidates: the ``top_k`` best distinct poses with their scores, best first (``pose`` first).
        seconds: wall-clock time of the call.
        mode: which cue drove it: ``"mask"`` (alpha or mask given), ``"box"`` or ``"photo"``.
        coarse_pose, coarse_score: the best grid pose before refinement.
        iou: silhouette IoU of ``pose`` with the object mask used (given or derived), at working size.
        timings: seconds per stage.
        margin: score of ``pose`` minus that of the next distinct pose (>= 15 deg away); small
            when the photo hardly tells them apart (see :attr:`ambiguous`); NaN without a rival.
        lens_mm: the focal length (mm) of ``pose``: the given one, or the estimate.
        lens_source: ``"given"`` or ``"estimated"`` (callers that read EXIF say ``"exif"`` or
            ``"default"``).
        lens_range_mm: with an estimated focal length, the ``(low, high)`` focal lengths (mm) whose
            best pose scores within ``lens_tolerance`` of the best: wide when the photo cannot tell
            (a small or far object), narrow when its perspective decides.
    """

    pose: Pose
    score: float
    candidates: List[Tuple[Pose, float]]
    seconds: float
    mode: str
    coarse_pose: Pose
    coarse_score: float
    iou: float = float("nan")
    timings: Dict[str, float] = dataclasses.field(default_factory=dict)
    margin: float = float("nan")
    lens_mm: float = float("nan")
    lens_source: str = "given"
    lens_range_mm: Optional[Tuple[float, float]] = None

    @property
    def ambiguous(self) -> bool:
        """True when another distinct pose scores within :data:`AMBIGUOUS_MARGIN`: check the candidates."""
        return bool(self.margin < AMBIGUOUS_MARGIN)


@dataclasses.dataclass
class CoarseViews:
    """Pre-rendered views of a mesh (e.g. by Blender's Workbench) for the coarse stage.

    Attributes:
        images: ``(N, h, w)`` gray renders in ``[0, 1]`` (shading only, background 0 is fine).
        silhouettes: ``(N, h, w)`` object coverage in ``[0, 1]``.
        poses: ``N`` :class:`Pose` (roll and shift must be 0) or an ``(N, 4)`` array of
            azimuth, elevation, distance, roll.
        intrinsics: the camera the views were rendered with (a ``camera.Intrinsics`` or dict with
            ``lens_mm, sensor_width_mm, sensor_height_mm, sensor_fit, resolution``); see
            :func:`coarse_view_intrinsics`.
    """

    images: Any
    silhouettes: Any
    poses: Any
    intrinsics: Any


class Progress:
    """Reports progress in ``[0, 1]`` to a user's ``callback(progress, message)``; a callback that
    returns ``False`` cancels (:class:`Cancelled`). A sub-range maps a stage's own 0..1 onto part
    of the whole, so nested stages report one rising bar."""

    def __init__(self, callback: Optional[Callable[[float, str], Optional[bool]]] = None,
                 low: float = 0.0, high: float = 1.0, suffix: str = ""):
        self.callback, self.low, self.high, self.suffix = callback, float(low), float(high), suffix

    def __call__(self, progress: float, message: str) -> None:
        if self.callback is None:
            return
        overall = self.low + (self.high - self.low) * float(progress)
        if self.callback(overall, message + self.suffix) is False:
            raise Cancelled(f"cancelled during {message}")

    def part(self, low: float, high: float, suffix: str = "") -> "Progress":
        """The same callback for the sub-range ``[low, high]`` of this one, messages ending in ``suffix``."""
        span = self.high - self.low
        return Progress(self.callback, self.low + span * low, self.low + span * high, self.suffix + suffix)
