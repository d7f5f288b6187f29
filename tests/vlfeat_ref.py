"""ctypes wrapper of VLFeat's ``vl_hog`` (libvl, Debian ``libvlfeat-dev``), the reference for ``uoctti``.

VLFeat's C API (vl/hog.h, 0.9.21)::

    VlHog * vl_hog_new(VlHogVariant variant, vl_size numOrientations, vl_bool transposed);
    void vl_hog_put_image(VlHog *, float const * image, vl_size width, vl_size height,
                          vl_size numChannels, vl_size cellSize);
    void vl_hog_extract(VlHog *, float * features);

``image`` is planar: channel ``k`` pixel ``(x, y)`` lives at ``image[x + y*width + k*width*height]``
(the fastest-varying memory index is called ``x``). With ``transposed = false`` that is a C-ordered
``(C, H, W)`` array; the MATLAB ``vl_hog`` mex passes MATLAB's column-major images with
``transposed = true`` instead, i.e. the C-ordered ``(C, W, H)`` array, and VLFeat swaps its
orientation vectors and texture blocks so that features mean the same in image space. The output
``features`` has the same planar layout: ``(D, hogHeight, hogWidth)`` C-ordered, transposed
likewise. :func:`vlfeat_hog` supports both paths and always returns ``(D, Hc, Wc)`` in image order.
"""
from __future__ import annotations

import ctypes
import ctypes.util

import numpy as np

VL_HOG_VARIANTS = {"dalaltriggs": 0, "uoctti": 1}

_lib = None


def load_libvl():
    """Return the loaded libvl (``ctypes.CDLL``) or raise ``OSError`` when it is not installed."""
    global _lib
    if _lib is not None:
        return _lib
    name = ctypes.util.find_library("vl")
    if name is None:
        raise OSError("libvl (VLFeat) not found; install Debian's libvlfeat-dev")
    lib = ctypes.CDLL(name)
    size, index, c_bool = ctypes.c_uint64, ctypes.c_int64, ctypes.c_int
    lib.vl_hog_new.restype = ctypes.c_void_p
    lib.vl_hog_new.argtypes = [ctypes.c_int, size, c_bool]
    lib.vl_hog_delete.restype = None
    lib.vl_hog_delete.argtypes = [ctypes.c_void_p]
    lib.vl_hog_put_image.restype = None
    lib.vl_hog_put_image.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_float), size, size, size, size]
    lib.vl_hog_extract.restype = None
    lib.vl_hog_extract.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_float)]
    for getter in ("vl_hog_get_width", "vl_hog_get_height"):
        getattr(lib, getter).restype = size
        getattr(lib, getter).argtypes = [ctypes.c_void_p]
    lib.vl_hog_get_dimension.restype = size
    lib.vl_hog_get_dimension.argtypes = [ctypes.c_void_p]
    lib.vl_hog_get_permutation.restype = ctypes.POINTER(index)
    lib.vl_hog_get_permutation.argtypes = [ctypes.c_void_p]
    lib.vl_hog_set_use_bilinear_orientation_assignments.restype = None
    lib.vl_hog_set_use_bilinear_orientation_assignments.argtypes = [ctypes.c_void_p, c_bool]
    _lib = lib
    return lib


def vlfeat_hog(
    image: np.ndarray,
    cell_size: int = 8,
    num_bins: int = 9,
    variant: str = "uoctti",
    bilinear_orientation: bool = False,
    transposed: bool = False,
) -> np.ndarray:
    """Run libvl's HOG on one image ``(C, H, W)`` (or ``(H, W)``); returns ``(D, Hc, Wc)`` float32.

    ``transposed=True`` feeds the column-major layout the MATLAB ``vl_hog`` uses (same result up
    to float rounding; a check that we read VLFeat's layout right).
    """
    lib = load_libvl()
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[None]
    channels, height, width = image.shape
    planar = image.transpose(0, 2, 1) if transposed else image
    planar = np.ascontiguousarray(planar, dtype=np.float32)
    mem_width, mem_height = (height, width) if transposed else (width, height)
    hog = lib.vl_hog_new(VL_HOG_VARIANTS[variant], num_bins, int(transposed))
    try:
        lib.vl_hog_set_use_bilinear_orientation_assignments(hog, int(bilinear_orientation))
        lib.vl_hog_put_image(
            hog, planar.ctypes.data_as(ctypes.POINTER(ctypes.c_float)), mem_width, mem_height, channels, cell_size
        )
        out_w, out_h = lib.vl_hog_get_width(hog), lib.vl_hog_get_height(hog)
        dim = lib.vl_hog_get_dimension(hog)
        features = np.zeros((dim, out_h, out_w), dtype=np.float32)
        lib.vl_hog_extract(hog, features.ctypes.data_as(ctypes.POINTER(ctypes.c_float)))
    finally:
        lib.vl_hog_delete(hog)
    return features.transpose(0, 2, 1).copy() if transposed else features


def vlfeat_permutation(num_bins: int = 9, variant: str = "uoctti") -> np.ndarray:
    """VLFeat's left-right flip permutation: ``flipped[i] = features[perm[i]]`` (per cell)."""
    lib = load_libvl()
    hog = lib.vl_hog_new(VL_HOG_VARIANTS[variant], num_bins, 0)
    try:
        dim = lib.vl_hog_get_dimension(hog)
        pointer = lib.vl_hog_get_permutation(hog)
        return np.array([pointer[i] for i in range(dim)], dtype=np.int64)
    finally:
        lib.vl_hog_delete(hog)


# Small cases whose VLFeat outputs are committed under tests/data (vlfeat_<name>_image.npy, the
# float32 (C, H, W) input, and vlfeat_<name>_features.npy) so that equality is tested without libvl.
# Regenerate with `python tests/data/make_vlfeat_refs.py`.
REFERENCE_CASES = {
    "camera_gray_hard_c8": dict(cell_size=8, num_bins=9, bilinear=False),
    "camera_gray_bilinear_c8": dict(cell_size=8, num_bins=9, bilinear=True),
    "astronaut_rgb_hard_c5": dict(cell_size=5, num_bins=9, bilinear=False),
    "astronaut_rgb_bilinear_c6": dict(cell_size=6, num_bins=9, bilinear=True),
    "random_gray_bilinear_c4_n6": dict(cell_size=4, num_bins=6, bilinear=True),
    "random_rgb_hard_c4_n4": dict(cell_size=4, num_bins=4, bilinear=False),
}
