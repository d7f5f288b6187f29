"""A differentiable drop-in for OpenCV's ``cv2.HOGDescriptor(...).compute`` (OpenCV 4.x).

:func:`opencv_hog` returns what ``cv2.HOGDescriptor(win_size, block_size, block_stride, cell_size,
nbins, 1, win_sigma, HOGDescriptor_L2Hys, l2_hys_threshold, gamma_correction, 64,
signed_gradient).compute(image, win_stride, padding)`` returns -- the same length, the same order,
the same values up to float32 rounding -- as a torch tensor that autograd can differentiate with
respect to the image. The steps follow ``modules/objdetect/src/hog.cpp`` (``computeGradient``,
``HOGCache::init``, ``getBlock``, ``normalizeBlockHistogram``) and ``cv::fastAtan2``:

1. padding of the image by ``padding`` rounded up to the cache stride
   ``gcd(win_stride, block_stride)``, border ``BORDER_REFLECT_101`` (also one pixel further for the
   derivatives, so the border derivatives are 0);
2. gamma correction by the look-up table ``sqrt(v)`` (float32), derivatives ``[-1, 0, 1]``;
   for 3 channels (BGR), per pixel the channel with the largest ``dx² + dy²`` (ties: see
   :func:`_strongest_channel`);
3. magnitude ``sqrt(dx² + dy²)`` and orientation from OpenCV's polynomial ``fastAtan2``
   (about 0.01 degree from ``atan2``; reproduced, with its own derivative), linearly interpolated
   between the two nearest of ``nbins`` bins over 0-180 (or 0-360 signed) degrees;
4. per block, every pixel's two orientation votes weighted by a Gaussian spatial window
   (``sigma = win_sigma``, default ``(block_w + block_h) / 8``) and bilinearly spread over the
   2x2 cells around it (trilinear interpolation); cells in a block and blocks in a window are
   listed column by column, as OpenCV does;
5. L2-Hys per block as OpenCV: ``v / (||v|| + 0.1 * len(v))``, clipped at 0.2, then
   ``v / (||v|| + 1e-3)`` (OpenCV 4.11's ``compute`` clips at 0.2 whatever its
   ``L2HysThreshold`` says -- checked live in the tests -- and so does this drop-in);
6. windows of ``win_size`` every ``win_stride`` pixels over the padded image, row by row.

All sizes are OpenCV ``Size``s: ``(width, height)``. Values differ from OpenCV's by float32
rounding only (sums in another order; a fused multiply-add here and there in OpenCV's SIMD
code): the tests check ``<= 1e-4`` absolute live against ``cv2``, typically ~1e-7. A float64
input is computed in float64 with the same formulas (what ``gradcheck`` verifies).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from .hog_skimage import _ExactSqrt

__all__ = ["opencv_hog", "opencv_hog_descriptor_size", "OpenCVHOG"]

# cv::fastAtan2's polynomial (mathfuncs_core): atan(c) ~ c (p1 + c² (p3 + c² (p5 + c² p7))) degrees.
_ATAN_P = tuple(
    float(np.float32(p) * np.float32(180 / math.pi))
    for p in (0.9997878412794807, -0.3258083974640975, 0.1555786518463281, -0.04432655554792128)
)
# HOGCache::normalizeBlockHistogram's clip in OpenCV 4.11 (its L2HysThreshold is not read there).
_OPENCV_L2HYS_CLIP = 0.2
_ATAN_EPS = float(np.float32(np.finfo(np.float64).eps))  # (float)DBL_EPSILON


def _size(value, name: str) -> tuple[int, int]:
    try:
        width, height = value
        size = (int(width), int(height))
    except (TypeError, ValueError):
        raise ValueError(f"opencv_hog: {name} must be a (width, height) pair, got {value!r}")
    if size[0] != width or size[1] != height or min(size) < 0:
        raise ValueError(f"opencv_hog: {name} must be a (width, height) pair of integers, got {value!r}")
    return size


def _reflect101(index: np.ndarray, length: int) -> np.ndarray:
    """``cv::borderInterpolate(i, length, BORDER_REFLECT_101)`` for an array of indices."""
    if length == 1:
        return np.zeros_like(index)
    period = 2 * (length - 1)
    index = np.abs(index) % period
    return np.where(index >= length, period - index, index)


def _fast_atan2_degrees(dy: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
    """``cv::fastAtan2(dy, dx)`` in degrees ``[0, 360)``: a degree-7 odd polynomial of
    ``min(|dx|, |dy|) / max(|dx|, |dy|)``, mirrored into the octants (its value jumps by 0.02
    degree across ``|dx| == |dy|``, as OpenCV's)."""
    ax, ay = dx.abs(), dy.abs()
    steep = ax < ay
    c = torch.minimum(ax, ay) / (torch.maximum(ax, ay) + _ATAN_EPS)
    c2 = c * c
    p1, p3, p5, p7 = _ATAN_P
    a = (((p7 * c2 + p5) * c2 + p3) * c2 + p1) * c
    a = torch.where(steep, 90.0 - a, a)
    a = torch.where(dx < 0, 180.0 - a, a)
    return torch.where(dy < 0, 360.0 - a, a)


def _strongest_channel(dx: torch.Tensor, dy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B, 3, H, W)`` BGR derivatives -> those of the channel with the largest ``dx² + dy²``.

    On ties, OpenCV's vectorised loop keeps the first channel in BGR order (numpy's ``argmax``).
    """
    magnitude = (dx * dx + dy * dy).detach()
    choice = magnitude.argmax(dim=1, keepdim=True)
    return dx.gather(1, choice), dy.gather(1, choice)


class _Magnitude(torch.autograd.Function):
    """``sqrt(dx² + dy²)`` whose derivative is 0 (not NaN) at ``dx = dy = 0``."""

    @staticmethod
    def forward(ctx, dx, dy):
        magnitude = torch.sqrt(dx * dx + dy * dy)
        ctx.save_for_backward(dx, dy, magnitude)
        return magnitude

    @staticmethod
    def backward(ctx, grad):
        dx, dy, magnitude = ctx.saved_tensors
        positive = magnitude > 0
        scale = torch.where(positive, grad / torch.where(positive, magnitude, 1.0), 0.0)
        return scale * dx, scale * dy


@lru_cache(maxsize=32)
def _block_weights(block: int, cell: int, sigma: float) -> np.ndarray:
    """``(block, block // cell)`` float32: along one axis of a block, each pixel's Gaussian
    window factor times its linear weight for each cell (``HOGCache::init``; the 2-D weight is
    the product of the row and column factors)."""
    position = np.arange(block, dtype=np.float32)
    offset = position - np.float32(block * 0.5)
    gaussian = np.exp(-(offset * offset) * np.float32(1.0 / (sigma * sigma * 2.0)))
    centre = (position + np.float32(0.5)) / np.float32(cell) - np.float32(0.5)
    cells = np.arange(block // cell, dtype=np.float32)
    linear = np.clip(np.float32(1.0) - np.abs(centre[:, None] - cells[None, :]), 0.0, None)
    return (gaussian[:, None] * linear).astype(np.float32)


def _as_batch(image) -> tuple[torch.Tensor, bool]:
    """``(B, C, H, W)`` float tensor on OpenCV's 0-255 scale, and whether a batch was given."""
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8:
            raise ValueError(f"opencv_hog: a NumPy image must be uint8 as for cv2, got {image.dtype}")
        if image.ndim == 2:
            image = image[:, :, None]
        if image.ndim != 3 or image.shape[2] not in (1, 3):
            raise ValueError(f"opencv_hog: expected a (H, W) or (H, W, 3) BGR image, got shape {image.shape}")
        tensor = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).to(torch.float32)
        return tensor[None], False
    if not isinstance(image, torch.Tensor):
        raise ValueError(f"opencv_hog: image must be a numpy.ndarray or torch.Tensor, got {type(image).__name__}")
    if image.ndim != 4 or image.shape[1] not in (1, 3):
        raise ValueError(f"opencv_hog: expected a (B, C, H, W) tensor with C = 1 or 3, got {tuple(image.shape)}")
    if not image.dtype.is_floating_point:
        image = image.to(torch.float32)
    elif image.dtype not in (torch.float32, torch.float64):
        image = image.to(torch.float32)
    return image, True


def opencv_hog_descriptor_size(win_size=(64, 128), block_size=(16, 16), block_stride=(8, 8),
                               cell_size=(8, 8), nbins: int = 9) -> int:
    """Length of one window's descriptor (``HOGDescriptor::getDescriptorSize``)."""
    blocks = [(w - b) // s + 1 for w, b, s in zip(win_size, block_size, block_stride)]
    cells = [b // c for b, c in zip(block_size, cell_size)]
    return blocks[0] * blocks[1] * cells[0] * cells[1] * nbins


def _gradient_votes(image: torch.Tensor, pad: tuple[int, int], nbins: int, gamma: bool, signed: bool):
    """Steps 1-3: ``(B, C, H, W)`` -> orientation votes ``(B, nbins, H + 2 pad_h, W + 2 pad_w)``."""
    batch, channels, height, width = image.shape
    pad_w, pad_h = pad
    rows = _reflect101(np.arange(-pad_h - 1, height + pad_h + 1), height)
    cols = _reflect101(np.arange(-pad_w - 1, width + pad_w + 1), width)
    if gamma:
        image = _ExactSqrt.apply(image.clamp(min=0))  # LUT sqrt(v): correctly rounded, as std::sqrt
    padded = image.index_select(2, torch.from_numpy(rows).to(image.device))
    padded = padded.index_select(3, torch.from_numpy(cols).to(image.device))
    dx = padded[:, :, 1:-1, 2:] - padded[:, :, 1:-1, :-2]
    dy = padded[:, :, 2:, 1:-1] - padded[:, :, :-2, 1:-1]
    if channels == 3:
        dx, dy = _strongest_channel(dx, dy)
    magnitude = _Magnitude.apply(dx, dy)
    # OpenCV: radians = degrees * (float)(pi / 180); bin position = radians * nbins / pi - 0.5.
    to_radians = float(np.float32(math.pi / 180))
    angle_scale = float(np.float32(nbins / (2 * math.pi) if signed else nbins / math.pi))
    position = _fast_atan2_degrees(dy, dx) * to_radians * angle_scale - 0.5
    lower = torch.floor(position.detach())
    upper_weight = position - lower
    low_bin = torch.remainder(lower, nbins).to(torch.int64)
    high_bin = torch.remainder(lower + 1, nbins).to(torch.int64)
    votes = magnitude.new_zeros(batch, nbins, *magnitude.shape[-2:])
    votes = votes.scatter_add(1, low_bin, magnitude * (1.0 - upper_weight))
    return votes.scatter_add(1, high_bin, magnitude * upper_weight)


@lru_cache(maxsize=64)
def _window_matrix(length: int, block: int, cell: int, stride: int, sigma: float) -> torch.Tensor:
    """``(length, positions * cells)`` float32: column ``(g, c)`` holds, for the block starting at
    ``g * stride``, each pixel's weight for cell ``c`` of the block along one axis (0 outside)."""
    weights = _block_weights(block, cell, sigma)
    positions = (length - block) // stride + 1
    matrix = np.zeros((length, positions, block // cell), dtype=np.float32)
    for g in range(positions):
        matrix[g * stride : g * stride + block, g] = weights
    return torch.from_numpy(matrix.reshape(length, -1))


def _block_histograms(votes, block_size, cell_size, cache_stride, sigma) -> torch.Tensor:
    """Step 4: ``(B, nbins, Hp, Wp)`` votes -> ``(B, rows, cols, block histogram)`` for blocks at
    every ``cache_stride`` position; histogram order (cell column, cell row, bin).

    The 2-D weight of a pixel factorises, Gaussian(i, j) * linear_y(i) * linear_x(j) =
    wy(i) * wx(j), so all blocks are two matrix products with banded matrices (dense: a GEMM
    beats a gather of the few non-zeros at these sizes).
    """
    batch, nbins, height, width = votes.shape
    matrix_x = _window_matrix(width, block_size[0], cell_size[0], cache_stride[0], sigma)
    matrix_y = _window_matrix(height, block_size[1], cell_size[1], cache_stride[1], sigma)
    matrix_x = matrix_x.to(device=votes.device, dtype=votes.dtype)
    matrix_y = matrix_y.to(device=votes.device, dtype=votes.dtype)
    along_x = votes.reshape(-1, width) @ matrix_x  # (B n Hp, gx ncx)
    along_x = along_x.view(batch, nbins, height, -1)
    blocks = matrix_y.t() @ along_x  # (B, n, gy ncy, gx ncx)
    cells_x, cells_y = block_size[0] // cell_size[0], block_size[1] // cell_size[1]
    blocks = blocks.view(batch, nbins, -1, cells_y, blocks.shape[-1] // cells_x, cells_x)
    rows, cols = blocks.shape[2], blocks.shape[4]
    return blocks.permute(0, 2, 4, 5, 3, 1).reshape(batch, rows, cols, -1)


def _l2_hys(blocks: torch.Tensor, threshold: float) -> torch.Tensor:
    """Step 5, ``HOGCache::normalizeBlockHistogram``."""
    size = blocks.shape[-1]
    # vector_norm's derivative is 0 (not NaN) for an all-zero block.
    blocks = blocks / (torch.linalg.vector_norm(blocks, dim=-1, keepdim=True) + 0.1 * size)
    blocks = blocks.clamp(max=threshold)
    return blocks / (torch.linalg.vector_norm(blocks, dim=-1, keepdim=True) + 1e-3)


def opencv_hog(
    image,
    win_size=(64, 128),
    block_size=(16, 16),
    block_stride=(8, 8),
    cell_size=(8, 8),
    nbins: int = 9,
    win_sigma: float = -1,
    l2_hys_threshold: float = 0.2,
    gamma_correction: bool = True,
    signed_gradient: bool = False,
    win_stride=None,
    padding=(0, 0),
) -> torch.Tensor:
    """Differentiable ``cv2.HOGDescriptor(...).compute(image, win_stride, padding)``.

    Args:
        image: what ``compute`` takes -- a uint8 NumPy image ``(H, W)`` or BGR ``(H, W, 3)`` -- or a
            float tensor ``(B, C, H, W)``, ``C`` = 1 or 3 (BGR order), on OpenCV's 0-255 scale (not
            rounded: any real values, e.g. an image being optimised). Any device; float64 tensors
            are computed in float64.
        win_size, block_size, block_stride, cell_size: OpenCV ``Size``s ``(width, height)`` in pixels.
        nbins: orientation bins over 0-180 degrees (0-360 with ``signed_gradient``).
        win_sigma: Gaussian spatial window of a block in pixels; ``-1``: ``(block_w + block_h) / 8``.
        l2_hys_threshold: accepted for OpenCV's signature; like OpenCV 4.11's ``compute``, the
            clip is 0.2 whatever the value (a ``ValueError`` if it is not positive).
        gamma_correction: square root of the intensities first (OpenCV's look-up table).
        signed_gradient: orientations over 0-360 degrees.
        win_stride: ``(width, height)`` step between windows; ``None``: ``cell_size`` (as OpenCV).
        padding: ``(width, height)`` padding on each side (rounded up to a multiple of
            ``gcd(win_stride, block_stride)``, reflected as OpenCV).

    Returns:
        NumPy input: ``(N * D,)``, exactly ``compute``'s layout (windows row by row, each ``D =``
        :func:`opencv_hog_descriptor_size` long). Tensor input: ``(B, N * D)``. float32 (float64
        for float64 tensors), on the image's device.

    Raises:
        ValueError: bad image type/shape/dtype, sizes OpenCV rejects, an image smaller than a window.
    """
    win, block, stride, cell = (_size(v, n) for v, n in ((win_size, "win_size"), (block_size, "block_size"),
                                                          (block_stride, "block_stride"), (cell_size, "cell_size")))
    win_step = cell if win_stride is None or tuple(win_stride) == (0, 0) else _size(win_stride, "win_stride")
    pad = _size(padding, "padding")
    for axis in (0, 1):
        if min(block[axis], stride[axis], cell[axis], win_step[axis]) < 1 or block[axis] % cell[axis] \
                or win[axis] < block[axis] or (win[axis] - block[axis]) % stride[axis]:
            raise ValueError(
                "opencv_hog: OpenCV needs block_size a multiple of cell_size and win_size - block_size a "
                f"multiple of block_stride (got win {win}, block {block}, stride {stride}, cell {cell})"
            )
    if not l2_hys_threshold > 0:
        raise ValueError(f"opencv_hog: l2_hys_threshold must be positive, got {l2_hys_threshold!r}")
    if int(nbins) != nbins or nbins < 1:
        raise ValueError(f"opencv_hog: nbins must be a positive integer, got {nbins!r}")
    batch, was_batch = _as_batch(image)
    if not torch.isfinite(batch).all():
        raise ValueError("opencv_hog: image contains NaN or infinite values")
    cache = tuple(math.gcd(win_step[a], stride[a]) for a in (0, 1))
    pad = tuple(-(-p // c) * c for p, c in zip(pad, cache))  # alignSize(padding, cacheStride)
    padded_w, padded_h = batch.shape[3] + 2 * pad[0], batch.shape[2] + 2 * pad[1]
    if padded_w < win[0] or padded_h < win[1]:
        raise ValueError(
            f"opencv_hog: the padded image ({padded_w}x{padded_h}) is smaller than win_size {win}"
        )
    sigma = float(np.float32(win_sigma if win_sigma >= 0 else (block[0] + block[1]) / 8.0))

    votes = _gradient_votes(batch, pad, int(nbins), bool(gamma_correction), bool(signed_gradient))
    blocks = _l2_hys(_block_histograms(votes, block, cell, cache, sigma), _OPENCV_L2HYS_CLIP)
    # Windows row by row; in a window the blocks column by column (HOGCache's blockData).
    windows_x = (padded_w - win[0]) // win_step[0] + 1
    windows_y = (padded_h - win[1]) // win_step[1] + 1
    blocks_x = (win[0] - block[0]) // stride[0] + 1
    blocks_y = (win[1] - block[1]) // stride[1] + 1
    device = blocks.device
    rows = (torch.arange(windows_y, device=device) * (win_step[1] // cache[1]))[:, None, None, None] \
        + (torch.arange(blocks_y, device=device) * (stride[1] // cache[1]))[None, None, None, :]
    cols = (torch.arange(windows_x, device=device) * (win_step[0] // cache[0]))[None, :, None, None] \
        + (torch.arange(blocks_x, device=device) * (stride[0] // cache[0]))[None, None, :, None]
    features = blocks[:, rows, cols]  # (B, windows_y, windows_x, blocks_x, blocks_y, D_block)
    features = features.reshape(features.shape[0], -1)
    return features if was_batch else features[0]


class OpenCVHOG(torch.nn.Module):
    """``nn.Module`` twin of :func:`opencv_hog`: ``(B, C, H, W)`` on the 0-255 scale -> ``(B, N * D)``.

    Same arguments as :func:`opencv_hog` (OpenCV ``(width, height)`` sizes), fixed at construction.
    Works in ``nn.Sequential`` and under ``torch.compile`` (same values; the window layout is
    Python bookkeeping, traced once per input size; speed: ``bench/hog_speed.py --opencv``); not
    under ``torch.jit.script`` (keyword-argument expansion, NumPy tables and
    ``autograd.Function``s are outside TorchScript).
    """

    def __init__(self, win_size=(64, 128), block_size=(16, 16), block_stride=(8, 8), cell_size=(8, 8),
                 nbins: int = 9, win_sigma: float = -1, l2_hys_threshold: float = 0.2,
                 gamma_correction: bool = True, signed_gradient: bool = False, win_stride=None,
                 padding=(0, 0)):
        super().__init__()
        self.settings = dict(win_size=tuple(win_size), block_size=tuple(block_size),
                             block_stride=tuple(block_stride), cell_size=tuple(cell_size), nbins=nbins,
                             win_sigma=win_sigma, l2_hys_threshold=l2_hys_threshold,
                             gamma_correction=gamma_correction, signed_gradient=signed_gradient,
                             win_stride=None if win_stride is None else tuple(win_stride),
                             padding=tuple(padding))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return opencv_hog(image, **self.settings)

    def extra_repr(self) -> str:
        return ", ".join(f"{key}={value}" for key, value in self.settings.items())
