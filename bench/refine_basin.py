"""Basin of "refine from a rough camera": how far off may the artist's start be?

For each photo of a pose set (``bench/make_pose_dataset.py``) and each offset (degrees), the true
viewing direction is turned by exactly that angle in a random direction (seeded per photo and
offset; the roll and distance are kept), and ``estimate_pose(..., initial_pose=start)`` is run in
mask mode (the set's mask) and box mode (the mask's box jittered as in ``bench/pose_accuracy.py``).
A photo counts as recovered when the geodesic rotation error of the result is within 10 degrees
(``--within``). Reported per mode and offset: the share recovered, the median rotation error and
the median seconds per photo. ``--global-search`` adds a row without a start (the full search of
``estimate_pose``) on the same photos and boxes, for comparison.

Usage::

    .venv/bin/python bench/refine_basin.py --set bench/data/pose_dev --limit 15 \
        [--offsets 10 20 30 45] [--modes mask box] [--global-search] [--threads 1] [--json basin.json]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

import pose_accuracy  # noqa: E402
import pose_common  # noqa: E402

from torch_backend.pose import CoarseViewCache, estimate_pose  # noqa: E402

MODES = ("mask", "box")
OFFSETS = (10.0, 20.0, 30.0, 45.0)


def turned_start(azimuth: float, elevation: float, offset: float, rng: np.random.Generator) -> tuple:
    """``(azimuth, elevation)`` (degrees) of the viewing direction of ``(azimuth, elevation)`` turned
    by exactly ``offset`` degrees towards a uniformly random direction on the sphere."""
    az, el, turn = (math.radians(v) for v in (azimuth, elevation, offset))
    view = np.array([math.cos(el) * math.sin(az), -math.cos(el) * math.cos(az), math.sin(el)])
    east = np.array([math.cos(az), math.sin(az), 0.0])  # d view / d azimuth, normalised
    north = np.cross(east, view)  # d view / d elevation
    phi = rng.uniform(0.0, 2.0 * math.pi)
    turned = math.cos(turn) * view + math.sin(turn) * (math.cos(phi) * east + math.sin(phi) * north)
    return (math.degrees(math.atan2(turned[0], -turned[1])),
            math.degrees(math.asin(float(np.clip(turned[2], -1.0, 1.0)))))


def run(records, modes, offsets, *, seed: int = 0, within: float = 10.0, log=print) -> list:
    """One row per photo, mode and offset: ``id, mesh, mode, offset, start, rot_err, seconds``; an
    offset of None runs the global search (no start)."""
    cache = CoarseViewCache(max_entries=8)
    loaded, rows = {}, []
    for number, record in enumerate(records):
        vertices, faces, photo, mask = pose_common.load_record(record, loaded)
        truth = (record["azimuth"], record["elevation"], record["roll"])
        for offset in offsets:
            start = None
            if offset is not None:
                rng = np.random.default_rng([seed, number, int(round(offset * 10))])
                azimuth, elevation = turned_start(record["azimuth"], record["elevation"], offset, rng)
                start = {"azimuth": azimuth, "elevation": elevation, "roll": record["roll"]}
            for mode in modes:
                cue = {"mask": mask} if mode == "mask" else {"bbox": pose_accuracy.jittered_box(record, seed=number)}
                result = estimate_pose(photo, vertices, faces, pose_accuracy.intrinsics_of(record), initial_pose=start,
                                       seed=0, cache=cache, **cue)
                pose = result.pose
                row = {"id": record["id"], "mesh": record["mesh_name"], "mode": mode, "offset": offset, "start": start,
                       "rot_err": pose_common.rotation_error((pose.azimuth, pose.elevation, pose.roll), truth),
                       "seconds": result.seconds, "margin": result.margin, "iou": result.iou}
                rows.append(row)
                label = "global search " if offset is None else f"start {offset:4.0f}° off"
                log(f"[{number + 1}/{len(records)}] {record['id']:<12} {mode:<4} {label} "
                    f"-> rot err {row['rot_err']:6.1f}°  {'ok' if row['rot_err'] <= within else '--'}  "
                    f"{row['seconds']:5.1f} s", flush=True)
    return rows


def markdown_table(rows, modes, offsets, within: float) -> str:
    """Per offset, per mode: recovered share, median rotation error, median seconds."""
    head = "| start off by | " + " | ".join(f"{m}: within {within:g}° | {m}: med. rot err | {m}: med. s"
                                           for m in modes) + " |"
    lines = [head, "|" + "---|" * (1 + 3 * len(modes))]
    for offset in offsets:
        cells = []
        for mode in modes:
            sub = [r for r in rows if r["mode"] == mode and r["offset"] == offset]
            errors = np.array([r["rot_err"] for r in sub])
            cells += [f"{int((errors <= within).sum())}/{len(sub)} ({100.0 * np.mean(errors <= within):.0f} %)",
                      f"{np.median(errors):.1f}°", f"{np.median([r['seconds'] for r in sub]):.1f}"]
        lines.append(f"| {'global search' if offset is None else f'{offset:g}°'} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", type=Path, default=REPO / "bench" / "data" / "pose_dev")
    parser.add_argument("--limit", type=int, default=15, help="use the first N photos (default 15)")
    parser.add_argument("--offsets", type=float, nargs="*", default=list(OFFSETS), help="start offsets (degrees)")
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--global-search", action="store_true",
                        help="also run without a start (the full search) on the same photos")
    parser.add_argument("--within", type=float, default=10.0, help="rotation error (degrees) that counts as recovered")
    parser.add_argument("--seed", type=int, default=0, help="seed of the start directions")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--json", type=Path, default=None, help="per-photo rows as JSON")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    records = pose_common.load_index(args.set)[:args.limit]
    started = time.perf_counter()
    offsets = list(args.offsets) + ([None] if args.global_search else [])
    rows = run(records, args.modes, offsets, seed=args.seed, within=args.within)
    total = time.perf_counter() - started
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=1))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print()
    print(markdown_table(rows, args.modes, offsets, args.within))
    print()
    print(f"{len(records)} photos from {args.set.name}, start seed {args.seed}, torch {torch.__version__}, "
          f"{args.threads} thread(s), {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"load average at the end {load:.1f}; total {total:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
