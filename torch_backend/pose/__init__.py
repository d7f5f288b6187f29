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
from .estimate import estimate_pose, photo_proposals
from .options import DEFAULT_AZIMUTH_STEP, DEFAULT_ELEVATIONS, DEFAULT_ROLLS, HOG_VARIANTS, MODES, PoseOptions
from .types import AMBIGUOUS_MARGIN, Cancelled, CoarseViews, Pose, PoseResult
from .views import COARSE_VIEW_SIZE, CoarseViewCache, coarse_view_intrinsics, coarse_view_poses, render_coarse_views

__all__ = [
    "estimate_pose",
    "photo_proposals",
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
    "MODES",
]
