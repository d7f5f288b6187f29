"""A slow, per-pixel reference of torch_backend.render (like PyTorch3D's ``rasterize_meshes_python``).

Written from the method in render.py's docstring, not from the vectorised code: plain Python loops
over views, faces and pixels, float64 arithmetic, no autograd. Only the projection comes from
``torch_backend.camera`` (tested against Blender on its own). Meant for tiny images (<= 32 x 32).
"""
import math

import numpy as np
import torch

from torch_backend.camera import project_points, world_to_camera

MARGIN, INTERIOR_MARGIN, OCCLUSION_TOLERANCE, NEAR, MIN_AREA = 5.0, 2.0, 0.02, 1e-4, 1e-6


def _sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def _taper(distance, margin):
    return min(max(1.0 - distance / margin, 0.0), 1.0) ** 2


def _cross2(u, v):
    return u[0] * v[1] - u[1] * v[0]


def _segment_distance(p, a, b):
    ab = (b[0] - a[0], b[1] - a[1])
    t = ((p[0] - a[0]) * ab[0] + (p[1] - a[1]) * ab[1]) / (ab[0] ** 2 + ab[1] ** 2)
    t = min(max(t, 0.0), 1.0)
    return math.hypot(p[0] - a[0] - t * ab[0], p[1] - a[1] - t * ab[1])


def _mesh_faces(vertices, faces):
    """Drawable faces (no repeated index, non-zero area), whether the mesh is closed, its winding."""
    diagonal2 = float(((vertices.max(0) - vertices.min(0)) ** 2).sum()) or 1.0
    kept = []
    for f in faces:
        a, b, c = vertices[f]
        if len(set(f.tolist())) == 3 and np.linalg.norm(np.cross(b - a, c - a)) > 1e-12 * diagonal2:
            kept.append(tuple(int(i) for i in f))
    edges = {}
    for index, f in enumerate(kept):
        for i in range(3):
            edges.setdefault(frozenset((f[i], f[(i + 1) % 3])), []).append((index, f[i]))
    closed = all(len(users) == 2 and users[0][1] != users[1][1] for users in edges.values())
    volume = sum(float(np.dot(vertices[a], np.cross(vertices[b], vertices[c]))) for a, b, c in kept)
    return kept, edges, closed, 1.0 if volume >= 0 else -1.0


def _face_terms(p, tri, contour):
    """Signed distance, edge-line distance, inside flag, clipped barycentric depth and contour
    distance (pixels) of pixel centre ``p`` for one projected triangle ``tri`` ((xy, depth) x 3)."""
    xy = [t[0] for t in tri]
    area2 = _cross2((xy[1][0] - xy[0][0], xy[1][1] - xy[0][1]), (xy[2][0] - xy[0][0], xy[2][1] - xy[0][1]))
    orient = 1.0 if area2 > 0 else -1.0
    lines, weights, segment = [], [0.0, 0.0, 0.0], []
    for i in range(3):
        a, b = xy[i], xy[(i + 1) % 3]
        twice = orient * _cross2((b[0] - a[0], b[1] - a[1]), (p[0] - a[0], p[1] - a[1]))  # 2 x sub-area
        lines.append(twice / math.hypot(b[0] - a[0], b[1] - a[1]))
        weights[(i + 2) % 3] = max(twice, 0.0)  # barycentric of the vertex opposite edge i, clipped
        segment.append(_segment_distance(p, a, b))
    inside = min(lines) >= 0
    inv_depth = sum(w / tri[k][1] for k, w in enumerate(weights)) / sum(weights)
    inv_depth = min(max(inv_depth, min(1 / t[1] for t in tri)), max(1 / t[1] for t in tri))
    signed = min(lines) if inside else -min(segment)
    contour_dist = min([segment[i] for i in range(3) if contour[i]], default=math.inf)
    return signed, min(lines), inside, 1.0 / inv_depth, contour_dist


def _view(vertices, faces, edges, closed, outward, pixels, points_cam, distance, size, sharpness, cull, shading):
    width, height = size
    depth = -points_cam[:, 2]
    valid = []
    for a, b, c in faces:
        area2 = _cross2(pixels[b] - pixels[a], pixels[c] - pixels[a])
        ok = min(depth[a], depth[b], depth[c]) > NEAR * distance and abs(area2) > 2 * MIN_AREA
        valid.append(ok and not ((closed if cull == "auto" else cull) and area2 * outward >= 0))
    drawn = []  # (face index, contour flags, margin in pixels, (xy, depth) x 3)
    for index, f in enumerate(faces):
        if not valid[index]:
            continue
        area2 = _cross2(pixels[f[1]] - pixels[f[0]], pixels[f[2]] - pixels[f[0]])
        contour = []
        for i in range(3):
            a, b = f[i], f[(i + 1) % 3]
            users = edges[frozenset((a, b))]
            other = [u for u, _ in users if u != index] if len(users) == 2 else []
            if not other or not valid[other[0]]:
                contour.append(True)  # boundary, non-manifold, or the neighbour is not drawn
                continue
            third = [v for v in faces[other[0]] if v not in (a, b)][0]
            side = _cross2(pixels[b] - pixels[a], pixels[third] - pixels[a])
            contour.append(side * area2 >= 0)  # folded: the neighbour lies on this face's side
        margin = MARGIN * sharpness if any(contour) else (INTERIOR_MARGIN * sharpness if shading else 0.0)
        xs, ys = pixels[list(f), 0], pixels[list(f), 1]
        box = (xs.min() - margin, xs.max() + margin, ys.min() - margin, ys.max() + margin)
        columns = [x for x in range(width) if box[0] <= x + 0.5 <= box[1]]
        rows = [y for y in range(height) if box[2] <= y + 0.5 <= box[3]]
        if columns and rows:
            drawn.append((index, contour, margin, box, [(pixels[v], depth[v]) for v in f]))
    if not drawn:
        return np.zeros((height, width)), None, None
    all_depths = [d for *_, tri in drawn for _, d in tri]
    front, span = min(all_depths), max(max(all_depths) - min(all_depths), 1e-12)
    silhouette, pairs_of = np.zeros((height, width)), {}
    for y in range(height):
        for x in range(width):
            p = (x + 0.5, y + 0.5)
            pairs = []
            for index, contour, margin, box, tri in drawn:
                if box[0] <= p[0] <= box[1] and box[2] <= p[1] <= box[3]:
                    signed, edge, inside, z, contour_dist = _face_terms(p, tri, contour)
                    if edge >= -margin:
                        pairs.append((index, any(contour), signed, edge, inside, z, contour_dist))
            pairs_of[y, x] = pairs
            zbuffer = min([z for *_, inside, z, _ in pairs if inside], default=math.inf)
            contour_pairs = [q for q in pairs if q[1]]
            if math.isfinite(zbuffer):
                inner = min([q[6] / sharpness for q in contour_pairs if q[5] <= zbuffer + OCCLUSION_TOLERANCE * span]
                            + [MARGIN])
                silhouette[y, x] = 1.0 - (1.0 - _sigmoid(inner)) * _taper(inner, MARGIN)
            else:
                nearest = max([q[2] / sharpness for q in contour_pairs] + [-MARGIN])
                silhouette[y, x] = _sigmoid(nearest) * _taper(-nearest, MARGIN)
    return silhouette, pairs_of, (front, span)


def _shade(vertices_cam, faces, pairs_of, silhouette, front, span, sharpness, depth_softness, ambient, background):
    height, width = silhouette.shape
    shaded, soft_depth = np.full((height, width), float(background)), np.zeros((height, width))
    for (y, x), pairs in pairs_of.items():
        if not pairs:
            continue
        logits, values, presence = [], [], 0.0
        for index, _, _, edge, _, z, _ in pairs:
            a, b, c = (vertices_cam[v] for v in faces[index])
            normal = np.cross(b - a, c - a)
            facing = abs(normal[2]) / math.sqrt(float(normal @ normal) + 1e-30)
            e = edge / sharpness
            log_presence = -math.log1p(math.exp(-e)) if e > 0 else e - math.log1p(math.exp(e))
            log_presence += 2.0 * math.log(min(max(1.0 + e / INTERIOR_MARGIN, 0.0), 1.0) + 1e-30)
            presence = max(presence, math.exp(log_presence))
            logits.append(log_presence + math.log(facing + 1e-6) - (z - front) / span / depth_softness)
            values.append((ambient + (1.0 - ambient) * facing, z))
        peak = max(logits)
        weights = [math.exp(v - peak) for v in logits]
        total = sum(weights)
        colour = sum(w * v[0] for w, v in zip(weights, values)) / total
        soft_depth[y, x] = sum(w * v[1] for w, v in zip(weights, values)) / total
        shaded[y, x] = background + silhouette[y, x] * min(presence / 0.05, 1.0) * (colour - background)
    return shaded, soft_depth


def render_reference(vertices, faces, *, azimuth, elevation, distance, roll, resolution, sharpness=0.5,
                     backface_culling="auto", depth_softness=0.05, ambient=0.25, background=0.0, shading=True,
                     **intrinsics):
    """Silhouettes, shaded images and soft depths, each (B, H, W) float64 numpy, for B views given as
    lists of floats (``intrinsics``: the other keywords of ``project_points``, floats or lists).
    ``shading=False`` gives what ``render_silhouette`` computes (shaded and depth are then None)."""
    vertices = np.asarray(vertices, dtype=np.float64)
    kept, edges, closed, outward = _mesh_faces(vertices, np.asarray(faces))
    results = []
    for b in range(len(azimuth)):
        per_view = {k: (v[b] if isinstance(v, (list, tuple)) and k != "resolution" else v) for k, v in intrinsics.items()}
        pose = dict(azimuth=float(azimuth[b]), elevation=float(elevation[b]), distance=float(distance[b]),
                    roll=float(roll[b]))
        pixels = project_points(torch.from_numpy(vertices), resolution=resolution, **pose, **per_view).numpy()
        view = world_to_camera(pose["azimuth"], pose["elevation"], pose["distance"], pose["roll"],
                               dtype=torch.float64).numpy()
        points_cam = vertices @ view[:3, :3].T + view[:3, 3]
        silhouette, pairs_of, depth_range = _view(vertices, kept, edges, closed, outward, pixels, points_cam,
                                                  pose["distance"], resolution, sharpness, backface_culling, shading)
        if not shading:
            results.append((silhouette, None, None))
            continue
        if pairs_of is None:  # nothing drawn
            results.append((silhouette, np.full_like(silhouette, background), np.zeros_like(silhouette)))
            continue
        shaded, depth = _shade(points_cam, kept, pairs_of, silhouette, *depth_range, sharpness, depth_softness,
                               ambient, background)
        results.append((silhouette, shaded, depth))
    return tuple(None if r[0] is None else np.stack(r) for r in zip(*results))
