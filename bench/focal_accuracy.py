"""Focal-length benchmark: ``estimate_pose(..., focal="estimate")`` against the lens given, per input mode.

Each photo of a set built by ``bench/make_pose_dataset.py`` with a wide lens range (no EXIF: the
set's PNGs carry none) is aligned twice per input mode:

* **given** -- the true lens in the intrinsics (``focal="given"``, the default);
* **estimated** -- the intrinsics carry Blender's default 50 mm lens and ``focal="estimate"``.

Input modes: ``mask`` (the set's ``<id>_mask.png``) and ``box`` (the ground-truth mask's box, not
jittered: the lens, not the box, is under test here).

Reported per mode: median relative focal error ``|f_est - f| / f``, the share within 10 % and 25 %,
the median width of ``lens_range_mm`` as the ratio high / low and the share of ranges that hold the
true lens, the median geodesic rotation error and the azimuth accuracy within 15 degrees with the
lens given and estimated, the median seconds both ways ("warm": without rendering the coarse views,
which are cached per mesh and field of view -- the estimate's candidate lenses are the same for
every photo, so only a mesh's first photo renders them). Then the same split by the true lens:
wide (< 35 mm), normal (35-85 mm), tele (> 85 mm).

Usage::

    .venv/bin/python bench/make_pose_dataset.py --out bench/data/focal_set --seed 20 --per-mesh 6 \\
        --lens-range 18 200 --fill-range 0.3 0.8
    .venv/bin/python bench/focal_accuracy.py [--set bench/data/focal_set] [--limit N] [--skip N] [--modes mask box]
        [--threads 1] [--json rows.json] [--markdown table.md] [--from-json rows.json ...]
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

import pose_common  # noqa: E402
from pose_accuracy import errors, intrinsics_of  # noqa: E402

from torch_backend.pose import CoarseViewCache, estimate_pose  # noqa: E402

MODES = ("mask", "box")
#: Lens the estimate starts from (Blender's default camera), mm on a 36 mm sensor.
START_LENS_MM = 50.0
#: True-lens bins of the split (mm): wide < 35 <= normal <= 85 < tele.
BINS = (("wide < 35 mm", 0.0, 35.0), ("normal 35–85 mm", 35.0, 85.0 + 1e-9), ("tele > 85 mm", 85.0 + 1e-9, 1e9))


def run(records, modes, options, *, log=print, json_path=None):
    """Align every record in every mode with the lens given and estimated; returns
    ``{mode: [row, ...]}``, one row per photo holding both runs. With ``json_path`` the rows so far
    are rewritten there after every photo."""
    # Separate caches: the given lens differs per photo and must not evict the estimate's
    # candidate-lens views (7 per mesh), which a batch of photos of one mesh shares.
    caches = {"given": CoarseViewCache(max_entries=8), "estimated": CoarseViewCache(max_entries=64)}
    results = {mode: [] for mode in modes}
    mesh_cache = {}
    for number, record in enumerate(records):
        vertices, faces, photo, mask = pose_common.load_record(record, mesh_cache)
        truth = float(record["lens_mm"])
        for mode in modes:
            cue = {"mask": mask} if mode == "mask" else {"bbox": [float(v) for v in record["bbox"]]}
            row = {"id": record["id"], "mesh": record["mesh_name"], "true_lens_mm": truth}
            runs = (("given", intrinsics_of(record), {}),
                    ("estimated", {**intrinsics_of(record), "lens_mm": START_LENS_MM}, {"focal": "estimate"}))
            for name, intrinsics, focal in runs:
                result = estimate_pose(photo, vertices, faces, intrinsics, seed=0, cache=caches[name],
                                       **cue, **focal, **options)
                views_s = result.timings.get("coarse_views", 0.0)
                row[name] = {**errors(result.pose, record), "seconds": result.seconds,
                             "warm_seconds": result.seconds - views_s, "lens_mm": result.lens_mm,
                             "lens_source": result.lens_source, "pose": result.pose.as_dict(),
                             "timings": dict(result.timings)}
                if result.lens_range_mm is not None:
                    low, high = result.lens_range_mm
                    row[name]["lens_range_mm"] = [low, high]
            estimated = row["estimated"]
            estimated["focal_err"] = abs(estimated["lens_mm"] - truth) / truth
            results[mode].append(row)
            low, high = estimated.get("lens_range_mm", (float("nan"), float("nan")))
            log(f"[{number + 1}/{len(records)}] {record['id']:<10} {mode:<4} lens {truth:6.1f} -> "
                f"{estimated['lens_mm']:6.1f} mm ({100 * estimated['focal_err']:5.1f} %, range {low:.0f}-{high:.0f})  "
                f"rot {row['given']['rot_err']:5.1f} / {estimated['rot_err']:5.1f} deg  "
                f"{row['given']['seconds']:4.1f} / {estimated['seconds']:4.1f} s", flush=True)
        if json_path is not None:
            json_path.write_text(json.dumps(results, indent=1))
    return results


def summarize(rows) -> dict:
    """Aggregates of ``rows`` (one per photo, both runs): focal error medians and shares, range
    width (high / low) and coverage, rotation/azimuth accuracy and seconds with the lens given
    and estimated."""
    est = [r["estimated"] for r in rows]
    giv = [r["given"] for r in rows]
    focal = np.array([e["focal_err"] for e in est])
    ranges = [(e["lens_range_mm"], r["true_lens_mm"]) for e, r in zip(est, rows) if "lens_range_mm" in e]
    med = lambda values: float(np.median(values)) if len(values) else float("nan")  # noqa: E731
    return {
        "n": len(rows),
        "median_focal_err": med(focal),
        "within_10": 100.0 * float(np.mean(focal <= 0.10)) if len(rows) else float("nan"),
        "within_25": 100.0 * float(np.mean(focal <= 0.25)) if len(rows) else float("nan"),
        "median_range_ratio": med([high / low for (low, high), _ in ranges]),
        "range_holds_truth": 100.0 * float(np.mean([low <= t <= high for (low, high), t in ranges])) if ranges else float("nan"),
        "rot_given": med([g["rot_err"] for g in giv]),
        "rot_est": med([e["rot_err"] for e in est]),
        "acc15_given": 100.0 * float(np.mean([g["az_err"] <= 15.0 for g in giv])) if rows else float("nan"),
        "acc15_est": 100.0 * float(np.mean([e["az_err"] <= 15.0 for e in est])) if rows else float("nan"),
        "dist_given": med([g["dist_err"] for g in giv]),
        "dist_est": med([e["dist_err"] for e in est]),
        "s_given": med([g["seconds"] for g in giv]),
        "s_est": med([e["seconds"] for e in est]),
        "warm_given": med([g["warm_seconds"] for g in giv]),
        "warm_est": med([e["warm_seconds"] for e in est]),
        # paired per photo: both runs saw about the same load on a shared machine
        "time_ratio": med([e["seconds"] / g["seconds"] for e, g in zip(est, giv)]),
    }


def markdown_table(results) -> str:
    """One line per mode and per mode x true-lens bin."""
    head = ("| mode | lenses | n | med. focal err | within 10 % | within 25 % | med. range (high/low) "
            "| range holds truth | med. rot err given / est. | az ≤ 15° given / est. | med. dist err given / est. "
            "| med. s given / est. | med. warm s given / est. | med. time ratio est./given |")
    lines = [head, "|" + "---|" * 14]
    for mode, rows in results.items():
        groups = [("all", rows)] + [(label, [r for r in rows if low <= r["true_lens_mm"] < high])
                                    for label, low, high in BINS]
        for label, sub in groups:
            if not sub:
                continue
            s = summarize(sub)
            lines.append(
                f"| {mode} | {label} | {s['n']} | {100 * s['median_focal_err']:.1f} % | {s['within_10']:.0f} % "
                f"| {s['within_25']:.0f} % | {s['median_range_ratio']:.2f} | {s['range_holds_truth']:.0f} % "
                f"| {s['rot_given']:.1f}° / {s['rot_est']:.1f}° | {s['acc15_given']:.0f} % / {s['acc15_est']:.0f} % "
                f"| {100 * s['dist_given']:.1f} % / {100 * s['dist_est']:.1f} % "
                f"| {s['s_given']:.1f} / {s['s_est']:.1f} | {s['warm_given']:.1f} / {s['warm_est']:.1f} | {s['time_ratio']:.1f}× |")
    return "\n".join(lines)


def per_photo_table(results) -> str:
    """Every photo: true lens, estimate, range, rotation errors."""
    lines = ["| mode | photo | true lens | estimate | range | rot err given / est. |", "|" + "---|" * 6]
    for mode, rows in results.items():
        for r in sorted(rows, key=lambda r: r["true_lens_mm"]):
            e = r["estimated"]
            low, high = e.get("lens_range_mm", (float("nan"), float("nan")))
            lines.append(f"| {mode} | {r['id']} | {r['true_lens_mm']:.0f} mm | {e['lens_mm']:.0f} mm "
                         f"({100 * (e['lens_mm'] / r['true_lens_mm'] - 1):+.0f} %) | {low:.0f}–{high:.0f} mm "
                         f"| {r['given']['rot_err']:.1f}° / {e['rot_err']:.1f}° |")
    return "\n".join(lines)


def _commit() -> str:
    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "torch_backend"],
                               capture_output=True, text=True, timeout=10).stdout
        changed = [line[3:] for line in dirty.splitlines() if line.strip()]
        return commit + (" + uncommitted " + ", ".join(changed) if changed else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", type=Path, default=REPO / "bench" / "data" / "focal_set")
    parser.add_argument("--limit", type=int, default=None, help="use the first N photos only")
    parser.add_argument("--skip", type=int, default=0, help="leave out the first N photos (split runs)")
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="extra estimate_pose option for both runs (VALUE is read as a Python literal)")
    parser.add_argument("--markdown", type=Path, default=None, help="also write the tables here")
    parser.add_argument("--json", type=Path, default=None, help="per-photo results as JSON")
    parser.add_argument("--from-json", type=Path, nargs="+", default=None,
                        help="print the tables of earlier --json runs (merged) instead of running")
    args = parser.parse_args(argv)
    if args.from_json:
        results, seen = {}, set()
        for path in args.from_json:  # a photo in several files (overlapping split runs) counts once
            for mode, rows in json.loads(path.read_text()).items():
                fresh = [row for row in rows if (mode, row["id"]) not in seen]
                seen.update((mode, row["id"]) for row in fresh)
                results.setdefault(mode, []).extend(fresh)
        print(markdown_table(results))
        print()
        print(per_photo_table(results))
        return 0
    torch.set_num_threads(args.threads)
    records = pose_common.load_index(args.set)[args.skip:]
    if args.limit is not None:
        records = records[:args.limit]  # the set is interleaved over the meshes
    options = {}
    for item in args.option:
        key, _, value = item.partition("=")
        try:
            options[key.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            parser.error(f"--option {item!r}: VALUE must be a Python literal")
    started = time.perf_counter()
    results = run(records, args.modes, options, json_path=args.json)
    total = time.perf_counter() - started
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    info = (f"{len(records)} photos from {args.set.name}, modes {', '.join(args.modes)}, estimate started at "
            f"{START_LENS_MM:g} mm, options {options or 'defaults'}; torch {torch.__version__}, {args.threads} "
            f"threads, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load average at the "
            f"end {load:.1f}; commit {_commit()}; total {total:.0f} s")
    table = markdown_table(results)
    print()
    print(table)
    print()
    print(info)
    if args.markdown is not None:
        args.markdown.write_text(f"{table}\n\n{per_photo_table(results)}\n\n{info}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
