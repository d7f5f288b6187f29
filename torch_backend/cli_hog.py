"""``gradhog hog IMAGE``: HOG features of a photo as a star-glyph picture next to the photo.

Reads any Pillow-readable photo (EXIF orientation honoured, alpha dropped, 16-bit handled), computes
the HOG of ``--backend`` at the photo's own size and writes ``photo | glyphs`` as one PNG; ``--npy``
also saves the raw features: ``(C, Hc, Wc)`` for ``uoctti``/``dalal``, the library's own descriptor
(1-D) for ``skimage`` (``skimage.feature.hog`` defaults) and ``opencv`` (``cv2.HOGDescriptor``
defaults, one window = the photo cropped to whole cells).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from .cli import CliError

#: Longest side (pixels) of the glyph picture before the glyph tiles are shrunk below 21 px.
MAX_GLYPH_PICTURE = 2048
BACKENDS = ("uoctti", "dalal", "skimage", "opencv")


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``hog`` on the ``gradhog`` sub-parsers."""
    parser = subparsers.add_parser(
        "hog",
        help="HOG features of a photo, drawn as star glyphs next to it",
        description=(
            "Compute the differentiable HOG of IMAGE (uoctti = VLFeat's vl_hog UoCTTI, dalal = Chiu & "
            "Fritz eq. 1-7) and write the photo and its HOG glyph picture side by side."
        ),
    )
    parser.add_argument("image", metavar="IMAGE", help="photo (any format Pillow reads)")
    parser.add_argument(
        "--backend", "--variant", dest="backend", choices=BACKENDS, default="uoctti",
        help="uoctti / dalal (torch_backend.hog), skimage (skimage.feature.hog drop-in) or opencv "
        "(cv2.HOGDescriptor drop-in); default uoctti",
    )
    parser.add_argument("--cell-size", type=int, default=8, help="cell size in pixels (default 8)")
    parser.add_argument("--num-bins", type=int, default=9, help="orientation bins (default 9)")
    parser.add_argument("--bilinear", action="store_true", help="uoctti: bilinear orientation assignment (HOGb)")
    parser.add_argument("--out", default=None, help="picture to write (default: <IMAGE stem>_hog.png here)")
    parser.add_argument("--npy", default=None, help="also save the features (C, Hc, Wc) as float32 .npy")
    parser.add_argument("--glyph-size", type=int, default=None, help="glyph tile side in pixels (default 21, smaller for big photos)")
    parser.set_defaults(func=run)
    return parser


def side_by_side(photo: np.ndarray, glyphs: np.ndarray, gap: int = 8) -> np.ndarray:
    """``photo`` (``H x W x 3`` in [0, 1]) scaled to the glyph picture's height, a white gap, then
    the glyphs (``Hg x Wg`` in [0, 1]) as gray: an ``Hg x (W' + gap + Wg) x 3`` float32 image."""
    from PIL import Image

    height = glyphs.shape[0]
    width = max(1, round(photo.shape[1] * height / photo.shape[0]))
    pixels = Image.fromarray(np.round(np.clip(photo, 0, 1) * 255).astype(np.uint8))
    scaled = np.asarray(pixels.resize((width, height), Image.BILINEAR), dtype=np.float32) / 255.0
    sheet = np.ones((height, width + gap + glyphs.shape[1], 3), dtype=np.float32)
    sheet[:, :width] = scaled
    sheet[:, width + gap :] = glyphs[..., None]
    return sheet


def _features(photo: np.ndarray, args: argparse.Namespace):
    """``(features to save, (bins, Hc, Wc) cell histograms to draw)`` of an ``H x W x 3`` photo."""
    import torch

    from .hog import hog, opencv_hog, skimage_hog
    from .images import to_tensor

    c, n = args.cell_size, args.num_bins
    if args.backend in ("uoctti", "dalal"):
        features = hog(to_tensor(photo), args.backend, c, n, args.bilinear)[0]
        return features, features
    gray = photo.astype(np.float64).mean(axis=-1)
    if args.backend == "skimage":
        features = skimage_hog(gray, orientations=n, pixels_per_cell=(c, c))
        cells = skimage_hog(gray, orientations=n, pixels_per_cell=(c, c), cells_per_block=(1, 1),
                            feature_vector=False)  # (Hc, Wc, 1, 1, n), each cell L2-Hys normalised
        return features, cells[:, :, 0, 0].permute(2, 0, 1)
    # opencv: one window = the photo cropped to whole cells, 2x2-cell blocks every cell.
    bgr = np.ascontiguousarray(np.round(np.clip(photo[..., ::-1], 0, 1) * 255).astype(np.uint8))
    rows, cols = photo.shape[0] // c, photo.shape[1] // c
    settings = dict(win_size=(cols * c, rows * c), block_size=(2 * c, 2 * c), block_stride=(c, c),
                    cell_size=(c, c), nbins=n)
    features = opencv_hog(bgr[: rows * c, : cols * c], **settings)
    # Blocks column by column, cells in a block column by column: average each cell's 4 copies.
    blocks = features.view(cols - 1, rows - 1, 2, 2, n)
    cells = torch.zeros(cols, rows, n)
    for dx in (0, 1):
        for dy in (0, 1):
            cells[dx : dx + cols - 1, dy : dy + rows - 1] += blocks[:, :, dx, dy]
    copies = torch.zeros(cols, rows, 1)
    for dx in (0, 1):
        for dy in (0, 1):
            copies[dx : dx + cols - 1, dy : dy + rows - 1] += 1
    return features, (cells / copies).permute(2, 1, 0)


def run(args: argparse.Namespace) -> int:
    import torch

    from .hog import hog_glyphs
    from .images import load_image, save_image

    if args.cell_size < 1:
        raise CliError(f"--cell-size must be a positive integer, got {args.cell_size}")
    if args.num_bins < 1:
        raise CliError(f"--num-bins must be a positive integer, got {args.num_bins}")
    if args.glyph_size is not None and args.glyph_size < 3:
        raise CliError(f"--glyph-size must be at least 3, got {args.glyph_size}")
    image_path = Path(args.image)
    out = Path(args.out) if args.out else Path(f"{image_path.stem}_hog.png")
    for target in (out, Path(args.npy) if args.npy else None):
        if target is not None and not target.parent.is_dir():
            raise CliError(f"{target}: folder {target.parent} does not exist")
    try:
        photo = load_image(image_path, mode="rgb")
    except (FileNotFoundError, ValueError) as error:
        raise CliError(str(error)) from None
    height, width = photo.shape[:2]
    if args.bilinear and args.backend != "uoctti":
        raise CliError("--bilinear is a uoctti option")
    if min(height, width) < max(2 * args.cell_size, 3) or (args.backend == "skimage" and min(height, width) < 3 * args.cell_size):
        raise CliError(f"{image_path}: {width}x{height} pixels is too small for --cell-size {args.cell_size}")

    with torch.no_grad():
        features, cells = _features(photo, args)
    glyph_size = args.glyph_size or int(np.clip(MAX_GLYPH_PICTURE // max(cells.shape[1:]), 5, 21))
    glyph_variant = "uoctti" if args.backend == "uoctti" else "dalal"  # dalal: plain unsigned bins
    glyphs = hog_glyphs(cells, glyph_variant, args.num_bins, glyph_size=glyph_size)
    try:
        save_image(out, side_by_side(photo, glyphs))
        if args.npy:
            np.save(args.npy, features.numpy().astype(np.float32))
    except (OSError, ValueError) as error:
        raise CliError(str(error)) from None
    saved = f" and {args.npy}" if args.npy else ""
    print(
        f"{image_path}: {width}x{height} px -> {args.backend} HOG {tuple(features.shape)} "
        f"({'channels x cell rows x cell cols' if features.ndim == 3 else 'descriptor'}); wrote {out}{saved}"
    )
    return 0
