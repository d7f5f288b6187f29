"""Inputs of a pose estimate made ready: the photo (pixels, alpha), the camera resolved from the
user's intrinsics, and the mesh validated, simplified and scaled to unit radius."""
from __future__ import annotations

import dataclasses
import hashlib
import math
import os
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from ..images import load_image, rgb_to_gray
from ..lru import LRU
from ..simplify import simplify_to_budget
from ..camera import Intrinsics, project_camera_points, transform_points, world_to_camera

__all__ = ["PreparedMesh", "prepare_mesh", "Observation", "load_photo", "resize", "resolve_intrinsics", "project"]


@dataclasses.dataclass(frozen=True)
class _Cam:
    """Resolved pinhole camera at some pixel size: focal and principal point in pixels."""

    lens_mm: float
    sensor_width_mm: float
    sensor_height_mm: float
    sensor_fit: str
    shift_x: float
    shift_y: float
    width: int
    height: int

    def intrinsics(self) -> Intrinsics:
        """The same camera as :class:`torch_backend.camera.Intrinsics` (which owns the pixel maths)."""
        return Intrinsics(self.lens_mm, self.sensor_width_mm, self.sensor_height_mm, self.sensor_fit,
                          self.shift_x, self.shift_y, (self.width, self.height))

    @property
    def fit_pixels(self) -> float:
        """Pixels spanned by the fitted sensor size (Blender's sensor fit; also the lens-shift unit)."""
        return float(self.intrinsics().fit_span_px)

    @property
    def focal_pixels(self) -> float:
        return float(self.intrinsics().tensors(torch.float64)["focal_px"])

    @property
    def principal_point(self) -> Tuple[float, float]:
        """Where the optical axis (and so the mesh origin) lands, in continuous pixel coordinates."""
        centre = self.intrinsics().tensors(torch.float64)
        return float(centre["cx"]), float(centre["cy"])

    def scaled(self, width: int, height: int) -> "_Cam":
        return dataclasses.replace(self, width=int(width), height=int(height))

    def with_shift(self, shift_x: float, shift_y: float) -> "_Cam":
        return dataclasses.replace(self, shift_x=float(shift_x), shift_y=float(shift_y))

    def as_dict(self) -> Dict[str, Any]:
        return {
            "lens_mm": self.lens_mm,
            "sensor_width_mm": self.sensor_width_mm,
            "sensor_height_mm": self.sensor_height_mm,
            "sensor_fit": self.sensor_fit,
            "shift_x": self.shift_x,
            "shift_y": self.shift_y,
            "resolution": (self.width, self.height),
        }


def _get(source: Any, names: Sequence[str], default: Any = None) -> Any:
    for name in names:
        if isinstance(source, dict) and name in source:
            return source[name]
        if not isinstance(source, dict) and hasattr(source, name):
            return getattr(source, name)
    return default


def resolve_intrinsics(intrinsics: Any, *, name: str = "camera_intrinsics") -> _Cam:
    """Accept a ``camera.Intrinsics`` (duck-typed) or a dict with the same keywords."""
    if intrinsics is None:
        raise ValueError(f"{name}: required (lens_mm, sensor_width_mm, ..., resolution)")
    lens = _get(intrinsics, ("lens_mm", "lens"), 50.0)
    sensor_w = _get(intrinsics, ("sensor_width_mm", "sensor_width"), 36.0)
    sensor_h = _get(intrinsics, ("sensor_height_mm", "sensor_height"), 24.0)
    fit = str(_get(intrinsics, ("sensor_fit",), "AUTO")).upper()
    shift = _get(intrinsics, ("shift",), None)
    if shift is not None:
        shift_x, shift_y = shift
    else:
        shift_x = _get(intrinsics, ("shift_x",), 0.0)
        shift_y = _get(intrinsics, ("shift_y",), 0.0)
    resolution = _get(intrinsics, ("resolution",), None)
    if resolution is None:
        width, height = _get(intrinsics, ("width", "resolution_x")), _get(intrinsics, ("height", "resolution_y"))
    else:
        width, height = resolution
    if fit not in ("AUTO", "HORIZONTAL", "VERTICAL"):
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
    return _Cam(values[0], values[1], values[2], fit, values[3], values[4], int(round(float(width))), int(round(float(height))))


def project(points: torch.Tensor, params: torch.Tensor, cam: _Cam) -> Tuple[torch.Tensor, torch.Tensor]:
    """Project ``(N, 3)`` points for ``(B, 6)`` poses (az, el, dist, roll deg; shift_x, shift_y) with
    :mod:`torch_backend.camera` (THE convention). Returns ``(B, N, 2)`` pixels and ``(B, N)`` depths."""
    view = world_to_camera(params[:, 0], params[:, 1], params[:, 2], params[:, 3])
    points_cam = transform_points(points.to(params.dtype), view)
    intrinsics = cam.intrinsics().replace(shift_x=params[:, 4], shift_y=params[:, 5])
    return project_camera_points(points_cam, intrinsics)


@dataclasses.dataclass
class PreparedMesh:
    """A mesh ready for rendering: validated, simplified and scaled by its bounding radius."""

    vertices: torch.Tensor  # (V, 3) float32, scaled to unit bounding radius about the origin
    faces: torch.Tensor  # (F, 3) int64
    radius: float  # scene units per normalised unit
    key: str


def prepare_mesh(vertices, faces, max_faces: int = 2000) -> PreparedMesh:
    """Validate, simplify to ``max_faces`` (vertex clustering, :mod:`torch_backend.simplify`: the
    silhouette and the HOG of a 128-pixel render do not need more) and scale to unit radius."""
    verts = torch.as_tensor(np.asarray(vertices.detach().cpu() if isinstance(vertices, torch.Tensor) else vertices, dtype=np.float64))
    tris = torch.as_tensor(np.asarray(faces.detach().cpu() if isinstance(faces, torch.Tensor) else faces))
    if verts.ndim != 2 or verts.shape[-1] != 3:
        raise ValueError(f"vertices: expected shape (V, 3), got {tuple(verts.shape)}")
    if verts.shape[0] == 0:
        raise ValueError("vertices: the mesh is empty (0 vertices)")
    if not torch.isfinite(verts).all():
        raise ValueError("vertices: contain NaN or inf")
    if tris.numel() == 0:
        raise ValueError("faces: the mesh has no faces")
    if tris.ndim != 2 or tris.shape[-1] != 3:
        raise ValueError(f"faces: expected triangles of shape (F, 3), got {tuple(tris.shape)}")
    if tris.dtype.is_floating_point:
        if not torch.equal(tris, tris.round()):
            raise ValueError("faces: indices must be integers")
    tris = tris.to(torch.int64)
    if int(tris.min()) < 0 or int(tris.max()) >= verts.shape[0]:
        raise ValueError(f"faces: indices must lie in [0, {verts.shape[0] - 1}]")
    radius = float(verts.norm(dim=-1).max())
    if not radius > 0:
        raise ValueError("vertices: all vertices sit at the origin; the mesh has no extent")
    digest = hashlib.sha1()
    digest.update(np.ascontiguousarray(verts.numpy()).tobytes())
    digest.update(np.ascontiguousarray(tris.numpy()).tobytes())
    digest.update(str(int(max_faces)).encode())
    key = digest.hexdigest()
    if key in _PREPARED_MESHES:  # a batch of photos of one mesh simplifies it once
        return _PREPARED_MESHES.get(key)
    if tris.shape[0] > max_faces:
        simplified = simplify_to_budget(verts.numpy(), tris.numpy(), int(max_faces))
        verts = torch.as_tensor(simplified.vertices, dtype=torch.float64)
        tris = torch.as_tensor(simplified.faces, dtype=torch.int64)
    return _PREPARED_MESHES.put(key, PreparedMesh((verts / radius).to(torch.float32), tris, radius, key))


#: Prepared (validated, simplified, scaled) meshes by content hash, most recent last.
_PREPARED_MESHES = LRU(4)


def load_photo(photo) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """Return ``(H, W, 3)`` float32 RGB in [0, 1] and the alpha channel ``(H, W)`` or None."""
    if isinstance(photo, (str, os.PathLike)):
        rgba = load_image(photo, mode="rgba")
        alpha = rgba[..., 3]
        return rgba[..., :3], (None if bool((alpha >= 0.999).all()) else alpha)
    if isinstance(photo, torch.Tensor):
        tensor = photo.detach().to("cpu", torch.float32)
        if tensor.ndim == 4 and tensor.shape[0] == 1:
            tensor = tensor[0]
        if tensor.ndim != 3 or tensor.shape[0] not in (1, 3, 4):
            raise ValueError(f"photo: expected a (3, H, W) or (4, H, W) tensor, got {tuple(photo.shape)}")
        array = tensor.permute(1, 2, 0).numpy()
    else:
        try:
            array = np.asarray(photo)
        except Exception:
            raise ValueError(f"photo: cannot read an image from {type(photo).__name__}") from None
        if array.dtype == object or array.dtype.kind not in "uif b":
            raise ValueError(f"photo: unreadable (dtype {array.dtype})")
        if array.dtype == np.uint8:
            array = array.astype(np.float32) / 255.0
        elif array.dtype == np.uint16:
            array = array.astype(np.float32) / 65535.0
        else:
            array = array.astype(np.float32)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 3, 4):
        raise ValueError(f"photo: expected an (H, W, 3) or (H, W, 4) image, got shape {array.shape}")
    if array.shape[0] < 8 or array.shape[1] < 8:
        raise ValueError(f"photo: too small ({array.shape[1]}x{array.shape[0]} pixels)")
    if not np.all(np.isfinite(array)):
        raise ValueError("photo: contains NaN or inf")
    array = np.clip(array, 0.0, 1.0)
    alpha = array[..., 3] if array.shape[-1] == 4 else None
    rgb = np.repeat(array, 3, axis=-1) if array.shape[-1] == 1 else array[..., :3]
    return np.ascontiguousarray(rgb), alpha


def resize(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``(C, H, W)`` -> ``(C, height, width)``, antialiased when shrinking."""
    if image.shape[-2:] == (height, width):
        return image
    return F.interpolate(image[None], size=(height, width), mode="bilinear", align_corners=False, antialias=True)[0]


@dataclasses.dataclass
class Observation:
    """The photo and its cues at full resolution, resampled on demand to any working size.

    Attributes:
        rgb: ``(3, H, W)`` float32 photo in [0, 1].
        cam: the photo's camera at its full resolution.
        mode: ``"mask"``, ``"box"`` or ``"photo"``.
        mask: ``(1, H, W)`` float32 object mask (given, or GrabCut's in box/photo mode).
        box: ``(x0, y0, x1, y1)`` full-resolution pixels (box mode) or None.
        grab_region: the box GrabCut was seeded with (box, or the inset frame in photo mode).
    """

    rgb: torch.Tensor
    cam: _Cam
    mode: str
    mask: torch.Tensor
    box: Optional[Tuple[float, float, float, float]] = None
    grab_region: Optional[Tuple[float, float, float, float]] = None

    @property
    def size(self) -> Tuple[int, int]:
        """``(height, width)`` in pixels."""
        return self.rgb.shape[1], self.rgb.shape[2]

    def working(self, size: int) -> Tuple[_Cam, torch.Tensor, torch.Tensor]:
        """Camera, gray photo ``(h, w)`` and soft mask ``(h, w)`` at longest side ``size`` (same
        field of view and shift)."""
        height, width = self.size
        factor = size / max(width, height)
        work_w, work_h = max(8, round(width * factor)), max(8, round(height * factor))
        gray = rgb_to_gray(resize(self.rgb, work_h, work_w), channel_axis=0)
        soft_mask = resize(self.mask, work_h, work_w)[0].clamp(0, 1)
        return self.cam.scaled(work_w, work_h), gray, soft_mask

    def rgb_at(self, cam: _Cam) -> torch.Tensor:
        """``(3, h, w)`` photo at ``cam``'s resolution."""
        return resize(self.rgb, cam.height, cam.width)

    def box_at(self, cam: _Cam) -> Optional[list]:
        """The box in ``cam``'s pixels (None without a box)."""
        if self.box is None:
            return None
        factor = cam.width / self.size[1]
        return [v * factor for v in self.box]
