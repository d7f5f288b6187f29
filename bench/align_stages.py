"""Where the time of one ``gradhog align`` goes, stage by stage, for meshes from 2k to 1M faces.

Each run is a fresh Python process (as a user's ``gradhog align`` is): process start and imports,
``import bpy``, mesh import, the add-on's ``prepare`` (photo, evaluated mesh), the coarse views
(Blender Workbench or the torch renderer), the pose search (simplification, coarse search,
refinement: ``PoseResult.timings``), writing the camera, the overlay and the JSON. The meshes are
the demo chair subdivided (midpoint subdivision keeps the shape: the pose is the same whatever the
face count) and written to OBJ; the photo is a 256x256 render of the chair with its mask.

With ``--cli before=CHECKOUT``, also the wall time of whole ``gradhog align`` runs of another
checkout (e.g. an older commit in a ``git worktree``) next to this one's with an empty and with a
warm on-disk coarse-view cache.

Usage::

    .venv/bin/python bench/align_stages.py [--faces 2000 12000 46000 300000 1000000]
        [--renderer blender torch] [--repeats 1] [--markdown docs/align_speed.md]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
STAGES = ("start+imports", "import bpy", "mesh import", "prepare", "coarse views", "simplify", "coarse search",
          "refine", "apply", "overlay", "write")


def subdivide(vertices: np.ndarray, faces: np.ndarray) -> tuple:
    """Midpoint subdivision: every triangle into four, shared edges split once (same surface)."""
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    edges.sort(axis=1)
    unique, inverse = np.unique(edges, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    mids = vertices.shape[0] + inverse.reshape(3, -1).T  # (F, 3): midpoints of edges 01, 12, 20
    new_vertices = np.concatenate([vertices, vertices[unique].mean(axis=1)])
    a, b, c = faces.T
    ab, bc, ca = mids.T
    new_faces = np.concatenate([np.stack(t, 1) for t in ((a, ab, ca), (ab, b, bc), (ca, bc, c), (ab, bc, ca))])
    return new_vertices, new_faces


def mesh_with_faces(target: int) -> tuple:
    """The demo chair subdivided until it has at least ``target`` faces, then cut to the nearest
    whole subdivision level below or above (whichever is closer)."""
    from torch_backend import meshes

    vertices, faces = (np.asarray(a) for a in meshes.make_mesh("chair"))
    levels = [(vertices, faces)]
    while levels[-1][1].shape[0] < target:
        levels.append(subdivide(*levels[-1]))
    return min(levels, key=lambda level: abs(np.log(level[1].shape[0] / target)))


def make_inputs(folder: Path, targets) -> dict:
    """OBJ files per face count and one photo + mask (256 px) of the chair."""
    from PIL import Image

    from torch_backend import meshes, render

    vertices, faces = (np.asarray(a) for a in meshes.make_mesh("chair"))
    result = render.render(vertices, faces, azimuth=35.0, elevation=20.0, distance=3.0, roll=4.0,
                           lens_mm=50.0, sensor_width_mm=36.0, resolution=(256, 256), sharpness=0.3)
    rng = np.random.default_rng(0)
    silhouette = result.silhouette.numpy()[..., None]
    photo = silhouette * np.stack([0.9, 0.5, 0.3]) * (0.3 + 0.7 * result.shaded.numpy()[..., None]) + \
        (1 - silhouette) * rng.uniform(0.2, 0.7, (256, 256, 3))
    Image.fromarray((photo * 255).round().astype(np.uint8)).save(folder / "photo.png")
    Image.fromarray(((silhouette[..., 0] > 0.5) * 255).astype(np.uint8)).save(folder / "mask.png")
    files = {}
    for target in targets:
        v, f = mesh_with_faces(target)
        path = folder / f"chair_{f.shape[0]}.obj"
        meshes.write_obj(path, v, f)
        files[target] = (path, int(f.shape[0]))
    return files


def one_run(mesh: str, photo: str, mask: str, renderer: str, out: str) -> dict:
    """The stages of one alignment in this (fresh) process, in seconds."""
    stages = {}
    tick = time.perf_counter()
    import bpy  # noqa: F401

    stages["import bpy"] = time.perf_counter() - tick
    from blender_gradhog import api, cli_align, options, views
    from blender_gradhog import scene as blender_scene

    tick = time.perf_counter()
    scene = cli_align.fresh_scene()
    obj = cli_align.import_mesh(mesh)
    camera = blender_scene.new_camera(scene)
    camera.data.lens, camera.data.sensor_width = 50.0, 36.0
    stages["mesh import"] = time.perf_counter() - tick
    tick = time.perf_counter()
    job = api.prepare(photo, obj, camera, scene=scene, mask=mask, mask_source="IMAGE", coarse_views=False)
    stages["prepare"] = time.perf_counter() - tick
    tick = time.perf_counter()
    if renderer == "blender":
        job.coarse_views = views.CoarseViewJob(job.mesh, job.intrinsics, job.options).render_all()
    stages["coarse views"] = time.perf_counter() - tick
    tick = time.perf_counter()
    result = api.solve(job)
    solve_seconds = time.perf_counter() - tick
    timings = dict(result.timings)
    stages["simplify"] = timings.get("prepare_mesh", 0.0)
    stages["coarse views"] += timings.get("coarse_views", 0.0)  # the torch renderer's, inside the solve
    stages["coarse search"] = timings.get("coarse_search", 0.0) + timings.get("cues", 0.0)
    stages["refine"] = solve_seconds - stages["simplify"] - timings.get("coarse_views", 0.0) - timings.get("coarse_search", 0.0) - timings.get("cues", 0.0)
    tick = time.perf_counter()
    values = api.apply(job, result, camera=camera)
    stages["apply"] = time.perf_counter() - tick
    tick = time.perf_counter()
    cli_align.save_png(out + ".png", cli_align.overlay_picture(photo, obj, camera, scene))
    stages["overlay"] = time.perf_counter() - tick
    tick = time.perf_counter()
    Path(out).write_text(json.dumps(options.json_ready(values)))
    stages["write"] = time.perf_counter() - tick
    return {"stages": stages, "azimuth": result.pose.azimuth, "elevation": result.pose.elevation}


def run_process(mesh: Path, folder: Path, renderer: str, threads: int) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONPATH=str(REPO))
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, __file__, "--one", str(mesh), str(folder / "photo.png"), str(folder / "mask.png"),
         renderer, str(folder / "result.json")], capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - started
    if completed.returncode != 0:
        raise RuntimeError(completed.stderr[-2000:])
    record = json.loads(completed.stdout.strip().splitlines()[-1])
    record["stages"]["start+imports"] = wall - sum(record["stages"].values())
    record["wall"] = wall
    return record


def time_cli(checkout: Path, mesh: Path, folder: Path, threads: int, extra=()) -> float:
    """Wall seconds of one ``gradhog align`` (mask mode) run from ``checkout`` in a fresh process."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONPATH=str(checkout))
    command = [sys.executable, "-c", "import sys; from blender_gradhog.cli import main; sys.exit(main(sys.argv[1:]))",
               "align", "--photo", str(folder / "photo.png"), "--mask", str(folder / "mask.png"), "--mesh", str(mesh),
               "--out", str(folder / "cli.json"), "--lens-mm", "50", *extra]
    started = time.perf_counter()
    completed = subprocess.run(command, cwd=checkout, capture_output=True, text=True, env=env, check=False)
    if completed.returncode != 0:
        raise RuntimeError(completed.stderr[-2000:])
    return time.perf_counter() - started


def cli_table(files: dict, folder: Path, checkouts, threads: int) -> list:
    """End to end, as a user runs it: ``gradhog align`` of each checkout (cold process), and this
    one's again with its on-disk coarse-view cache empty (cold) and filled (warm)."""
    lines = ["| faces | " + " | ".join(f"`gradhog align` at {label}" for label, _ in checkouts)
             + " | this checkout, empty cache | this checkout, warm cache |", "|---|" + "---|" * (len(checkouts) + 2)]
    for target, (path, count) in files.items():
        cells = [f"{time_cli(checkout, path, folder, threads):.1f}" for _, checkout in checkouts]
        cache = folder / f"cache-{count}"
        cold = time_cli(REPO, path, folder, threads, ("--cache-dir", str(cache)))
        warm = time_cli(REPO, path, folder, threads, ("--cache-dir", str(cache)))
        line = f"| {count} | " + " | ".join(cells) + f" | {cold:.1f} | {warm:.1f} |"
        print(line, flush=True)
        lines.append(line)
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--faces", type=int, nargs="+", default=[2000, 12000, 46000, 300000, 1000000])
    parser.add_argument("--renderer", nargs="+", default=["blender", "torch"], choices=("blender", "torch"))
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--markdown", type=Path, default=None)
    parser.add_argument("--cli", nargs="*", default=None, metavar="LABEL=CHECKOUT",
                        help="also time whole `gradhog align` runs of these checkouts (e.g. before=../old) and of "
                             "this one with an empty and a warm cache")
    parser.add_argument("--one", nargs=5, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        import torch

        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
        print(json.dumps(one_run(*args.one)))
        return 0
    lines = ["| faces | coarse views by | " + " | ".join(STAGES) + " | total |",
             "|---|---|" + "---|" * (len(STAGES) + 1)]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = make_inputs(folder, args.faces)
        if args.cli is not None:
            checkouts = [(item.split("=", 1)[0], Path(item.split("=", 1)[1]).resolve()) for item in args.cli]
            lines = cli_table(files, folder, checkouts, args.threads) + [""] + lines
        for target in args.faces:
            path, count = files[target]
            for renderer in args.renderer:
                records = [run_process(path, folder, renderer, args.threads) for _ in range(args.repeats)]
                median = {s: statistics.median(r["stages"].get(s, 0.0) for r in records) for s in STAGES}
                total = statistics.median(r["wall"] for r in records)
                line = f"| {count} | {renderer} | " + " | ".join(f"{median[s]:.2f}" for s in STAGES) + f" | {total:.1f} |"
                print(line, flush=True)
                lines.append(line)
    load = os.getloadavg()[0]
    footer = f"\nmedians of {args.repeats} cold process(es) per row, seconds; {args.threads} torch threads; load average {load:.1f}"
    print(footer)
    if args.markdown:
        args.markdown.write_text("\n".join(lines) + "\n" + footer + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
