"""How distinguishable is each photo's true pose from its near-symmetric twins, by outline alone?

For every photo of the pose set, the mesh is rendered (``torch_backend.render``, sharpness 0.3 px,
the photo's own camera) at the true pose and at the same pose with the azimuth turned by each twin
angle (180 deg; also 120 and 240 deg), and each render's IoU with the photo's ground-truth mask is
measured. Where a twin matches the mask as well as the truth does, no silhouette-based method can
choose between them: only interior cues (shading, occlusion edges) can. The twin keeps the true
lens shift and distance, so for meshes whose twin is not centred on the same point the twin's IoU
is a lower bound (the pose estimator refits it); for the table (origin on its symmetry axis) it is
exact.

Usage::

    .venv/bin/python bench/pose_twins.py [--set bench/data/pose_set]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

import pose_common  # noqa: E402

from torch_backend import meshes, render  # noqa: E402
from torch_backend.images import load_image  # noqa: E402

TWIN_ANGLES = (180.0, 120.0, 240.0)


def silhouette_ious(record: dict, vertices, faces, offsets) -> np.ndarray:
    """IoU with the ground-truth mask of renders at the true pose turned by each azimuth offset."""
    mask = torch.as_tensor(load_image(record["mask_path"], mode="gray")[..., 0] > 0.5)
    height, width = mask.shape
    azimuths = torch.tensor([record["azimuth"] + offset for offset in offsets], dtype=torch.float64)
    count = azimuths.shape[0]
    silhouettes = render.render_silhouette(
        torch.as_tensor(vertices, dtype=torch.float64), torch.as_tensor(faces),
        azimuth=azimuths, elevation=torch.full((count,), float(record["elevation"]), dtype=torch.float64),
        distance=torch.full((count,), float(record["distance"]), dtype=torch.float64),
        roll=torch.full((count,), float(record["roll"]), dtype=torch.float64),
        shift_x=float(record.get("shift_x", 0.0)), shift_y=float(record.get("shift_y", 0.0)),
        lens_mm=record["lens_mm"], sensor_width_mm=record["sensor_width_mm"], sensor_height_mm=24.0,
        sensor_fit=record.get("sensor_fit", "AUTO"), resolution=(width, height), sharpness=0.3,
    ) > 0.5
    inter = (silhouettes & mask).sum((-2, -1)).double()
    union = (silhouettes | mask).sum((-2, -1)).double()
    return (inter / union.clamp_min(1)).numpy()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", type=Path, default=REPO / "bench" / "data" / "pose_set")
    parser.add_argument("--tolerance", type=float, default=0.005,
                        help="a twin within this IoU of the truth counts as indistinguishable")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    records = pose_common.load_index(args.set)
    offsets = (0.0,) + TWIN_ANGLES
    per_mesh = {}
    mesh_cache = {}
    for record in records:
        if record["mesh_path"] not in mesh_cache:
            mesh_cache[record["mesh_path"]] = meshes.read_obj(record["mesh_path"])
        ious = silhouette_ious(record, *mesh_cache[record["mesh_path"]], offsets)
        per_mesh.setdefault(record["mesh_name"], []).append(ious)
        print(f"{record['id']:<12} truth IoU {ious[0]:.3f}  twins " +
              "  ".join(f"{angle:+.0f}: {iou:.3f}" for angle, iou in zip(TWIN_ANGLES, ious[1:])), flush=True)
    print()
    print("| mesh | truth IoU (median) | " + " | ".join(f"twin {a:.0f}° IoU (median) | twin {a:.0f}° within "
                                                     f"{args.tolerance:g} of truth" for a in TWIN_ANGLES) + " |")
    print("|" + "---|" * (2 + 2 * len(TWIN_ANGLES)))
    for name, rows in sorted(per_mesh.items()):
        rows = np.array(rows)
        cells = [f"{np.median(rows[:, 0]):.3f}"]
        for column in range(1, rows.shape[1]):
            cells.append(f"{np.median(rows[:, column]):.3f}")
            cells.append(f"{int((rows[:, column] >= rows[:, 0] - args.tolerance).sum())}/{len(rows)}")
        print(f"| {name} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
