"""HOG speed: gradhog (torch) against scikit-image and OpenCV, in one run, as a markdown table.

    python bench/hog_speed.py            # full table (a few minutes on 2 cores)
    python bench/hog_speed.py --quick    # smoke run: one small size, few repetitions
    python bench/hog_speed.py --markdown docs/hog_speed.md   # also write the table there
    python bench/hog_speed.py --opencv   # only the opencv_hog rows (issue 16), 1 thread

Every figure is the median wall time of repeated back-to-back calls in this process, in two
passes over all methods, so that the ratios compare methods under similar machine load. Inputs are gray images (``skimage.data.camera()`` resized,
plus a little noise per batch item): float32 ``(B, 1, H, W)`` for gradhog's ``hog``, ``(B, H, W)``
for ``skimage_hog``, float32 ``(H, W)`` for ``skimage.feature.hog`` and uint8 for
``cv2.HOGDescriptor`` (it accepts nothing else); the peers loop over the batch. Settings:
gradhog ``uoctti``/``dalal`` with cell 8 and 9 bins; ``skimage.feature.hog`` and ``skimage_hog``
with their defaults (9 orientations, 8x8 cells, 3x3 blocks, L2-Hys); OpenCV with Dalal-Triggs'
window = image, 16x16 blocks, stride 8, 8x8 cells, 9 bins. "fwd+bwd" is ``features.sum()``'s
backward pass to the image on top of the forward; the peers have no backward. Times are
"median (minimum)" in ms; the ratios are ratios of medians.
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time

import numpy as np
import torch

SIZES = [(128, 128), (256, 256), (480, 640)]
BATCHES = [1, 8]


def _base_image(height: int, width: int) -> np.ndarray:
    from skimage import data

    camera = torch.from_numpy(data.camera().astype(np.float32) / 255.0)[None, None]
    resized = torch.nn.functional.interpolate(
        camera, size=(height, width), mode="bilinear", align_corners=False
    )
    return resized[0, 0].numpy()


def _batch(height: int, width: int, batch: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    base = _base_image(height, width)
    noise = rng.normal(scale=0.02, size=(batch, height, width)).astype(np.float32)
    return np.clip(base[None] + noise, 0.0, 1.0)


def _median_seconds(calls: dict, budget_s: float, min_reps: int, max_reps: int) -> dict:
    """``(median, minimum)`` wall time of each zero-argument callable.

    Each callable runs in blocks of back-to-back calls (after one untimed warm-up call), as
    ``timeit`` does: interleaving single calls of different libraries makes each one pay the
    others' cache and allocator churn (glibc returning freed pages, then page faults), which we
    measured as a 5-10x slowdown of 1 ms calls. Two passes over all callables spread a load spike
    from other processes on a shared machine over all methods.
    """
    times = {name: [] for name in calls}
    for _ in range(2):
        for name, call in calls.items():
            call()  # warm-up: allocator, lazy imports, OpenCV's first-call setup
            start = time.perf_counter()
            block = times[name]
            reps = 0
            while reps < (min_reps + 1) // 2 or (
                reps < max_reps // 2 and time.perf_counter() - start < budget_s / 2 / len(calls)
            ):
                t0 = time.perf_counter()
                call()
                block.append(time.perf_counter() - t0)
                reps += 1
    return {name: (statistics.median(values), min(values)) for name, values in times.items()}


def _methods(images: np.ndarray):
    """name -> (forward, forward_backward or None) closures over one batch of images."""
    import cv2
    from skimage.feature import hog as skimage_feature_hog

    from torch_backend.hog_skimage import skimage_hog

    batch, height, width = images.shape
    x_bchw = torch.from_numpy(images).unsqueeze(1)
    x_bhw = torch.from_numpy(images)
    images_uint8 = [np.ascontiguousarray((image * 255).round().astype(np.uint8)) for image in images]
    descriptor = cv2.HOGDescriptor(
        (width // 8 * 8, height // 8 * 8), (16, 16), (8, 8), (8, 8), 9
    )

    def fwd_bwd(call, x):
        def run():
            leaf = x.clone().requires_grad_(True)
            call(leaf).sum().backward()

        return run

    def no_grad(call, x):
        def run():
            with torch.no_grad():
                call(x)

        return run

    methods = {}
    try:
        from torch_backend.hog import hog as gradhog
    except ImportError as error:  # hog.py not there yet: still benchmark the rest
        print(f"# torch_backend.hog not importable ({error}); skipping uoctti/dalal", file=sys.stderr)
    else:
        for variant in ("uoctti", "dalal"):
            call = lambda x, variant=variant: gradhog(x, variant)  # noqa: E731
            methods[f"gradhog {variant}"] = (no_grad(call, x_bchw), fwd_bwd(call, x_bchw))
    methods["gradhog skimage_hog"] = (no_grad(skimage_hog, x_bhw), fwd_bwd(skimage_hog, x_bhw))
    methods["skimage.feature.hog"] = (lambda: [skimage_feature_hog(im) for im in images], None)
    methods["cv2.HOGDescriptor"] = (lambda: [descriptor.compute(im) for im in images_uint8], None)
    return methods


def _opencv_rows(budget_s: float, min_reps: int, max_reps: int) -> tuple[list, list]:
    """``opencv_hog`` on a batch of 64 windows of 64x128 against ``cv2.HOGDescriptor().compute``
    on the same 64 windows (uint8, gamma on: OpenCV's default descriptor); eager and
    ``torch.compile``d. Returns (markdown lines, target lines)."""
    import cv2

    from torch_backend.hog_opencv import opencv_hog

    rng = np.random.default_rng(0)
    base = (_base_image(128 * 4, 64 * 4) * 255).astype(np.float32)
    windows = np.stack([base[y : y + 128, x : x + 64] for y in range(0, 384, 48) for x in range(0, 192, 24)])
    windows = np.clip(windows + rng.normal(scale=2.0, size=windows.shape), 0, 255).round().astype(np.uint8)
    windows_list = [np.ascontiguousarray(w) for w in windows]
    x = torch.from_numpy(windows).float().unsqueeze(1)
    descriptor = cv2.HOGDescriptor()

    def fwd(call):
        def run():
            with torch.no_grad():
                call(x)
        return run

    def fwd_bwd(call):
        def run():
            leaf = x.clone().requires_grad_(True)
            call(leaf).sum().backward()
        return run

    calls = {
        ("cv2.HOGDescriptor().compute", "fwd"): lambda: [descriptor.compute(w) for w in windows_list],
        ("gradhog opencv_hog", "fwd"): fwd(opencv_hog),
        ("gradhog opencv_hog", "fwd+bwd"): fwd_bwd(opencv_hog),
    }
    try:
        compiled = torch.compile(opencv_hog, dynamic=False)
        fwd_bwd(compiled)()  # compile outside the timing
        fwd(compiled)()
        calls[("gradhog opencv_hog, torch.compile", "fwd")] = fwd(compiled)
        calls[("gradhog opencv_hog, torch.compile", "fwd+bwd")] = fwd_bwd(compiled)
    except Exception as error:  # no C++ compiler / unsupported op: report, keep the eager rows
        print(f"# torch.compile failed: {type(error).__name__}: {error}", file=sys.stderr)
    stats = _median_seconds(calls, budget_s, min_reps, max_reps)
    cv_fwd = stats[("cv2.HOGDescriptor().compute", "fwd")]
    lines = [
        "| windows | threads | method | fwd ms median (min) | fwd+bwd ms median (min) | fwd / cv2 fwd "
        "| fwd+bwd / cv2 fwd |",
        "|---|---|---|---|---|---|---|",
    ]
    targets = []
    for name in dict.fromkeys(name for name, _ in calls):
        both = stats.get((name, "fwd+bwd"))
        lines.append(f"| 64 × 64×128 | torch 1 / cv2 1 | {name} | {_fmt_ms(stats[(name, 'fwd')])} | "
                     f"{_fmt_ms(both)} | {_fmt_ratio(stats[(name, 'fwd')], cv_fwd)} | {_fmt_ratio(both, cv_fwd)} |")
        print(lines[-1], flush=True)
        if name.startswith("gradhog"):
            targets.append(_target(f"{name} fwd", stats[(name, "fwd")], cv_fwd, 3.0, "cv2 fwd"))
            targets.append(_target(f"{name} fwd+bwd", both, cv_fwd, 8.0, "cv2 fwd"))
    return lines, targets


def _fmt_ms(stats) -> str:
    return "—" if stats is None else f"{stats[0] * 1e3:.2f} ({stats[1] * 1e3:.2f})"


def _fmt_ratio(numerator, denominator) -> str:
    if numerator is None or denominator is None:
        return "—"
    return f"{numerator[0] / denominator[0]:.2f}×"


def _target(label: str, numerator, denominator, limit: float, peer: str) -> str:
    on_median = numerator[0] / denominator[0]
    on_min = numerator[1] / denominator[1]
    return (
        f"{label}: {on_median:.2f}× {peer} on medians, {on_min:.2f}× on minimums "
        f"(target ≤ {limit:g}×): {'MET' if on_median <= limit else 'MISSED'} on medians, "
        f"{'MET' if on_min <= limit else 'MISSED'} on minimums"
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 128x128, batch 1 and 2")
    parser.add_argument("--markdown", metavar="PATH", help="also write the table to this file")
    parser.add_argument("--opencv", action="store_true", help="only the opencv_hog rows (1 thread)")
    args = parser.parse_args(argv)

    import cv2

    if args.opencv:
        torch.set_num_threads(1)
        cv2.setNumThreads(1)
        load_before = os.getloadavg()
        lines, targets = _opencv_rows(4.0, 6, 40)
        load_after = os.getloadavg()
        print(f"\n1-min load average {load_before[0]:.1f} at the start, {load_after[0]:.1f} at the end")
        print("\n".join(lines) + "\n\n" + "\n".join("- " + t for t in targets))
        return 0

    default_torch_threads = torch.get_num_threads()
    default_cv2_threads = cv2.getNumThreads()
    sizes, batches = (SIZES[:1], [1, 2]) if args.quick else (SIZES, BATCHES)
    budget_s, min_reps, max_reps = (0.5, 2, 6) if args.quick else (4.0, 6, 40)
    load_before = os.getloadavg()
    thread_settings = [(1, 1), (default_torch_threads, default_cv2_threads)]

    header = (
        "| image | batch | threads | method | fwd ms median (min) | fwd+bwd ms median (min) "
        "| fwd / skimage fwd "
        "| fwd / cv2 fwd | fwd+bwd / cv2 fwd |"
    )
    lines = [header, "|" + "|".join("---" for _ in range(header.count("|") - 1)) + "|"]
    targets = []
    for torch_threads, cv2_threads in thread_settings:
        torch.set_num_threads(torch_threads)
        cv2.setNumThreads(cv2_threads)
        threads = f"torch {torch_threads} / cv2 {cv2_threads}"
        for height, width in sizes:
            for batch in batches:
                images = _batch(height, width, batch)
                methods = _methods(images)
                calls = {}
                for name, (forward, forward_backward) in methods.items():
                    calls[(name, "fwd")] = forward
                    if forward_backward is not None:
                        calls[(name, "fwd+bwd")] = forward_backward
                stats = _median_seconds(calls, budget_s, min_reps, max_reps)
                timings = {
                    name: (stats[(name, "fwd")], stats.get((name, "fwd+bwd"))) for name in methods
                }
                sk_fwd = timings["skimage.feature.hog"][0]
                cv_fwd = timings["cv2.HOGDescriptor"][0]
                for name, (fwd, both) in timings.items():
                    lines.append(
                        f"| {height}×{width} | {batch} | {threads} | {name} | {_fmt_ms(fwd)} "
                        f"| {_fmt_ms(both)} | {_fmt_ratio(fwd, sk_fwd)} | {_fmt_ratio(fwd, cv_fwd)} "
                        f"| {_fmt_ratio(both, cv_fwd)} |"
                    )
                    print(lines[-1], flush=True)
                where = f"{height}×{width} B={batch} ({threads})"
                if "gradhog uoctti" in timings and (height, width) == (480, 640):
                    targets.append(_target(
                        f"uoctti fwd {where}", timings["gradhog uoctti"][0], sk_fwd, 0.5, "skimage fwd"
                    ))
                if "gradhog uoctti" in timings and (height, width) == (128, 128):
                    for variant in ("uoctti", "dalal"):
                        targets.append(_target(
                            f"{variant} fwd+bwd {where}", timings[f"gradhog {variant}"][1], cv_fwd,
                            6.0, "cv2 fwd",
                        ))
    torch.set_num_threads(default_torch_threads)
    cv2.setNumThreads(default_cv2_threads)

    command = "python bench/hog_speed.py" + (" --quick" if args.quick else "")
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    machine = (
        f"{platform.processor() or platform.machine()}, {default_torch_threads} torch threads by "
        f"default, torch {torch.__version__}, OpenCV {cv2.__version__}"
    )
    load_after = os.getloadavg()
    load = (
        f"1-min load average {load_before[0]:.1f} at the start, {load_after[0]:.1f} at the end "
        f"({os.cpu_count()} CPUs)"
    )
    print()
    print(load)
    print("\n".join(lines))
    print()
    for target in targets:
        print("- " + target)
    if args.markdown:
        import skimage

        with open(args.markdown, "w", encoding="utf-8") as handle:
            handle.write("# HOG speed\n\n")
            handle.write(f"Command: `{command}` — run {stamp} on {machine}, "
                         f"scikit-image {skimage.__version__}; {load}.\n\n")
            handle.write(__doc__.split("\n\n", 2)[2].strip() + "\n\n")
            handle.write("\n".join(lines) + "\n\n")
            if targets:
                handle.write("Targets (issue 2):\n\n")
                handle.write("\n".join("- " + target for target in targets) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
