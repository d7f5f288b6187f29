"""Camera pose from a photo of a known mesh: coarse viewpoint grid, then ∇HOG / silhouette refinement.

``estimate_pose(photo, vertices, faces, intrinsics)`` returns the Blender-style camera pose
(azimuth, elevation, distance, roll, lens shift; see :mod:`torch_backend.camera`) under which the
mesh looks like the object in the photo (Chiu & Fritz, BMVC 2015, Sec. 4.2, extended to the
exact-CAD setting). One module a stage, in the order data flows:

- :mod:`.options`: :class:`PoseOptions`, every setting and default once;
- :mod:`.prepare`: photo, camera and mesh made ready; the photo's cues at any working size;
- :mod:`.cues`: the scoring terms (silhouette IoU, box IoU, colour region information, ∇HOG
  similarity, occlusion-edge evidence);
- :mod:`.views`: the coarse view grid, its renders and their cache;
- :mod:`.coarse`: the coarse search over views x rolls;
- :mod:`.refine`: the objective and the multi-start gradient refinement with twins;
- :mod:`.estimate`: :func:`estimate_pose`, which reads as the stages above.
"""
# The options and the result types need no torch: the Blender add-on reads its panel defaults from
# PoseOptions while PyTorch is not installed yet. The stages import torch, so they load on first use.
from .options import (DEFAULT_AZIMUTH_STEP, DEFAULT_ELEVATIONS, DEFAULT_ROLLS, FOCAL_MODES, HOG_VARIANTS, MODES,
                      PoseOptions)
from .types import AMBIGUOUS_MARGIN, Cancelled, CoarseViews, Pose, PoseResult

__all__ = [
    "estimate_pose",
    "photo_proposals",
    "prepare_mesh",
    "PoseOptions",
    "Pose",
    "PoseResult",
    "CoarseViews",
    "CoarseViewCache",
    "Cancelled",
    "AMBIGUOUS_MARGIN",
    "coarse_view_poses",
    "coarse_view_intrinsics",
    "render_coarse_views",
    "COARSE_VIEW_SIZE",
    "DEFAULT_ELEVATIONS",
    "DEFAULT_AZIMUTH_STEP",
    "DEFAULT_ROLLS",
    "HOG_VARIANTS",
    "FOCAL_MODES",
    "MODES",
]


def __getattr__(name: str):
    """The torch-backed names of ``__all__`` (``estimate_pose``, the coarse views), imported on first use."""
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from . import estimate, prepare, views

    value = next(getattr(module, name) for module in (estimate, views, prepare) if hasattr(module, name))
    globals()[name] = value
    return value
