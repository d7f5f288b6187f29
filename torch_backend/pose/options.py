"""Every setting of :func:`torch_backend.pose.estimate_pose`, with its default, once.

:class:`PoseOptions` is the one options object: the library, the ``gradhog align`` CLI, the
Blender batch script and the add-on's panel all read their defaults and help texts from it
(``dataclasses.fields(PoseOptions)``, each field's ``metadata["help"]``).

Weights left at ``None`` depend on the input mode (see :meth:`PoseOptions.for_mode`): with the
object's mask the silhouette IoU decides; without one, the box fit, the colour region term and
∇HOG do.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Dict, Mapping, Optional, Tuple

__all__ = ["PoseOptions", "FOCAL_MODES", "HOG_VARIANTS", "DEFAULT_ELEVATIONS", "DEFAULT_ROLLS", "DEFAULT_AZIMUTH_STEP", "MODES"]

#: Elevations (degrees) of the coarse grid: table-top photos look down steeply, so the grid
#: reaches 85 deg; below -10 deg is rare for photos of objects standing on the ground.
DEFAULT_ELEVATIONS: Tuple[float, ...] = (-10.0, 0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 62.0, 74.0, 85.0)
#: Degrees between the coarse grid's azimuths.
DEFAULT_AZIMUTH_STEP = 10.0
#: In-plane rotations (degrees) tried for every coarse view.
DEFAULT_ROLLS: Tuple[float, ...] = (-40.0, -30.0, -20.0, -10.0, 0.0, 10.0, 20.0, 30.0, 40.0)
#: HOG flavours the pose objective can compare (the add-on's "HOG Variant" option).
HOG_VARIANTS: Tuple[str, ...] = ("uoctti", "dalal", "skimage")
#: Whether the focal length is the given one or estimated with the pose.
FOCAL_MODES: Tuple[str, ...] = ("given", "estimate")
#: Which cue drives an estimate: the object's mask, a box around it, or the photo alone.
MODES: Tuple[str, ...] = ("mask", "box", "photo")


def _option(default: Any, help: str) -> Any:
    return dataclasses.field(default=default, metadata={"help": help})


#: Mode-dependent defaults of the weights left at ``None``: (with a mask, without one).
_BY_MODE: Dict[str, Tuple[float, float]] = {
    "iou_weight": (1.0, 0.0),
    "hog_weight": (0.0, 1.5),
    "refine_hog_weight": (0.0, 0.3),
    "color_weight": (0.0, 1.5),
    "refine_color_weight": (0.0, 1.0),
}


_INTEGERS = ("top_k", "seed", "fov_count", "proposals_refined", "max_faces", "starts", "explore_size", "explore_iterations", "work_size", "iterations",
             "final_size", "final_iterations", "keep")
_FLOATS = ("azimuth_step", "initial_reach", "lens_tolerance", "crop_context", "learning_rate", "box_weight", "tie_hog_weight", "occlusion_weight", "occlusion_margin",
           *_BY_MODE)


def _number(name: str, value: Any, kind: type) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(value, "__float__"):
        raise ValueError(f"{name} must be a number, got {value!r}")
    converted = kind(value)
    if kind is int and converted != float(value):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    return converted


def _pair(name: str, value: Any) -> Tuple[float, float]:
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected two numbers (low, high), got {value!r}") from None
    return low, high


@dataclasses.dataclass(frozen=True)
class PoseOptions:
    """Settings of a pose estimate (all angles in degrees, sizes in pixels). Frozen and validated.

    Build one with keywords (``PoseOptions(top_k=5)``), from a mapping
    (:meth:`from_mapping`, which names unknown keys), or change one with
    ``dataclasses.replace``.
    """

    # Result
    top_k: int = _option(3, "number of distinct poses returned as candidates (best first)")
    seed: int = _option(0, "seed of the small random parts; the same seed gives the same result")
    # Cues
    use_alpha: bool = _option(True, "use the photo's alpha channel as the object mask")
    proposals: bool = _option(True, "photo mode: box mode on automatic object boxes (False: one GrabCut mask of the frame)")
    proposals_refined: int = _option(2, "photo mode: object boxes refined (the others are judged by their coarse fit)")
    regrab: bool = _option(True, "GrabCut again, seeded by the first estimate, when iou_weight > 0 without a mask")
    # Coarse grid
    azimuth_step: float = _option(DEFAULT_AZIMUTH_STEP, "degrees between the coarse grid's azimuths")
    elevations: Tuple[float, ...] = _option(DEFAULT_ELEVATIONS, "elevations of the coarse grid (degrees)")
    rolls: Tuple[float, ...] = _option(DEFAULT_ROLLS, "in-plane rotations tried per coarse view (degrees)")
    max_faces: int = _option(2000, "face budget of the vertex-clustering simplification before rendering")
    crop_context: float = _option(
        2.0, "work in a window of this many times the object's size around it when that is under half the photo (0: never)")
    # Refinement
    refine: bool = _option(True, "refine the coarse poses by gradient ascent (False: coarse grid only)")
    starts: int = _option(4, "distinct coarse poses refined (plus their twins)")
    explore_size: int = _option(80, "longest side (pixels) of the first, exploring refinement steps")
    explore_iterations: int = _option(12, "steps of the exploring refinement")
    work_size: int = _option(128, "longest side (pixels) of the polishing refinement")
    iterations: int = _option(20, "steps of the polishing refinement")
    final_size: int = _option(256, "longest side (pixels) of the last look (capped at the photo's size)")
    final_iterations: int = _option(8, "steps of the last look at the photo's resolution")
    keep: int = _option(2, "explored poses kept for the polish (at least top_k)")
    learning_rate: float = _option(1.0, "scale of the refinement's step sizes")
    # Weights (None: by mode, see for_mode)
    iou_weight: Optional[float] = _option(None, "silhouette IoU with the mask (default 1 with a mask, else 0)")
    hog_weight: Optional[float] = _option(None, "coarse ∇HOG similarity (default 0 with a mask, else 1.5)")
    refine_hog_weight: Optional[float] = _option(None, "refinement ∇HOG similarity (default 0 with a mask, else 0.3)")
    color_weight: Optional[float] = _option(None, "coarse colour region term (default 0 with a mask, else 1.5)")
    refine_color_weight: Optional[float] = _option(None, "refinement colour region term (default 0 with a mask, else 1)")
    box_weight: float = _option(0.5, "IoU of the projected mesh's box with the given box")
    tie_hog_weight: float = _option(0.1, "∇HOG cosine that breaks near-ties between twins in mask mode")
    occlusion_weight: float = _option(0.5, "occlusion-edge evidence that breaks near-ties at the last look")
    occlusion_margin: float = _option(0.01, "score gap under which candidates count as tied")
    hog_variant: str = _option("uoctti", "HOG compared between photo and renders: " + ", ".join(HOG_VARIANTS))
    # Focal length
    focal: str = _option("given", "\"given\": use the camera's lens; \"estimate\": estimate the focal length with the pose")
    fov_range: Tuple[float, float] = _option(
        (10.0, 100.0), "fields of view (degrees, along the sensor-fit side) the focal-length search covers")
    fov_count: int = _option(7, "log-spaced fields of view scored by the coarse stage when estimating the focal length")
    lens_tolerance: float = _option(
        0.005, "score below the best within which a focal length still counts as possible (lens_range_mm)")
    # What the artist knows
    level_camera: bool = _option(False, "the camera is level: roll fixed at 0")
    elevation_range: Tuple[float, float] = _option(
        (-90.0, 90.0), "elevations (degrees) the camera may have; (0, 90) when the object stands on the ground")
    initial_reach: float = _option(
        45.0, "with an initial pose: degrees of viewing direction around it that the search covers")

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        for name in _INTEGERS:
            set_(self, name, _number(name, getattr(self, name), int))
        for name in _FLOATS:
            if getattr(self, name) is not None:
                set_(self, name, _number(name, getattr(self, name), float))
        for name in ("elevations", "rolls"):
            try:
                values = tuple(float(v) for v in getattr(self, name))
            except (TypeError, ValueError):
                raise ValueError(f"{name}: expected a sequence of numbers, got {getattr(self, name)!r}") from None
            if not values or not all(math.isfinite(v) for v in values):
                raise ValueError(f"{name}: expected finite numbers, got {values}")
            set_(self, name, values)
        low, high = _pair("elevation_range", self.elevation_range)
        if not -90.0 <= low <= high <= 90.0:
            raise ValueError(f"elevation_range must satisfy -90 <= low <= high <= 90 degrees, got {(low, high)}")
        set_(self, "elevation_range", (low, high))
        if self.focal not in FOCAL_MODES:
            raise ValueError(f"focal must be one of {FOCAL_MODES}, got {self.focal!r}")
        fov_low, fov_high = _pair("fov_range", self.fov_range)
        if not 1.0 <= fov_low <= fov_high <= 170.0:
            raise ValueError(f"fov_range must satisfy 1 <= low <= high <= 170 degrees, got {(fov_low, fov_high)}")
        set_(self, "fov_range", (fov_low, fov_high))
        if self.fov_count < 1:
            raise ValueError(f"fov_count must be >= 1, got {self.fov_count}")
        if self.hog_variant not in HOG_VARIANTS:
            raise ValueError(f"hog_variant must be one of {HOG_VARIANTS}, got {self.hog_variant!r}")
        if int(self.top_k) < 1:
            raise ValueError(f"top_k must be >= 1, got {self.top_k}")
        if not (0 < float(self.azimuth_step) <= 180):
            raise ValueError(f"azimuth_step must lie in (0, 180] degrees, got {self.azimuth_step}")
        for name in ("explore_size", "work_size", "final_size", "max_faces"):
            if int(getattr(self, name)) < 8:
                raise ValueError(f"{name} must be >= 8, got {getattr(self, name)}")
        for name in ("starts", "keep", "proposals_refined"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("explore_iterations", "iterations", "final_iterations"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0 < self.initial_reach <= 180:
            raise ValueError(f"initial_reach must lie in (0, 180] degrees, got {self.initial_reach}")
        for name in ("crop_context", "lens_tolerance", "learning_rate", "box_weight", "tie_hog_weight", "occlusion_weight", "occlusion_margin", *_BY_MODE):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(float(value)) and float(value) >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], base: Optional["PoseOptions"] = None) -> "PoseOptions":
        """``base`` (default: the defaults) with ``values`` replaced; unknown keys raise ``ValueError``."""
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"estimate_pose: unknown option(s) {sorted(unknown)}; known: {sorted(known)}")
        return dataclasses.replace(base if base is not None else cls(), **dict(values))

    def for_mode(self, mode: str) -> "PoseOptions":
        """A copy with the weights left at ``None`` set for ``mode`` (``"mask"``, ``"box"``, ``"photo"``)."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        column = 0 if mode == "mask" else 1
        filled = {name: pair[column] for name, pair in _BY_MODE.items() if getattr(self, name) is None}
        return dataclasses.replace(self, **filled)

    def as_dict(self) -> Dict[str, Any]:
        """The settings as plain JSON-ready values (tuples become lists)."""
        return {name: list(value) if isinstance(value, tuple) else value
                for name, value in dataclasses.asdict(self).items()}

    @classmethod
    def help(cls, name: str) -> str:
        """One-line help text of option ``name``."""
        for field in dataclasses.fields(cls):
            if field.name == name:
                return field.metadata["help"]
        raise KeyError(name)

    @classmethod
    def default(cls, name: str) -> Any:
        """Default value of option ``name``."""
        for field in dataclasses.fields(cls):
            if field.name == name:
                return field.default
        raise KeyError(name)
