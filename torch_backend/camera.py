"""Blender's camera in torch: THE camera convention of gradhog, intrinsics and projection.

Convention (also in ``docs/camera.md``)
---------------------------------------
Blender world frame, +Z up. The camera looks at the mesh's own origin (poses are always relative to
the mesh's own frame, never a re-centred copy). With azimuth ``az``, elevation ``el`` and distance
``d`` the camera centre is::

    C = d * (cos(el) sin(az), -cos(el) cos(az), sin(el))

``az = 0`` is Blender's Front view (camera on -Y looking towards +Y), ``az = 90`` is Right (camera on
+X), ``el > 0`` is above the XY plane. The camera looks at the origin with world +Z as "up" and then
rolls by ``roll`` about its viewing direction ``f = -C / d`` (right-handed about ``f``: a positive
roll turns the camera clockwise as seen from behind it, so the picture turns counter-clockwise).
All public angles are in degrees.

Camera axes (columns of the camera-to-world rotation, Blender's camera space: the camera looks down
its local -Z, local +Y is up and local +X is right)::

    right r = (cos az, sin az, 0)
    up    u = (-sin az sin el, cos az sin el, cos el)
    back  b = C / d
    r' = r cos(roll) - u sin(roll)
    u' = u cos(roll) + r sin(roll)

These closed forms are the continuous limit of "look at with +Z up" and stay well defined at
``el = +-90``: there ``right`` is still ``(cos az, sin az, 0)``, so straight from above
(``el = 90, az = 0, roll = 0``) the picture shows +X to the right and +Y up, exactly Blender's Top
view; straight from below (``el = -90``) it shows +X right and -Y up (Blender's Bottom view). At
the poles only ``az - roll`` (``el = 90``) or ``az + roll`` (``el = -90``) matters.

Intrinsics follow Blender's ``BKE_camera_params_compute_viewplane`` (pixel aspect 1): the sensor
size that is fitted is ``sensor_width`` unless ``sensor_fit == "VERTICAL"``; it spans the image
width for a horizontal fit and the image height for a vertical fit, where ``"AUTO"`` means
horizontal when ``width >= height``. With ``span`` the fitted image size in pixels::

    focal_px = lens_mm / sensor_mm * span
    x_px = width / 2  - shift_x * span + focal_px * X / (-Z)
    y_px = height / 2 + shift_y * span - focal_px * Y / (-Z)

for a point ``(X, Y, Z)`` in camera space. Pixel coordinates have x right, y down and ``(0, 0)``
at the top-left corner of the top-left pixel (pixel centres at ``i + 0.5``).
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Mapping, NamedTuple, Sequence

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "SENSOR_FITS",
    "Intrinsics",
    "CameraPlacement",
    "camera_to_world",
    "world_to_camera",
    "pose_from_world_to_camera",
    "pose_from_camera_to_world",
    "camera_location_rotation",
    "euler_xyz_from_rotation",
    "transform_points",
    "project_camera_points",
    "project_points",
]

SENSOR_FITS = ("AUTO", "HORIZONTAL", "VERTICAL")


# --------------------------------------------------------------------------------------------
# argument handling
# --------------------------------------------------------------------------------------------
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


def _broadcast(**params: Tensor) -> dict[str, Tensor]:
    shapes = {name: tuple(p.shape) for name, p in params.items()}
    try:
        out = torch.broadcast_tensors(*params.values())
    except RuntimeError as error:
        raise ValueError(f"pose parameters have incompatible batch shapes: {shapes}") from error
    return dict(zip(params.keys(), out))


def _check_resolution(resolution: Any) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in resolution)
    except (TypeError, ValueError) as error:
        raise ValueError(f"resolution must be (width, height), got {resolution!r}") from error
    if width <= 0 or height <= 0 or (width, height) != tuple(resolution):
        raise ValueError(f"resolution must be two positive integers (width, height), got {resolution!r}")
    return width, height


# --------------------------------------------------------------------------------------------
# extrinsics
# --------------------------------------------------------------------------------------------
def _pose_tensors(azimuth, elevation, distance, roll, dtype=None, device=None):
    ref_dtype, ref_device = _reference(azimuth, elevation, distance, roll)
    dtype = dtype or ref_dtype
    device = device or ref_device
    params = _broadcast(
        azimuth=_as_param("azimuth", azimuth, dtype, device),
        elevation=_as_param("elevation", elevation, dtype, device),
        distance=_as_param("distance", distance, dtype, device),
        roll=_as_param("roll", roll, dtype, device),
    )
    if bool((params["distance"].detach() <= 0).any()):
        raise ValueError(f"distance must be > 0, got {params['distance'].detach().cpu().tolist()}")
    return params["azimuth"], params["elevation"], params["distance"], params["roll"]


def _axes_and_centre(az: Tensor, el: Tensor, dist: Tensor, roll: Tensor) -> tuple[Tensor, Tensor]:
    """Camera-to-world rotation (..., 3, 3) with columns (right, up, back) and centre (..., 3)."""
    a, e, r = torch.deg2rad(az), torch.deg2rad(el), torch.deg2rad(roll)
    sa, ca, se, ce, sr, cr = a.sin(), a.cos(), e.sin(), e.cos(), r.sin(), r.cos()
    zero = torch.zeros_like(a)
    right = torch.stack([ca, sa, zero], dim=-1)
    up = torch.stack([-sa * se, ca * se, ce], dim=-1)
    back = torch.stack([ce * sa, -ce * ca, se], dim=-1)
    right_rolled = right * cr[..., None] - up * sr[..., None]
    up_rolled = up * cr[..., None] + right * sr[..., None]
    rotation = torch.stack([right_rolled, up_rolled, back], dim=-1)
    return rotation, back * dist[..., None]


def _homogeneous(rotation: Tensor, translation: Tensor) -> Tensor:
    top = torch.cat([rotation, translation[..., None]], dim=-1)
    bottom = torch.zeros(top.shape[:-2] + (1, 4), dtype=top.dtype, device=top.device)
    bottom[..., 0, 3] = 1.0
    return torch.cat([top, bottom], dim=-2)


def camera_to_world(azimuth, elevation, distance, roll=0.0, *, dtype=None, device=None) -> Tensor:
    """Blender ``camera.matrix_world`` for a pose in gradhog's convention.

    Args:
        azimuth, elevation, roll: degrees; python floats or tensors of shape (B,).
        distance: distance from the mesh origin (scene units), > 0.
        dtype, device: override the output dtype/device (default: from the tensor arguments, else
            ``torch.get_default_dtype()`` on CPU).

    Returns:
        (4, 4) or (B, 4, 4) rigid transform from camera space (looks down -Z, +Y up) to world.
    """
    az, el, dist, roll = _pose_tensors(azimuth, elevation, distance, roll, dtype, device)
    rotation, centre = _axes_and_centre(az, el, dist, roll)
    return _homogeneous(rotation, centre)


def world_to_camera(azimuth, elevation, distance, roll=0.0, *, dtype=None, device=None) -> Tensor:
    """World-to-camera matrix (the inverse of :func:`camera_to_world`), shape (4, 4) or (B, 4, 4).

    Camera space is Blender's: the camera looks down -Z with +Y up and +X right. Angles in degrees.
    """
    az, el, dist, roll = _pose_tensors(azimuth, elevation, distance, roll, dtype, device)
    rotation, centre = _axes_and_centre(az, el, dist, roll)
    rotation_t = rotation.transpose(-1, -2)
    # R^T C = (0, 0, d) exactly because C = d * back, so the translation is (0, 0, -d).
    translation = -(rotation_t @ centre[..., None])[..., 0]
    return _homogeneous(rotation_t, translation)


def _wrap_degrees(angle: Tensor) -> Tensor:
    """Angle in degrees wrapped into (-180, 180]."""
    wrapped = torch.remainder(angle + 180.0, 360.0) - 180.0
    return torch.where(wrapped == -180.0, torch.full_like(wrapped, 180.0), wrapped)


def _check_matrix(name: str, matrix: Any) -> Tensor:
    if isinstance(matrix, np.ndarray):
        matrix = torch.from_numpy(matrix)
    if not isinstance(matrix, Tensor):
        matrix = torch.as_tensor(matrix, dtype=torch.get_default_dtype())
    if matrix.shape[-2:] not in ((4, 4), (3, 4)) or matrix.dim() > 3:
        raise ValueError(f"{name} must have shape (4, 4), (3, 4) or (B, 4, 4), got {tuple(matrix.shape)}")
    if not matrix.is_floating_point():
        matrix = matrix.to(torch.get_default_dtype())
    if not bool(torch.isfinite(matrix.detach()).all()):
        raise ValueError(f"{name} must be finite")
    return matrix


def pose_from_world_to_camera(matrix) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Invert :func:`world_to_camera`: ``(azimuth, elevation, distance, roll)`` in degrees.

    The matrix must be a rigid world-to-camera transform whose camera looks at the world origin
    (as every pose of this convention does); the look-at residual is not checked. Round trip
    ``world_to_camera(*pose_from_world_to_camera(M)) == M`` holds to rounding for every pose,
    including ``el = +-90``. Azimuth and roll are returned in (-180, 180].

    At the poles only ``az - roll`` (el = 90) or ``az + roll`` (el = -90) is determined; exactly
    there (to a few ulps) roll 0 is returned with the azimuth that reproduces the matrix. Near the poles az and roll individually
    are ill-conditioned (as they must be) while the matrix stays exact.

    Args:
        matrix: (4, 4), (3, 4) or (B, 4, 4) tensor or array.

    Returns:
        Four tensors of shape () or (B,).
    """
    matrix = _check_matrix("matrix", matrix)
    rotation_wc = matrix[..., :3, :3]
    translation = matrix[..., :3, 3]
    rotation = rotation_wc.transpose(-1, -2)  # camera-to-world, columns right', up', back
    centre = -(rotation @ translation[..., None])[..., 0]
    distance = torch.linalg.vector_norm(centre, dim=-1)
    elevation = torch.rad2deg(torch.atan2(centre[..., 2], torch.linalg.vector_norm(centre[..., :2], dim=-1)))
    right, up = rotation[..., :, 0], rotation[..., :, 1]
    # With e = exp(i az) and s = sin(el), the xy parts of right' and up' as complex numbers give
    #   right' - i up' = e (1 + s) exp(-i roll),   right' + i up' = e (1 - s) exp(+i roll),
    # so az - roll is well conditioned except near el = -90 and az + roll except near el = +90.
    # The azimuth itself comes from the centre, (sin az, -cos az) cos(el): its error eps/cos(el)
    # only enters the matrix multiplied by cos(el), so the round trip stays exact to rounding.
    diff_vec = (right[..., 0] + up[..., 1], right[..., 1] - up[..., 0])
    sum_vec = (right[..., 0] - up[..., 1], right[..., 1] + up[..., 0])
    diff = torch.atan2(diff_vec[1], diff_vec[0])  # az - roll
    summ = torch.atan2(sum_vec[1], sum_vec[0])  # az + roll
    az = torch.atan2(centre[..., 0], -centre[..., 1])
    north = centre[..., 2] >= 0
    roll = torch.where(north, az - diff, summ - az)
    # Exactly at a pole (to a few ulps) the azimuth of the centre is noise: report roll = 0 and
    # put the determined combination into the azimuth.
    tiny = 64 * torch.finfo(rotation.dtype).eps
    at_pole = torch.hypot(centre[..., 0], centre[..., 1]) <= tiny * distance
    az = torch.where(at_pole, torch.where(north, diff, summ), az)
    roll = torch.where(at_pole, torch.zeros_like(roll), roll)
    return _wrap_degrees(torch.rad2deg(az)), elevation, distance, _wrap_degrees(torch.rad2deg(roll))


def pose_from_camera_to_world(matrix) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(azimuth, elevation, distance, roll)`` in degrees from a camera ``matrix_world`` (4, 4)/(B, 4, 4)."""
    matrix = _check_matrix("matrix", matrix)
    rotation = matrix[..., :3, :3]
    centre = matrix[..., :3, 3]
    rotation_t = rotation.transpose(-1, -2)
    translation = -(rotation_t @ centre[..., None])[..., 0]
    return pose_from_world_to_camera(_homogeneous(rotation_t, translation))


def euler_xyz_from_rotation(rotation: Tensor) -> Tensor:
    """Blender ``'XYZ'`` Euler angles (radians, (..., 3)) of rotation matrices (..., 3, 3).

    Blender's XYZ order means ``R = Rz(z) @ Ry(y) @ Rx(x)``. In gimbal lock (``|y| = 90``) z is 0.
    """
    r = rotation
    cos_y = torch.sqrt(r[..., 0, 0] ** 2 + r[..., 1, 0] ** 2)
    locked = cos_y < 1e-6
    y = torch.atan2(-r[..., 2, 0], cos_y)
    x = torch.where(locked, torch.atan2(-r[..., 1, 2], r[..., 1, 1]), torch.atan2(r[..., 2, 1], r[..., 2, 2]))
    z = torch.where(locked, torch.zeros_like(y), torch.atan2(r[..., 1, 0], r[..., 0, 0]))
    return torch.stack([x, y, z], dim=-1)


class CameraPlacement(NamedTuple):
    """What Blender needs to place a camera object (single source of truth for write-back).

    location: (..., 3) world position (``obj.location``).
    rotation_matrix: (..., 3, 3) camera-to-world rotation (columns right, up, back).
    rotation_euler: (..., 3) Blender ``'XYZ'`` Euler angles in radians (``obj.rotation_euler``).
    matrix_world: (..., 4, 4) the full ``obj.matrix_world``.
    """

    location: Tensor
    rotation_matrix: Tensor
    rotation_euler: Tensor
    matrix_world: Tensor


def camera_location_rotation(azimuth, elevation, distance, roll=0.0, *, dtype=None, device=None) -> CameraPlacement:
    """Location, rotation (matrix and XYZ Euler, radians) and ``matrix_world`` of a Blender camera.

    Set either ``obj.matrix_world`` or ``obj.location`` + ``obj.rotation_mode = 'XYZ'`` +
    ``obj.rotation_euler`` (with no parent and unit scale). Angles in degrees, shapes () or (B,).
    """
    matrix = camera_to_world(azimuth, elevation, distance, roll, dtype=dtype, device=device)
    rotation = matrix[..., :3, :3]
    return CameraPlacement(matrix[..., :3, 3], rotation, euler_xyz_from_rotation(rotation), matrix)


def transform_points(points: Tensor, matrix: Tensor) -> Tensor:
    """Apply rigid/affine 4x4 transforms to points.

    Args:
        points: (..., N, 3).
        matrix: (4, 4) or (B, 4, 4); with a batch, ``points`` is (N, 3) (shared) or (B, N, 3).

    Returns:
        (..., N, 3) for one matrix, (B, N, 3) for a batch.
    """
    rotation = matrix[..., :3, :3]
    translation = matrix[..., :3, 3]
    if matrix.dim() == 2:
        return points @ rotation.transpose(-1, -2) + translation
    if points.dim() == 2:
        points = points.unsqueeze(0)
    if points.dim() != 3 or points.shape[0] not in (1, matrix.shape[0]):
        raise ValueError(
            f"with {matrix.shape[0]} cameras points must be (N, 3) or ({matrix.shape[0]}, N, 3), "
            f"got {tuple(points.shape)}"
        )
    return points @ rotation.transpose(-1, -2) + translation[:, None, :]


# --------------------------------------------------------------------------------------------
# intrinsics
# --------------------------------------------------------------------------------------------
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


def _check_points(points: Any) -> Tensor:
    if isinstance(points, np.ndarray):
        points = torch.from_numpy(points)
    if not isinstance(points, Tensor):
        raise ValueError(f"points must be a tensor or numpy array, got {type(points).__name__}")
    if points.dim() < 1 or points.shape[-1] != 3:
        raise ValueError(f"points must have shape (..., 3), got {tuple(points.shape)}")
    if not points.is_floating_point():
        points = points.to(torch.get_default_dtype())
    if points.numel() and not bool(torch.isfinite(points.detach()).all()):
        raise ValueError("points must be finite")
    return points


def project_points(
    points,
    *,
    azimuth,
    elevation,
    distance,
    roll=0.0,
    shift_x=0.0,
    shift_y=0.0,
    lens_mm=50.0,
    sensor_width_mm=36.0,
    sensor_height_mm=24.0,
    sensor_fit: str = "AUTO",
    resolution: Sequence[int] = (1920, 1080),
) -> Tensor:
    """Project world points to Blender pixel coordinates for a camera in gradhog's convention.

    Agrees with ``bpy_extras.object_utils.world_to_camera_view`` scaled to pixels (x * width,
    (1 - y) * height) to float rounding.

    Args:
        points: (..., 3) world points; with batched pose keywords of shape (B,), points are (N, 3)
            (shared) or (B, N, 3).
        azimuth, elevation, roll: degrees; float or tensor () / (B,).
        distance: camera distance from the world origin (scene units).
        shift_x, shift_y, lens_mm, sensor_width_mm, sensor_height_mm: Blender camera data; float or
            tensor () / (B,).
        sensor_fit: "AUTO", "HORIZONTAL" or "VERTICAL".
        resolution: (width, height) in pixels.

    Returns:
        (..., 2) pixel coordinates (x right, y down, (0, 0) top-left corner, pixel centres at +0.5);
        (B, N, 2) for batched keywords. Differentiable in every tensor argument.
    """
    points = _check_points(points)
    intrinsics = Intrinsics(lens_mm, sensor_width_mm, sensor_height_mm, sensor_fit, shift_x, shift_y,
                            tuple(resolution))
    dtype = points.dtype
    view = world_to_camera(azimuth, elevation, distance, roll, dtype=dtype, device=points.device)
    intrinsic_batch = max(
        (_as_param(f.name, getattr(intrinsics, f.name), dtype, points.device).dim()
         for f in fields(intrinsics) if f.name not in ("sensor_fit", "resolution")),
        default=0,
    )
    if view.dim() == 2 and intrinsic_batch:
        raise ValueError("batched intrinsics need batched pose keywords (tensors of shape (B,))")
    pixels, _ = project_camera_points(transform_points(points, view), intrinsics)
    return pixels
