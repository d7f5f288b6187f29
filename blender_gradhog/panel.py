"""The sidebar panel: View3D ▸ Sidebar ▸ GradHOG."""
from __future__ import annotations

import bpy

from . import operators, scene as blender_scene


def _settings_layout(panel, context):
    """The panel's layout with labels left of the values, and the scene's GradHOG settings."""
    layout = panel.layout
    layout.use_property_split = True
    layout.use_property_decorate = False
    return layout, context.scene.gradhog


class _GradHOGPanel:
    bl_space_type = 'VIEW_3D'
    bl_region_type = 'UI'
    bl_category = "GradHOG"

    @classmethod
    def poll(cls, context):
        return context.scene is not None and hasattr(context.scene, "gradhog")


class GRADHOG_PT_align(_GradHOGPanel, bpy.types.Panel):
    """Photo, object and camera, and the Align Camera button"""

    bl_label = "Camera from Photo"
    bl_idname = "GRADHOG_PT_align"

    def draw(self, context):
        layout, settings = _settings_layout(self, context)

        layout.template_ID(settings, "photo_image", open="gradhog.open_photo")
        if settings.photo_image is not None:
            width, height = blender_scene.upright_size(settings.photo_image)
            if width and height:
                layout.label(text=f"{width} × {height} px", icon='IMAGE_DATA')
        layout.prop(settings, "target")
        row = layout.row(align=True)
        row.prop(settings, "camera", text="Camera")
        if settings.camera is None and context.scene.camera is None:
            row.operator("gradhog.new_camera", text="", icon='ADD')
        elif settings.camera is None:
            layout.label(text=f"Uses the scene camera {context.scene.camera.name!r}", icon='INFO')
        layout.prop(settings, "focal_length")

        row = layout.row(align=True)
        row.scale_y = 1.5
        row.operator("gradhog.align_camera", icon='VIEW_CAMERA')
        # The artist's way out: put the camera roughly where the photo was taken, refine from there.
        row.operator("gradhog.refine_camera", text="Refine from Camera", icon='CON_CAMERASOLVER')
        row = layout.row(align=True)
        row.operator("gradhog.preview_hog", text="HOG")
        row.operator("gradhog.preimage", text="Pre-image")


class GRADHOG_PT_cues(_GradHOGPanel, bpy.types.Panel):
    """Where the object is in the photo"""

    bl_label = "Object in Photo"
    bl_idname = "GRADHOG_PT_cues"
    bl_parent_id = "GRADHOG_PT_align"

    def draw(self, context):
        layout, settings = _settings_layout(self, context)

        layout.prop(settings, "mask_source")
        if settings.mask_source == 'IMAGE':
            layout.template_ID(settings, "mask_image", open="image.open")
        layout.prop(settings, "use_box")
        column = layout.column(align=True)
        column.active = settings.use_box
        column.prop(settings, "box", index=0, text="Left")
        column.prop(settings, "box", index=1, text="Top")
        column.prop(settings, "box", index=2, text="Right")
        column.prop(settings, "box", index=3, text="Bottom")
        row = layout.row()
        row.operator("gradhog.draw_box", icon='SELECT_SET')
        if not operators.GRADHOG_OT_draw_box.poll(context):
            row.enabled = False
            layout.label(text="In camera view (Numpad 0)", icon='INFO')


class GRADHOG_PT_constraints(_GradHOGPanel, bpy.types.Panel):
    """What the artist knows about the camera"""

    bl_label = "Constraints"
    bl_idname = "GRADHOG_PT_constraints"
    bl_parent_id = "GRADHOG_PT_align"

    def draw(self, context):
        layout, settings = _settings_layout(self, context)
        layout.prop(settings, "level_camera")
        layout.prop(settings, "on_ground")
        layout.prop(settings, "use_elevation_range")
        column = layout.column(align=True)
        column.active = settings.use_elevation_range
        column.prop(settings, "elevation_range", index=0, text="Lowest")
        column.prop(settings, "elevation_range", index=1, text="Highest")


class GRADHOG_PT_options(_GradHOGPanel, bpy.types.Panel):
    """Search and descriptor options"""

    bl_label = "Options"
    bl_idname = "GRADHOG_PT_options"
    bl_parent_id = "GRADHOG_PT_align"
    bl_options = {'DEFAULT_CLOSED'}

    def draw(self, context):
        layout, settings = _settings_layout(self, context)
        layout.prop(settings, "hog_variant")
        layout.prop(settings, "refine")
        column = layout.column()
        column.active = settings.refine
        column.prop(settings, "starts")
        column.prop(settings, "iterations")
        layout.prop(settings, "top_k")
        layout.prop(settings, "device")
        layout.prop(settings, "seed")


#: The Result box's warning when another distinct pose scores almost as well.
CLOSE_CALL = "Close call: check the candidates"


def confidence_summary(settings) -> str:
    """The last result's margin to the next distinct pose and its silhouette IoU, as one line."""
    margin = settings.result_margin
    text = "No other distinct pose found" if margin != margin else f"Margin {margin:.3f} to the next pose"
    if settings.result_iou == settings.result_iou:  # not NaN
        text += f", silhouette IoU {settings.result_iou:.2f}"
    return text


def lens_summary(settings) -> str:
    """The lens of the last result and where it came from, with the estimate's range."""
    text = f"Lens {settings.result_lens:.1f} mm ({settings.result_lens_source or 'given'})"
    low, high = settings.result_lens_range
    if high > 0.0:
        text += f", {low:.0f}–{high:.0f} mm possible"
    return text


class GRADHOG_UL_candidates(bpy.types.UIList):
    """Top-k distinct poses of the last alignment; clicking one places the camera there"""

    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index):
        row = layout.row(align=True)
        row.label(text=f"{index + 1}", icon='CAMERA_DATA')
        row.label(text=f"az {item.azimuth:.1f}°  el {item.elevation:.1f}°  roll {item.roll:.1f}°")
        row.label(text=f"{item.score:.3f}")


class GRADHOG_PT_results(_GradHOGPanel, bpy.types.Panel):
    """Pose found by the last alignment"""

    bl_label = "Result"
    bl_idname = "GRADHOG_PT_results"
    bl_parent_id = "GRADHOG_PT_align"

    def draw(self, context):
        layout = self.layout
        settings = context.scene.gradhog
        if not settings.has_result:
            layout.label(text="Align the camera to see the pose here")
            return
        column = layout.column(align=True)
        column.use_property_split = True
        column.use_property_decorate = False
        column.enabled = False  # read-only display of the last run
        column.prop(settings, "result_azimuth")
        column.prop(settings, "result_elevation")
        column.prop(settings, "result_distance")
        column.prop(settings, "result_roll")
        column.prop(settings, "result_score")
        column.prop(settings, "result_seconds")
        layout.label(text=lens_summary(settings), icon='CAMERA_DATA')
        layout.label(text=confidence_summary(settings), icon='INFO')
        if settings.result_ambiguous:
            layout.label(text=CLOSE_CALL, icon='ERROR')
        if len(settings.candidates) > 1:
            layout.label(text="Candidates (click to apply):")
            layout.template_list("GRADHOG_UL_candidates", "", settings, "candidates",
                                 settings, "active_candidate", rows=min(len(settings.candidates), 5))


classes = (GRADHOG_PT_align, GRADHOG_PT_cues, GRADHOG_PT_constraints, GRADHOG_PT_options, GRADHOG_UL_candidates,
           GRADHOG_PT_results)
