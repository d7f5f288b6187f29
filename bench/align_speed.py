"""Throughput of ``gradhog align --manifest``: photos per minute with ``--jobs 1``, ``--jobs 2`` and a
2-worker Dask ``LocalCluster`` on loopback (the peer is ``--jobs 1``, i.e. one process).

Each configuration is one cold ``gradhog align`` process over the same manifest (photos of the
pose benchmark set, each with its mask, lens and sensor width), timed from process start to exit,
into an empty results file. The lines of every configuration are checked against ``--jobs 1``
(same poses: the alignment is deterministic for a seed).

Usage::

    .venv/bin/python bench/align_speed.py [--set bench/data/pose_dev] [--photos 40] [--no-refine]

The set is made by ``bench/make_pose_dataset.py --out bench/data/pose_dev --per-mesh 8`` (or more).
Throughput depends on the machine's free cores: on a shared CPU the figures are noisy.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
POSE_FIELDS = ("azimuth", "elevation", "roll", "distance")


def write_manifest(dataset: Path, count: int, folder: Path) -> Path:
    """A JSON-lines manifest of the first ``count`` photos of ``dataset`` (ground-truth intrinsics)."""
    truths = sorted(path for path in dataset.glob("*.json") if path.name != "index.json")[:count]
    if len(truths) < count:
        sys.exit(f"{dataset}: {len(truths)} photos, {count} wanted; run bench/make_pose_dataset.py "
                 f"--out {dataset} --per-mesh {(count + 4) // 5}")
    manifest = folder / "manifest.jsonl"
    with open(manifest, "w") as handle:
        for path in truths:
            truth = json.loads(path.read_text())
            handle.write(json.dumps({name: (str(dataset / truth[name]) if name in ("photo", "mesh", "mask")
                                            else truth[name])
                                     for name in ("photo", "mesh", "mask", "lens_mm", "sensor_width_mm")}) + "\n")
    return manifest


def timed_run(manifest: Path, out: Path, extra: list[str], no_refine: bool) -> float:
    """Wall seconds of one cold ``gradhog align --manifest`` process."""
    command = [sys.executable, "-m", "blender_gradhog.cli", "align", "--manifest", str(manifest), "--out", str(out),
               "--quiet", *extra] + (["--no-refine"] if no_refine else [])
    started = time.perf_counter()
    finished = subprocess.run(command, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                              capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if finished.returncode not in (0, 1):
        sys.exit(f"{' '.join(command)} failed:\n{finished.stdout}{finished.stderr}")
    print("   ", finished.stdout.strip().splitlines()[-1], flush=True)
    return seconds


def poses(path: Path) -> dict:
    records = [json.loads(line) for line in path.read_text().splitlines()]
    return {record["key"]: tuple(record.get(name) for name in POSE_FIELDS) for record in records}


def same(a: dict, b: dict) -> int:
    """How many photos of ``a`` have the same pose in ``b`` (1e-6 relative)."""
    def close(x, y):
        return x is not None and y is not None and abs(x - y) <= 1e-6 * max(1.0, abs(x))

    return sum(key in b and all(close(x, y) for x, y in zip(a[key], b[key])) for key in a)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", default=str(REPO / "bench/data/pose_dev"), help="pose benchmark set")
    parser.add_argument("--photos", type=int, default=40)
    parser.add_argument("--no-refine", action="store_true", help="coarse grid only (faster, for a quick look)")
    args = parser.parse_args()
    from distributed import LocalCluster

    with tempfile.TemporaryDirectory(prefix="align_speed_") as tmp:
        tmp = Path(tmp)
        manifest = write_manifest(Path(args.set).resolve(), args.photos, tmp)
        print(f"{args.photos} photos of {args.set}, {os.cpu_count()} CPU cores, "
              f"{'coarse grid only' if args.no_refine else 'refined'}", flush=True)
        rows = []
        for label, extra in (("--jobs 1", []), ("--jobs 2", ["--jobs", "2"])):
            print(label, flush=True)
            rows.append((label, timed_run(manifest, tmp / f"{label[2:].replace(' ', '')}.jsonl", extra,
                                          args.no_refine), tmp / f"{label[2:].replace(' ', '')}.jsonl"))
        print("Dask LocalCluster, 2 workers x 1 thread", flush=True)
        with LocalCluster(n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1",
                          dashboard_address=None) as cluster:
            out = tmp / "dask.jsonl"
            rows.append(("Dask LocalCluster (2 workers)",
                         timed_run(manifest, out, ["--scheduler", cluster.scheduler_address], args.no_refine), out))
        reference = poses(rows[0][2])
        print("\n| run | wall s | photos / min | vs --jobs 1 | same poses as --jobs 1 |")
        print("|---|---:|---:|---:|---:|")
        for label, seconds, out in rows:
            print(f"| {label} | {seconds:.1f} | {60 * args.photos / seconds:.2f} | {rows[0][1] / seconds:.2f}x | "
                  f"{same(poses(out), reference)} / {args.photos} |")


if __name__ == "__main__":
    main()
