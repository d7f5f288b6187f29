"""Image-similarity metrics for judging HOG pre-images: cross-correlation, mutual information, SSIM.

These are the three columns of the seed paper's Table 2 (Chiu & Fritz, BMVC 2015, Sec. 4.1). All take
a batch of gray images ``(B, 1, H, W)`` (or ``(B, H, W)``) with values in ``[0, 1]`` and return one
number per image, shape ``(B,)``, in the input's floating dtype and device. They are evaluation
metrics, not losses: none of them is meant to be differentiated (SSIM and CC happen to be).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["cross_correlation", "mutual_information", "ssim"]


def _as_gray_batch(image: torch.Tensor, name: str) -> torch.Tensor:
    if not isinstance(image, torch.Tensor):
        raise ValueError(f"{name}: expected a torch.Tensor, got {type(image).__name__}")
    if image.ndim == 3:
        image = image.unsqueeze(1)
    if image.ndim != 4 or image.shape[1] != 1:
        raise ValueError(
            f"{name}: expected a gray batch of shape (B, 1, H, W) or (B, H, W), got {tuple(image.shape)}"
        )
    if image.numel() == 0:
        raise ValueError(f"{name}: empty image batch {tuple(image.shape)}")
    if not image.is_floating_point():
        raise ValueError(f"{name}: expected a floating dtype (values in [0, 1]), got {image.dtype}")
    if not torch.isfinite(image).all():
        raise ValueError(f"{name}: contains NaN or infinite values")
    return image


def _check_pair(image: torch.Tensor, reference: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    image = _as_gray_batch(image, "image")
    reference = _as_gray_batch(reference, "reference")
    if image.shape != reference.shape:
        raise ValueError(
            f"image and reference must have the same shape, got {tuple(image.shape)} and "
            f"{tuple(reference.shape)}"
        )
    if image.device != reference.device:
        raise ValueError(f"image and reference are on different devices ({image.device}, {reference.device})")
    dtype = torch.promote_types(image.dtype, reference.dtype)
    return image.to(dtype), reference.to(dtype)


def cross_correlation(image: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Pearson correlation coefficient of the gray values of two images, per batch item.

    Args:
        image, reference: ``(B, 1, H, W)`` or ``(B, H, W)`` float tensors (any value range).

    Returns:
        ``(B,)`` in ``[-1, 1]``; invariant to a positive affine change of either image's gray values
        (``a * I + b``, ``a > 0``). A constant image has no defined correlation: it gets ``0``.

    This is the "cross correlation" column of the seed paper's Table 2 (as used by HOGgles, Vondrick et
    al. 2013): the zero-mean normalised correlation over the whole image.
    """
    image, reference = _check_pair(image, reference)
    x = image.flatten(1)
    y = reference.flatten(1)
    x = x - x.mean(dim=1, keepdim=True)
    y = y - y.mean(dim=1, keepdim=True)
    numerator = (x * y).sum(dim=1)
    denominator = torch.sqrt((x * x).sum(dim=1) * (y * y).sum(dim=1))
    tiny = torch.finfo(x.dtype).tiny
    return torch.where(denominator > tiny, numerator / denominator.clamp_min(tiny), torch.zeros_like(numerator))


def mutual_information(image: torch.Tensor, reference: torch.Tensor, bins: int = 256) -> torch.Tensor:
    """Mutual information of the gray values of two images from their joint histogram, in **nats**.

    Args:
        image, reference: ``(B, 1, H, W)`` or ``(B, H, W)``, values in ``[0, 1]`` (values outside are
            clamped into the first/last bin).
        bins: number of equal-width bins over ``[0, 1]`` per image (default 256: the 8-bit gray
            levels, bin ``k`` = ``[k/256, (k+1)/256)``).

    Returns:
        ``(B,)`` ``MI = sum_xy p(x, y) * ln(p(x, y) / (p(x) p(y)))`` with plug-in probabilities (no bias
        correction), natural logarithm. ``0 <= MI <= min(H(image), H(reference)) <= ln(bins)``;
        ``MI(I, I)`` is the gray-level entropy of ``I``.

    Why 256 bins and nats: the seed paper does not say; its Table 2 values (1.2 to 1.9 for correlations
    of 0.3 to 0.76 on 128 x 128 images) are far above the Gaussian-channel value ``-ln(1 - rho^2) / 2``
    (0.43 nats at rho = 0.76), which fits the strong upward bias of a plug-in estimate on 8-bit levels
    (what ``sklearn.metrics.mutual_info_score`` gives on two flattened uint8 images, in nats). We use
    that convention so our numbers sit on the same scale; remember the bias: with 256 bins even two
    independent 128 x 128 images score well above 0. Use fewer bins for an unbiased-ish comparison.
    """
    image, reference = _check_pair(image, reference)
    if not isinstance(bins, int) or bins < 2:
        raise ValueError(f"bins must be an integer >= 2, got {bins!r}")
    batch = image.shape[0]
    x = (image.flatten(1).clamp(0, 1) * bins).floor().long().clamp_(0, bins - 1)
    y = (reference.flatten(1).clamp(0, 1) * bins).floor().long().clamp_(0, bins - 1)
    offsets = torch.arange(batch, device=x.device).unsqueeze(1) * (bins * bins)
    joint_index = (offsets + x * bins + y).flatten()
    counts = torch.bincount(joint_index, minlength=batch * bins * bins).reshape(batch, bins, bins)
    joint = counts.to(image.dtype) / x.shape[1]
    marginal_x = joint.sum(dim=2, keepdim=True)
    marginal_y = joint.sum(dim=1, keepdim=True)
    outer = marginal_x * marginal_y
    safe = joint > 0
    ratio = torch.where(safe, joint / torch.where(safe, outer, torch.ones_like(outer)), torch.ones_like(joint))
    return (joint * torch.log(ratio)).sum(dim=(1, 2))


def _gaussian_kernel_1d(sigma: float, truncate: float, dtype: torch.dtype, device) -> torch.Tensor:
    # Same sampled, normalised kernel as scipy.ndimage.gaussian_filter1d (radius = int(truncate*sigma+0.5)).
    radius = int(truncate * sigma + 0.5)
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    return (kernel / kernel.sum()).to(dtype=dtype, device=device)


def ssim(
    image: torch.Tensor,
    reference: torch.Tensor,
    data_range: float = 1.0,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> torch.Tensor:
    """Mean structural similarity (Wang, Bovik, Sheikh & Simoncelli 2004) per batch item.

    Args:
        image, reference: ``(B, 1, H, W)`` or ``(B, H, W)`` float tensors, ``H, W >= 11``.
        data_range: dynamic range of the gray values (1 for images in ``[0, 1]``).
        sigma: standard deviation of the Gaussian weighting window in pixels (1.5 as in the paper;
            truncated at 3.5 sigma, i.e. an 11 x 11 window).
        k1, k2: stabilising constants, ``C1 = (k1 * data_range)^2``, ``C2 = (k2 * data_range)^2``.

    Returns:
        ``(B,)`` mean SSIM over the pixels whose window lies fully inside the image (population
        covariances). Equal to ``skimage.metrics.structural_similarity(im1, im2,
        gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1)``, which crops the
        same border before averaging; so the border handling of the filter never enters the result.
    """
    image, reference = _check_pair(image, reference)
    if not (data_range > 0 and math.isfinite(data_range)):
        raise ValueError(f"data_range must be a positive finite number, got {data_range!r}")
    kernel = _gaussian_kernel_1d(sigma, 3.5, image.dtype, image.device)
    size = kernel.numel()
    height, width = image.shape[-2:]
    if height < size or width < size:
        raise ValueError(f"ssim needs images of at least {size} x {size} pixels, got {height} x {width}")

    def blur(values: torch.Tensor) -> torch.Tensor:
        # Separable "valid" convolution: only the pixels skimage keeps after cropping its border.
        values = F.conv2d(values, kernel.view(1, 1, 1, size))
        return F.conv2d(values, kernel.view(1, 1, size, 1))

    x, y = image, reference
    mean_x, mean_y = blur(x), blur(y)
    var_x = blur(x * x) - mean_x * mean_x
    var_y = blur(y * y) - mean_y * mean_y
    cov_xy = blur(x * y) - mean_x * mean_y
    c1 = (k1 * data_range) ** 2
    c2 = (k2 * data_range) ** 2
    numerator = (2 * mean_x * mean_y + c1) * (2 * cov_xy + c2)
    denominator = (mean_x * mean_x + mean_y * mean_y + c1) * (var_x + var_y + c2)
    return (numerator / denominator).mean(dim=(1, 2, 3))
