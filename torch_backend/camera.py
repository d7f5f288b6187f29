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

In code: :class:`Intrinsics` (in :mod:`torch_backend.intrinsics`) holds the camera data and
:class:`Camera` the B poses plus their intrinsics; :func:`project_points` and the renderer take a
``Camera`` or the same values as flat keywords.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

# Intrinsics live in their own module; everything of the convention is importable from here.
from .intrinsics import SENSOR_FITS, Intrinsics, _as_param, _reference, project_camera_points  # noqa: F401

__all__ = [
    "SENSOR_FITS",
    "Intrinsics",
    "Camera",
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

# --------------------------------------------------------------------------------------------
# argument handling
# --------------------------------------------------------------------------------------------
def _broadcast(**params: Tensor) -> dict[str, Tensor]:
    shapes = {name: tuple(p.shape) for name, p in params.items()}
    try:
        out = torch.broadcast_tensors(*params.values())
    except RuntimeError as error:
        raise ValueError(f"pose parameters have incompatible batch shapes: {shapes}") from error
    return dict(zip(params.keys(), out))


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


# --------------------------------------------------------------------------------------------
# one camera: pose + intrinsics
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Camera:
    """B cameras in gradhog's convention: what :func:`project_points` and the renderer take.

    Attributes:
        azimuth, elevation, roll: degrees; floats (one camera) or tensors of shape (B,).
        distance: camera centre to the mesh origin (scene units), > 0; float or (B,).
        intrinsics: :class:`Intrinsics`; its lens shift (and lens/sensor) may be (B,) tensors when
            the pose is batched.

    Outputs for a camera whose pose values are all python floats or 0-d tensors have no batch
    dimension; with (B,) tensors they are batched. Everything stays differentiable.
    """

    azimuth: Any
    elevation: Any
    distance: Any
    roll: Any = 0.0
    intrinsics: Intrinsics = field(default_factory=Intrinsics)

    @classmethod
    def from_params(cls, params: Tensor, intrinsics: Any) -> "Camera":
        """Cameras from a (B, 6) tensor of ``azimuth, elevation, distance, roll`` (degrees, scene
        units) and ``shift_x, shift_y`` (or (B, 4) keeping the intrinsics' shift); ``intrinsics``
        is anything :meth:`Intrinsics.coerce` accepts."""
        if params.dim() != 2 or params.shape[1] not in (4, 6):
            raise ValueError(f"params must have shape (B, 6) or (B, 4), got {tuple(params.shape)}")
        intrinsics = intrinsics if isinstance(intrinsics, Intrinsics) else Intrinsics.coerce(intrinsics)
        if params.shape[1] == 6:
            intrinsics = intrinsics.with_shift(params[:, 4], params[:, 5])
        return cls(params[:, 0], params[:, 1], params[:, 2], params[:, 3], intrinsics)

    @classmethod
    def from_keywords(cls, *, azimuth, elevation, distance, roll=0.0, shift_x=0.0, shift_y=0.0, lens_mm=50.0,
                      sensor_width_mm=36.0, sensor_height_mm=24.0, sensor_fit: str = "AUTO",
                      resolution=(1920, 1080)) -> "Camera":
        """The camera of the flat keyword form of :func:`project_points` and the renderer (same
        names and units as :class:`Camera` and :class:`Intrinsics`)."""
        intrinsics = Intrinsics(lens_mm, sensor_width_mm, sensor_height_mm, sensor_fit, shift_x, shift_y,
                                tuple(resolution))
        return cls(azimuth, elevation, distance, roll, intrinsics)

    @property
    def resolution(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return self.intrinsics.resolution

    def world_to_camera(self, dtype=None, device=None) -> Tensor:
        """World-to-camera matrices (4, 4) or (B, 4, 4) (see :func:`world_to_camera`).

        Raises ``ValueError`` for batched intrinsics with an unbatched pose.
        """
        view = world_to_camera(self.azimuth, self.elevation, self.distance, self.roll, dtype=dtype, device=device)
        reference_dtype = dtype if dtype is not None else view.dtype
        if self.intrinsics.batch_dims(reference_dtype, view.device) and view.dim() == 2:
            raise ValueError("batched intrinsics need batched pose keywords (tensors of shape (B,))")
        return view

    def project(self, points) -> Tensor:
        """:func:`project_points` for this camera."""
        return project_points(points, self)


def project_points(points, camera: Camera | None = None, **camera_keywords) -> Tensor:
    """Project world points to Blender pixel coordinates for a camera in gradhog's convention.

    Agrees with ``bpy_extras.object_utils.world_to_camera_view`` scaled to pixels (x * width,
    (1 - y) * height) to float rounding.

    Args:
        points: (..., 3) world points; with a batched camera of B poses, points are (N, 3)
            (shared) or (B, N, 3).
        camera: a :class:`Camera`; or instead the keywords of :meth:`Camera.from_keywords`:
            ``azimuth, elevation, roll`` (degrees), ``distance`` (scene units), ``shift_x, shift_y,
            lens_mm, sensor_width_mm, sensor_height_mm`` (Blender camera data; floats or tensors
            () / (B,)), ``sensor_fit`` ("AUTO", "HORIZONTAL", "VERTICAL") and ``resolution``
            (width, height) in pixels.

    Returns:
        (..., 2) pixel coordinates (x right, y down, (0, 0) top-left corner, pixel centres at +0.5);
        (B, N, 2) for a batched camera. Differentiable in every tensor argument.
    """
    points = _check_points(points)
    camera = _camera_argument(camera, camera_keywords, "project_points")
    view = camera.world_to_camera(dtype=points.dtype, device=points.device)
    pixels, _ = project_camera_points(transform_points(points, view), camera.intrinsics)
    return pixels


def _camera_argument(camera: Camera | None, keywords: dict, caller: str) -> Camera:
    """``camera`` or the :class:`Camera` of the flat keywords (exactly one of them)."""
    if camera is None:
        return Camera.from_keywords(**keywords)
    if not isinstance(camera, Camera):
        raise TypeError(f"{caller}: camera must be a Camera, got {type(camera).__name__}")
    if keywords:
        raise TypeError(f"{caller}: give a Camera or camera keywords, not both (got {sorted(keywords)})")
    return camera
