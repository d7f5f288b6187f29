"""HOG pre-images: recover a gray image whose HOG matches a given descriptor, by gradient descent.

Seed paper: Chiu & Fritz, "See the Difference: Direct Pre-Image Reconstruction and Pose Estimation by
Differentiating HOG", BMVC 2015, Sec. 4.1, eq. 9::

    I_hat = argmin_I  || phi(I) - phi_target ||  +  xi * sum_{p,q neighbours} | i_p - i_q |

with a smoothness weight ``xi`` that lets information propagate into areas without edges. No training
data is used anywhere; only the descriptor (and its HOG parameters) is seen.

What this implementation adds to eq. 9 (each one is an option, measured in ``bench/invert_quality.py``,
table in ``docs/invert_quality.md``):

* ``init="hog"``: start from the image whose pixel gradients best match (least squares, Neumann
  Poisson solve) the gradient field implied by the *signed* orientation channels of the descriptor
  (UoCTTI has them; Dalal-HOG does not, so it falls back to ``"noise"``). The bin directions are found
  by probing ``hog`` with ramps, so nothing depends on the channel order of one implementation.
* ``recover_contrast`` (UoCTTI): the block normalisation hides how strong the gradients of one
  region are relative to another, but the 4 texture channels of every cell are its undirected
  magnitude times the inverse norms of the 4 blocks around it, and every block is shared by 4 cells:
  a log-linear least-squares problem gives all block norms up to one global scale
  (:func:`_uoctti_block_norms`), and dividing them out restores the relative contrast before the
  Poisson solve. This is the largest single gain (ablation A3 -> A4).
* Fixed-contrast parameterisation: HOG carries neither the mean gray value nor (after normalisation)
  the global contrast. We optimise ``x`` but evaluate everything on
  ``z = PRIOR_MEAN + PRIOR_STD * (x - mean x) / std x``: those two numbers are pinned to a natural-image
  prior (mean/std of the ``calibration`` crops of ``bench/invert_crops.json``, images that are never
  scored), and the optimiser cannot drift into a zero-contrast image. The result is ``z`` re-scaled to
  the SSIM-calibrated std :data:`OUTPUT_STD` and clipped to [0, 1], after a mild Gaussian blur
  (:data:`OUTPUT_BLUR`) that removes pixel-scale detail HOG does not determine.
* ``soft_orientation_gradient`` (UoCTTI, hard orientation binning): hard binning has no derivative
  with respect to the gradient *angle*; we use the value of the hard descriptor with the derivative of
  the bilinear one (a straight-through estimator).
* ``restarts``: extra noise starts; per image the one with the lowest HOG distance is kept (chosen from
  the descriptor alone, never the original).
* Adam with a cosine learning-rate decay (per-pixel steps keep the batch items independent).

Smoothness schedule: ``xi(t) = xi_start * (xi_end / xi_start) ** (t / T)`` for the first
``T = smoothness_decay * iterations`` steps of each scale, ``xi_end`` afterwards. The HOG term is the
*relative* distance ``||phi(z) - phi_target|| / ||phi_target||`` and the smoothness term the mean
absolute difference of 4-neighbours in gray units. The paper's "start at 100, then let the HOG term
dominate" (``xi`` 100 -> 0.01) is right for a noise start (ablation A1); from the Poisson start a
constant ``xi = 10`` is better. The defaults (``xi`` 10 constant, learning rate 0.003, 100 steps,
soft orientation gradient) were picked by the largest CC + SSIM on the 6 calibration crops among 7
candidate settings, not on the benchmark crops.
"""
from __future__ import annotations

import math
from typing import Callable, Optional, Sequence, Union

import torch
import torch.nn.functional as F

__all__ = [
    "reconstruct",
    "hog_pyramid",
    "ReconstructionCancelled",
    "METHODS",
    "PRIOR_MEAN",
    "PRIOR_STD",
    "OUTPUT_STD",
    "OUTPUT_BLUR",
    "MULTISCALE_FACTORS",
]

METHODS = ("single", "multiscale", "multiscale_more")
# Linear down-scaling factors of the multi-scale methods, coarse to fine: the paper's area scales
# 1/64, 1/16, 1/4 and the full image (Sec. 4.1, Fig. 3).
MULTISCALE_FACTORS = (8, 4, 2, 1)
# Natural-image prior for the two numbers HOG does not carry: mean and standard deviation of the gray
# values of the 6 calibration crops of bench/invert_crops.json (0.467 and 0.114), rounded.
PRIOR_MEAN = 0.47
PRIOR_STD = 0.11
# Standard deviation of the returned image: a reconstruction is an uncertain estimate, and SSIM
# rewards shrinking an uncertain estimate's contrast. Without the output blur, 0.075 maximised the mean
# SSIM of the default reconstructions of the 6 calibration crops over std 0.04 ... 0.20 (flat between
# 0.06 and 0.09); with it, 0.09 did (grid 0.05 ... 0.12, flat between 0.09 and 0.10).
OUTPUT_STD = 0.09
# Gaussian blur (sigma in pixels) of the result before the final re-scaling: the pixel-wise descent
# leaves pixel-scale detail that HOG (8-pixel cells) does not determine and that is uncorrelated with
# the original; SSIM (1.5-pixel windows) pays for it. 1.0 maximised the calibration crops' mean SSIM
# over sigma 0 ... 2 (0.521 -> 0.533 together with OUTPUT_STD 0.09).
OUTPUT_BLUR = 1.0

ProgressCallback = Callable[[float, str], Optional[bool]]


class ReconstructionCancelled(RuntimeError):
    """Raised by :func:`reconstruct` when the progress callback returns ``False``."""


def _hog(image: torch.Tensor, variant: str, cell_size: int, num_bins: int, bilinear: bool) -> torch.Tensor:
    from .hog import hog

    return hog(image, variant, cell_size=cell_size, num_bins=num_bins, bilinear_orientation=bilinear)


def _downsample(image: torch.Tensor, factor: int) -> torch.Tensor:
    # Area averaging: the gray value a camera with `factor`-times larger pixels would record.
    return image if factor == 1 else F.avg_pool2d(image, factor)


def hog_pyramid(
    image: torch.Tensor,
    variant: str,
    *,
    cell_size: int = 8,
    num_bins: int = 9,
    bilinear_orientation: bool = False,
    factors: Sequence[int] = MULTISCALE_FACTORS,
) -> list[torch.Tensor]:
    """HOG of an image at several linear scales, each with the cell size divided by the same factor.

    The input of ``reconstruct(..., method="multiscale_more")`` (seed paper Fig. 3b): because the cell
    size shrinks with the image, every level has the same cell grid.

    Args:
        image: ``(B, 1, H, W)`` gray, ``H`` and ``W`` multiples of ``cell_size``.
        factors: linear down-scaling factors, coarse to fine; each must divide ``cell_size``.

    Returns:
        list of descriptors, one per factor, in the order of ``factors``, each shaped like
        ``hog(image, variant, cell_size=cell_size)``.
    """
    image = _check_image_batch(image)
    for factor in factors:
        if cell_size % factor:
            raise ValueError(f"scale factor {factor} does not divide cell_size {cell_size}")
    return [
        _hog(_downsample(image, factor), variant, cell_size // factor, num_bins, bilinear_orientation)
        for factor in factors
    ]


def _check_image_batch(image: torch.Tensor) -> torch.Tensor:
    if not isinstance(image, torch.Tensor) or image.ndim != 4 or image.shape[1] != 1:
        raise ValueError(f"expected a gray image batch (B, 1, H, W), got {getattr(image, 'shape', type(image))}")
    if not image.is_floating_point():
        raise ValueError(f"expected a floating-point image, got {image.dtype}")
    return image


def _check_features(features: torch.Tensor, name: str) -> None:
    if not isinstance(features, torch.Tensor):
        raise ValueError(f"{name}: expected a torch.Tensor, got {type(features).__name__}")
    if features.ndim != 4:
        raise ValueError(f"{name}: expected a descriptor (B, C, Hc, Wc), got shape {tuple(features.shape)}")
    if features.numel() == 0:
        raise ValueError(f"{name}: empty descriptor {tuple(features.shape)}")
    if not features.is_floating_point():
        raise ValueError(f"{name}: expected a floating dtype, got {features.dtype}")
    if not torch.isfinite(features).all():
        raise ValueError(f"{name}: contains NaN or infinite values")


def _normalized(x: torch.Tensor, std: float = PRIOR_STD) -> torch.Tensor:
    mean = x.mean(dim=(2, 3), keepdim=True)
    spread = x.std(dim=(2, 3), keepdim=True, unbiased=False)
    return PRIOR_MEAN + std * (x - mean) / (spread + 1e-8)


def _gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``(B, 1, H, W)`` (truncated at 3 sigma, replicated border)."""
    from .metrics import _gaussian_kernel_1d

    kernel = _gaussian_kernel_1d(sigma, 3.0, image.dtype, image.device)
    radius = kernel.numel() // 2
    image = F.conv2d(F.pad(image, (radius, radius, 0, 0), mode="replicate"), kernel.view(1, 1, 1, -1))
    return F.conv2d(F.pad(image, (0, 0, radius, radius), mode="replicate"), kernel.view(1, 1, -1, 1))


def _total_variation(z: torch.Tensor) -> torch.Tensor:
    # Mean |i_p - i_q| over horizontal and vertical neighbour pairs, per image: eq. 9's prior.
    dx = (z[..., :, 1:] - z[..., :, :-1]).abs().mean(dim=(1, 2, 3))
    dy = (z[..., 1:, :] - z[..., :-1, :]).abs().mean(dim=(1, 2, 3))
    return 0.5 * (dx + dy)


_DIRECTION_CACHE: dict = {}


def _signed_bin_directions(variant, cell_size, num_bins, bilinear, dtype, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit gradient direction (x right, y down) of each descriptor channel and how 'signed' it is.

    Found by probing ``hog`` with linear ramps at 72 angles (no assumption about channel order):
    ``direction_k ∝ sum_a response_k(a) * (cos a, sin a)``; ``signedness_k`` in [0, 1] is the length of
    that mean before normalising (about 0 for unsigned or texture channels).
    """
    key = (variant, cell_size, num_bins, bilinear, dtype, str(device))
    if key not in _DIRECTION_CACHE:
        size = 6 * cell_size
        angles = torch.arange(72, dtype=torch.float64) * (2 * math.pi / 72)
        coords = torch.arange(size, dtype=torch.float64) - size / 2
        yy, xx = torch.meshgrid(coords, coords, indexing="ij")
        ramps = 0.5 + 0.3 * (torch.cos(angles).view(-1, 1, 1) * xx + torch.sin(angles).view(-1, 1, 1) * yy) / size
        with torch.no_grad():
            response = _hog(ramps.unsqueeze(1).to(dtype=dtype, device=device), variant, cell_size, num_bins, bilinear)
        response = response[..., 2:-2, 2:-2].mean(dim=(2, 3)).double().cpu()  # interior cells, (72, C)
        weights = response / response.sum(dim=0, keepdim=True).clamp_min(1e-12)
        mean_vector = torch.stack([(weights * torch.cos(angles)[:, None]).sum(0), (weights * torch.sin(angles)[:, None]).sum(0)], 1)
        signedness = mean_vector.norm(dim=1)
        directions = mean_vector / signedness.clamp_min(1e-12)[:, None]
        _DIRECTION_CACHE[key] = (directions.to(dtype=dtype, device=device), signedness.to(dtype=dtype, device=device))
    return _DIRECTION_CACHE[key]


def _poisson_neumann(gx: torch.Tensor, gy: torch.Tensor) -> torch.Tensor:
    """Least-squares image whose forward differences match ``(gx, gy)`` (Neumann boundary), zero mean.

    Solved exactly by the DCT-II (written as an FFT of the mirrored right-hand side).
    """
    height, width = gx.shape[-2:]
    # Right-hand side D^T g with D the forward-difference operator (zero flux through the border).
    gx = gx.clone()
    gy = gy.clone()
    gx[..., :, -1] = 0
    gy[..., -1, :] = 0
    rhs = gx - F.pad(gx[..., :, :-1], (1, 0)) + gy - F.pad(gy[..., :-1, :], (0, 0, 1, 0))
    mirrored = torch.cat([rhs, rhs.flip(-1)], dim=-1)
    mirrored = torch.cat([mirrored, mirrored.flip(-2)], dim=-2)
    spectrum = torch.fft.fft2(mirrored)
    ky = torch.arange(2 * height, dtype=gx.dtype, device=gx.device)
    kx = torch.arange(2 * width, dtype=gx.dtype, device=gx.device)
    eigen = (2 - 2 * torch.cos(math.pi * ky / height)).view(-1, 1) + (2 - 2 * torch.cos(math.pi * kx / width)).view(1, -1)
    eigen[0, 0] = 1.0
    spectrum = spectrum / (-eigen)
    spectrum[..., 0, 0] = 0
    return torch.fft.ifft2(spectrum).real[..., :height, :width]


def _uoctti_block_norms(target: torch.Tensor, num_bins: int, sweeps: int = 200) -> Optional[torch.Tensor]:
    """Relative inverse block norms ``(B, 4, Hc, Wc)`` of the 4 blocks around each cell, from the
    UoCTTI texture channels alone (``None`` if the descriptor has no texture channels).

    VLFeat's texture channel ``q`` of cell ``c`` is ``0.2357 * sum_j min(u_j(c) n_q(c), 0.2)``
    (``u`` the undirected histogram, ``n_q`` the inverse L2 norm of block ``q``). Without clipping
    it factorises, ``log t_q(c) = log |u(c)|_1 + log n_block + const``, and every block is shared by 4
    cells: an over-determined linear system for the per-cell magnitudes and per-block norms (up to
    one global scale), solved here by alternating least squares. So the relative contrast between
    regions, which the normalisation seems to remove, is largely recoverable from the descriptor.
    """
    from .hog import feature_channels

    names = feature_channels("uoctti", num_bins)
    order = ("texture_ul", "texture_ur", "texture_ll", "texture_lr")
    if target.shape[1] != len(names):
        return None
    texture = target[:, [names.index(name) for name in order]]  # (B, 4, Hc, Wc)
    rows, cols = texture.shape[-2:]
    shifts = ((0, 0), (0, 1), (1, 0), (1, 1))  # block (y + dy, x + dx) on the padded block grid
    valid = (texture > 1e-6).to(texture.dtype)
    logs = torch.log(texture.clamp_min(1e-6))
    log_cell = torch.zeros_like(texture[:, 0])
    log_block = torch.zeros(texture.shape[0], rows + 1, cols + 1, dtype=texture.dtype, device=texture.device)
    for _ in range(sweeps):
        total = torch.zeros_like(log_block)
        count = torch.zeros_like(log_block)
        for q, (dy, dx) in enumerate(shifts):
            total[:, dy:dy + rows, dx:dx + cols] += valid[:, q] * (logs[:, q] - log_cell)
            count[:, dy:dy + rows, dx:dx + cols] += valid[:, q]
        log_block = total / count.clamp_min(1e-9)
        around = torch.stack([log_block[:, dy:dy + rows, dx:dx + cols] for dy, dx in shifts], dim=1)
        log_cell = (valid * (logs - around)).sum(1) / valid.sum(1).clamp_min(1e-9)
    around = torch.stack([log_block[:, dy:dy + rows, dx:dx + cols] for dy, dx in shifts], dim=1)
    return torch.exp(around - around.amax(dim=(1, 2, 3), keepdim=True))


def _hog_gradient_start(
    target, variant, image_size, cell_size, num_bins, bilinear, recover_contrast=True
) -> Optional[torch.Tensor]:
    """Poisson start from the signed orientation channels, or ``None`` if the variant has none."""
    directions, signedness = _signed_bin_directions(variant, cell_size, num_bins, bilinear, target.dtype, target.device)
    signed = signedness > 0.5
    if not bool(signed.any()):
        return None
    used = target[:, signed]  # (B, K, Hc, Wc)
    if recover_contrast and variant == "uoctti":
        norms = _uoctti_block_norms(target, num_bins)
        if norms is not None:
            # Undo the block normalisation (0.5 * sum of the 4 inverse norms) up to one global scale.
            used = used / (0.5 * norms.sum(dim=1, keepdim=True)).clamp_min(1e-6)
    field = torch.einsum("bkhw,kd->bdhw", used, directions[signed])
    height, width = image_size
    covered = (target.shape[-2] * cell_size, target.shape[-1] * cell_size)
    # Cell (i, j) describes the pixels around its centre ((i + 0.5) c, (j + 0.5) c): bilinear
    # upsampling with align_corners=False puts the samples exactly there.
    field = F.interpolate(field, size=covered, mode="bilinear", align_corners=False)
    field = F.pad(field, (0, max(width - covered[1], 0), 0, max(height - covered[0], 0)), mode="replicate")
    field = field[..., :height, :width]
    return _poisson_neumann(field[:, :1], field[:, 1:])


def reconstruct(
    features: Union[torch.Tensor, Sequence[torch.Tensor]],
    variant: str,
    image_size: tuple[int, int],
    method: str = "single",
    *,
    cell_size: int = 8,
    num_bins: int = 9,
    bilinear_orientation: bool = False,
    iterations: Optional[int] = None,
    seed: int = 0,
    device: Optional[Union[str, torch.device]] = None,
    callback: Optional[ProgressCallback] = None,
    init: str = "hog",
    restarts: int = 1,
    smoothness: float = 10.0,
    smoothness_end: float = 10.0,
    smoothness_decay: float = 0.5,
    learning_rate: float = 0.003,
    fixed_contrast: bool = True,
    soft_orientation_gradient: bool = True,
    recover_contrast: bool = True,
    output_std: float = OUTPUT_STD,
    output_blur: float = OUTPUT_BLUR,
) -> torch.Tensor:
    """Reconstruct gray images from their HOG descriptors alone (seed paper Sec. 4.1, eq. 9).

    Args:
        features: for ``"single"`` and ``"multiscale"`` one descriptor ``(B, C, Hc, Wc)`` as returned
            by ``torch_backend.hog.hog(image, variant, cell_size, num_bins, bilinear_orientation)``;
            for ``"multiscale_more"`` a list of 4 such descriptors of the original at linear scales
            1/8, 1/4, 1/2, 1 (coarse to fine, see :func:`hog_pyramid`): this method **uses more
            information** than the others (paper Fig. 3b) and is not comparable to them.
        variant: ``"uoctti"`` or ``"dalal"`` (whatever ``torch_backend.hog.hog`` accepts).
        image_size: ``(H, W)`` of the image to reconstruct; ``hog`` of an ``(H, W)`` image must give the
            descriptor's cell grid.
        method: ``"single"`` (full resolution only), ``"multiscale"`` (reconstruct at 1/8, 1/4, 1/2 and
            full linear scale with cell sizes c/8, c/4, c/2, c against the *one* given descriptor,
            upsampling between scales; paper Fig. 3a) or ``"multiscale_more"``.
        cell_size, num_bins, bilinear_orientation: the HOG parameters the descriptor was made with.
        iterations: Adam steps at full resolution (default 100; the coarser scales get the same number
            of, much cheaper, steps).
        seed: seeds the noise starts; the result is deterministic for a given seed and device.
        device: where to compute (default: the descriptor's device).
        callback: ``callback(progress in [0, 1], message)`` after every step; returning ``False``
            cancels (raises :class:`ReconstructionCancelled`).
        init: ``"hog"`` (Poisson start from the signed orientation channels; ``"noise"`` if the variant
            has none), ``"noise"`` (prior mean + small Gaussian noise) or ``"flat"`` (prior mean +
            tiny noise, so that gradients are defined).
        restarts: starts per image (first as ``init``, the others noise); the one with the lowest
            final HOG distance is returned.
        smoothness, smoothness_end, smoothness_decay: the ``xi`` schedule (module docstring).
        learning_rate: initial Adam step in gray units (cosine-decayed to 1/10 of it).
        fixed_contrast: evaluate on the prior-normalised image (module docstring); ``False`` optimises
            the raw pixels and only clips the result.
        soft_orientation_gradient: hard-binned UoCTTI: differentiate through the bilinear votes
            (module docstring). Costs a second HOG evaluation per step.
        recover_contrast: UoCTTI ``init="hog"``: undo the block normalisation before the Poisson
            solve, with block norms estimated from the texture channels.
        output_std: with ``fixed_contrast``, the gray-level standard deviation of the returned image
            (mean ``PRIOR_MEAN``); see :data:`OUTPUT_STD`.
        output_blur: with ``fixed_contrast``, sigma in pixels of a Gaussian blur applied before that
            re-scaling (0: none); see :data:`OUTPUT_BLUR`.

    Returns:
        ``(B, 1, H, W)`` gray reconstructions in ``[0, 1]``, the descriptor's dtype, on ``device``.

    Raises:
        ValueError: unknown method/variant/init, wrong descriptor shape for ``image_size``, non-finite
            values, ``multiscale_more`` without a list of 4 descriptors.
        ReconstructionCancelled: the callback returned ``False``.
    """
    targets, height, width = _checked_targets(features, method, init, image_size, cell_size)
    iterations = 100 if iterations is None else iterations
    if not (output_blur >= 0 and math.isfinite(output_blur)):
        raise ValueError(f"output_blur must be a finite sigma >= 0, got {output_blur!r}")
    if iterations < 1 or restarts < 1:
        raise ValueError(f"iterations and restarts must be >= 1, got {iterations} and {restarts}")
    device = torch.device(device) if device is not None else targets[0].device
    targets = [t.to(device=device, dtype=targets[0].dtype) for t in targets]
    factors = (1,) if method == "single" else MULTISCALE_FACTORS
    stage_targets = targets * len(factors) if method == "multiscale" else targets
    _check_scales(method, factors, stage_targets, (height, width), variant, cell_size, num_bins, bilinear_orientation)

    generator = torch.Generator().manual_seed(int(seed))
    total_steps = restarts * iterations * len(factors)
    done = 0
    best = None
    best_distance = None
    for restart in range(restarts):
        coarse = (height // factors[0], width // factors[0])
        x = _start_image(init if restart == 0 else "noise", stage_targets[0], variant, coarse, cell_size // factors[0],
                         num_bins, bilinear_orientation, recover_contrast, generator)
        for stage, (factor, target) in enumerate(zip(factors, stage_targets)):
            if stage > 0:
                x = F.interpolate(x.detach(), size=(height // factor, width // factor), mode="bilinear", align_corners=False)
            x, distance, done = _optimize(
                x, target, variant, cell_size // factor, num_bins, bilinear_orientation, iterations,
                smoothness, smoothness_end, smoothness_decay, learning_rate, fixed_contrast,
                soft_orientation_gradient, callback, done, total_steps, f"restart {restart + 1}/{restarts}, scale 1/{factor}",
            )
        if fixed_contrast and output_blur > 0:
            x = _gaussian_blur(x, output_blur)
        image = (_normalized(x, output_std) if fixed_contrast else x).clamp(0, 1)
        if best is None:
            best, best_distance = image, distance
        else:
            better = distance < best_distance
            best = torch.where(better.view(-1, 1, 1, 1), image, best)
            best_distance = torch.minimum(distance, best_distance)
    return best.detach()


def _checked_targets(features, method: str, init: str, image_size, cell_size: int):
    """The descriptors as a list (one per scale for ``multiscale_more``) and ``(H, W)``, checked."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")
    if init not in ("hog", "noise", "flat"):
        raise ValueError(f"unknown init {init!r}; expected 'hog', 'noise' or 'flat'")
    if method == "multiscale_more":
        if isinstance(features, torch.Tensor) or not isinstance(features, (list, tuple)):
            raise ValueError(
                "method 'multiscale_more' needs a list of descriptors, one per scale 1/8, 1/4, 1/2, 1 "
                "(see hog_pyramid); it uses more information than 'single'/'multiscale'"
            )
        if len(features) != len(MULTISCALE_FACTORS):
            raise ValueError(f"method 'multiscale_more' needs {len(MULTISCALE_FACTORS)} descriptors, got {len(features)}")
        targets = list(features)
    else:
        if not isinstance(features, torch.Tensor):
            raise ValueError(f"method {method!r} takes one descriptor tensor (B, C, Hc, Wc), got {type(features).__name__}")
        targets = [features]
    for index, target in enumerate(targets):
        _check_features(target, f"features[{index}]" if len(targets) > 1 else "features")
    if any(t.shape[0] != targets[0].shape[0] for t in targets):
        raise ValueError("all descriptors must have the same batch size")
    try:
        height, width = (int(v) for v in image_size)
    except (TypeError, ValueError):
        raise ValueError(f"image_size must be (H, W), got {image_size!r}") from None
    if height < cell_size or width < cell_size:
        raise ValueError(f"image_size {image_size} is smaller than one cell ({cell_size} px)")
    return targets, height, width


def _check_scales(method: str, factors, stage_targets, size, variant: str, cell_size: int, num_bins: int,
                  bilinear_orientation: bool) -> None:
    """Every scale divides the cell and image size, and each descriptor is the HOG of an image of
    its scale's size (compared with a probe's)."""
    height, width = size
    for factor in factors:
        if cell_size % factor or height % factor or width % factor:
            raise ValueError(
                f"method {method!r} needs cell_size and image size divisible by {factor}; got cell_size "
                f"{cell_size}, image {height} x {width}"
            )
    dtype, device = stage_targets[0].dtype, stage_targets[0].device
    with torch.no_grad():
        for factor, target in zip(factors, stage_targets):
            probe = torch.full((1, 1, height // factor, width // factor), 0.5, dtype=dtype, device=device)
            probe = probe + 0.01 * torch.arange(width // factor, dtype=dtype, device=device)
            expected = _hog(probe, variant, cell_size // factor, num_bins, bilinear_orientation).shape[1:]
            if tuple(target.shape[1:]) != tuple(expected):
                raise ValueError(
                    f"descriptor shape {tuple(target.shape[1:])} does not match hog of a {height // factor} x "
                    f"{width // factor} image with cell_size {cell_size // factor} ({tuple(expected)})"
                )


def _start_image(kind: str, target: torch.Tensor, variant: str, size, cell_size: int, num_bins: int,
                 bilinear_orientation: bool, recover_contrast: bool, generator: torch.Generator) -> torch.Tensor:
    """A ``(B, 1, H, W)`` start: ``"hog"`` (Poisson start from the descriptor), ``"noise"`` or ``"flat"``."""
    start = None
    if kind == "hog":
        start = _hog_gradient_start(target, variant, size, cell_size, num_bins, bilinear_orientation, recover_contrast)
    noise_scale = 1e-3 if kind == "flat" else 0.1
    noise = torch.randn((target.shape[0], 1) + tuple(size), generator=generator, dtype=torch.float64)
    noise = noise.to(device=target.device, dtype=target.dtype)
    if start is None:
        return PRIOR_MEAN + noise_scale * noise
    # On the prior's gray scale, so that the step size means the same for every start.
    return _normalized(start) + 1e-3 * noise


def _optimize(
    x, target, variant, cell_size, num_bins, bilinear, steps, xi_start, xi_end, decay, learning_rate,
    fixed_contrast, soft_gradient, callback, done, total_steps, label,
):
    """Adam on the pixels of ``x`` for ``steps`` steps; returns (x, final relative HOG distance, done)."""
    x = x.detach().clone().requires_grad_(True)
    optimizer = torch.optim.Adam([x], lr=learning_rate)
    target_norm = target.flatten(1).norm(dim=1).clamp_min(1e-12)
    decay_steps = max(1, int(round(decay * steps)))
    for step in range(steps):
        fraction = min(step / decay_steps, 1.0)
        xi = xi_start * (xi_end / xi_start) ** fraction if xi_start > 0 else 0.0
        for group in optimizer.param_groups:
            group["lr"] = learning_rate * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / steps)))
        optimizer.zero_grad(set_to_none=True)
        z = _normalized(x) if fixed_contrast else x
        features = _hog(z, variant, cell_size, num_bins, bilinear)
        if soft_gradient and variant == "uoctti" and not bilinear:
            # Value of the hard-binned descriptor, derivative of the bilinear one: hard binning has
            # no derivative w.r.t. the gradient *angle*; the bilinear votes do.
            soft = _hog(z, variant, cell_size, num_bins, True)
            features = features.detach() + soft - soft.detach()
        distance = (features - target).flatten(1).norm(dim=1) / target_norm
        loss = (distance + xi * _total_variation(z)).sum()
        loss.backward()
        optimizer.step()
        done += 1
        if callback is not None and callback(done / total_steps, f"{label}, step {step + 1}/{steps}") is False:
            raise ReconstructionCancelled(f"reconstruction cancelled by the callback at {done}/{total_steps} steps")
    with torch.no_grad():
        z = _normalized(x) if fixed_contrast else x
        distance = (_hog(z.clamp(0, 1), variant, cell_size, num_bins, bilinear) - target).flatten(1).norm(dim=1) / target_norm
    return x.detach(), distance, done
