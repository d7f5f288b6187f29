"""Speed of torch_backend.render beside Blender Workbench (bpy) rendering the same views, in one run.

For meshes of ~300 / 3k / 30k faces (bumpy UV spheres, so there are creases to shade), 1 and 8
poses, 128^2 and 256^2 pixels, it times (median of ``--repeat`` runs after one warm-up):

* ``render_silhouette`` forward, and forward + backward of ``silhouette.sum()`` w.r.t. the poses;
* ``render`` (silhouette + shaded + depth) forward, and forward + backward of ``shaded.sum()``;
* Blender 5.0.1 Workbench (anti-aliasing off, transparent film) rendering the same views one by one
  through bpy, including writing and reading back the PNG (what tests/blender_silhouettes.py does).

Usage::

    .venv/bin/python bench/render_speed.py [--threads 2] [--repeat 5] [--output docs/render_speed.md]
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from blender_silhouettes import BlenderSilhouetteRenderer, uv_sphere  # noqa: E402

from torch_backend.render import DEFAULT_SHARPNESS, Mesh, render, render_silhouette  # noqa: E402

MESHES = {"~300": (15, 11), "~3k": (50, 31), "~30k": (150, 101)}


class Timing(float):
    """Median wall-clock ms, with the median process CPU ms alongside (robust to a busy machine)."""

    cpu: float

    def __format__(self, spec):
        return f"{float(self):{spec}} / {self.cpu:{spec}}"


def _median_ms(fn, repeat):
    fn()  # warm-up
    wall, cpu = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    timing = Timing(statistics.median(wall))
    timing.cpu = statistics.median(cpu)
    return timing


def _poses(n):
    az = torch.linspace(-150.0, 150.0, n) if n > 1 else torch.tensor([30.0])
    el = torch.linspace(-20.0, 50.0, n) if n > 1 else torch.tensor([20.0])
    return az, el


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-blender", action="store_true", help="skip the bpy baseline")
    parser.add_argument("--output", help="also write the markdown table to this file")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    rows = []
    for mesh_name, (segments, rings) in MESHES.items():
        vertices, faces = uv_sphere(segments, rings, bumps=0.05)
        mesh = Mesh.from_arrays(torch.tensor(vertices, dtype=torch.float32), torch.from_numpy(faces))
        blender = {}
        for size in (128, 256):
            if not args.no_blender:
                blender[size] = BlenderSilhouetteRenderer(vertices, faces, (size, size))
            for n_poses in (1, 8):
                az0, el0 = _poses(n_poses)
                camera = dict(distance=3.5, resolution=(size, size))

                def silhouette(backward):
                    az, el = az0.clone().requires_grad_(backward), el0.clone().requires_grad_(backward)
                    out = render_silhouette(mesh, azimuth=az, elevation=el, **camera)
                    if backward:
                        out.sum().backward()

                def shaded(backward):
                    az, el = az0.clone().requires_grad_(backward), el0.clone().requires_grad_(backward)
                    out = render(mesh, azimuth=az, elevation=el, **camera)
                    if backward:
                        out.shaded.sum().backward()

                def workbench():
                    for a, e in zip(az0.tolist(), el0.tolist()):
                        blender[size].render(azimuth=a, elevation=e, distance=3.5)

                row = {
                    "mesh": f"{mesh_name} ({len(faces)})", "size": f"{size}²", "poses": n_poses,
                    "sil fwd": _median_ms(lambda: silhouette(False), args.repeat),
                    "sil fwd+bwd": _median_ms(lambda: silhouette(True), args.repeat),
                    "shaded fwd": _median_ms(lambda: shaded(False), args.repeat),
                    "shaded fwd+bwd": _median_ms(lambda: shaded(True), args.repeat),
                    "Blender Workbench": "n/a" if args.no_blender else _median_ms(workbench, args.repeat),
                }
                rows.append(row)
                print(" | ".join(f"{v:.1f}" if isinstance(v, float) else str(v) for v in row.values()), flush=True)

    load = os.getloadavg()
    header = ["mesh (faces)", "image", "poses", "silhouette fwd", "silhouette fwd+bwd", "render fwd",
              "render fwd+bwd (shaded)", "Blender Workbench (bpy)"]
    lines = [
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs (load average at the end {load[0]:.1f}, {load[1]:.1f}, {load[2]:.1f}: the machine "
        f"is shared); sharpness {DEFAULT_SHARPNESS} px; milliseconds as `wall / process CPU`, median of {args.repeat} "
        "(Blender's CPU column misses its render threads).",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for r in rows:
        values = list(r.values())
        lines.append("| " + " | ".join(f"{v:.1f}" if isinstance(v, float) else str(v) for v in values) + " |")
    table = "\n".join(lines)
    print()
    print(table)
    if args.output:
        # replace everything after the marker (the prose above it stays), or write the table alone
        marker = "<!-- bench/render_speed.py table -->"
        text = ""
        if os.path.exists(args.output):
            with open(args.output, encoding="utf-8") as handle:
                text = handle.read()
        head = text.split(marker)[0] + marker + "\n\n" if marker in text else ""
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(head + table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
