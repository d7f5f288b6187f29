"""Inputs of a pose estimate made ready: the photo (pixels, alpha), the camera resolved from the
user's intrinsics, and the mesh validated, simplified and scaled to unit radius."""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from ..camera import Camera, Intrinsics, project_camera_points, transform_points
from ..images import read_photo, rgb_to_gray
from ..lru import LRU
from ..meshes import Mesh
from ..simplify import simplify_to_budget

__all__ = ["PreparedMesh", "prepare_mesh", "Observation", "load_photo", "resize", "camera_for", "project"]


def camera_for(params: torch.Tensor, cam: Intrinsics) -> Camera:
    """The :class:`~torch_backend.camera.Camera` of ``(B, 6)`` params (az, el, dist, roll deg;
    shift_x, shift_y) seen with ``cam``; a 7th column is the lens (mm) of each pose."""
    if params.shape[1] == 7:
        return Camera.from_params(params[:, :6], cam.replace(lens_mm=params[:, 6]))
    return Camera.from_params(params, cam)


def project(points: torch.Tensor, params: torch.Tensor, cam: Intrinsics) -> Tuple[torch.Tensor, torch.Tensor]:
    """Project ``(N, 3)`` points for ``(B, 6|7)`` poses (see :func:`camera_for`) with
    :mod:`torch_backend.camera` (THE convention). Returns ``(B, N, 2)`` pixels and ``(B, N)`` depths."""
    camera = camera_for(params, cam)
    points_cam = transform_points(points.to(params.dtype), camera.world_to_camera())
    return project_camera_points(points_cam, camera.intrinsics)


@dataclasses.dataclass(frozen=True)
class PreparedMesh:
    """A mesh ready for rendering: checked, simplified and scaled by its bounding radius.

    Attributes:
        mesh: the :class:`~torch_backend.meshes.Mesh`, float32 vertices of unit bounding radius
            about the origin.
        radius: scene units per normalised unit.
        key: content hash of the user's mesh and the face budget.
    """

    mesh: Mesh
    radius: float
    key: str

    @property
    def vertices(self) -> torch.Tensor:
        """``(V, 3)`` float32, unit bounding radius."""
        return self.mesh.vertices

    @property
    def faces(self) -> torch.Tensor:
        """``(F, 3)`` int64."""
        return self.mesh.faces

    def to(self, device: Any) -> "PreparedMesh":
        return dataclasses.replace(self, mesh=self.mesh.to(device))


def prepare_mesh(vertices, faces, max_faces: int = 2000) -> PreparedMesh:
    """Check, simplify to ``max_faces`` (vertex clustering, :mod:`torch_backend.simplify`: the
    silhouette and the HOG of a 128-pixel render do not need more) and scale to unit radius.
    ``vertices (V, 3)`` in scene units, ``faces (F, 3)``; a batch of photos of one mesh (and photo
    mode's several object guesses) prepares it once."""
    user_mesh = Mesh(vertices.detach() if isinstance(vertices, torch.Tensor) else vertices,
                     faces.detach() if isinstance(faces, torch.Tensor) else faces)
    verts, tris = user_mesh.numpy()
    if tris.shape[0] == 0:
        raise ValueError("faces: the mesh has no faces")
    radius = float(np.linalg.norm(verts, axis=-1).max())
    if not radius > 0:
        raise ValueError("vertices: all vertices sit at the origin; the mesh has no extent")
    key = user_mesh.content_hash(str(int(max_faces)))
    if key in _PREPARED_MESHES:
        return _PREPARED_MESHES.get(key)
    if tris.shape[0] > max_faces:
        simplified = simplify_to_budget(verts, tris, int(max_faces))
        verts, tris = simplified.vertices, simplified.faces
    scaled = (torch.as_tensor(verts, dtype=torch.float64) / radius).to(torch.float32)
    return _PREPARED_MESHES.put(key, PreparedMesh(Mesh(scaled, torch.as_tensor(tris, dtype=torch.int64)), radius, key))


#: Prepared (validated, simplified, scaled) meshes by content hash, most recent last.
_PREPARED_MESHES = LRU(4)


def load_photo(photo) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """Return ``(H, W, 3)`` float32 RGB in [0, 1] and the alpha channel ``(H, W)`` or None, from a
    path (:func:`torch_backend.images.read_photo`: upright, any bit depth), an array or a tensor."""
    if isinstance(photo, (str, os.PathLike)):
        read = read_photo(photo, with_lens=False)
        return read.rgb, read.alpha
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
        gray: the photo is black and white (the region term then bins intensities).
        search_cam: the whole photo's camera when ``rgb`` is a window of it (its field of view is
            what the focal-length search spans); None: ``cam``.
    """

    rgb: torch.Tensor
    cam: Intrinsics
    mode: str
    mask: torch.Tensor
    box: Optional[Tuple[float, float, float, float]] = None
    grab_region: Optional[Tuple[float, float, float, float]] = None
    gray: bool = False
    search_cam: Optional[Intrinsics] = None

    @property
    def size(self) -> Tuple[int, int]:
        """``(height, width)`` in pixels."""
        return self.rgb.shape[1], self.rgb.shape[2]

    def working(self, size: int) -> Tuple[Intrinsics, torch.Tensor, torch.Tensor]:
        """Camera, gray photo ``(h, w)`` and soft mask ``(h, w)`` at longest side ``size`` (same
        field of view and shift)."""
        height, width = self.size
        factor = size / max(width, height)
        work_w, work_h = max(8, round(width * factor)), max(8, round(height * factor))
        gray = rgb_to_gray(resize(self.rgb, work_h, work_w), channel_axis=0)
        soft_mask = resize(self.mask, work_h, work_w)[0].clamp(0, 1)
        return self.cam.scaled(work_w, work_h), gray, soft_mask

    def rgb_at(self, cam: Intrinsics) -> torch.Tensor:
        """``(3, h, w)`` photo at ``cam``'s resolution."""
        return resize(self.rgb, cam.height, cam.width)

    def box_at(self, cam: Intrinsics) -> Optional[list]:
        """The box in ``cam``'s pixels (None without a box)."""
        if self.box is None:
            return None
        factor = cam.width / self.size[1]
        return [v * factor for v in self.box]
