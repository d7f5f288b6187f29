"""Pose benchmark: ``torch_backend.pose.estimate_pose`` on the synthetic set, per input mode and stage.

Input modes (what the artist gives besides the photo and the exact mesh):

* ``mask``  -- the object's mask (``<id>_mask.png`` of the set);
* ``box``   -- a box around the object: the ground-truth mask's box with each side jittered by
  a normal draw of 3 % of the box size (seeded per photo), no mask;
* ``photo`` -- the photo alone.

Stages: ``coarse`` is the best grid pose before refinement (``PoseResult.coarse_pose``, the very pose
``estimate_pose(..., refine=False)`` returns), ``coarse+grad`` is the final pose after the
gradient (∇HOG / soft-silhouette) refinement of the same call. The coarse row's time is the call's
time minus the refinement's.

Table layout after the paper's Table 3 (Chiu & Fritz 2015): azimuth accuracy within 90 / 45 / 22.5 /
15 degrees (4 / 8 / 16 / 24 views), plus medians of the azimuth, elevation and geodesic rotation
errors (degrees), the relative distance error and the seconds per photo. "warm s" excludes the
one-off rendering of the coarse views (cached per mesh and field of view).

Usage::

    .venv/bin/python bench/make_pose_dataset.py            # once, ~1 min (else done on first run)
    .venv/bin/python bench/pose_accuracy.py [--limit N] [--modes mask box photo] [--quick]
        [--set bench/data/pose_set] [--markdown docs/pose_accuracy.md] [--json results.json]
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

import pose_common  # noqa: E402

from torch_backend.pose import CoarseViewCache, estimate_pose  # noqa: E402

MODES = ("mask", "box", "photo")
STAGES = ("coarse", "coarse+grad")


def jittered_box(record: dict, seed: int, fraction: float = 0.03):
    """Ground-truth box ``(x0, y0, x1, y1)`` with each side moved by N(0, fraction * box size),
    kept inside the photo and at least 4 pixels wide/high."""
    rng = np.random.default_rng(seed)
    x0, y0, x1, y1 = (float(v) for v in record["bbox"])
    w, h = x1 - x0, y1 - y0
    d = rng.normal(0.0, fraction, size=4) * np.array([w, h, w, h])
    x0, y0, x1, y1 = x0 + d[0], y0 + d[1], x1 + d[2], y1 + d[3]
    x0, y0 = max(0.0, x0), max(0.0, y0)
    x1, y1 = min(float(record["width"]), max(x1, x0 + 4)), min(float(record["height"]), max(y1, y0 + 4))
    return [x0, y0, x1, y1]


def loosened_box(box, record: dict, margin: float):
    """``box`` grown by ``margin`` of its width/height on each side, kept inside the photo (a
    carelessly drawn box)."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    return [max(0.0, x0 - margin * w), max(0.0, y0 - margin * h),
            min(float(record["width"]), x1 + margin * w), min(float(record["height"]), y1 + margin * h)]


def intrinsics_of(record: dict) -> dict:
    """Camera intrinsics of a ground-truth record, as ``estimate_pose`` takes them."""
    return {
        "lens_mm": record["lens_mm"],
        "sensor_width_mm": record["sensor_width_mm"],
        "sensor_height_mm": 24.0,
        "sensor_fit": record.get("sensor_fit", "AUTO"),
        "resolution": (record["width"], record["height"]),
    }


def errors(pose, record: dict) -> dict:
    """Viewpoint errors of an estimated pose (object with ``azimuth, elevation, roll, distance``)."""
    est = (pose.azimuth, pose.elevation, pose.roll)
    true = (record["azimuth"], record["elevation"], record["roll"])
    return {
        "az_err": pose_common.azimuth_error(pose.azimuth, record["azimuth"]),
        "el_err": abs(pose.elevation - record["elevation"]),
        "rot_err": pose_common.rotation_error(est, true),
        "dist_err": pose_common.relative_distance_error(pose.distance, record["distance"]),
    }


def _dump(path, results) -> None:
    path.write_text(json.dumps({f"{m}/{s}": rows for (m, s), rows in results.items()}, indent=1))


def run(records, modes, options, *, log=print, json_path=None, first_index=0, box_margin=0.0):
    """Run every mode on every record; returns ``{(mode, stage): [row, ...]}`` of per-photo rows.
    With ``json_path`` the rows so far are rewritten there after every photo (a long run that is
    stopped keeps what it measured). ``first_index`` is the set index of ``records[0]``: box jitter
    is seeded by a photo's place in the whole set, so split runs (``--skip``) see the same boxes.
    ``box_margin`` grows each box by that fraction of its size on each side (loose boxes)."""
    cache = CoarseViewCache(max_entries=8)
    results = {(m, s): [] for m in modes for s in STAGES}
    mesh_cache = {}
    for number, record in enumerate(records):
        vertices, faces, photo, mask = pose_common.load_record(record, mesh_cache)
        for mode in modes:
            kwargs = {}
            if mode == "mask":
                kwargs["mask"] = mask
            elif mode == "box":
                seed = record.get("set_index", first_index + number)
                kwargs["bbox"] = loosened_box(jittered_box(record, seed=seed), record, box_margin)
            result = estimate_pose(photo, vertices, faces, intrinsics_of(record), seed=0,
                                   cache=cache, **kwargs, **options)
            # gradient stage = explore (all starts, low resolution) + refine (incl. any re-segmentation)
            refine_s = sum(result.timings.get(key, 0.0) for key in ("explore", "refine"))
            views_s = result.timings.get("coarse_views", 0.0)
            refined = options.get("refine", True)
            # candidates belong to the last stage run (refined poses, or grid poses if not refined)
            stages = [("coarse", result.coarse_pose, result.seconds - refine_s, not refined)]
            if refined:
                stages.append(("coarse+grad", result.pose, result.seconds, True))
            for stage, pose, seconds, has_candidates in stages:
                row = {"id": record["id"], "mesh": record["mesh_name"], **errors(pose, record),
                       "subsets": pose_common.subset_tags(record),
                       "seconds": seconds, "warm_seconds": seconds - views_s,
                       "pose": pose.as_dict(), "timings": dict(result.timings)}
                if has_candidates:
                    row["topk_az_err"] = min(errors(p, record)["az_err"] for p, _ in result.candidates)
                    row["margin"] = result.margin
                results[(mode, stage)].append(row)
            final = results[(mode, stages[-1][0])][-1]
            coarse = results[(mode, "coarse")][-1]
            log(f"[{number + 1}/{len(records)}] {record['id']:<12} {mode:<5} "
                f"az err coarse {coarse['az_err']:6.1f} -> {final['az_err']:6.1f}  "
                f"rot {coarse['rot_err']:6.1f} -> {final['rot_err']:6.1f}  "
                f"dist {100 * final['dist_err']:5.1f}%  {result.seconds:5.1f} s "
                f"(views {views_s:.1f} s)", flush=True)
        if json_path is not None:
            _dump(json_path, results)
    return results


def markdown_table(results, modes) -> str:
    head = ("| mode | stage | 4 views / 90° | 8 views / 45° | 16 views / 22.5° | 24 views / 15° "
            "| top-k / 15° | med. az err | med. el err | med. rot err | med. dist err | med. s "
            "| med. warm s | n |")
    lines = [head, "|" + "---|" * 14]
    for mode in modes:
        for stage in STAGES:
            rows = results[(mode, stage)]
            if not rows:
                continue
            s = pose_common.summarize(rows)
            warm = float(np.median([r["warm_seconds"] for r in rows]))
            topk = [r["topk_az_err"] for r in rows if "topk_az_err" in r]
            topk_cell = f"{100.0 * np.mean(np.array(topk) <= 15.0):.1f}" if topk else "–"
            lines.append(
                f"| {mode} | {stage} | {s['acc_90']:.1f} | {s['acc_45']:.1f} | {s['acc_22.5']:.1f} "
                f"| {s['acc_15']:.1f} | {topk_cell} | {s['median_az_err']:.1f}° | {s['median_el_err']:.1f}° "
                f"| {s['median_rot_err']:.1f}° | {100 * s['median_dist_err']:.1f} % "
                f"| {s['median_seconds']:.1f} | {warm:.1f} | {s['n']} |"
            )
    return "\n".join(lines)


def per_mesh_table(results, modes) -> str:
    names = sorted({r["mesh"] for rows in results.values() for r in rows})
    lines = ["| mode | " + " | ".join(names) + " |", "|" + "---|" * (len(names) + 1)]
    for mode in modes:
        rows = results[(mode, "coarse+grad")] or results[(mode, "coarse")]
        cells = []
        for name in names:
            sub = [r for r in rows if r["mesh"] == name]
            if sub:
                acc = 100.0 * np.mean([r["az_err"] <= 15.0 for r in sub])
                med = float(np.median([r["rot_err"] for r in sub]))
                cells.append(f"{acc:.0f} % / {med:.1f}°")
            else:
                cells.append("–")
        lines.append(f"| {mode} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def subset_table(results, modes) -> str:
    """Per-subset rows (realistic sets): within 15° azimuth, rotation error <= 10°, medians; ``""``
    when no row carries subset tags."""
    present = [n for n in pose_common.SUBSETS
               if any(n in r.get("subsets", ()) for rows in results.values() for r in rows)]
    if not present:
        return ""
    lines = ["| mode | subset | within 15° az | rot err ≤ 10° | med. az err | med. rot err | n |",
             "|" + "---|" * 7]
    for mode in modes:
        rows = results[(mode, "coarse+grad")] or results[(mode, "coarse")]
        for name in ("all", *present):
            sub = [r for r in rows if name == "all" or name in r.get("subsets", ())]
            if not sub:
                continue
            az, rot = np.array([r["az_err"] for r in sub]), np.array([r["rot_err"] for r in sub])
            lines.append(f"| {mode} | {name} | {100 * np.mean(az <= 15):.1f} | {100 * np.mean(rot <= 10):.1f} "
                         f"| {np.median(az):.1f}° | {np.median(rot):.1f}° | {len(sub)} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", type=Path, default=REPO / "bench" / "data" / "pose_set")
    parser.add_argument("--limit", type=int, default=None, help="use the first N photos only")
    parser.add_argument("--skip", type=int, default=0, help="leave out the first N photos")
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--quick", action="store_true",
                        help="8 photos and fewer refinement iterations (smoke run)")
    parser.add_argument("--iterations", type=int, default=None, help="refinement iterations")
    parser.add_argument("--coarse-only", action="store_true",
                        help="estimate_pose(..., refine=False): coarse rows only")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--box-margin", type=float, default=0.0,
                        help="box mode: grow each box by this fraction of its size on each side "
                             "(a loosely drawn box; default 0: tight, jittered by 3 %%)")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="extra estimate_pose option, e.g. --option color_weight=0 (ablations; "
                             "VALUE is read as a Python literal)")
    parser.add_argument("--subset", choices=pose_common.SUBSETS, default=None,
                        help="realistic sets: run only the photos of this subset")
    parser.add_argument("--markdown", type=Path, default=None, help="also write the tables here")
    parser.add_argument("--json", type=Path, default=None, help="per-photo results as JSON")
    parser.add_argument("--from-json", type=Path, nargs="+", default=None,
                        help="print the tables of earlier --json runs (merged) instead of running")
    args = parser.parse_args(argv)
    if args.from_json:
        results = {}
        for path in args.from_json:
            for key, rows in json.loads(path.read_text()).items():
                mode, stage = key.split("/", 1)
                results.setdefault((mode, stage), []).extend(rows)
        modes = [m for m in MODES if any(k[0] == m for k in results)]
        for m in modes:
            for stage in STAGES:
                results.setdefault((m, stage), [])
        print(markdown_table(results, modes))
        print()
        print(per_mesh_table(results, modes))
        subsets = subset_table(results, modes)
        if subsets:
            print(f"\nAfter refinement, per subset:\n\n{subsets}")
        return 0
    torch.set_num_threads(args.threads)
    if not (args.set / "index.json").exists():
        import make_pose_dataset  # noqa: WPS433 (needs bpy; only when the set is missing)

        print(f"{args.set}: no pose set yet, building it with Blender (about a minute)", flush=True)
        make_pose_dataset.main(["--out", str(args.set)])
    records = pose_common.load_index(args.set)[args.skip:]
    for number, record in enumerate(records):  # box jitter is seeded by the place in the set
        record["set_index"] = args.skip + number
    if args.subset is not None:
        records = [r for r in records if args.subset in pose_common.subset_tags(r)]
    limit = args.limit if args.limit is not None else (8 if args.quick else None)
    if limit is not None:
        # spread over the meshes: the set is interleaved (chair, table, stool, car, mug, chair, ...)
        records = records[:limit]
    options = {"refine": False} if args.coarse_only else {}
    for item in args.option:
        key, _, value = item.partition("=")
        try:
            options[key.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            parser.error(f"--option {item!r}: VALUE must be a Python literal")
    if args.iterations is not None:
        options["iterations"] = args.iterations
    elif args.quick:
        options["iterations"] = 15
    started = time.perf_counter()
    results = run(records, args.modes, options, json_path=args.json, first_index=args.skip,
                  box_margin=args.box_margin)
    total = time.perf_counter() - started
    table = markdown_table(results, args.modes)
    meshes_table = per_mesh_table(results, args.modes)
    try:
        import subprocess

        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "torch_backend"],
                               capture_output=True, text=True, timeout=10).stdout
        changed = [line[3:] for line in dirty.splitlines() if line.strip()]
        if changed:
            commit += " + uncommitted " + ", ".join(changed)
    except (OSError, subprocess.SubprocessError):
        commit = "unknown"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    info = (f"{len(records)} photos from {args.set.name}, modes {', '.join(args.modes)}, "
            f"box margin {args.box_margin:g}, options "
            f"{options or 'defaults'}; torch {torch.__version__}, {args.threads} threads, "
            f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load average at the "
            f"end {load:.1f}; commit {commit}; total {total:.0f} s")
    print()
    print(table)
    print()
    print("Within 15° / median rotation error after refinement, per mesh:")
    print()
    print(meshes_table)
    subsets = subset_table(results, args.modes)
    if subsets:
        print("\nAfter refinement, per subset:\n")
        print(subsets)
        meshes_table += f"\n\nPer subset (after refinement):\n\n{subsets}"
    print()
    print(info)
    if args.markdown is not None:
        args.markdown.write_text(f"{table}\n\nPer mesh (coarse+grad: within 15° / median rotation "
                                 f"error):\n\n{meshes_table}\n\n{info}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
