"""HOG pre-image quality in the layout of the seed paper's Table 2 (Chiu & Fritz, BMVC 2015, Sec. 4.1).

For every crop of ``bench/invert_crops.json`` (128 x 128 gray crops of images shipped inside the
scikit-image wheel) we compute its HOG, reconstruct an image from that HOG alone with
``torch_backend.invert.reconstruct`` and score it against the crop with cross-correlation, mutual
information (256 bins, nats) and SSIM (``torch_backend.metrics``). Rows are variant x method, then
ablations of the additions to eq. 9; the paper's published rows (other images: Caltech-101) are
printed beside ours for reference. Seconds per image are wall-clock time of the batched
reconstruction divided by the number of crops, with the given number of torch threads.

    .venv/bin/python bench/invert_quality.py            # full table -> docs/invert_quality.md + sheet
    .venv/bin/python bench/invert_quality.py --quick    # smoke run: 4 crops, few steps, prints only
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from torch_backend.hog import hog, hog_glyphs  # noqa: E402
from torch_backend.images import load_image, save_image  # noqa: E402
from torch_backend.invert import OUTPUT_BLUR, OUTPUT_STD, PRIOR_MEAN, PRIOR_STD, hog_pyramid, reconstruct  # noqa: E402
from torch_backend.metrics import cross_correlation, mutual_information, ssim  # noqa: E402

PAPER_ROWS = [  # Table 2 of the seed paper: Caltech-101 reconstruction set of Kato & Harada, 128 x 128.
    ("UoCTTI", "BoVW [Kato & Harada 2014]", 0.287, 1.182, 0.252),
    ("UoCTTI", "HOGgles [Vondrick et al. 2013]", 0.409, 1.497, 0.271),
    ("UoCTTI", "CNN-HOG [Mahendran & Vedaldi 2015]", 0.632, 1.211, 0.381),
    ("UoCTTI", "CNN-HOGb [Mahendran & Vedaldi 2015]", 0.657, 1.597, 0.387),
    ("UoCTTI", "∇HOG single scale", 0.760, 1.908, 0.433),
    ("Dalal", "∇HOG single scale", 0.170, 1.464, 0.301),
    ("Dalal", "∇HOG multi-scale (1/2)", 0.147, 1.478, 0.293),
    ("Dalal", "∇HOG multi-scale-more (1/2) — uses more information", 0.236, 1.582, 0.338),
]

MORE = " — uses more information"

NOTES = """
## How to read this

* **Ours vs the paper.** The paper's rows are on other images (the Caltech-101 reconstruction set of
  Kato & Harada, objects often on plain backgrounds); ours are on the 24 scikit-image crops. Only
  trends are comparable, not third digits. The paper does not state its MI convention; ours is the
  plug-in estimate on 256 gray levels in nats (what `sklearn.metrics.mutual_info_score` gives on two
  8-bit images), which is strongly biased upwards and grows with the spread of the gray-level
  histogram: our outputs have a narrow gray-level spread (std 0.09), so our MI is not comparable to
  the paper's 1.9 even where CC and SSIM are (A8 shows the effect of a wider output).
* **Intensity.** HOG carries neither the mean gray value nor the global contrast (UoCTTI's signed
  channels do carry the gradient sign, so CC is meaningful; Dalal-HOG is unsigned, so an image and its
  negative have the same descriptor and CC is ~0 by symmetry, whatever the method). Our outputs take
  mean 0.47 and std 0.09 from the disjoint calibration crops (the std that maximised their SSIM:
  an uncertain estimate is best shown with less contrast than the natural 0.11), never from the scored
  image. CC is invariant to that choice; SSIM and MI are not: A8 and the oracle row D show how much.
* **Methods.** *single*: full resolution only. *multi-scale*: 1/8, 1/4, 1/2, 1 linear scales against
  the one given descriptor (cell size divided by the same factor), upsampling between scales.
  *multi-scale-more* is given the HOG of the original at every scale, i.e. **uses more
  information**, and is not comparable to the others (paper Fig. 3b).
* **Ablations** (UoCTTI single scale): A1 is eq. 9 as the paper describes it (noise start, ξ from 100
  decaying, Adam instead of dogleg, 300 steps of 0.03); A2 adds the fixed-contrast prior; A3/A4 are the Poisson start
  from the signed channels alone (1 step), without/with the block-norm (contrast) recovery from the
  texture channels; A5 drops the soft orientation gradient; A6 uses the paper-style decaying ξ; A7 adds
  a restart; A8 returns the natural prior std instead of the SSIM-calibrated one; A9 drops the output
  blur (Gaussian σ 1 px before the final re-scaling; it removes pixel-scale detail that 8-pixel HOG
  cells do not determine) and returns std 0.075 as before it was added. The defaults were chosen on the 6 calibration crops (never scored here): the blur σ 1.0 and
  std 0.09 by the calibration crops' mean SSIM over σ 0…2 px × std 0.05…0.12 (0.521 → 0.533).
  A9 reproduces the previous default exactly. Note that with the blur, A8 (std 0.11) scores a higher
  SSIM here than the calibrated 0.09: the calibration crops prefer less contrast than these crops do;
  the default was left as calibrated, since picking it here would tune on the benchmark.
* **Tried and rejected** (same protocol: chosen on the calibration crops, then scored once here):
  *local contrast matching* — each pixel's deviation from its local mean (Gaussian σ 10 px) re-scaled
  towards the undirected cell gradient magnitude recovered from the texture channels, which do not
  cancel in textured cells as the signed channels do. Calibration SSIM 0.521 → 0.530, but here CC
  0.771 → 0.759 and SSIM 0.420 → 0.422: it boosts texture whose local structure the reconstruction
  gets wrong (the calibration crops are all textures). Not in the code. After that first look the
  output blur was tried instead, its σ and std again chosen on the calibration crops alone; this table
  is the second (and last) time the benchmark crops were scored in this round.
* **Why multi-scale loses** (calibration crops, diagnostic): the Poisson start from the 1/8-scale
  descriptor, upsampled, is about as good as the full-resolution one (CC 0.59 vs 0.67), but the 100
  descent steps at the coarse scales (cell sizes 1, 2, 4 px on 16…64 px images) move it away from the
  original (multi-scale output CC 0.55, multi-scale-more 0.58): at 1-pixel cells HOG constrains little
  and the given full-resolution descriptor is not the HOG of the down-sampled image. A full-resolution
  Poisson start followed by full-resolution descent (our single scale) avoids both.
* **Time** is wall-clock on a 2-core machine shared with other jobs (load varied during the run): treat
  it as an upper bound.
"""
# (label, variant, bilinear, method, reconstruct keyword arguments)
MAIN_ROWS = [
    ("UoCTTI", "ours, single scale", "uoctti", False, "single", {}),
    ("UoCTTI bilinear (HOGb)", "ours, single scale", "uoctti", True, "single", {}),
    ("UoCTTI", "ours, multi-scale", "uoctti", False, "multiscale", {}),
    ("UoCTTI", "ours, multi-scale-more" + MORE, "uoctti", False, "multiscale_more", {}),
    ("Dalal", "ours, single scale", "dalal", False, "single", {}),
    ("Dalal", "ours, multi-scale", "dalal", False, "multiscale", {}),
    ("Dalal", "ours, multi-scale-more" + MORE, "dalal", False, "multiscale_more", {}),
]
# Eq. 9 from a noise start gets a fair budget of its own: 300 steps at a 10x larger step (the
# defaults' 100 steps of 0.003 are tuned for refining the Poisson start, not for starting from noise).
PAPER_EQ9 = dict(init="noise", smoothness=100.0, smoothness_end=0.01, smoothness_decay=0.5,
                 fixed_contrast=False, recover_contrast=False, soft_orientation_gradient=False,
                 learning_rate=0.03, iterations=300)
ABLATION_ROWS = [
    ("UoCTTI", "A1 eq. 9 as in the paper: noise start, ξ 100→0.01, raw pixels (300 steps, lr 0.03)", "uoctti", False, "single", PAPER_EQ9),
    ("UoCTTI", "A2 A1 + fixed-contrast prior", "uoctti", False, "single", {**PAPER_EQ9, "fixed_contrast": True}),
    ("UoCTTI", "A3 Poisson start only (no contrast recovery, 1 step)", "uoctti", False, "single",
     dict(iterations=1, recover_contrast=False)),
    ("UoCTTI", "A4 Poisson start with contrast recovery (1 step)", "uoctti", False, "single", dict(iterations=1)),
    ("UoCTTI", "A5 default without the soft orientation gradient", "uoctti", False, "single",
     dict(soft_orientation_gradient=False)),
    ("UoCTTI", "A6 default with ξ decaying 100→10 (paper-style schedule)", "uoctti", False, "single",
     dict(smoothness=100.0, smoothness_end=10.0)),
    ("UoCTTI", "A7 default with 2 restarts (best HOG distance)", "uoctti", False, "single", dict(restarts=2)),
    ("UoCTTI", "A8 default returned at the prior std 0.11 (no SSIM-calibrated shrinkage)", "uoctti", False,
     "single", dict(output_std=PRIOR_STD)),
    ("UoCTTI", "A9 default without the output blur, at std 0.075 (the defaults before the blur was added)",
     "uoctti", False, "single", dict(output_blur=0.0, output_std=0.075)),
]


def load_crops(limit: int | None = None) -> tuple[torch.Tensor, list[dict]]:
    """The benchmark crops as a ``(N, 1, 128, 128)`` float32 batch in [0, 1], and their records."""
    import skimage.data

    spec = json.loads((ROOT / "bench" / "invert_crops.json").read_text())
    folder = Path(os.path.dirname(skimage.data.__file__))
    size = spec["size"]
    records = spec["benchmark"][:limit] if limit else spec["benchmark"]
    crops = []
    for record in records:
        gray = load_image(folder / record["image"], mode="gray")[..., 0]
        crop = gray[record["row"]:record["row"] + size, record["col"]:record["col"] + size]
        if crop.shape != (size, size):
            raise ValueError(f"crop {record} falls outside {record['image']} ({gray.shape})")
        crops.append(torch.from_numpy(np.ascontiguousarray(crop)))
    return torch.stack(crops).unsqueeze(1), records


def run_row(crops, variant, bilinear, method, options, batch_size, iterations):
    """Reconstruct all crops; returns (reconstructions, seconds per image)."""
    options = dict(options)
    if iterations is not None and "iterations" not in options:
        options["iterations"] = iterations
    outputs = []
    elapsed = 0.0
    for start in range(0, crops.shape[0], batch_size):
        chunk = crops[start:start + batch_size]
        with torch.no_grad():
            if method == "multiscale_more":
                features = hog_pyramid(chunk, variant, bilinear_orientation=bilinear)
            else:
                features = hog(chunk, variant, bilinear_orientation=bilinear)
        began = time.perf_counter()
        outputs.append(reconstruct(features, variant, tuple(chunk.shape[-2:]), method,
                                   bilinear_orientation=bilinear, **options))
        elapsed += time.perf_counter() - began
    return torch.cat(outputs), elapsed / crops.shape[0]


def scores(recon, crops):
    recon, crops = recon.double(), crops.double()
    return (cross_correlation(recon, crops), mutual_information(recon, crops), ssim(recon, crops))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: 4 crops, 10 steps, main rows, no files")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: the CPU is shared)")
    parser.add_argument("--batch-size", type=int, default=24, help="crops reconstructed together")
    parser.add_argument("--no-ablations", action="store_true", help="only the variant x method rows")
    parser.add_argument("--out", default=None, help="markdown table (default docs/invert_quality.md; none with --quick)")
    parser.add_argument("--sheet", default=None, help="example sheet PNG (default docs/invert_sheet.png; none with --quick)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    crops, records = load_crops(4 if args.quick else None)
    iterations = 10 if args.quick else None
    rows = MAIN_ROWS + ([] if args.quick or args.no_ablations else ABLATION_ROWS)
    # Warm-up (one-off costs: the bin-direction probe, allocator) so that s/image is steady-state.
    for variant, bilinear in (("uoctti", False), ("uoctti", True), ("dalal", False)):
        with torch.no_grad():
            features = hog(crops[:1, :, :32, :32], variant, bilinear_orientation=bilinear)
        reconstruct(features, variant, (32, 32), bilinear_orientation=bilinear, iterations=1)
    results = []
    default_recon = None
    for label, method_label, variant, bilinear, method, options in rows:
        recon, seconds = run_row(crops, variant, bilinear, method, options, args.batch_size, iterations)
        cc, mi, quality = scores(recon, crops)
        results.append((label, method_label, cc.mean().item(), mi.mean().item(), quality.mean().item(), seconds))
        print(f"{label:24s} {method_label:70s} CC {results[-1][2]:.3f}  MI {results[-1][3]:.3f}  "
              f"SSIM {results[-1][4]:.3f}  {seconds:.2f} s/image", flush=True)
        if default_recon is None:
            default_recon = (recon, cc, quality)

    # Diagnostic only: how much the HOG-free intensity prior costs, by re-mapping the default result
    # to each original's own mean and std (this peeks at the original: not a reconstruction result).
    recon = default_recon[0].double()
    mean, std = recon.mean(dim=(2, 3), keepdim=True), recon.std(dim=(2, 3), keepdim=True, unbiased=False)
    target_mean = crops.double().mean(dim=(2, 3), keepdim=True)
    target_std = crops.double().std(dim=(2, 3), keepdim=True, unbiased=False)
    oracle = (target_mean + target_std * (recon - mean) / std.clamp_min(1e-8)).clamp(0, 1)
    cc, mi, quality = scores(oracle, crops)
    oracle_row = ("UoCTTI", "D diagnostic: default re-mapped to the ORIGINAL's mean/std (peeks; not a result)",
                  cc.mean().item(), mi.mean().item(), quality.mean().item(), float("nan"))

    lines = [
        "# HOG pre-image reconstruction: quality (seed paper Table 2 layout)",
        "",
        f"{crops.shape[0]} crops of 128 x 128 gray (bench/invert_crops.json: natural images shipped with "
        "scikit-image), HOG cell 8, 9 orientations. CC = Pearson correlation, MI = mutual information "
        "(plug-in, 256 gray-level bins, nats), SSIM = Wang et al. 2004 (Gaussian σ = 1.5, data range 1); "
        "means over the crops. s/image = batched wall-clock time / crops on "
        f"{platform.processor() or platform.machine()} with {args.threads} torch thread(s), "
        f"torch {torch.__version__}. Intensity prior: mean {PRIOR_MEAN}, std {PRIOR_STD} during the "
        f"optimisation, output std {OUTPUT_STD} (both from the disjoint calibration crops).",
        "",
        "Reproduce: `.venv/bin/python bench/invert_quality.py`" + (" --quick" if args.quick else ""),
        "",
        "| HOG | method | CC | MI | SSIM | s/image |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for label, method_label, cc_value, mi_value, ssim_value, seconds in results + [oracle_row]:
        time_text = "—" if seconds != seconds else f"{seconds:.2f}"
        lines.append(f"| {label} | {method_label} | {cc_value:.3f} | {mi_value:.3f} | {ssim_value:.3f} | {time_text} |")
    lines += [
        "",
        "From the paper, other images (Caltech-101 set of Kato & Harada, 128 x 128; their MI "
        "convention is not stated):",
        "",
        "| HOG | method | CC | MI | SSIM |",
        "|---|---|---:|---:|---:|",
    ]
    for label, method_label, cc_value, mi_value, ssim_value in PAPER_ROWS:
        lines.append(f"| {label} | {method_label} (from the paper, other images) | {cc_value:.3f} | {mi_value:.3f} | {ssim_value:.3f} |")
    table = "\n".join(lines) + "\n" + NOTES
    print()
    print(table)

    out = Path(args.out) if args.out else (None if args.quick else ROOT / "docs" / "invert_quality.md")
    if out is not None:
        out.write_text(table)
        print(f"wrote {out}")
    sheet_path = Path(args.sheet) if args.sheet else (None if args.quick else ROOT / "docs" / "invert_sheet.png")
    if sheet_path is not None:
        from torch_backend.cli_invert import make_sheet

        recon, cc, quality = default_recon
        picks = list(range(0, crops.shape[0], max(1, crops.shape[0] // 6)))[:6]
        features = hog(crops[picks], "uoctti")
        panels = []
        for row, index in enumerate(picks):
            caption = f"{records[index]['image']}  uoctti single  CC {cc[index]:.3f}  SSIM {quality[index]:.3f}"
            panels.append(make_sheet(crops[index, 0].numpy(), hog_glyphs(features[row], "uoctti"),
                                     recon[index, 0].numpy(), caption))
        save_image(sheet_path, np.concatenate(panels, axis=0))
        print(f"wrote {sheet_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
