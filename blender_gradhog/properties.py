"""Scene settings of the add-on: ``scene.gradhog`` (inputs, cues, options, last results).

Everything the panel shows lives in one :class:`GradHOGSettings` on the scene, so settings are saved
with the .blend file and each scene keeps its own alignment.
"""
from __future__ import annotations

import bpy
from bpy.props import (
    BoolProperty,
    CollectionProperty,
    EnumProperty,
    FloatProperty,
    FloatVectorProperty,
    IntProperty,
    IntVectorProperty,
    PointerProperty,
    StringProperty,
)

from . import candidates, scene
from .options import HOG_VARIANTS, ON_GROUND_HELP, PoseOptions

# Names and tooltips of the HOG variants; the variants themselves are PoseOptions' HOG_VARIANTS.
_HOG_VARIANT_LABELS = {
    "uoctti": ("UoCTTI", "Felzenszwalb et al. 31-dimensional HOG (the paper's choice)"),
    "dalal": ("Dalal-Triggs", "Dalal & Triggs 36-dimensional HOG"),
    "skimage": ("scikit-image", "scikit-image compatible HOG"),
}
_HOG_VARIANT_ITEMS = tuple((name, *_HOG_VARIANT_LABELS.get(name, (name, name))) for name in HOG_VARIANTS)


def _poll_mesh(_settings, obj) -> bool:
    # Curves, surfaces, text and metaballs are aligned through their evaluated mesh.
    return obj.type in ('MESH', 'CURVE', 'SURFACE', 'FONT', 'META')


def _poll_camera(_settings, obj) -> bool:
    return obj.type == 'CAMERA'


def _photo_path_changed(settings, _context):
    """Typing or browsing a photo path loads it (once) and makes it the photo image."""
    if not settings.photo_path:
        return
    image = scene.load_image(settings.photo_path)
    if image is not None and settings.photo_image != image:
        settings.photo_image = image


class GradHOGCandidate(bpy.types.PropertyGroup):
    """One of the top-k distinct poses of the last alignment (degrees, scene units)."""

    azimuth: FloatProperty(name="Azimuth", unit='NONE', precision=2)
    elevation: FloatProperty(name="Elevation", precision=2)
    distance: FloatProperty(name="Distance", unit='LENGTH', precision=4)
    roll: FloatProperty(name="Roll", precision=2)
    shift_x: FloatProperty(name="Shift X", precision=4)
    shift_y: FloatProperty(name="Shift Y", precision=4)
    score: FloatProperty(name="Score", precision=4)
    lens_mm: FloatProperty(name="Focal Length", unit='CAMERA', precision=1)  # 0: the result's lens


class GradHOGSettings(bpy.types.PropertyGroup):
    """Inputs, cues, options and results of GradHOG camera alignment (``scene.gradhog``)."""

    # --- inputs -------------------------------------------------------------------------------
    photo_path: StringProperty(
        name="Photo",
        description="Reference photo of the object (any image Blender or Pillow can read)",
        subtype='FILE_PATH',
        update=_photo_path_changed,
    )
    photo_image: PointerProperty(
        name="Photo Image",
        description="The reference photo as an image datablock (an already loaded image works too)",
        type=bpy.types.Image,
    )
    target: PointerProperty(
        name="Object",
        description="Mesh object seen in the photo; its evaluated mesh (modifiers applied) is used",
        type=bpy.types.Object,
        poll=_poll_mesh,
    )
    camera: PointerProperty(
        name="Camera",
        description="Camera to align (empty: the scene camera)",
        type=bpy.types.Object,
        poll=_poll_camera,
    )
    focal_length: EnumProperty(
        name="Focal Length",
        description="Which lens the alignment uses; it is written onto the camera with the pose",
        items=(
            ('CAMERA', "Keep Camera's", "Keep the camera's focal length and sensor as they are"),
            ('EXIF', "From Photo (EXIF)", "The focal length and sensor size the photo's EXIF records "
                                          "(the camera's own when the photo has none)"),
            ('ESTIMATE', "Estimate", "Estimate the focal length with the pose (slower); the Result "
                                     "shows the estimate and the range the photo cannot tell apart"),
        ),
        default='EXIF',
    )

    # --- cues: where the object is in the photo ------------------------------------------------
    use_box: BoolProperty(
        name="Crop Box",
        description="Use a box around the object in the photo (pixels of the photo as shown upright, "
                    "origin top-left). Draw it tight: its size sets the object's scale",
        default=False,
    )
    box: IntVectorProperty(
        name="Box",
        description="Box around the object: left, top, right, bottom in photo pixels",
        size=4,
        min=0,
        default=(0, 0, 0, 0),
    )
    mask_source: EnumProperty(
        name="Mask",
        description="Where the object's silhouette in the photo comes from",
        items=(
            ('ALPHA', "Photo Alpha", "The photo's alpha channel as coverage: alpha of at least one half "
                                     "is the object (ignored when the photo has none)"),
            ('IMAGE', "Mask Image", "A separate mask image of coverage: a value of at least one half "
                                    "(or its alpha, if it has one) is the object"),
            ('BOX', "Auto from Box", "No mask: judge each candidate's outline by the photo's colours around the crop box"),
            ('NONE', "None", "No mask: rely on the photo (and the box, if any) alone"),
        ),
        default='ALPHA',
    )
    mask_image: PointerProperty(
        name="Mask Image",
        description="Mask of the object, same (upright) pixel size as the photo; values are coverage "
                    "(at least one half is the object)",
        type=bpy.types.Image,
    )

    # --- options -------------------------------------------------------------------------------
    hog_variant: EnumProperty(
        name="HOG Variant",
        description="Flavour of the ∇HOG descriptor compared between photo and renders",
        items=_HOG_VARIANT_ITEMS,
        default=PoseOptions.default("hog_variant"),
    )
    refine: BoolProperty(
        name="Refine",
        description="Refine the best coarse views by following the ∇HOG / silhouette gradient "
                    "(off: coarse viewpoint grid only, a quick first look)",
        default=PoseOptions.default("refine"),
    )
    starts: IntProperty(
        name="Starts",
        description="Number of coarse poses refined by gradient descent (plus their front/back "
                    "and mirrored twins)",
        default=PoseOptions.default("starts"),
        min=1,
        soft_max=32,
    )
    iterations: IntProperty(
        name="Iterations",
        description="Gradient steps per start",
        default=PoseOptions.default("iterations"),
        min=0,
        soft_max=400,
    )
    top_k: IntProperty(
        name="Candidates",
        description="Number of distinct poses kept (symmetric objects have several good ones)",
        default=PoseOptions.default("top_k"),
        min=1,
        max=20,
    )
    lock_focal_length: BoolProperty(
        name="Lock Focal Length",
        description="Not used: Focal Length chooses the lens. Kept (and not drawn) so that scripts "
                    "and saved files that set it keep working",
        default=True,
    )
    device: EnumProperty(
        name="Device",
        description="Where PyTorch computes",
        items=(
            ('cpu', "CPU", "Compute on the processor"),
            ('cuda', "CUDA", "Compute on an NVIDIA GPU (needs a CUDA build of PyTorch)"),
        ),
        default='cpu',
    )
    seed: IntProperty(name="Seed", description="Random seed (results are reproducible)",
                      default=PoseOptions.default("seed"))

    # --- what the artist knows about the camera --------------------------------------------------
    level_camera: BoolProperty(
        name="Level Camera",
        description=PoseOptions.help("level_camera").capitalize() + " (horizon level in the photo)",
        default=PoseOptions.default("level_camera"),
    )
    on_ground: BoolProperty(
        name="On the Ground",
        description=ON_GROUND_HELP.capitalize(),
        default=False,
    )
    use_elevation_range: BoolProperty(
        name="Elevation Range",
        description="Limit the camera's elevation above the object's horizontal plane to a range",
        default=False,
    )
    elevation_range: FloatVectorProperty(
        name="Elevation",
        description=PoseOptions.help("elevation_range").capitalize() + ": lowest and highest",
        size=2,
        min=-90.0,
        max=90.0,
        precision=1,
        default=PoseOptions.default("elevation_range"),
    )

    # --- results of the last run ---------------------------------------------------------------
    has_result: BoolProperty(default=False, options={'HIDDEN'})
    result_azimuth: FloatProperty(name="Azimuth", precision=2)
    result_elevation: FloatProperty(name="Elevation", precision=2)
    result_distance: FloatProperty(name="Distance", unit='LENGTH', precision=4)
    result_roll: FloatProperty(name="Roll", precision=2)
    result_score: FloatProperty(name="Score", precision=4)
    result_seconds: FloatProperty(name="Time", unit='TIME_ABSOLUTE', precision=1)
    # How much to trust it (see PoseResult): NaN margin when no other distinct pose was found.
    result_margin: FloatProperty(name="Margin", description="Score of the pose minus that of the next "
                                 "distinct candidate (15 degrees or more away)", precision=4)
    result_ambiguous: BoolProperty(name="Close Call", description="Another distinct pose scores almost as well")
    result_iou: FloatProperty(name="Silhouette IoU", description="Share of the silhouette explained (IoU with "
                              "the object's mask at working size)", precision=3)
    # What the candidates refer to, so that clicking one later places the same camera.
    result_camera: PointerProperty(type=bpy.types.Object, options={'HIDDEN'})
    result_target: PointerProperty(type=bpy.types.Object, options={'HIDDEN'})
    result_lens: FloatProperty(name="Focal Length", unit='CAMERA', precision=1)
    result_lens_source: StringProperty(name="Lens Source")
    result_lens_range: FloatVectorProperty(name="Possible Focal Lengths", size=2, precision=1)  # (0, 0): none
    result_sensor_width: FloatProperty(options={'HIDDEN'})
    result_width: IntProperty(options={'HIDDEN'})
    result_height: IntProperty(options={'HIDDEN'})
    candidates: CollectionProperty(type=GradHOGCandidate)
    active_candidate: IntProperty(
        name="Candidate",
        description="Click a candidate to place the camera at that pose",
        default=0,
        update=candidates.active_changed,
    )


classes = (GradHOGCandidate, GradHOGSettings)


def register():
    bpy.types.Scene.gradhog = PointerProperty(type=GradHOGSettings)


def unregister():
    del bpy.types.Scene.gradhog
