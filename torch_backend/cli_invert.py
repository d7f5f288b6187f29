"""``gradhog invert IMAGE``: HOG of a photo, then an image reconstructed from that HOG alone.

The photo is converted to gray (BT.601) at its own size. HOG cells only describe whole
``cell_size x cell_size`` blocks, so the descriptor is computed on the top-left region covered by
whole cells (``(H // c) * c`` by ``(W // c) * c``); that region is reconstructed, and the strip of
fewer than ``c`` pixels at the bottom/right, which no cell describes, is filled by repeating the last
reconstructed row/column. The written PNG always has the input's size. The original is used only to
compute the descriptor and, on the optional sheet, to print CC and SSIM; the reconstruction never
sees it.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from .cli import CliError

METHOD_NAMES = {"single": "single", "multiscale": "multiscale", "multiscale-more": "multiscale_more"}


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``invert`` on the ``gradhog`` sub-parsers."""
    parser = subparsers.add_parser(
        "invert",
        help="reconstruct a gray image from the HOG of a photo (HOG pre-image)",
        description=(
            "Compute the HOG of IMAGE (gray, at its own size) and reconstruct an image from that "
            "descriptor alone by gradient descent (Chiu & Fritz 2015, Sec. 4.1). Writes a gray PNG "
            "of the same size as IMAGE. 'multiscale-more' uses more information (the HOG of the "
            "original at 4 scales) and is not comparable to the other methods."
        ),
    )
    parser.add_argument("image", metavar="IMAGE", help="photo to describe (any format Pillow reads)")
    parser.add_argument("--variant", choices=("uoctti", "dalal"), default="uoctti", help="HOG variant (default uoctti)")
    parser.add_argument("--bilinear", action="store_true", help="uoctti: bilinear orientation assignment (HOGb)")
    parser.add_argument("--method", choices=tuple(METHOD_NAMES), default="single", help="reconstruction method (default single)")
    parser.add_argument("--cell-size", type=int, default=8, help="HOG cell size in pixels (default 8)")
    parser.add_argument("--iterations", type=int, default=None, help="optimisation steps per scale (default: library default)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--out", default=None, help="reconstruction PNG (default: <IMAGE stem>_invert.png here)")
    parser.add_argument("--sheet", default=None, help="also write original | HOG glyphs | reconstruction with CC and SSIM")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    parser.set_defaults(func=run)
    return parser


def _progress_printer(quiet: bool):
    last = [-1]

    def callback(progress: float, message: str) -> bool:
        tenth = int(progress * 10)
        if not quiet and tenth != last[0]:
            last[0] = tenth
            print(f"  {progress * 100:5.1f}%  {message}", file=sys.stderr, flush=True)
        return True

    return callback


def make_sheet(original: np.ndarray, glyphs: np.ndarray, reconstruction: np.ndarray, caption: str) -> np.ndarray:
    """``original | glyphs | reconstruction`` side by side with a caption band: ``(H + 16, 3W + 8)`` uint8.

    ``original`` and ``reconstruction`` are ``H x W`` gray in [0, 1]; ``glyphs`` any size (resized to
    fit ``H x W`` keeping its aspect ratio). The caption is drawn with PIL's default font.
    """
    from PIL import Image, ImageDraw

    height, width = original.shape
    to_u8 = lambda a: np.round(np.clip(a, 0, 1) * 255).astype(np.uint8)  # noqa: E731
    glyph_image = Image.fromarray(to_u8(glyphs))
    scale = min(width / glyph_image.width, height / glyph_image.height)
    glyph_image = glyph_image.resize((max(1, round(glyph_image.width * scale)), max(1, round(glyph_image.height * scale))), Image.BILINEAR)
    band = 16
    sheet = Image.new("L", (3 * width + 8, height + band), 255)
    sheet.paste(Image.fromarray(to_u8(original)), (0, 0))
    glyph_panel = Image.new("L", (width, height), 0)
    glyph_panel.paste(glyph_image, ((width - glyph_image.width) // 2, (height - glyph_image.height) // 2))
    sheet.paste(glyph_panel, (width + 4, 0))
    sheet.paste(Image.fromarray(to_u8(reconstruction)), (2 * width + 8, 0))
    ImageDraw.Draw(sheet).text((2, height + 2), caption, fill=0)
    return np.asarray(sheet)


def run(args: argparse.Namespace) -> int:
    """Execute ``gradhog invert``; returns the exit code."""
    from .hog import hog, hog_glyphs
    from .images import load_image, save_image
    from .invert import ReconstructionCancelled, hog_pyramid, reconstruct
    from .metrics import cross_correlation, ssim

    if args.cell_size < 1:
        raise CliError(f"--cell-size must be >= 1, got {args.cell_size}")
    if args.iterations is not None and args.iterations < 1:
        raise CliError(f"--iterations must be >= 1, got {args.iterations}")
    if args.bilinear and args.variant != "uoctti":
        raise CliError("--bilinear only applies to --variant uoctti")
    method = METHOD_NAMES[args.method]
    if method != "single" and args.cell_size % 8:
        raise CliError(f"--method {args.method} needs a cell size divisible by 8 (scales 1/8..1), got {args.cell_size}")
    source = Path(args.image)
    out = Path(args.out) if args.out else Path(f"{source.stem}_invert.png")
    for target in (out, Path(args.sheet) if args.sheet else None):
        if target is not None and not target.parent.exists():
            raise CliError(f"{target}: folder {target.parent} does not exist")
    try:
        gray = load_image(source, mode="gray")[..., 0]
    except (FileNotFoundError, ValueError) as error:
        raise CliError(str(error)) from None
    height, width = gray.shape
    cell = args.cell_size
    covered_h, covered_w = (height // cell) * cell, (width // cell) * cell
    if covered_h < 2 * cell or covered_w < 2 * cell:
        raise CliError(f"{source}: image is {width} x {height} px; need at least {2 * cell} x {2 * cell} (two cells)")

    covered = torch.from_numpy(np.ascontiguousarray(gray[:covered_h, :covered_w])).view(1, 1, covered_h, covered_w)
    with torch.no_grad():
        if method == "multiscale_more":
            features = hog_pyramid(covered, args.variant, cell_size=cell, bilinear_orientation=args.bilinear)
            glyph_features = features[-1]
        else:
            features = hog(covered, args.variant, cell_size=cell, bilinear_orientation=args.bilinear)
            glyph_features = features
    started = time.perf_counter()
    try:
        recon = reconstruct(
            features, args.variant, (covered_h, covered_w), method, cell_size=cell,
            bilinear_orientation=args.bilinear, iterations=args.iterations, seed=args.seed,
            callback=_progress_printer(args.quiet),
        )
    except ReconstructionCancelled as error:  # pragma: no cover - the CLI callback never cancels
        raise CliError(str(error)) from None
    elapsed = time.perf_counter() - started
    recon = recon[0, 0].numpy()
    # The uncovered strip (< one cell) is not described by the HOG: repeat the last row/column.
    recon = np.pad(recon, ((0, height - covered_h), (0, width - covered_w)), mode="edge")
    save_image(out, recon)

    full_recon = torch.from_numpy(recon).view(1, 1, height, width).double()
    full_gray = torch.from_numpy(gray).view(1, 1, height, width).double()
    cc = cross_correlation(full_recon, full_gray).item()
    quality = ssim(full_recon, full_gray).item() if min(height, width) >= 11 else float("nan")
    label = f"{args.variant}{' bilinear' if args.bilinear else ''} {args.method}"
    if method == "multiscale_more":
        label += " (uses more information)"
    print(f"{out}: {width} x {height} reconstructed from {label} HOG in {elapsed:.1f} s; CC {cc:.3f}, SSIM {quality:.3f}")
    if args.sheet:
        glyphs = hog_glyphs(glyph_features[0], args.variant)
        sheet = make_sheet(gray, glyphs, recon, f"{label}  CC {cc:.3f}  SSIM {quality:.3f}")
        save_image(Path(args.sheet), sheet)
        print(f"{args.sheet}: original | HOG | reconstruction")
    return 0
