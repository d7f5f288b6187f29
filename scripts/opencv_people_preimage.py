"""The image OpenCV's default people detector most wants to see: docs/opencv_people_preimage.png.

    python scripts/opencv_people_preimage.py [--out docs/opencv_people_preimage.png] [--iterations 300]

``torch_backend.invert.reconstruct`` matches a *given descriptor*; a linear SVM's weights
(``cv2.HOGDescriptor_getDefaultPeopleDetector()``, 3780 weights + bias over the 64x128 Dalal-Triggs
descriptor) are not one, so this script runs the same kind of optimisation on a different
objective: maximise the detector's score ``w . opencv_hog(I) + b`` over a 64x128 gray image ``I``,
through the differentiable :func:`torch_backend.hog.opencv_hog`, with ``invert``'s
fixed-contrast parameterisation (mean and std pinned) and its total-variation prior (eq. 9 of
Chiu & Fritz), Adam, a few restarts from noise (the best score is kept). The picture shows, left
to right: the pre-image, its HOG glyphs, and the glyphs of the positive detector weights.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from torch_backend.hog import hog_glyphs, opencv_hog  # noqa: E402
from torch_backend.invert import _normalized, _total_variation  # noqa: E402

WIDTH, HEIGHT = 64, 128


def _cell_glyphs(descriptor: np.ndarray) -> np.ndarray:
    """Glyph picture of a 64x128 Dalal-Triggs descriptor: each 8x8 cell's 9 bins summed over the
    (up to 4) blocks that contain it. Blocks and the cells in a block are column by column."""
    blocks = descriptor.reshape(7, 15, 2, 2, 9)  # (block x, block y, cell x, cell y, bin)
    cells = np.zeros((8, 16, 9))
    for dx in (0, 1):
        for dy in (0, 1):
            cells[dx : dx + 7, dy : dy + 15] += blocks[:, :, dx, dy]
    return hog_glyphs(cells.transpose(2, 1, 0), "dalal", 9, glyph_size=16)


def preimage(iterations: int, restarts: int, smoothness: float, seed: int) -> tuple[np.ndarray, float]:
    import cv2

    detector = torch.from_numpy(cv2.HOGDescriptor_getDefaultPeopleDetector().astype(np.float32).ravel())
    weights, bias = detector[:-1], float(detector[-1])
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(restarts, 1, HEIGHT, WIDTH, generator=generator).requires_grad_(True)
    optimizer = torch.optim.Adam([x], lr=0.05)
    for _ in range(iterations):
        image = 255.0 * _normalized(x).clamp(0.0, 1.0)  # mean/std pinned as in invert
        score = opencv_hog(image) @ weights + bias  # (restarts,)
        loss = (-score + smoothness * _total_variation(image / 255.0)).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        image = 255.0 * _normalized(x).clamp(0.0, 1.0)
        score = opencv_hog(image) @ weights + bias
    best = int(score.argmax())
    return image[best, 0].numpy(), float(score[best])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="docs/opencv_people_preimage.png")
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--restarts", type=int, default=4)
    parser.add_argument("--smoothness", type=float, default=100.0, help="weight of the TV prior")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    import cv2
    from PIL import Image

    image, score = preimage(args.iterations, args.restarts, args.smoothness, args.seed)
    pixels = np.round(image).astype(np.uint8)
    detector = cv2.HOGDescriptor_getDefaultPeopleDetector().ravel()
    # OpenCV's own score of the rounded 8-bit picture, as a check on the differentiable one.
    cv_score = float(cv2.HOGDescriptor().compute(pixels) @ detector[:-1] + detector[-1])
    glyphs = _cell_glyphs(opencv_hog(pixels).numpy())
    positive = _cell_glyphs(np.clip(detector[:-1], 0, None))
    scale = glyphs.shape[0] // HEIGHT
    big = np.kron(pixels.astype(np.float32) / 255.0, np.ones((scale, scale), dtype=np.float32))
    gap = np.ones((glyphs.shape[0], 8), dtype=np.float32)
    sheet = np.concatenate([big, gap, glyphs, gap, positive], axis=1)
    Image.fromarray(np.round(sheet * 255).astype(np.uint8)).save(args.out)
    print(f"wrote {args.out}: detector score {score:.3f} (torch), {cv_score:.3f} (cv2 on the 8-bit picture; "
          f"a detection is > 0)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
