"""A differentiable drop-in for OpenCV's ``cv2.HOGDescriptor(...).compute`` (OpenCV 4.x).

:func:`opencv_hog` returns what ``cv2.HOGDescriptor(win_size, block_size, block_stride, cell_size,
nbins, 1, win_sigma, HOGDescriptor_L2Hys, l2_hys_threshold, gamma_correction, 64,
signed_gradient).compute(image, win_stride, padding)`` returns -- the same length, the same order,
the same values up to float32 rounding -- as a torch tensor that autograd can differentiate with
respect to the image. The steps follow ``modules/objdetect/src/hog.cpp`` (``computeGradient``,
``HOGCache::init``, ``getBlock``, ``normalizeBlockHistogram``) and ``cv::fastAtan2``:

1. padding of the image by ``padding`` rounded up to the cache stride
   ``gcd(win_stride, block_stride)``, border ``BORDER_REFLECT_101``, and one pixel further for the
   derivatives (without padding the border derivatives are then 0);
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

Speed (``bench/hog_speed.py --opencv``): steps 3 and 4-along-x are one autograd Function with a
hand-written backward, run over chunks of the batch that stay in the CPU cache; the per-pixel
arithmetic is in place and free of ``where``/bool masks (each several times a multiply on CPU);
derivatives, gamma and L2-Hys have their own backward too.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

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


def _indicator(compare, a: torch.Tensor, b) -> torch.Tensor:
    """``compare(a, b)`` as 0/1 in ``a``'s float dtype: on CPU a bool tensor, ``where`` and
    arithmetic with bools each cost several times a float comparison written with ``out=``."""
    return compare(a, b, out=torch.empty_like(a))


def _mirror(angle: torch.Tensor, flip: torch.Tensor, offset: float, scratch: torch.Tensor) -> torch.Tensor:
    """``offset - angle`` where ``flip`` is 1, ``angle`` where it is 0, in place: ``lerp`` with a
    0/1 weight returns either end exactly (as OpenCV's ``offset - a``), and is no ``where``."""
    return angle.lerp_(torch.sub(angle.new_tensor(offset), angle, out=scratch), flip)


def _bin_scale(nbins: int, signed: bool) -> float:
    """Bins per degree. OpenCV: radians = degrees * (float)(pi / 180); bin = radians * nbins / pi
    (``2 pi`` if signed) - 0.5."""
    return float(np.float32(math.pi / 180)) * float(np.float32(nbins / (2 * math.pi) if signed else nbins / math.pi))


def _polar(dx: torch.Tensor, dy: torch.Tensor, nbins: int, signed: bool, keep: bool):
    """Step 3 per pixel: magnitude, and the bin position of ``cv::fastAtan2(dy, dx)``.

    ``fastAtan2`` is a degree-7 odd polynomial of ``c = min(|dx|, |dy|) / (max(|dx|, |dy|) + eps)``
    mirrored into the octants (its value jumps by 0.02 degree across ``|dx| == |dy|``, as
    OpenCV's); mirrors are :func:`_mirror`. Unsigned HOG only needs the angle modulo 180
    degrees, where OpenCV's mirrors at ``dx < 0`` and ``dy < 0`` are one mirror where exactly one
    of them holds (a zero ``dx`` or ``dy`` gives 90 or 0/180: the same bins).

    Returns ``(magnitude, index, upper_weight, saved)``: the bin position ``angle * nbins / 180
    (360 if signed) + 0.5`` (OpenCV's ``- 0.5``, shifted by one bin so that it is never negative)
    split into its floor ``index`` (int64 in ``[0, nbins]``) and ``upper_weight`` in ``[0, 1)``;
    ``saved``: what the derivative needs (``c``, ``steep``, ``big``, ``dx < 0``, ``dy < 0``) if
    ``keep``, else ``None``. Everything is computed in place in few buffers: on CPU a fresh
    tensor of this size costs 3-4 times an in-place op.
    """
    magnitude = torch.mul(dx, dx).addcmul_(dy, dy).sqrt_()
    ax, ay = dx.abs(), dy.abs()
    steep = _indicator(torch.lt, ax, ay)
    big = torch.maximum(ax, ay).add_(_ATAN_EPS)
    c = torch.minimum(ax, ay, out=ax).div_(big)
    c2 = torch.mul(c, c, out=ay)
    p1, p3, p5, p7 = _ATAN_P
    scale = _bin_scale(nbins, signed)
    angle = torch.mul(c2, p7, out=big if not keep else None).add_(p5).mul_(c2).add_(p3).mul_(c2).add_(p1).mul_(c)
    scratch = c2
    angle = _mirror(angle, steep, 90.0, scratch)
    negative_x, negative_y = _indicator(torch.lt, dx, 0), _indicator(torch.lt, dy, 0)
    if signed:
        angle = _mirror(_mirror(angle, negative_x, 180.0, scratch), negative_y, 360.0, scratch)
    else:
        flip = torch.ne(negative_x, negative_y, out=torch.empty_like(scratch) if keep else c)
        angle = _mirror(angle, flip, 180.0, scratch)
    position = angle.mul_(scale).add_(0.5)
    lower = torch.floor(position, out=scratch)
    index = lower.to(torch.int64)  # float arithmetic first: int64's is several times slower on CPU
    upper_weight = position.sub_(lower)
    saved = (c, steep, big, negative_x, negative_y) if keep else None
    return magnitude, index, upper_weight, saved


def _polar_derivatives(saved, signed: bool):
    """``(d angle / d dx, d angle / d dy)`` of :func:`_polar`'s angle (degrees per unit): those of
    the polynomial itself (not of ``atan2``)."""
    c, steep, big, negative_x, negative_y = saved
    p1, p3, p5, p7 = _ATAN_P
    c2 = c * c
    slope = c2.mul(7 * p7).add_(5 * p5).mul_(c2).add_(3 * p3).mul_(c2).add_(p1).div_(big)  # d a / d min
    # With min = |dy|, max = |dx| (not steep) d a = slope (d|dy| - c d|dx|); steep swaps them. The
    # mirrors flip the sign: 90 - a where steep, 180 - a where dx < 0, 360 - a where dy < 0; with
    # d|dx| = sign(dx) d dx, what is left is the sign of the other coordinate's mirror.
    slope.mul_(1.0 - 2.0 * steep)
    t = steep * (1.0 + c)
    along_x = (t - c).mul_(slope).mul_(1.0 - 2.0 * negative_y)
    along_y = (1.0 - t).mul_(slope).mul_(1.0 - 2.0 * negative_x)
    return along_x, along_y


#: Pixels per chunk of the per-pixel steps: their ~20 temporaries and the chunk's dense
#: ``(nbins + 2)``-channel votes then stay in the CPU's caches (one pass over a whole batch of
#: 64 windows costs ~1.7x: cache misses, and page faults of freshly allocated tensors).
_CHUNK_PIXELS = 1 << 15


def _chunks(batch: int, pixels: int, device: torch.device):
    """Batch slices of about :data:`_CHUNK_PIXELS` pixels (CPU), or the whole batch (other devices)."""
    step = batch if device.type != "cpu" else max(1, _CHUNK_PIXELS // max(pixels, 1))
    return [slice(start, min(start + step, batch)) for start in range(0, batch, step)]


class _VotesAlongX(torch.autograd.Function):
    """Step 3 per pixel and step 4 along x: derivatives ``(B, 1, H, W)`` -> ``(B, nbins + 2, H, G)``,
    the orientation votes times ``matrix_x`` ``(W, G)`` (see :func:`_block_histograms`).

    Each pixel's magnitude ``sqrt(dx² + dy²)`` is split linearly between the two bins nearest to
    its angle (as ``HOGDescriptor::computeGradient``), written into a dense vote image of
    ``nbins + 2`` channels where channel ``k`` holds bin ``k - 1`` (bin -1 is bin ``nbins - 1``
    and bin ``nbins`` is bin 0; :func:`_block_histograms` folds them on the ~20x smaller block
    sums): no wrap-around arithmetic per pixel, and a pixel's two votes never share a channel
    (two ``scatter_``s into zeros). The vote image exists one chunk of the batch at a time.

    One node with a hand-written backward (a product, two ``gather``s and the polynomial's
    derivative) instead of autograd's ~40 nodes per pixel and their ``where``s. The derivative is
    0 (not NaN) where the gradient vanishes.
    """

    @staticmethod
    def forward(ctx, dx, dy, matrix_x, nbins: int, signed: bool):
        keep = ctx.needs_input_grad[0] or ctx.needs_input_grad[1]
        batch, _, height, width = dx.shape
        along_x = dx.new_empty(batch, nbins + 2, height, matrix_x.shape[1])
        parts = _chunks(batch, height * width, dx.device)
        buffer = dx.new_empty(parts[0].stop - parts[0].start, nbins + 2, height, width)
        ctx.chunks = []
        for part in parts:
            votes = buffer[: part.stop - part.start].zero_()
            magnitude, index, upper_weight, saved = _polar(dx[part], dy[part], nbins, signed, keep)
            high_vote = magnitude * upper_weight
            votes.scatter_(1, index, magnitude.sub_(high_vote) if not keep else magnitude - high_vote)
            votes.scatter_(1, index.add_(1), high_vote)
            torch.mm(votes.view(-1, width), matrix_x, out=along_x[part].view(-1, matrix_x.shape[1]))
            if keep:
                ctx.chunks.append((part, magnitude, index, upper_weight, saved))
        ctx.save_for_backward(dx, dy, matrix_x)
        ctx.settings = (_bin_scale(nbins, signed), signed)
        return along_x

    @staticmethod
    def backward(ctx, grad_along_x):
        dx, dy, matrix_x = ctx.saved_tensors
        scale, signed = ctx.settings
        grad_dx, grad_dy = torch.empty_like(dx), torch.empty_like(dy)
        buffer = None
        for part, magnitude, index, upper_weight, saved in ctx.chunks:
            grad = grad_along_x[part].reshape(-1, matrix_x.shape[1])
            if buffer is None:
                buffer = grad.new_empty(grad.shape[0], matrix_x.shape[0])
            grad_votes = torch.mm(grad, matrix_x.t(), out=buffer[: grad.shape[0]])
            grad_votes = grad_votes.view(part.stop - part.start, -1, *dx.shape[2:])
            grad_high = grad_votes.gather(1, index)
            grad_low = grad_votes.gather(1, index.sub(1))
            difference = grad_high.sub_(grad_low)
            grad_magnitude = grad_low.addcmul_(difference, upper_weight)
            # Where the magnitude is 0 so are dx and dy: dividing by 1 there gives the 0 we want.
            grad_magnitude.div_(_indicator(torch.eq, magnitude, 0).add_(magnitude))
            grad_angle = difference.mul_(magnitude).mul_(scale)  # d votes / d degrees
            angle_dx, angle_dy = _polar_derivatives(saved, signed)
            torch.mul(grad_magnitude, dx[part], out=grad_dx[part]).addcmul_(grad_angle, angle_dx)
            torch.mul(grad_magnitude, dy[part], out=grad_dy[part]).addcmul_(grad_angle, angle_dy)
        return grad_dx, grad_dy, None, None, None


class _Gamma(torch.autograd.Function):
    """OpenCV's gamma look-up table ``sqrt(max(v, 0))``, correctly rounded on CPU (numpy's
    ``sqrt``, as ``std::sqrt``: torch's CPU ``sqrt`` is one ulp off for a few % of values);
    derivative 0 where ``v <= 0``."""

    @staticmethod
    def forward(ctx, image):
        image = image.clamp(min=0)
        if image.device.type == "cpu":
            root = torch.from_numpy(np.sqrt(image.numpy()))
        else:
            root = image.sqrt()
        ctx.save_for_backward(root)
        return root

    @staticmethod
    def backward(ctx, grad):
        (root,) = ctx.saved_tensors
        zero = _indicator(torch.eq, root, 0)
        half = torch.mul(zero, -0.5).add_(0.5)  # 0.5 / root, and 0 where root = 0
        return half.div_(zero.add_(root)).mul_(grad)


class _CentralDifferences(torch.autograd.Function):
    """``[-1, 0, 1]`` derivatives ``(dx, dy)`` of ``(B, C, H, W)``: of its inner pixels, each
    ``(B, C, H - 2, W - 2)``, if ``inner``; else of all pixels, 0 on the border (OpenCV reflects
    the image by one pixel, ``BORDER_REFLECT_101``: a border pixel's two neighbours along the
    axis are the same pixel). A hand-written backward: autograd's for two slice differences
    allocates, zero-fills and copies a full-size gradient per slice."""

    @staticmethod
    def forward(ctx, image, inner: bool):
        ctx.inner = inner
        if inner:
            return image[..., 1:-1, 2:] - image[..., 1:-1, :-2], image[..., 2:, 1:-1] - image[..., :-2, 1:-1]
        dx, dy = torch.empty_like(image), torch.empty_like(image)
        torch.sub(image[..., 2:], image[..., :-2], out=dx[..., 1:-1])
        torch.sub(image[..., 2:, :], image[..., :-2, :], out=dy[..., 1:-1, :])
        for border in (0, -1):
            dx[..., border] = 0
            dy[..., border, :] = 0
        return dx, dy

    @staticmethod
    def backward(ctx, grad_dx, grad_dy):
        if ctx.inner:
            height, width = grad_dx.shape[-2:]
            grad = grad_dx.new_zeros(*grad_dx.shape[:-2], height + 2, width + 2)
            grad[..., 1:-1, 2:] += grad_dx
            grad[..., 1:-1, :-2] -= grad_dx
            grad[..., 2:, 1:-1] += grad_dy
            grad[..., :-2, 1:-1] -= grad_dy
            return grad, None
        grad = grad_dx.new_zeros(grad_dx.shape)
        grad[..., 2:] += grad_dx[..., 1:-1]
        grad[..., :-2] -= grad_dx[..., 1:-1]
        grad[..., 2:, :] += grad_dy[..., 1:-1, :]
        grad[..., :-2, :] -= grad_dy[..., 1:-1, :]
        return grad, None


def _strongest_channel(dx: torch.Tensor, dy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B, 3, H, W)`` BGR derivatives -> those of the channel with the largest ``dx² + dy²``.

    On ties, OpenCV's vectorised loop keeps the first channel in BGR order (numpy's ``argmax``).
    """
    magnitude = (dx * dx + dy * dy).detach()
    choice = magnitude.argmax(dim=1, keepdim=True)
    return dx.gather(1, choice), dy.gather(1, choice)


def _reflect101_pad(image: torch.Tensor, pad_h: int, pad_w: int) -> torch.Tensor:
    """``(B, C, H, W)`` -> ``(B, C, H + 2 pad_h, W + 2 pad_w)``, border ``BORDER_REFLECT_101``."""
    height, width = image.shape[-2:]
    if pad_h < height and pad_w < width:  # torch's "reflect" is REFLECT_101 up to one period
        return F.pad(image, (pad_w, pad_w, pad_h, pad_h), mode="reflect")
    rows = _reflect101(np.arange(-pad_h, height + pad_h), height)
    cols = _reflect101(np.arange(-pad_w, width + pad_w), width)
    image = image.index_select(2, torch.from_numpy(rows).to(image.device))
    return image.index_select(3, torch.from_numpy(cols).to(image.device))


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


def _gradients(image: torch.Tensor, pad: tuple[int, int], gamma: bool):
    """Steps 1-2: ``(B, C, H, W)`` -> derivatives ``(dx, dy)``, each ``(B, 1, H + 2 pad_h, W + 2 pad_w)``."""
    if gamma:
        image = _Gamma.apply(image)
    if pad == (0, 0):
        dx, dy = _CentralDifferences.apply(image, False)
    else:  # the padding and the derivatives' extra pixel are both reflections of the image
        dx, dy = _CentralDifferences.apply(_reflect101_pad(image, pad[1] + 1, pad[0] + 1), True)
    if image.shape[1] == 3:
        dx, dy = _strongest_channel(dx, dy)
    return dx, dy


@lru_cache(maxsize=64)
def _window_matrix(length: int, block: int, cell: int, stride: int, sigma: float, dtype: torch.dtype,
                   device: torch.device) -> torch.Tensor:
    """``(length, positions * cells)`` (float32 weights, as OpenCV's): column ``(g, c)`` holds, for the block starting at
    ``g * stride``, each pixel's weight for cell ``c`` of the block along one axis (0 outside)."""
    weights = _block_weights(block, cell, sigma)
    positions = (length - block) // stride + 1
    matrix = np.zeros((length, positions, block // cell), dtype=np.float32)
    for g in range(positions):
        matrix[g * stride : g * stride + block, g] = weights
    return torch.from_numpy(matrix.reshape(length, -1)).to(device=device, dtype=dtype)


def _block_histograms(dx, dy, nbins, signed, block_size, cell_size, cache_stride, sigma) -> torch.Tensor:
    """Steps 3-4: derivatives ``(B, 1, Hp, Wp)`` -> ``(B, rows, cols, block histogram)`` for blocks
    at every ``cache_stride`` position; histogram order (cell column, cell row, bin).

    The 2-D weight of a pixel factorises, Gaussian(i, j) * linear_y(i) * linear_x(j) =
    wy(i) * wx(j), so all blocks are two matrix products of the dense orientation votes with
    banded matrices (dense: a GEMM beats a gather of the few non-zeros at these sizes).
    """
    batch, _, height, width = dx.shape
    matrix_x = _window_matrix(width, block_size[0], cell_size[0], cache_stride[0], sigma, dx.dtype, dx.device)
    matrix_y = _window_matrix(height, block_size[1], cell_size[1], cache_stride[1], sigma, dx.dtype, dx.device)
    along_x = _VotesAlongX.apply(dx, dy, matrix_x, nbins, signed)  # (B, n + 2, Hp, gx ncx)
    blocks = matrix_y.t() @ along_x  # (B, n + 2, gy ncy, gx ncx)
    # Channel k is bin k - 1 modulo nbins (see _VotesAlongX).
    blocks = blocks.new_zeros(batch, nbins, *blocks.shape[2:]).index_add(1, _wrapped_bins(nbins, dx.device), blocks)
    cells_x, cells_y = block_size[0] // cell_size[0], block_size[1] // cell_size[1]
    blocks = blocks.view(batch, nbins, -1, cells_y, blocks.shape[-1] // cells_x, cells_x)
    rows, cols = blocks.shape[2], blocks.shape[4]
    return blocks.permute(0, 2, 4, 5, 3, 1).reshape(batch, rows, cols, -1)


@lru_cache(maxsize=32)
def _wrapped_bins(nbins: int, device: torch.device) -> torch.Tensor:
    """``(nbins + 2,)`` int64: the bin of each vote channel, ``(k - 1) mod nbins``."""
    return torch.remainder(torch.arange(-1, nbins + 1), nbins).to(device)


class _L2Hys(torch.autograd.Function):
    """Step 5, ``HOGCache::normalizeBlockHistogram``, on ``(..., D)`` block histograms:
    ``v / (||v|| + 0.1 D)``, clipped at ``threshold``, then ``/ (||.|| + 1e-3)``. A hand-written
    backward (autograd's through the norms, divisions and clip is ~15 nodes); the derivative is
    0 (not NaN) for an all-zero block."""

    @staticmethod
    def forward(ctx, blocks, threshold: float):
        first = torch.linalg.vector_norm(blocks, dim=-1, keepdim=True)
        scaled = blocks / (first + 0.1 * blocks.shape[-1])
        clipped = scaled.clamp(max=threshold)
        second = torch.linalg.vector_norm(clipped, dim=-1, keepdim=True)
        ctx.save_for_backward(blocks, first, scaled, clipped, second)
        ctx.threshold = threshold
        return clipped / (second + 1e-3)

    @staticmethod
    def backward(ctx, grad):
        blocks, first, scaled, clipped, second = ctx.saved_tensors
        # d (u / (|u| + e)) = du / (|u| + e) - u (u . du) / (|u| (|u| + e)²); u = 0 where |u| = 0.
        grad = _normalised_backward(grad, clipped, second, 1e-3)
        grad = grad.mul_(_indicator(torch.le, scaled, ctx.threshold))  # clamp's: passes where not clipped
        return _normalised_backward(grad, blocks, first, 0.1 * blocks.shape[-1]), None


def _normalised_backward(grad: torch.Tensor, vector: torch.Tensor, norm: torch.Tensor, offset: float):
    """Gradient through ``vector / (||vector|| + offset)`` (norms ``(..., 1)``), 0-safe at ``||vector|| = 0``."""
    denominator = norm + offset
    projection = (grad * vector).sum(dim=-1, keepdim=True)
    projection.div_(denominator.square().mul_(norm + _indicator(torch.eq, norm, 0)))
    return (grad / denominator).sub_(vector * projection)


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
    # One reduction instead of an isfinite map: any NaN/inf makes the (float64) sum non-finite.
    if not torch.isfinite(batch.sum(dtype=torch.float32 if batch.device.type == "mps" else torch.float64)):
        raise ValueError("opencv_hog: image contains NaN or infinite values")
    cache = tuple(math.gcd(win_step[a], stride[a]) for a in (0, 1))
    pad = tuple(-(-p // c) * c for p, c in zip(pad, cache))  # alignSize(padding, cacheStride)
    padded_w, padded_h = batch.shape[3] + 2 * pad[0], batch.shape[2] + 2 * pad[1]
    if padded_w < win[0] or padded_h < win[1]:
        raise ValueError(
            f"opencv_hog: the padded image ({padded_w}x{padded_h}) is smaller than win_size {win}"
        )
    sigma = float(np.float32(win_sigma if win_sigma >= 0 else (block[0] + block[1]) / 8.0))

    dx, dy = _gradients(batch, pad, bool(gamma_correction))
    blocks = _block_histograms(dx, dy, int(nbins), bool(signed_gradient), block, cell, cache, sigma)
    blocks = _L2Hys.apply(blocks, _OPENCV_L2HYS_CLIP)
    # Windows row by row; in a window the blocks column by column (HOGCache's blockData). Views
    # (unfold, strided slices) until the final copy: a gather's backward is a scatter-add.
    step = tuple(w // c for w, c in zip(win_step, cache))
    spacing = tuple(s // c for s, c in zip(stride, cache))
    span = tuple((w - b) // c + 1 for w, b, c in zip(win, block, cache))  # cache positions per window
    windows = blocks.unfold(1, span[1], step[1]).unfold(2, span[0], step[0])  # (B, wy, wx, D, span_y, span_x)
    windows = windows[..., :: spacing[1], :: spacing[0]]  # (B, wy, wx, D, blocks_y, blocks_x)
    features = windows.permute(0, 1, 2, 5, 4, 3).reshape(blocks.shape[0], -1)
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
