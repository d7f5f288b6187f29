"""Triangle meshes: procedural test objects the project authors itself, and simple file formats.

Here a mesh is a pair ``(vertices, faces)``: ``vertices`` is a ``(V, 3)`` float64 array of positions
in scene units, ``faces`` a ``(F, 3)`` int64 array of zero-based vertex indices, counter-clockwise
seen from outside (outward normals, Blender's convention). :class:`Mesh` is the checked torch form
the renderer takes (:mod:`torch_backend.triangle_mesh`); :func:`as_mesh` runs the same check.

The procedural objects follow Blender's axes: +Z is up and the object's *front* faces -Y, i.e. it
looks toward a camera in Blender's Front view (azimuth 0 in :mod:`torch_backend.camera`). They are
built in metres at real-world sizes and scaled by ``units`` (``"mm"`` multiplies by 1000, so nothing
downstream may assume a unit size). ``origin="center"`` (default) puts the bounding-box centre at the
origin — the point the camera convention looks at; ``origin="floor"`` stands the object on ``z = 0``
centred in x and y.

Every part is a closed surface; parts of one object may interpenetrate (legs into a seat), which a
rasterizer does not mind. The procedural objects and file formats need only NumPy; :func:`as_mesh` and
the OFF/OBJ readers and writer live in :mod:`torch_backend.mesh_io` and are re-exported here.
"""
from __future__ import annotations

from typing import Callable, Dict, Sequence, Tuple

import numpy as np

from .mesh_io import MeshArrays, as_mesh, read_mesh, read_obj, read_off, write_obj
from .triangle_mesh import Mesh, check_mesh

UNIT_SCALES: Dict[str, float] = {"m": 1.0, "dm": 10.0, "cm": 100.0, "mm": 1000.0}

__all__ = [
    "UNIT_SCALES",
    "Mesh",
    "MeshArrays",
    "check_mesh",
    "as_mesh",
    "box",
    "cylinder",
    "lathe",
    "torus",
    "rod",
    "extrude",
    "merge",
    "transform",
    "rotation_matrix",
    "bounding_box",
    "bbox_center",
    "bbox_size",
    "mesh_radius",
    "face_areas",
    "signed_volume",
    "chair",
    "table",
    "stool",
    "car",
    "mug",
    "PROCEDURAL_MESHES",
    "make_mesh",
    "read_off",
    "read_obj",
    "read_mesh",
    "write_obj",
]


# --------------------------------------------------------------------------------------------
# measures and small helpers
# --------------------------------------------------------------------------------------------
def bounding_box(vertices) -> Tuple[np.ndarray, np.ndarray]:
    """Axis-aligned bounds of ``(V, 3)`` vertices: ``(min (3,), max (3,))`` in scene units."""
    v = np.asarray(vertices, dtype=np.float64).reshape(-1, 3)
    if v.shape[0] == 0:
        raise ValueError("bounding_box: no vertices")
    return v.min(axis=0), v.max(axis=0)


def bbox_center(vertices) -> np.ndarray:
    """Centre ``(3,)`` of the axis-aligned bounding box of ``(V, 3)`` vertices."""
    lo, hi = bounding_box(vertices)
    return (lo + hi) / 2.0


def bbox_size(vertices) -> np.ndarray:
    """Extent ``(3,)`` (width x, depth y, height z) of the bounding box of ``(V, 3)`` vertices."""
    lo, hi = bounding_box(vertices)
    return hi - lo


def mesh_radius(vertices, center=None) -> float:
    """Largest distance from ``center`` (default: the origin, where cameras look) to a vertex.

    ``vertices`` is ``(V, 3)``; the result is in scene units. It bounds the mesh's image extent,
    which is what coarse-grid distances are derived from.
    """
    v = np.asarray(vertices, dtype=np.float64).reshape(-1, 3)
    if v.shape[0] == 0:
        raise ValueError("mesh_radius: no vertices")
    c = np.zeros(3) if center is None else np.asarray(center, dtype=np.float64).reshape(3)
    return float(np.sqrt(((v - c) ** 2).sum(axis=1)).max())


def face_areas(vertices, faces) -> np.ndarray:
    """Areas ``(F,)`` of the triangles, in squared scene units."""
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    return 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1)


def signed_volume(vertices, faces) -> float:
    """Signed volume enclosed by the triangles (divergence theorem), in cubic scene units.

    Positive when the faces of a closed surface point outward; for interpenetrating closed parts
    it is the sum of the parts' volumes.
    """
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0)


def rotation_matrix(axis: str, degrees: float) -> np.ndarray:
    """``(3, 3)`` right-handed rotation by ``degrees`` about the ``"x"``, ``"y"`` or ``"z"`` axis."""
    t = np.radians(degrees)
    c, s = np.cos(t), np.sin(t)
    if axis == "x":
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    if axis == "y":
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    if axis == "z":
        return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    raise ValueError(f"rotation_matrix: axis must be 'x', 'y' or 'z', got {axis!r}")


def transform(mesh: MeshArrays, *, rotation=None, translation=None, scale=None) -> MeshArrays:
    """Apply ``v -> R (s * v) + t`` to a mesh; ``rotation`` (3, 3), ``translation`` (3,), ``scale``
    a number or (3,). A scale with a negative determinant flips the faces to keep them outward."""
    v, f = mesh
    v = np.asarray(v, dtype=np.float64)
    f = np.asarray(f, dtype=np.int64)
    if scale is not None:
        s = np.broadcast_to(np.asarray(scale, dtype=np.float64), (3,))
        v = v * s
        if np.prod(s) < 0:
            f = f[:, ::-1]
    if rotation is not None:
        v = v @ np.asarray(rotation, dtype=np.float64).T
    if translation is not None:
        v = v + np.asarray(translation, dtype=np.float64).reshape(3)
    return v, f.copy()


def merge(*meshes: MeshArrays) -> MeshArrays:
    """Concatenate meshes into one ``(vertices, faces)`` pair, re-indexing the faces.

    Accepts meshes as separate arguments or a single iterable of meshes.
    """
    if len(meshes) == 1 and not isinstance(meshes[0], tuple):
        meshes = tuple(meshes[0])
    if not meshes:
        raise ValueError("merge: no meshes given")
    vs, fs, offset = [], [], 0
    for v, f in meshes:
        v = np.asarray(v, dtype=np.float64).reshape(-1, 3)
        f = np.asarray(f, dtype=np.int64).reshape(-1, 3)
        vs.append(v)
        fs.append(f + offset)
        offset += v.shape[0]
    return np.concatenate(vs, axis=0), np.concatenate(fs, axis=0)


# --------------------------------------------------------------------------------------------
# primitives
# --------------------------------------------------------------------------------------------
def box(size: Sequence[float] = (1.0, 1.0, 1.0), center: Sequence[float] = (0.0, 0.0, 0.0)) -> MeshArrays:
    """Axis-aligned cuboid: 8 vertices, 12 outward triangles. ``size`` (3,) = extents in x, y, z."""
    sx, sy, sz = (float(s) for s in size)
    if min(sx, sy, sz) <= 0:
        raise ValueError(f"box: sizes must be positive, got {tuple(size)}")
    corners = np.array(
        [[x, y, z] for z in (-0.5, 0.5) for y in (-0.5, 0.5) for x in (-0.5, 0.5)], dtype=np.float64
    )
    v = corners * [sx, sy, sz] + np.asarray(center, dtype=np.float64)
    # corner index = 4*z + 2*y + x (bits); each quad listed counter-clockwise seen from outside
    quads = [
        (0, 2, 3, 1),  # bottom (-z)
        (4, 5, 7, 6),  # top (+z)
        (0, 1, 5, 4),  # front (-y)
        (2, 6, 7, 3),  # back (+y)
        (0, 4, 6, 2),  # left (-x)
        (1, 3, 7, 5),  # right (+x)
    ]
    f = [(a, b, c) for a, b, c, d in quads] + [(a, c, d) for a, b, c, d in quads]
    return v, np.asarray(f, dtype=np.int64)


def lathe(profile: Sequence[Tuple[float, float]], segments: int = 24) -> MeshArrays:
    """Surface of revolution about +Z of a ``(radius, z)`` polyline, ``segments`` steps around.

    The profile runs from the bottom pole to the top pole for a closed solid: points with radius 0
    become a single pole vertex (no degenerate triangles). Walking the profile with the solid on the
    left (e.g. out along the bottom, up the outside, in across the top) gives outward faces.
    """
    prof = np.asarray(profile, dtype=np.float64)
    if prof.ndim != 2 or prof.shape[1] != 2 or prof.shape[0] < 2:
        raise ValueError(f"lathe: profile must be (N>=2, 2) (radius, z) points, got {prof.shape}")
    if segments < 3:
        raise ValueError(f"lathe: need at least 3 segments, got {segments}")
    if np.any(prof[:, 0] < 0):
        raise ValueError("lathe: radii must be non-negative")
    angles = 2 * np.pi * np.arange(segments) / segments
    rings, verts = [], []
    for r, z in prof:
        start = len(verts)
        if r == 0:
            verts.append([0.0, 0.0, z])
            rings.append([start] * segments)
        else:
            verts.extend(np.stack([r * np.cos(angles), r * np.sin(angles), np.full(segments, z)], 1))
            rings.append(list(range(start, start + segments)))
    faces = []
    for lower, upper in zip(rings[:-1], rings[1:]):
        for k in range(segments):
            k1 = (k + 1) % segments
            a, b, c, d = lower[k], lower[k1], upper[k1], upper[k]
            # Profile stepping outward/up with the solid on the left => (a, b, c) faces outward.
            for tri in ((a, b, c), (a, c, d)):
                if len(set(tri)) == 3:
                    faces.append(tri)
    v = np.asarray(verts, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    # The profile direction decides the winding; make it outward whatever the caller passed.
    if signed_volume(v, f) < 0:
        f = f[:, ::-1].copy()
    return v, f


def cylinder(
    radius: float = 0.5,
    height: float = 1.0,
    segments: int = 24,
    center: Sequence[float] = (0.0, 0.0, 0.0),
    axis: str = "z",
) -> MeshArrays:
    """Closed cylinder of ``radius`` and ``height`` (along ``axis`` "x", "y" or "z") about ``center``."""
    if radius <= 0 or height <= 0:
        raise ValueError(f"cylinder: radius and height must be positive, got {radius}, {height}")
    h = height / 2.0
    mesh = lathe([(0.0, -h), (radius, -h), (radius, h), (0.0, h)], segments)
    rot = {"z": None, "x": rotation_matrix("y", 90.0), "y": rotation_matrix("x", -90.0)}
    if axis not in rot:
        raise ValueError(f"cylinder: axis must be 'x', 'y' or 'z', got {axis!r}")
    return transform(mesh, rotation=rot[axis], translation=center)


def rod(start: Sequence[float], end: Sequence[float], radius: float, segments: int = 8) -> MeshArrays:
    """Closed cylinder of ``radius`` from point ``start`` (3,) to point ``end`` (3,): legs, struts."""
    a = np.asarray(start, dtype=np.float64).reshape(3)
    b = np.asarray(end, dtype=np.float64).reshape(3)
    axis = b - a
    length = float(np.linalg.norm(axis))
    if length == 0:
        raise ValueError("rod: start and end coincide")
    v, f = cylinder(radius, length, segments)
    z = axis / length
    helper = np.array([1.0, 0.0, 0.0]) if abs(z[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    x = np.cross(helper, z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    return transform((v, f), rotation=np.column_stack([x, y, z]), translation=(a + b) / 2)


def torus(
    major_radius: float = 1.0,
    minor_radius: float = 0.25,
    major_segments: int = 24,
    minor_segments: int = 8,
    center: Sequence[float] = (0.0, 0.0, 0.0),
) -> MeshArrays:
    """Closed torus about +Z: ring radius ``major_radius``, tube radius ``minor_radius``."""
    if not 0 < minor_radius < major_radius:
        raise ValueError(
            f"torus: need 0 < minor_radius < major_radius, got {minor_radius}, {major_radius}"
        )
    u = 2 * np.pi * np.arange(major_segments) / major_segments
    w = 2 * np.pi * np.arange(minor_segments) / minor_segments
    uu, ww = np.meshgrid(u, w, indexing="ij")
    r = major_radius + minor_radius * np.cos(ww)
    v = np.stack([r * np.cos(uu), r * np.sin(uu), minor_radius * np.sin(ww)], -1).reshape(-1, 3)
    idx = lambda i, j: (i % major_segments) * minor_segments + (j % minor_segments)  # noqa: E731
    faces = []
    for i in range(major_segments):
        for j in range(minor_segments):
            a, b, c, d = idx(i, j), idx(i + 1, j), idx(i + 1, j + 1), idx(i, j + 1)
            faces += [(a, b, c), (a, c, d)]
    f = np.asarray(faces, dtype=np.int64)
    if signed_volume(v, f) < 0:
        f = f[:, ::-1].copy()
    return v + np.asarray(center, dtype=np.float64), f


def extrude(polygon: Sequence[Tuple[float, float]], width: float, center_x: float = 0.0) -> MeshArrays:
    """Prism from a convex ``(y, z)`` polygon (a side profile) extruded ``width`` along x.

    Handy for side-profiled shapes such as a car body or a sloped backrest. The polygon must be
    convex (its caps are fan-triangulated); either winding is accepted.
    """
    p = np.asarray(polygon, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 2 or p.shape[0] < 3:
        raise ValueError(f"extrude: polygon must be (N>=3, 2) (y, z) points, got {p.shape}")
    if width <= 0:
        raise ValueError(f"extrude: width must be positive, got {width}")
    n = p.shape[0]
    x0, x1 = center_x - width / 2.0, center_x + width / 2.0
    v = np.concatenate(
        [np.column_stack([np.full(n, x0), p]), np.column_stack([np.full(n, x1), p])], axis=0
    )
    faces = []
    for k in range(1, n - 1):
        faces.append((0, k + 1, k))  # cap at x0
        faces.append((n, n + k, n + k + 1))  # cap at x1
    for k in range(n):
        k1 = (k + 1) % n
        faces += [(k, k1, n + k1), (k, n + k1, n + k)]
    f = np.asarray(faces, dtype=np.int64)
    f = f[face_areas(v, f) > 0]
    if signed_volume(v, f) < 0:
        f = f[:, ::-1].copy()
    return v, f


# --------------------------------------------------------------------------------------------
# procedural objects (metres, +Z up, front toward -Y)
# --------------------------------------------------------------------------------------------
def _finish(mesh: MeshArrays, units: str, origin: str) -> MeshArrays:
    if units not in UNIT_SCALES:
        raise ValueError(f"units must be one of {sorted(UNIT_SCALES)}, got {units!r}")
    if origin not in ("center", "floor"):
        raise ValueError(f"origin must be 'center' or 'floor', got {origin!r}")
    v, f = mesh
    lo, hi = bounding_box(v)
    shift = -(lo + hi) / 2.0
    if origin == "floor":
        shift[2] = -lo[2]
    v = (v + shift) * UNIT_SCALES[units]
    return as_mesh(v, f)


def chair(units: str = "m", origin: str = "center", *, segments: int = 8) -> MeshArrays:
    """Dining chair, 0.45 x 0.50 x 0.90 m: four thin legs, seat, backrest at the back (+Y).

    The backrest makes front and back different, the thin legs test fine structure. ``segments``
    sets the legs' roundness. Returns ``(V, 3)`` float64 and ``(F, 3)`` int64.
    """
    width, depth, seat_h, seat_t, top = 0.45, 0.50, 0.45, 0.04, 0.90
    leg_r = 0.018
    parts = [box((width, depth, seat_t), (0, 0, seat_h - seat_t / 2))]
    for x in (-1, 1):
        for y in (-1, 1):
            cx, cy = x * (width / 2 - 0.03), y * (depth / 2 - 0.03)
            parts.append(cylinder(leg_r, seat_h - seat_t, segments, (cx, cy, (seat_h - seat_t) / 2)))
    # back posts continue the rear legs up to the top; a slightly tilted panel between them
    post_h = top - seat_h
    for x in (-1, 1):
        parts.append(box((0.035, 0.035, post_h), (x * (width / 2 - 0.03), depth / 2 - 0.03, seat_h + post_h / 2)))
    panel = box((width - 0.06, 0.025, 0.22), (0, 0, 0))
    panel = transform(panel, rotation=rotation_matrix("x", -8.0), translation=(0, depth / 2 - 0.02, top - 0.13))
    rail = box((width - 0.06, 0.02, 0.04), (0, depth / 2 - 0.03, seat_h + 0.12))
    parts += [panel, rail]
    return _finish(merge(parts), units, origin)


def table(units: str = "m", origin: str = "center", *, segments: int = 8) -> MeshArrays:
    """Rectangular table, 1.20 x 0.80 x 0.75 m: top with an apron and four legs.

    Nearly 180-degree symmetric about z (front and back look alike), which a pose estimator must
    report as distinct candidates. A drawer front on the -Y apron breaks the tie slightly.
    """
    length, depth, height, top_t = 1.20, 0.80, 0.75, 0.035
    parts = [box((length, depth, top_t), (0, 0, height - top_t / 2))]
    apron_h = 0.08
    z_apron = height - top_t - apron_h / 2
    parts.append(box((length - 0.12, 0.02, apron_h), (0, -(depth / 2 - 0.05), z_apron)))
    parts.append(box((length - 0.12, 0.02, apron_h), (0, depth / 2 - 0.05, z_apron)))
    parts.append(box((0.02, depth - 0.12, apron_h), (-(length / 2 - 0.05), 0, z_apron)))
    parts.append(box((0.02, depth - 0.12, apron_h), (length / 2 - 0.05, 0, z_apron)))
    parts.append(box((0.30, 0.03, 0.06), (0.15, -(depth / 2 - 0.045), z_apron)))  # drawer front
    leg_h = height - top_t
    for x in (-1, 1):
        for y in (-1, 1):
            parts.append(box((0.05, 0.05, leg_h), (x * (length / 2 - 0.06), y * (depth / 2 - 0.06), leg_h / 2)))
    return _finish(merge(parts), units, origin)


def stool(units: str = "m", origin: str = "center", *, segments: int = 24) -> MeshArrays:
    """Round bar stool, seat diameter 0.36 m, 0.65 m to the seat: three splayed legs and a foot ring.

    Nearly rotationally symmetric (three-fold legs, round seat): azimuth is hard to see, elevation
    and distance are not. A small back lip on the seat (+Y) is the only front/back cue.
    """
    seat_r, height, seat_t = 0.18, 0.65, 0.045
    parts = [lathe([(0, height - seat_t), (seat_r, height - seat_t), (seat_r - 0.01, height), (0, height)], segments)]
    parts.append(box((0.14, 0.03, 0.04), (0, seat_r - 0.03, height + 0.01)))  # back lip
    leg_top_z = height - seat_t
    for k in range(3):
        az = np.radians(90.0 + 120.0 * k)  # one leg toward +Y (back), two toward the front
        direction = np.array([np.cos(az), np.sin(az), 0.0])
        parts.append(rod(direction * 0.11 + [0, 0, leg_top_z], direction * 0.20, 0.016, 8))
    parts.append(transform(torus(0.15, 0.01, segments, 6), translation=(0, 0, 0.22)))
    return _finish(merge(parts), units, origin)


def car(units: str = "m", origin: str = "center", *, segments: int = 16) -> MeshArrays:
    """Hatchback-like car, 4.0 x 1.7 x 1.45 m: body with a sloped hood at the front (-Y), cabin set
    back toward the rear, four wheels. Left/right mirror symmetric, front/back not."""
    length, width = 4.0, 1.70
    wheel_r, wheel_w = 0.32, 0.22
    # side profile in (y, z): y=-2 is the front bumper; convex lower body with a sloped hood
    body = extrude(
        [(-2.0, 0.25), (1.95, 0.25), (2.0, 0.45), (2.0, 0.85), (-1.85, 0.80), (-2.0, 0.60)],
        width,
    )
    cabin = extrude(
        [(-0.75, 0.80), (1.90, 0.84), (1.75, 1.40), (0.15, 1.45), (-0.45, 1.30)], width - 0.16
    )
    parts = [body, cabin]
    for y in (-1.30, 1.25):
        for x in (-1, 1):
            cx = x * (width / 2 - wheel_w / 2 + 0.02)
            parts.append(cylinder(wheel_r, wheel_w, segments, (cx, y, wheel_r), axis="x"))
    return _finish(merge(parts), units, origin)


def mug(units: str = "m", origin: str = "center", *, segments: int = 32) -> MeshArrays:
    """Coffee mug, 0.08 m diameter x 0.095 m tall, hollow, with a handle on its right (+X) side.

    A lathe body (outer wall, rim, inner wall, inner floor) plus a torus handle: the handle is the
    only cue that breaks the rotational symmetry.
    """
    radius, height, wall, floor_t = 0.04, 0.095, 0.004, 0.008
    body = lathe(
        [
            (0.0, 0.0),
            (radius - 0.003, 0.0),
            (radius, 0.003),
            (radius, height),
            (radius - wall, height),
            (radius - wall, floor_t),
            (0.0, floor_t),
        ],
        segments,
    )
    handle = torus(0.026, 0.0055, 20, 8)
    handle = transform(handle, rotation=rotation_matrix("x", 90.0), translation=(radius + 0.004, 0, height * 0.52))
    return _finish(merge(body, handle), units, origin)


PROCEDURAL_MESHES: Dict[str, Callable[..., MeshArrays]] = {
    "chair": chair,
    "table": table,
    "stool": stool,
    "car": car,
    "mug": mug,
}


def make_mesh(name: str, units: str = "m", origin: str = "center") -> MeshArrays:
    """Build one of :data:`PROCEDURAL_MESHES` by name (``"chair"``, ``"table"``, ...)."""
    if name not in PROCEDURAL_MESHES:
        raise ValueError(f"unknown mesh {name!r}; choose from {sorted(PROCEDURAL_MESHES)}")
    return PROCEDURAL_MESHES[name](units=units, origin=origin)
