"""Shared pieces of the pose benchmark: viewpoint errors, the camera convention, dataset records.

Viewpoint errors follow the paper's evaluation (Chiu & Fritz 2015, Sec. 4.2 / Table 3, after
PASCAL3D+): a prediction counts as correct at a threshold when its azimuth is within that many
degrees of the truth (90, 45, 22.5 and 15 degrees = 4, 8, 16, 24 views). Near the poles azimuth
means little, so we also report the geodesic rotation error ``angle(R_est^T R_gt)`` between the two
camera orientations built from ``(azimuth, elevation, roll)``.

All camera matrices come from :mod:`torch_backend.camera` (THE convention): camera centre
``C = d (cos el sin az, -cos el cos az, sin el)``, looking at the mesh origin with +Z up, then
rolled by ``roll`` degrees about the viewing direction; ``az = 0`` is Blender's Front view.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch

from torch_backend import camera, meshes
from torch_backend.images import load_image, read_mask
from torch_backend.masks import coverage_mask

THRESHOLDS_DEG = (90.0, 45.0, 22.5, 15.0)


# --------------------------------------------------------------------------------------------
# camera convention: thin numpy wrappers over torch_backend.camera (the one definition)
# --------------------------------------------------------------------------------------------
def camera_matrix_world(azimuth, elevation, distance, roll) -> np.ndarray:
    """Blender ``camera.matrix_world`` ``(4, 4)`` float64 for a pose (degrees, scene units)."""
    return camera.camera_to_world(azimuth, elevation, distance, roll, dtype=torch.float64).numpy()


def camera_rotation(azimuth: float, elevation: float, roll: float) -> np.ndarray:
    """Camera-to-world rotation ``(3, 3)`` (columns: camera right, up, back) for angles in degrees."""
    return camera_matrix_world(azimuth, elevation, 1.0, roll)[:3, :3]


def focal_pixels(width: int, height: int, lens_mm: float, sensor_width_mm: float = 36.0) -> float:
    """Focal length in pixels for Blender's ``sensor_fit='AUTO'`` (the sensor width spans the
    larger image side), square pixels."""
    intrinsics = camera.Intrinsics(lens_mm=lens_mm, sensor_width_mm=sensor_width_mm, resolution=(width, height))
    return float(intrinsics.tensors(dtype=torch.float64)["focal_px"])


def project(points, azimuth, elevation, distance, roll, *, width, height, lens_mm,
            sensor_width_mm=36.0, shift_x=0.0, shift_y=0.0) -> np.ndarray:
    """Project ``(N, 3)`` world points to ``(N, 2)`` Blender pixel coordinates (x right, y down)."""
    pixels = camera.project_points(
        torch.as_tensor(np.asarray(points, dtype=np.float64)), azimuth=azimuth, elevation=elevation,
        distance=distance, roll=roll, shift_x=shift_x, shift_y=shift_y, lens_mm=lens_mm,
        sensor_width_mm=sensor_width_mm, sensor_fit="AUTO", resolution=(width, height),
    )
    return pixels.numpy()


# --------------------------------------------------------------------------------------------
# viewpoint errors
# --------------------------------------------------------------------------------------------
def azimuth_error(est_deg: float, true_deg: float) -> float:
    """Absolute azimuth difference in degrees, wrapped into ``[0, 180]``."""
    d = (float(est_deg) - float(true_deg)) % 360.0
    return min(d, 360.0 - d)


def rotation_error(est: Sequence[float], true: Sequence[float]) -> float:
    """Geodesic angle in degrees between two camera orientations given as ``(az, el, roll)``
    triples: ``arccos((trace(R_est^T R_gt) - 1) / 2)``, in ``[0, 180]``."""
    r = camera_rotation(*est).T @ camera_rotation(*true)
    cosine = (np.trace(r) - 1.0) / 2.0
    return float(np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0))))


def relative_distance_error(est: float, true: float) -> float:
    """``|d_est - d_true| / d_true`` (unitless)."""
    return abs(float(est) - float(true)) / float(true)


def summarize(rows: List[Dict]) -> Dict[str, float]:
    """Aggregate per-photo errors (keys ``az_err``, ``el_err``, ``rot_err``, ``dist_err``,
    ``seconds``) into accuracies in percent at :data:`THRESHOLDS_DEG` and medians."""
    if not rows:
        raise ValueError("summarize: no results")
    az = np.array([r["az_err"] for r in rows])
    out = {f"acc_{t:g}": 100.0 * float(np.mean(az <= t)) for t in THRESHOLDS_DEG}
    for key in ("az_err", "el_err", "rot_err", "dist_err", "seconds"):
        out[f"median_{key}"] = float(np.median([r[key] for r in rows]))
    out["n"] = len(rows)
    return out


# --------------------------------------------------------------------------------------------
# dataset records
# --------------------------------------------------------------------------------------------
def load_index(root: Path) -> List[Dict]:
    """Ground-truth records of a set made by ``bench/make_pose_dataset.py`` (with absolute paths
    added under ``photo_path``, ``mask_path``, ``mesh_path``)."""
    root = Path(root)
    index = root / "index.json"
    if not index.exists():
        raise FileNotFoundError(f"{index}: no pose set here; run bench/make_pose_dataset.py first")
    records = []
    for entry in json.loads(index.read_text())["photos"]:
        record = json.loads((root / entry).read_text())
        for key in ("photo", "mask", "mesh"):
            record[f"{key}_path"] = str(root / record[key])
        records.append(record)
    return records


def load_record(record: Dict, loaded_meshes: Dict) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(vertices, faces, photo (H, W, 3) float, mask (H, W) bool)`` of one set record; meshes are
    read once into ``loaded_meshes`` (path -> arrays), a batch of photos shares them."""
    if record["mesh_path"] not in loaded_meshes:
        loaded_meshes[record["mesh_path"]] = meshes.read_obj(record["mesh_path"])
    vertices, faces = loaded_meshes[record["mesh_path"]]
    photo = load_image(record["photo_path"], mode="rgb")
    return vertices, faces, photo, coverage_mask(read_mask(record["mask_path"]))


def bbox_of_mask(mask: np.ndarray) -> Tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)`` pixel box (x1, y1 exclusive) of the non-zero pixels of an ``(H, W)`` mask."""
    ys, xs = np.nonzero(np.asarray(mask))
    if len(xs) == 0:
        raise ValueError("bbox_of_mask: empty mask")
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


# subsets of the realistic sets (bench/make_real_pose_dataset.py); the clean sets have none
SUBSETS = ("colour", "gray", "unoccluded", "occluded", "small", "textureless")
OCCLUDED_AT = 0.10  # share of the silhouette hidden from which a photo counts as occluded


def subset_tags(record: Dict) -> List[str]:
    """Names of the :data:`SUBSETS` a ground-truth record belongs to (``[]`` for a record without
    the realistic set's keys ``gray``, ``occlusion``, ``small``, ``textureless``)."""
    tags = []
    if "gray" in record:
        tags.append("gray" if record["gray"] else "colour")
    if "occlusion" in record:
        tags.append("occluded" if record["occlusion"] >= OCCLUDED_AT else "unoccluded")
    tags += [name for name in ("small", "textureless") if record.get(name)]
    return tags
