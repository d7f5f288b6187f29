"""∇HOG: differentiable Histograms of Oriented Gradients in PyTorch.

Two variants, both batch-first ``(B, C, H, W)``, float32 or float64, on any device:

* ``"uoctti"`` -- the Felzenszwalb et al. (UoCTTI) descriptor, numerically equal to VLFeat 0.9.21's
  ``vl_hog`` with ``VlHogVariantUoctti`` (vl/hog.c: ``vl_hog_put_image`` + ``vl_hog_extract``):
  ``3 * num_bins + 4`` channels per cell (``2 * num_bins`` directed orientations, ``num_bins``
  undirected ones, 4 texture energies), VLFeat's cell grid, block normalisation, 0.2 clipping and
  border handling. ``bilinear_orientation=True`` gives VLFeat's bilinear orientation assignment
  (Mahendran & Vedaldi's "HOGb").
* ``"dalal"`` -- the ∇HOG of Chiu & Fritz (BMVC 2015), Sec. 3, eq. 1-7: gray image, ``[-1, 0, 1]``
  gradients, unsigned orientations softly binned by the clipped triangular filters of eq. 3,
  spatial voting by the ``2c x 2c`` bilinear filter of eq. 5 sampled at the cell centres (eq. 6),
  and one global robust L2 normalisation (eq. 7, see :data:`DALAL_EPS`).

Every step is a tensor expression (no Python loops over pixels). Each pixel votes for one or two
orientation bins, and the bilinear spatial vote of eq. 5-6 reaches only the 2x2 cells around it,
so all of the voting is one ``scatter_add`` of ``4`` weighted votes per (pixel, bin) into the cell
grid, with index/weight tables cached per image size (no dense ``bins x H x W`` image is ever
built; the backward is one ``gather``). At small sizes the cost is per-op overhead, not
arithmetic: the hot steps (central differences, magnitude, dalal's polar votes, spatial voting,
UoCTTI block normalisation) are ``torch.autograd.Function``s with hand-written backward passes,
and the discrete decisions avoid ``where``/``argmax``/bool masks (each several times a ``mul``
on CPU). On CUDA, ``scatter_add`` sums in a nondeterministic order (float rounding-level
differences between runs). Gradients are finite everywhere (zero-gradient pixels, constant
images, exact bin boundaries): the derivatives of the magnitude and angle are taken as 0 where
the magnitude vanishes.

Layout: the UoCTTI steps are in :mod:`torch_backend.hog_uoctti`, the steps both variants share
(differences, magnitude, spatial voting) in :mod:`torch_backend.hog_votes`; the scikit-image and
OpenCV drop-ins (:mod:`torch_backend.hog_skimage`, :mod:`torch_backend.hog_opencv`) are
re-exported here.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from .hog_uoctti import UOCTTI_CLIP, _uoctti_cells, _uoctti_normalize
from .hog_votes import _central_differences, _indicator, _kept_pixels, _pool_votes, _wide_dtype
from .images import rgb_to_gray

__all__ = [
    "DALAL_EPS",
    "UOCTTI_CLIP",
    "VARIANTS",
    "hog",
    "hog_cell_grid",
    "feature_channels",
    "num_feature_channels",
    "uoctti_flip_permutation",
    "hog_glyphs",
    "HOG",
    "skimage_hog",
    "SkimageHOG",
    "opencv_hog",
    "OpenCVHOG",
]

VARIANTS = ("uoctti", "dalal")

#: ε of the robust global L2 normalisation of ``dalal``: ``v / sqrt(||v||² + ε²)``. The paper's eq. 7
#: prints ``v / sqrt(||v|| + ε)`` (not scale-invariant: a typo for the robust L2 norm of Dalal &
#: Triggs). ε only matters for (near-)constant images, where it keeps the division finite; 1e-5 is
#: scikit-image's block-normalisation ε, tiny against ``||v||`` of any textured image (≥ 1e-2).
DALAL_EPS = 1e-5


# --------------------------------------------------------------------------------------------
# Shapes and channel bookkeeping
# --------------------------------------------------------------------------------------------
def hog_cell_grid(height: int, width: int, variant: str, cell_size: int = 8) -> tuple[int, int]:
    """Number of cells ``(Hc, Wc)`` that :func:`hog` returns for an ``height x width`` image.

    ``uoctti`` follows VLFeat: ``(H + c // 2) // c`` (the last cell is at least half inside the
    image); ``dalal`` keeps the whole cells only: ``H // c``.
    """
    _check_variant(variant)
    if variant == "uoctti":
        return (height + cell_size // 2) // cell_size, (width + cell_size // 2) // cell_size
    return height // cell_size, width // cell_size


def num_feature_channels(variant: str, num_bins: int = 9) -> int:
    """Channels per cell: ``3 * num_bins + 4`` for ``uoctti``, ``num_bins`` for ``dalal``."""
    _check_variant(variant)
    return 3 * num_bins + 4 if variant == "uoctti" else num_bins


def feature_channels(variant: str, num_bins: int = 9) -> list[str]:
    """Human-readable names of the feature channels, in output order.

    Angles are gradient orientations in degrees, measured clockwise from the +x (right) axis
    because image y points down (VLFeat's convention). ``uoctti``: ``dir<angle>`` for the
    ``2 * num_bins`` directed bins (0-360°), ``undir<angle>`` for the undirected ones (0-180°),
    then ``texture_ul/ur/ll/lr`` (the 2x2 blocks up-left, up-right, low-left, low-right of the
    cell). ``dalal``: ``unsigned<centre>`` with bin centres at ``(b + 0.5) * 180 / num_bins``.
    """
    _check_variant(variant)
    step = 180.0 / num_bins
    if variant == "dalal":
        return [f"unsigned{(b + 0.5) * step:g}" for b in range(num_bins)]
    names = [f"dir{k * step:g}" for k in range(2 * num_bins)]
    names += [f"undir{k * step:g}" for k in range(num_bins)]
    return names + ["texture_ul", "texture_ur", "texture_ll", "texture_lr"]


def uoctti_flip_permutation(num_bins: int = 9) -> torch.Tensor:
    """Permutation ``perm`` with ``hog(flip_lr(x))[:, i] == flip_lr(hog(x))[:, perm[i]]``.

    Same as VLFeat's ``vl_hog_get_permutation``: a left-right flip maps orientation ``θ`` to
    ``180° - θ`` (directed: ``k -> n - k mod 2n``; undirected: ``k -> -k mod n``) and swaps the
    left and right texture blocks. Returns a ``(3 * num_bins + 4,)`` int64 tensor.
    """
    n = num_bins
    perm = []
    perm += [(n - k) % (2 * n) for k in range(2 * n)]
    perm += [2 * n + (n - k) % n for k in range(n)]
    perm += [3 * n + q for q in (1, 0, 3, 2)]
    return torch.tensor(perm, dtype=torch.int64)


# --------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------
def _check_variant(variant: str) -> None:
    if variant not in VARIANTS:
        raise ValueError(f"hog: variant must be one of {VARIANTS}, got {variant!r}")


def _check_inputs(image: torch.Tensor, variant: str, cell_size: int, num_bins: int) -> None:
    _check_variant(variant)
    if not isinstance(image, torch.Tensor):
        raise ValueError(f"hog: image must be a torch.Tensor (B, C, H, W), got {type(image).__name__}")
    if image.dim() != 4:
        raise ValueError(f"hog: image must have shape (B, C, H, W), got {tuple(image.shape)}")
    if image.dtype not in (torch.float32, torch.float64):
        raise ValueError(f"hog: image dtype must be float32 or float64, got {image.dtype}")
    batch, channels, height, width = image.shape
    if channels not in (1, 3):
        raise ValueError(f"hog: image must have 1 (gray) or 3 (RGB) channels, got C={channels}")
    if isinstance(cell_size, bool) or not isinstance(cell_size, (int, np.integer)) or cell_size < 1:
        raise ValueError(f"hog: cell_size must be a positive integer, got {cell_size!r}")
    if isinstance(num_bins, bool) or not isinstance(num_bins, (int, np.integer)) or num_bins < 1:
        raise ValueError(f"hog: num_bins must be a positive integer, got {num_bins!r}")
    if batch == 0:
        raise ValueError("hog: empty batch (B = 0)")
    minimum = max(2 * cell_size, 3)
    if height < minimum or width < minimum:
        raise ValueError(
            f"hog: image is {height}x{width}, smaller than 2 * cell_size = {2 * cell_size} (and 3) pixels"
        )
    # One reduction instead of an isfinite map: any NaN/inf makes the (float64) sum non-finite.
    if not bool(torch.isfinite(image.sum(dtype=_wide_dtype(image.device)))):
        raise ValueError("hog: image contains NaN or inf")


# --------------------------------------------------------------------------------------------
# Dalal (Chiu & Fritz eq. 1-7)
# --------------------------------------------------------------------------------------------
class _DalalVotes(torch.autograd.Function):
    """Eq. 2-3 per pixel: ``(gx, gy)`` -> the two orientation votes ``(B, 2, h, w)`` (magnitude
    times the triangular filters of the two bins bracketing the angle) and their bins (int64).

    A hand-written backward through magnitude and angle that is 0 (not NaN) where the gradient
    vanishes, in a handful of ops (autograd's chain of guarded ``where``s is ~20 ops).
    """

    @staticmethod
    def forward(ctx, gx, gy, num_bins: int):
        n = num_bins
        magnitude = (gx * gx + gy * gy).sqrt()  # eq. 2
        # Unsigned orientation in [0, pi]; where the gradient is 0 atan2 is 0 or +-pi: any bin
        # then gets a zero vote.
        theta = torch.remainder(torch.atan2(gy, gx), math.pi)
        if n == 1:  # eq. 3 with a single bin centred at 90 degrees
            offset = theta - math.pi / 2
            values = magnitude * (1.0 - offset.abs() / math.pi)
            bins = torch.zeros_like(values, dtype=torch.int64)
            # d value / d theta per unit magnitude, and the filter value
            ctx.save_for_backward(gx, gy, magnitude, offset.sign() * (-1.0 / math.pi), 1.0 - offset.abs() / math.pi)
        else:
            # Eq. 3: f_b = clip(1 - |theta - mu_b| * B / 180, 0, 1), mu_b = (b + 1/2) 180 / B,
            # distance wrapped at 180 degrees. Only the two bins whose centres bracket theta are
            # nonzero, with weights 1 - frac and frac: we write those two, not all B filters.
            position = theta * (n / math.pi) - 0.5
            lower = torch.floor(position)
            upper_weight = position - lower
            lower_bin = torch.remainder(lower, n)  # float remainder: int64's is ~10x slower
            upper_bin = lower_bin + 1.0 - n * _indicator(torch.eq, lower_bin, n - 1)
            values = torch.cat((magnitude * (1.0 - upper_weight), magnitude * upper_weight), dim=1)
            bins = torch.cat((lower_bin, upper_bin), dim=1).to(torch.int64)
            ctx.save_for_backward(gx, gy, magnitude, upper_weight)
        ctx.num_bins = n
        ctx.mark_non_differentiable(bins)
        return values, bins

    @staticmethod
    def backward(ctx, grad_values, _):
        n = ctx.num_bins
        if n == 1:
            gx, gy, magnitude, slope, filter_value = ctx.saved_tensors
            grad_magnitude = grad_values * filter_value
            grad_angle = grad_values * slope  # d / d theta, per unit magnitude
        else:
            gx, gy, magnitude, upper_weight = ctx.saved_tensors
            grad_lower, grad_upper = grad_values[:, :1], grad_values[:, 1:]
            grad_magnitude = grad_lower + (grad_upper - grad_lower) * upper_weight
            grad_angle = (grad_upper - grad_lower) * (n / math.pi)
        # d magnitude = (gx dgx + gy dgy) / m, m d theta = (gx dgy - gy dgx) / m; where m = 0 so
        # are gx and gy, and dividing by 1 there gives 0.
        inverse = 1.0 / (magnitude + _indicator(torch.eq, magnitude, 0))
        grad_gx = (grad_magnitude * gx - grad_angle * gy) * inverse
        grad_gy = (grad_magnitude * gy + grad_angle * gx) * inverse
        return grad_gx, grad_gy, None


def _dalal(image: torch.Tensor, cell_size: int, num_bins: int) -> torch.Tensor:
    """Chiu & Fritz eq. 1-7; see :func:`hog`."""
    if image.shape[1] == 3:  # eq. 1
        gray = rgb_to_gray(image, channel_axis=1).unsqueeze(1)
    else:
        gray = image
    batch, _, height, width = gray.shape
    rows, cols = height // cell_size, width // cell_size
    h, w = _kept_pixels(height, rows, cell_size, 0), _kept_pixels(width, cols, cell_size, 0)
    # [-1, 0, 1] derivative masks; the one-sided border gradient is 0 (as scikit-image's _hog).
    gx, gy = _central_differences(gray, 0, h, w)
    values, bins = _DalalVotes.apply(gx, gy, num_bins)  # eq. 2-3
    cells = _pool_votes(values, bins * (rows * cols), num_bins, rows, cols, cell_size, origin=0)  # eq. 5-6
    # Eq. 7, robust L2 over the whole descriptor of each image.
    norm = (cells.square().sum(dim=(1, 2, 3), keepdim=True) + DALAL_EPS**2).sqrt()
    return cells / norm


# --------------------------------------------------------------------------------------------
# Public entry point
# --------------------------------------------------------------------------------------------
def hog(
    image: torch.Tensor,
    variant: str,
    cell_size: int = 8,
    num_bins: int = 9,
    bilinear_orientation: bool = False,
    *,
    vlfeat_rounding: bool = True,
) -> torch.Tensor:
    """Differentiable HOG features of a batch of images.

    Args:
        image: ``(B, C, H, W)`` float32/float64 tensor, ``C`` = 1 (gray) or 3 (RGB), intensities in
            ``[0, 1]`` (values outside are computed, not rejected), ``H, W >= 2 * cell_size``.
            Any device; the result lives on the same device with the same dtype.
        variant: ``"uoctti"`` (VLFeat ``vl_hog``, UoCTTI) or ``"dalal"`` (Chiu & Fritz eq. 1-7).
        cell_size: cell side ``c`` in pixels.
        num_bins: ``uoctti``: undirected orientations ``n`` (VLFeat's ``numOrientations``);
            ``dalal``: unsigned orientation bins over 0-180°.
        bilinear_orientation: ``uoctti`` only: VLFeat's bilinear orientation assignment instead
            of the hard (nearest bin) one. ``dalal`` always votes with eq. 3's triangular filters.
        vlfeat_rounding: ``uoctti`` + bilinear only. libvl computes the bilinear weight as
            ``acosf`` of a float32 cosine, which near a bin axis is off from the exact angle by up
            to ~1e-4 of a bin (a few 1e-4 in the features). ``True`` (default) reproduces libvl's
            value bit for bit; ``False`` uses the exact angle. The gradient is the exact angle's
            derivative either way (``False`` is what ``gradcheck`` can verify).

    Returns:
        ``uoctti``: ``(B, 3n + 4, Hc, Wc)`` with ``Hc = (H + c // 2) // c`` (VLFeat's grid), channels
        as :func:`feature_channels`. ``dalal``: ``(B, num_bins, H // c, W // c)``, unit L2 norm per
        image (up to :data:`DALAL_EPS`).

    Raises:
        ValueError: wrong type, shape, dtype, channel count, size, parameters or non-finite values.
    """
    _check_inputs(image, variant, cell_size, num_bins)
    cell_size, num_bins = int(cell_size), int(num_bins)
    if variant == "dalal":
        return _dalal(image, cell_size, num_bins)
    rows, cols = hog_cell_grid(image.shape[-2], image.shape[-1], "uoctti", cell_size)
    cells = _uoctti_cells(image, rows, cols, cell_size, num_bins, bool(bilinear_orientation), bool(vlfeat_rounding))
    return _uoctti_normalize(cells, num_bins)


# --------------------------------------------------------------------------------------------
# Star-glyph picture
# --------------------------------------------------------------------------------------------
def _glyph_stack(angles: Sequence[float], size: int) -> np.ndarray:
    """Anti-aliased bars (``len(angles), size, size``) through the glyph centre, 1 px wide."""
    centre = (size - 1) / 2.0
    y, x = np.mgrid[0:size, 0:size].astype(np.float64) - centre
    glyphs = []
    for angle in angles:
        direction = np.array([math.cos(angle), math.sin(angle)])  # image axes: x right, y down
        along = np.abs(x * direction[0] + y * direction[1])
        across = np.abs(-x * direction[1] + y * direction[0])
        bar = np.clip(1.0 - across, 0.0, 1.0) * np.clip(centre + 0.5 - along, 0.0, 1.0)
        glyphs.append(bar)
    return np.stack(glyphs).astype(np.float32)


def hog_glyphs(
    features,
    variant: str,
    num_bins: int | None = None,
    glyph_size: int = 21,
) -> np.ndarray:
    """Render HOG features as the classic star-glyph picture (VLFeat ``vl_hog('render', ...)``).

    Each cell becomes a ``glyph_size x glyph_size`` tile holding one bar per orientation, drawn
    along the *edge* (perpendicular to the gradient), with brightness proportional to the
    orientation's weight: for ``uoctti`` the sum of its two directed and its undirected channels
    (as VLFeat), for ``dalal`` the bin value. Like VLFeat, a tile is clipped to its weights'
    range so crossing bars do not saturate.

    Args:
        features: ``(C, Hc, Wc)`` or ``(1, C, Hc, Wc)`` tensor or array from :func:`hog`.
        variant: ``"uoctti"`` or ``"dalal"``.
        num_bins: orientations; inferred from ``C`` when omitted.
        glyph_size: tile side in pixels (VLFeat uses 21).

    Returns:
        ``(Hc * glyph_size, Wc * glyph_size)`` float32 image in ``[0, 1]`` (0 = no gradient;
        signed inputs such as learnt filters map 0 to 0.5).
    """
    _check_variant(variant)
    if isinstance(features, torch.Tensor):
        features = features.detach().cpu().numpy()
    features = np.asarray(features, dtype=np.float64)
    if features.ndim == 4:
        if features.shape[0] != 1:
            raise ValueError(f"hog_glyphs: expected one image's features, got batch of {features.shape[0]}")
        features = features[0]
    if features.ndim != 3:
        raise ValueError(f"hog_glyphs: features must be (C, Hc, Wc), got shape {features.shape}")
    channels = features.shape[0]
    if num_bins is None:
        num_bins = (channels - 4) // 3 if variant == "uoctti" else channels
    if num_bins < 1 or channels != num_feature_channels(variant, num_bins):
        raise ValueError(f"hog_glyphs: {channels} channels do not fit variant {variant!r} with num_bins={num_bins}")
    if glyph_size < 3:
        raise ValueError(f"hog_glyphs: glyph_size must be >= 3, got {glyph_size}")
    n = num_bins
    if variant == "uoctti":
        weights = features[:n] + features[n : 2 * n] + features[2 * n : 3 * n]
        gradient_angles = [k * math.pi / n for k in range(n)]
    else:
        weights = features
        gradient_angles = [(b + 0.5) * math.pi / n for b in range(n)]
    glyphs = _glyph_stack([a + math.pi / 2 for a in gradient_angles], glyph_size)  # edges ⟂ gradients
    rows, cols = weights.shape[1:]
    tiles = np.einsum("kyx,kuv->yxuv", weights, glyphs)  # (Hc, Wc, g, g)
    low = np.minimum(weights.min(axis=0), 0.0)[..., None, None]
    high = np.maximum(weights.max(axis=0), 0.0)[..., None, None]
    tiles = np.clip(tiles, low, high)
    picture = tiles.transpose(0, 2, 1, 3).reshape(rows * glyph_size, cols * glyph_size)
    scale = np.abs(picture).max()
    if scale <= 0:
        return np.zeros_like(picture, dtype=np.float32)
    if picture.min() < 0:
        return (0.5 + 0.5 * picture / scale).astype(np.float32)
    return (picture / scale).astype(np.float32)


class HOG(torch.nn.Module):
    """``nn.Module`` twin of :func:`hog`: ``(B, C, H, W)`` -> the features of ``variant``.

    Works in ``nn.Sequential`` and under ``torch.compile`` (same values); not under
    ``torch.jit.script`` (keyword-only arguments and ``autograd.Function``s with hand-written
    backward passes are outside TorchScript).
    """

    def __init__(self, variant: str = "uoctti", cell_size: int = 8, num_bins: int = 9,
                 bilinear_orientation: bool = False, *, vlfeat_rounding: bool = True):
        super().__init__()
        _check_variant(variant)
        self.variant, self.cell_size, self.num_bins = variant, int(cell_size), int(num_bins)
        self.bilinear_orientation, self.vlfeat_rounding = bool(bilinear_orientation), bool(vlfeat_rounding)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return hog(image, self.variant, self.cell_size, self.num_bins, self.bilinear_orientation,
                   vlfeat_rounding=self.vlfeat_rounding)

    def extra_repr(self) -> str:
        return (f"variant={self.variant!r}, cell_size={self.cell_size}, num_bins={self.num_bins}, "
                f"bilinear_orientation={self.bilinear_orientation}, vlfeat_rounding={self.vlfeat_rounding}")


# The drop-ins for scikit-image and OpenCV.
from .hog_skimage import SkimageHOG, skimage_hog  # noqa: E402,F401
from .hog_opencv import OpenCVHOG, opencv_hog  # noqa: E402,F401
