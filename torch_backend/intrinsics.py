"""Blender camera intrinsics in torch: lens, sensor fit, shift and resolution to pixels.

The formulas (``BKE_camera_params_compute_viewplane``, pixel aspect 1) are documented with the rest
of the convention in :mod:`torch_backend.camera`, which re-exports everything here. With ``span``
the image size in pixels that the fitted sensor size spans::

    focal_px = lens_mm / sensor_mm * span
    x_px = width / 2  - shift_x * span + focal_px * X / (-Z)
    y_px = height / 2 + shift_y * span - focal_px * Y / (-Z)

Only relative imports: this package is vendored into the Blender add-on.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Mapping

import numpy as np
import torch
from torch import Tensor

__all__ = ["SENSOR_FITS", "Intrinsics", "project_camera_points"]

SENSOR_FITS = ("AUTO", "HORIZONTAL", "VERTICAL")


def _reference(*values: Any) -> tuple[torch.dtype, torch.device]:
    """dtype/device of the first floating tensor among ``values`` (float32 on CPU otherwise)."""
    for value in values:
        if isinstance(value, Tensor) and value.is_floating_point():
            return value.dtype, value.device
    for value in values:
        if isinstance(value, Tensor):
            return torch.get_default_dtype(), value.device
    return torch.get_default_dtype(), torch.device("cpu")


def _as_param(name: str, value: Any, dtype: torch.dtype, device: torch.device) -> Tensor:
    """A pose/intrinsic scalar or (B,) batch as a tensor of ``dtype`` on ``device`` (keeps autograd)."""
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(value)
    if isinstance(value, Tensor):
        tensor = value.to(device=device, dtype=dtype)
    else:
        try:
            tensor = torch.as_tensor(value, dtype=dtype, device=device)
        except (TypeError, ValueError, RuntimeError) as error:
            raise ValueError(f"{name} must be a number or a tensor of shape (B,), got {value!r}") from error
    if tensor.dim() > 1:
        raise ValueError(f"{name} must be a scalar or have shape (B,), got shape {tuple(tensor.shape)}")
    if tensor.numel() == 0:
        raise ValueError(f"{name} is empty")
    if not bool(torch.isfinite(tensor.detach()).all()):
        raise ValueError(f"{name} must be finite, got {tensor.detach().cpu().tolist()}")
    return tensor



def _lookup(source: Any, names: tuple[str, ...], default: Any = None) -> Any:
    """The first of ``names`` found as a key of a dict or an attribute of anything else."""
    for name in names:
        if isinstance(source, Mapping) and name in source:
            return source[name]
        if not isinstance(source, Mapping) and hasattr(source, name):
            return getattr(source, name)
    return default


def _check_resolution(resolution: Any) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in resolution)
    except (TypeError, ValueError) as error:
        raise ValueError(f"resolution must be (width, height), got {resolution!r}") from error
    if width <= 0 or height <= 0 or (width, height) != tuple(resolution):
        raise ValueError(f"resolution must be two positive integers (width, height), got {resolution!r}")
    return width, height


@dataclass(frozen=True)
class Intrinsics:
    """Blender camera intrinsics (pixel aspect 1).

    Attributes:
        lens_mm: focal length in mm (``camera.data.lens``); float or tensor () / (B,).
        sensor_width_mm, sensor_height_mm: ``camera.data.sensor_width / sensor_height`` (mm).
        sensor_fit: ``"AUTO"``, ``"HORIZONTAL"`` or ``"VERTICAL"`` (``camera.data.sensor_fit``).
        shift_x, shift_y: lens shift in units of the fitted image size (``camera.data.shift_x/y``).
        resolution: (width, height) in pixels (``render.resolution_x/y`` times the percentage).
    """

    lens_mm: Any = 50.0
    sensor_width_mm: Any = 36.0
    sensor_height_mm: Any = 24.0
    sensor_fit: str = "AUTO"
    shift_x: Any = 0.0
    shift_y: Any = 0.0
    resolution: tuple[int, int] = (1920, 1080)

    def __post_init__(self):
        if not isinstance(self.sensor_fit, str) or self.sensor_fit.upper() not in SENSOR_FITS:
            raise ValueError(f"sensor_fit must be one of {SENSOR_FITS}, got {self.sensor_fit!r}")
        object.__setattr__(self, "sensor_fit", self.sensor_fit.upper())
        object.__setattr__(self, "resolution", _check_resolution(self.resolution))

    @classmethod
    def coerce(cls, value: Any, *, name: str = "camera_intrinsics") -> "Intrinsics":
        """Scalar intrinsics from an :class:`Intrinsics` (or any object with its attribute names) or a
        dict of its keywords.

        Also accepted: ``lens`` for ``lens_mm``, ``sensor_width``/``sensor_height`` for the ``_mm``
        names, ``shift=(x, y)`` for ``shift_x, shift_y``, and ``width, height`` or
        ``resolution_x, resolution_y`` for ``resolution`` (rounded to whole pixels). Missing camera
        values take Blender's defaults; the resolution is required.

        Raises:
            ValueError: prefixed with ``name``, naming the bad field (non-finite, not positive, ...).
        """
        if value is None:
            raise ValueError(f"{name}: required (lens_mm, sensor_width_mm, ..., resolution)")
        lens = _lookup(value, ("lens_mm", "lens"), 50.0)
        sensor_w = _lookup(value, ("sensor_width_mm", "sensor_width"), 36.0)
        sensor_h = _lookup(value, ("sensor_height_mm", "sensor_height"), 24.0)
        fit = str(_lookup(value, ("sensor_fit",), "AUTO")).upper()
        shift = _lookup(value, ("shift",), None)
        if shift is not None:
            shift_x, shift_y = shift
        else:
            shift_x, shift_y = _lookup(value, ("shift_x",), 0.0), _lookup(value, ("shift_y",), 0.0)
        resolution = _lookup(value, ("resolution",), None)
        if resolution is None:
            width, height = _lookup(value, ("width", "resolution_x")), _lookup(value, ("height", "resolution_y"))
        else:
            width, height = resolution
        if fit not in SENSOR_FITS:
            raise ValueError(f"{name}: sensor_fit must be AUTO, HORIZONTAL or VERTICAL, got {fit!r}")
        try:
            values = [float(v) for v in (lens, sensor_w, sensor_h, shift_x, shift_y)]
        except (TypeError, ValueError):
            raise ValueError(f"{name}: lens, sensor and shift must be numbers") from None
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f"{name}: non-finite value in lens/sensor/shift {values}")
        if values[0] <= 0 or values[1] <= 0 or values[2] <= 0:
            raise ValueError(f"{name}: lens_mm and sensor sizes must be positive, got {values[:3]}")
        if width is None or height is None:
            raise ValueError(f"{name}: resolution (width, height) is required")
        if not (float(width) > 0 and float(height) > 0 and math.isfinite(float(width)) and math.isfinite(float(height))):
            raise ValueError(f"{name}: resolution must be positive and finite, got {(width, height)}")
        return cls(values[0], values[1], values[2], fit, values[3], values[4],
                   (int(round(float(width))), int(round(float(height)))))

    @classmethod
    def from_blender_dict(cls, data: Mapping[str, Any]) -> "Intrinsics":
        """Build from Blender's names: ``lens, sensor_width, sensor_height, sensor_fit, shift_x,
        shift_y, resolution_x, resolution_y`` and optionally ``resolution_percentage`` (default 100).

        Missing camera keys take Blender's defaults; the resolution keys are required.
        """
        if "resolution_x" not in data or "resolution_y" not in data:
            raise ValueError("from_blender_dict needs 'resolution_x' and 'resolution_y'")
        percentage = data.get("resolution_percentage", 100)
        # Blender rounds the scaled resolution down (BKE_render_resolution).
        width = int(data["resolution_x"]) * int(percentage) // 100
        height = int(data["resolution_y"]) * int(percentage) // 100
        return cls(
            lens_mm=data.get("lens", 50.0),
            sensor_width_mm=data.get("sensor_width", 36.0),
            sensor_height_mm=data.get("sensor_height", 24.0),
            sensor_fit=str(data.get("sensor_fit", "AUTO")),
            shift_x=data.get("shift_x", 0.0),
            shift_y=data.get("shift_y", 0.0),
            resolution=(width, height),
        )

    def to_blender_dict(self) -> dict[str, Any]:
        """The inverse of :meth:`from_blender_dict` (python floats; percentage 100)."""
        as_float = lambda v: float(v.detach().cpu()) if isinstance(v, Tensor) and v.numel() == 1 else v  # noqa: E731
        return {
            "lens": as_float(self.lens_mm),
            "sensor_width": as_float(self.sensor_width_mm),
            "sensor_height": as_float(self.sensor_height_mm),
            "sensor_fit": self.sensor_fit,
            "shift_x": as_float(self.shift_x),
            "shift_y": as_float(self.shift_y),
            "resolution_x": self.resolution[0],
            "resolution_y": self.resolution[1],
            "resolution_percentage": 100,
        }

    def replace(self, **changes) -> "Intrinsics":
        """A copy with some fields changed."""
        return replace(self, **changes)

    @property
    def width(self) -> int:
        return self.resolution[0]

    @property
    def height(self) -> int:
        return self.resolution[1]

    @property
    def horizontal_fit(self) -> bool:
        """True when the fitted sensor size spans the image width (Blender's effective fit)."""
        if self.sensor_fit == "AUTO":
            return self.width >= self.height
        return self.sensor_fit == "HORIZONTAL"

    @property
    def fit_span_px(self) -> int:
        """The image size in pixels that the fitted sensor size spans (Blender's ``viewfac``)."""
        return self.width if self.horizontal_fit else self.height

    def scaled(self, width: int, height: int) -> "Intrinsics":
        """The same camera rendering ``width`` x ``height`` pixels (same field of view along the fit)."""
        return replace(self, resolution=(int(width), int(height)))

    def with_shift(self, shift_x: Any, shift_y: Any) -> "Intrinsics":
        """A copy with another lens shift (floats or tensors of shape (B,))."""
        return replace(self, shift_x=shift_x, shift_y=shift_y)

    def as_dict(self) -> dict[str, Any]:
        """The keywords of :class:`Intrinsics` (and of ``project_points``/``render``) as a dict."""
        return {"lens_mm": self.lens_mm, "sensor_width_mm": self.sensor_width_mm,
                "sensor_height_mm": self.sensor_height_mm, "sensor_fit": self.sensor_fit,
                "shift_x": self.shift_x, "shift_y": self.shift_y, "resolution": self.resolution}

    @property
    def focal_px(self) -> float:
        """Focal length in pixels (python float, no autograd; scalar intrinsics only)."""
        return float(self.tensors(torch.float64)["focal_px"])

    @property
    def principal_point(self) -> tuple[float, float]:
        """Where the optical axis (so the mesh origin) lands, ``(x, y)`` in continuous pixel
        coordinates (python floats, no autograd; scalar intrinsics only)."""
        centre = self.tensors(torch.float64)
        return float(centre["cx"]), float(centre["cy"])

    def with_principal_point(self, cx: float, cy: float) -> "Intrinsics":
        """A copy whose lens shift puts the principal point at ``(cx, cy)`` pixels (scalar intrinsics)."""
        span = float(self.fit_span_px)
        return replace(self, shift_x=(0.5 * self.width - float(cx)) / span, shift_y=(float(cy) - 0.5 * self.height) / span)

    def cropped(self, x0: int, y0: int, x1: int, y1: int) -> "Intrinsics":
        """The camera that sees exactly the pixels ``[x0, x1) x [y0, y1)`` of this one's image: the same
        focal length in pixels and the same rays, a ``(x1 - x0) x (y1 - y0)`` image, the principal point
        moved with the window (scalar intrinsics; sensor fit AUTO, the sensor sized to keep the focal)."""
        width, height = int(x1) - int(x0), int(y1) - int(y0)
        if width < 1 or height < 1:
            raise ValueError(f"crop window must be non-empty, got {(x0, y0, x1, y1)}")
        cx, cy = self.principal_point
        sensor = float(self.lens_mm) * max(width, height) / self.focal_px
        crop = replace(self, sensor_width_mm=sensor, sensor_height_mm=sensor, sensor_fit="AUTO", resolution=(width, height))
        return crop.with_principal_point(cx - int(x0), cy - int(y0))

    def batch_dims(self, dtype: torch.dtype, device: torch.device) -> int:
        """0 when every value is a scalar, 1 when some are (B,) tensors (each value is checked)."""
        return max(_as_param(k, getattr(self, k), dtype, device).dim()
                   for k in ("lens_mm", "sensor_width_mm", "sensor_height_mm", "shift_x", "shift_y"))

    def tensors(self, dtype=None, device=None) -> dict[str, Tensor]:
        """``focal_px``, ``cx``, ``cy`` as tensors of shape () or (B,) (differentiable)."""
        ref_dtype, ref_device = _reference(self.lens_mm, self.sensor_width_mm, self.sensor_height_mm,
                                           self.shift_x, self.shift_y)
        dtype, device = dtype or ref_dtype, device or ref_device
        lens = _as_param("lens_mm", self.lens_mm, dtype, device)
        # Blender: the sensor height is used only for an explicit VERTICAL fit (AUTO uses the width).
        sensor_name = "sensor_height_mm" if self.sensor_fit == "VERTICAL" else "sensor_width_mm"
        sensor = _as_param(sensor_name, getattr(self, sensor_name), dtype, device)
        shift_x = _as_param("shift_x", self.shift_x, dtype, device)
        shift_y = _as_param("shift_y", self.shift_y, dtype, device)
        if bool((lens.detach() <= 0).any()) or bool((sensor.detach() <= 0).any()):
            raise ValueError("lens_mm and the sensor size must be > 0")
        span = float(self.fit_span_px)
        return {
            "focal_px": lens / sensor * span,
            "cx": 0.5 * self.width - shift_x * span,
            "cy": 0.5 * self.height + shift_y * span,
        }

    def matrix(self, dtype=None, device=None) -> Tensor:
        """Pinhole matrix K (3, 3) or (B, 3, 3) mapping ``(X, -Y, -Z)`` (OpenCV-style camera) to pixels."""
        t = self.tensors(dtype, device)
        f, cx, cy = torch.broadcast_tensors(t["focal_px"], t["cx"], t["cy"])
        zero, one = torch.zeros_like(f), torch.ones_like(f)
        return torch.stack([
            torch.stack([f, zero, cx], -1),
            torch.stack([zero, f, cy], -1),
            torch.stack([zero, zero, one], -1),
        ], -2)


def project_camera_points(points_cam: Tensor, intrinsics: Intrinsics) -> tuple[Tensor, Tensor]:
    """Project Blender camera-space points to pixel coordinates.

    Args:
        points_cam: (..., N, 3) camera-space points (camera looks down -Z); with batched intrinsics
            of shape (B,) the leading dimension must be B (or broadcastable).
        intrinsics: :class:`Intrinsics`.

    Returns:
        ``(pixels, depth)``: pixels (..., N, 2) with x right, y down, (0, 0) the top-left corner of
        the image; depth (..., N) = ``-Z`` (positive in front of the camera). Points with depth <= 0
        get meaningless pixels (no clipping here).
    """
    t = intrinsics.tensors(points_cam.dtype, points_cam.device)
    depth = -points_cam[..., 2]
    # Only the sign matters to callers for points behind the camera; guard the division so that
    # a point exactly on the camera plane gives finite values (and finite gradients).
    safe = torch.where(depth.abs() < 1e-12, torch.full_like(depth, 1e-12), depth)
    expand = lambda v: v.reshape(v.shape + (1,) * (points_cam.dim() - 1 - v.dim())) if v.dim() else v  # noqa: E731
    f, cx, cy = expand(t["focal_px"]), expand(t["cx"]), expand(t["cy"])
    x = cx + f * points_cam[..., 0] / safe
    y = cy - f * points_cam[..., 1] / safe
    return torch.stack([x, y], dim=-1), depth

