"""Coarse views rendered by Blender's Workbench for :func:`blender_gradhog.api.prepare`: the grid of
poses the backend asks for, rendered step by step (the modal operator stays responsive) and kept
per mesh, field of view and grid."""
from __future__ import annotations

import hashlib
from dataclasses import replace

from . import scene as blender_scene
from ._backend import LRU, core, float64, np
from .options import PoseOptions

__all__ = ["CoarseViewJob"]


# Coarse views depend on the mesh, the field of view and the grid only, not on the photo: a batch of
# photos of one mesh renders them once. Keyed by a hash of all three; a few meshes are kept.
_VIEW_CACHE = LRU(4)


def _view_cache_key(mesh, view_camera: dict, grid: dict) -> str:
    digest = hashlib.sha1()
    digest.update(np.ascontiguousarray(mesh.vertices, dtype=np.float64).tobytes())
    digest.update(np.ascontiguousarray(mesh.faces, dtype=np.int64).tobytes())
    digest.update(repr(sorted(view_camera.items())).encode())
    digest.update(repr(sorted(grid.items())).encode())
    return digest.hexdigest()


class CoarseViewJob:
    """Blender (Workbench) renders of the mesh alone at the grid of poses the backend asks for.

    Rendered views are cached per mesh, field of view and grid (``views`` is set at once on a cache
    hit). Otherwise call :meth:`render_some` until it returns True (or :meth:`render_all`), then
    read ``views``; :meth:`close` removes the temporary render scene (also on cancel).
    """

    def __init__(self, mesh: blender_scene.MeshData, intrinsics, options: PoseOptions):
        pose, camera = core().pose, core().camera
        grid = {"azimuth_step": options.azimuth_step, "elevations": options.elevations}
        self._view_camera = pose.coarse_view_intrinsics(intrinsics)
        self._key = _view_cache_key(mesh, self._view_camera, grid)
        self.views = _VIEW_CACHE.get(self._key)
        self._renderer = None
        if self.views is not None:
            return
        # Workbench renders the mesh the search will use (simplified to the face budget; the
        # backend keeps it, so the search does not simplify again): a scanned mesh of a million
        # faces takes seconds per view, its 2000-face version milliseconds.
        prepared = pose.prepare_mesh(mesh.vertices, mesh.faces, options.max_faces)
        mesh = replace(mesh, vertices=(prepared.vertices.double() * prepared.radius).numpy(),
                                   faces=prepared.faces.numpy())
        self._poses = list(pose.coarse_view_poses(mesh.vertices, intrinsics, **grid))
        matrices = camera.camera_to_world(
            [p.azimuth for p in self._poses], [p.elevation for p in self._poses],
            [p.distance for p in self._poses], [p.roll for p in self._poses], dtype=float64())
        width, height = (int(v) for v in self._view_camera["resolution"])
        blender_camera = {"lens": self._view_camera["lens_mm"], "sensor_width": self._view_camera["sensor_width_mm"],
                          "sensor_height": self._view_camera["sensor_height_mm"],
                          "sensor_fit": self._view_camera["sensor_fit"]}
        self._renderer = blender_scene.ViewRenderer(
            mesh.vertices, mesh.faces, matrices.numpy(), camera=blender_camera, width=width, height=height,
            shifts=[(p.shift_x, p.shift_y) for p in self._poses])

    @property
    def progress(self) -> float:
        if self._renderer is None:
            return 1.0
        return self._renderer.done / max(len(self._poses), 1)

    def render_some(self, seconds: float = 0.1) -> bool:
        """Render for about ``seconds``; True once every view is rendered (``views`` is then set)."""
        if self.views is not None:
            return True
        if not self._renderer.render_some(seconds):
            return False
        self.views = _VIEW_CACHE.put(self._key, core().pose.CoarseViews(
            images=self._renderer.shaded, silhouettes=self._renderer.silhouettes, poses=self._poses,
            intrinsics=self._view_camera))
        self.close()
        return True

    def render_all(self):
        """Render every view now (cached); returns the backend's ``CoarseViews``."""
        try:
            self.render_some(seconds=float("inf"))
        finally:
            self.close()
        return self.views

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
