"""Test helpers: simple meshes built in code, and silhouettes rendered by Blender itself (bpy).

The bpy part imports bpy lazily so that the mesh builders work without Blender.
Blender silhouettes use Workbench with anti-aliasing off and a transparent film: a pixel is inside
when its centre is covered (alpha 255), which is what ``render_silhouette(...) > 0.5`` approximates.
"""
from __future__ import annotations

import math
import os
import tempfile

import numpy as np

# --------------------------------------------------------------------------------------------
# meshes (outward counter-clockwise triangles, closed)
# --------------------------------------------------------------------------------------------
_BOX_QUADS = [(0, 3, 2, 1), (4, 5, 6, 7), (0, 1, 5, 4), (1, 2, 6, 5), (2, 3, 7, 6), (3, 0, 4, 7)]


def box(centre=(0.0, 0.0, 0.0), size=(1.0, 1.0, 1.0)):
    """Axis-aligned box: vertices (8, 3), triangles (12, 3)."""
    c, s = np.asarray(centre, float), np.asarray(size, float) / 2
    corners = np.array([(-1, -1, -1), (1, -1, -1), (1, 1, -1), (-1, 1, -1),
                        (-1, -1, 1), (1, -1, 1), (1, 1, 1), (-1, 1, 1)], float)
    tris = [(a, b, c_) for q in _BOX_QUADS for (a, b, c_) in ((q[0], q[1], q[2]), (q[0], q[2], q[3]))]
    return c + corners * s, np.array(tris, np.int64)


def merge(*meshes):
    """Concatenate meshes (vertices, faces) into one."""
    vertices, faces, offset = [], [], 0
    for v, f in meshes:
        vertices.append(v)
        faces.append(f + offset)
        offset += len(v)
    return np.concatenate(vertices), np.concatenate(faces)


def icosphere(subdivisions=2, radius=1.0):
    """Icosphere with 20 * 4**subdivisions faces."""
    t = (1 + 5 ** 0.5) / 2
    verts = [(-1, t, 0), (1, t, 0), (-1, -t, 0), (1, -t, 0), (0, -1, t), (0, 1, t), (0, -1, -t), (0, 1, -t),
             (t, 0, -1), (t, 0, 1), (-t, 0, -1), (-t, 0, 1)]
    faces = [(0, 11, 5), (0, 5, 1), (0, 1, 7), (0, 7, 10), (0, 10, 11), (1, 5, 9), (5, 11, 4), (11, 10, 2),
             (10, 7, 6), (7, 1, 8), (3, 9, 4), (3, 4, 2), (3, 2, 6), (3, 6, 8), (3, 8, 9), (4, 9, 5),
             (2, 4, 11), (6, 2, 10), (8, 6, 7), (9, 8, 1)]
    verts = [np.array(v, float) / np.linalg.norm(v) for v in verts]
    for _ in range(subdivisions):
        cache, new_faces = {}, []

        def mid(a, b):
            key = (min(a, b), max(a, b))
            if key not in cache:
                m = verts[a] + verts[b]
                verts.append(m / np.linalg.norm(m))
                cache[key] = len(verts) - 1
            return cache[key]

        for a, b, c in faces:
            ab, bc, ca = mid(a, b), mid(b, c), mid(c, a)
            new_faces += [(a, ab, ca), (b, bc, ab), (c, ca, bc), (ab, bc, ca)]
        faces = new_faces
    return np.array(verts) * radius, np.array(faces, np.int64)


def cylinder(segments=24, radius=0.6, height=1.6):
    """Closed cylinder along Z centred at the origin."""
    angles = np.arange(segments) * 2 * math.pi / segments
    ring = np.stack([radius * np.cos(angles), radius * np.sin(angles)], 1)
    bottom = np.concatenate([ring, np.full((segments, 1), -height / 2)], 1)
    top = np.concatenate([ring, np.full((segments, 1), height / 2)], 1)
    vertices = np.concatenate([bottom, top, [[0, 0, -height / 2], [0, 0, height / 2]]])
    cb, ct = 2 * segments, 2 * segments + 1
    faces = []
    for i in range(segments):
        j = (i + 1) % segments
        faces += [(i, j, segments + j), (i, segments + j, segments + i), (cb, j, i), (ct, segments + i, segments + j)]
    return vertices, np.array(faces, np.int64)


def chair():
    """A chair of boxes: seat, back rest and four thin legs (0.06 wide); faces -Y (front)."""
    parts = [box((0, 0, 0.0), (1.0, 1.0, 0.08)), box((0, 0.46, 0.5), (1.0, 0.08, 0.92))]
    for x in (-0.45, 0.45):
        for y in (-0.45, 0.45):
            parts.append(box((x, y, -0.46), (0.06, 0.06, 0.84)))
    return merge(*parts)


def uv_sphere(segments, rings, radius=1.0, bumps=0.0):
    """UV sphere with ``2 * segments * (rings - 1)`` faces; ``bumps`` adds a radial ripple (creases)."""
    theta = np.linspace(0, math.pi, rings + 1)[1:-1]
    phi = np.arange(segments) * 2 * math.pi / segments
    th, ph = np.meshgrid(theta, phi, indexing="ij")
    r = radius * (1 + bumps * np.sin(5 * ph) * np.sin(4 * th))
    ring_verts = np.stack([r * np.sin(th) * np.cos(ph), r * np.sin(th) * np.sin(ph), r * np.cos(th)], -1).reshape(-1, 3)
    vertices = np.concatenate([ring_verts, [[0, 0, radius], [0, 0, -radius]]])
    north, south = len(ring_verts), len(ring_verts) + 1
    faces = []
    idx = lambda i, j: i * segments + (j % segments)  # noqa: E731
    for j in range(segments):
        faces.append((north, idx(0, j + 1), idx(0, j)))
        faces.append((south, idx(rings - 2, j), idx(rings - 2, j + 1)))
        for i in range(rings - 2):
            faces.append((idx(i, j), idx(i, j + 1), idx(i + 1, j + 1)))
            faces.append((idx(i, j), idx(i + 1, j + 1), idx(i + 1, j)))
    return vertices, np.array(faces, np.int64)


# --------------------------------------------------------------------------------------------
# Blender
# --------------------------------------------------------------------------------------------
class BlenderSilhouetteRenderer:
    """Renders binary silhouettes of one mesh with bpy Workbench (no AA) for given cameras."""

    def __init__(self, vertices, faces, resolution=(128, 128)):
        import bpy

        self.bpy = bpy
        bpy.ops.wm.read_factory_settings(use_empty=True)
        scene = bpy.context.scene
        scene.render.engine = "BLENDER_WORKBENCH"
        scene.render.resolution_x, scene.render.resolution_y = resolution
        scene.render.resolution_percentage = 100
        scene.render.pixel_aspect_x = scene.render.pixel_aspect_y = 1.0
        scene.render.film_transparent = True
        scene.display.render_aa = "OFF"
        scene.render.image_settings.file_format = "PNG"
        scene.render.image_settings.color_mode = "RGBA"
        mesh = bpy.data.meshes.new("gradhog_mesh")
        mesh.from_pydata(np.asarray(vertices, float).tolist(), [], np.asarray(faces, int).tolist())
        mesh.update()
        obj = bpy.data.objects.new("gradhog_mesh", mesh)
        scene.collection.objects.link(obj)
        cam_data = bpy.data.cameras.new("gradhog_cam")
        cam_data.clip_start, cam_data.clip_end = 1e-3, 1e4
        self.camera = bpy.data.objects.new("gradhog_cam", cam_data)
        scene.collection.objects.link(self.camera)
        scene.camera = self.camera
        self.scene = scene
        self.resolution = tuple(resolution)
        self._dir = tempfile.mkdtemp(prefix="gradhog_bl_")

    def render(self, *, azimuth, elevation, distance, roll=0.0, shift_x=0.0, shift_y=0.0, lens_mm=50.0,
               sensor_width_mm=36.0, sensor_height_mm=24.0, sensor_fit="AUTO"):
        """Binary (H, W) bool silhouette for one camera (degrees, gradhog convention)."""
        import torch
        from mathutils import Matrix
        from PIL import Image

        from torch_backend.camera import camera_location_rotation

        data = self.camera.data
        data.lens, data.sensor_width, data.sensor_height = lens_mm, sensor_width_mm, sensor_height_mm
        data.sensor_fit, data.shift_x, data.shift_y = sensor_fit, shift_x, shift_y
        placement = camera_location_rotation(azimuth, elevation, distance, roll, dtype=torch.float64)
        self.camera.matrix_world = Matrix(placement.matrix_world.tolist())
        path = os.path.join(self._dir, "silhouette.png")
        self.scene.render.filepath = path
        self.bpy.ops.render.render(write_still=True)
        alpha = np.array(Image.open(path))[..., 3]
        return alpha > 127
