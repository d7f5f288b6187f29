"""Operators of the GradHOG panel: thin wrappers over :mod:`blender_gradhog.api`.

Align Camera reads as the pipeline: the panel's settings become ``api.prepare`` keywords
(:func:`blender_gradhog.options.from_panel`), :func:`api.prepare` gathers Blender data and renders
the coarse views on the main thread, :func:`api.solve` runs on a worker thread (no ``bpy`` there;
:mod:`blender_gradhog.worker` pumps its progress into the progress bar and the header), and
:func:`api.apply` writes the camera on the main thread at the end as one undo step. Esc or
right-click cancels and nothing is changed.
"""
from __future__ import annotations

import traceback

import bpy
from bpy.props import BoolProperty, IntProperty, StringProperty

from . import api, candidates, options, scene as blender_scene
from ._backend import core, np
from .worker import BackgroundOperator, Worker, sentence

HEADER_TEXT = "Aligning… Esc to cancel"

#: Scenes with an alignment running in the background; a second Align Camera is refused meanwhile
#: (two solves would halve each other's speed and race for the same camera).
RUNNING: set = set()
ALREADY_RUNNING = "an alignment is already running: wait for it to finish or press Esc to cancel it"


# --------------------------------------------------------------------------------------------
# Helpers shared by the operators
# --------------------------------------------------------------------------------------------

def settings_of(context):
    return context.scene.gradhog


def target_camera(context):
    """The camera the panel aligns: the chosen one, else the scene camera (None if neither)."""
    settings = settings_of(context)
    return settings.camera or context.scene.camera


def photo_of(settings):
    """The photo input: the image datablock if set, else the file path (may be empty)."""
    return settings.photo_image if settings.photo_image is not None else settings.photo_path


def prepare_job(context, coarse_views=True, from_camera: bool = False) -> api.AlignJob:
    """Check the inputs and gather everything (main thread); raises :class:`api.AlignError`.
    ``from_camera``: start from where the camera is now (:func:`api.camera_pose`), no global search."""
    settings = settings_of(context)
    if settings.photo_image is None and not settings.photo_path:
        raise api.AlignError("no photo: choose the reference photo first")
    if settings.target is None:
        raise api.AlignError("no target object: pick the mesh seen in the photo")
    camera = target_camera(context)
    if camera is None:
        raise api.AlignError("no camera: place one roughly first" if from_camera else "no camera: pick one or click New Camera")
    depsgraph = context.evaluated_depsgraph_get()
    start = api.camera_pose(camera, settings.target, depsgraph) if from_camera else None
    return api.prepare(photo_of(settings), settings.target, camera, scene=context.scene, coarse_views=coarse_views,
                       depsgraph=depsgraph, initial_pose=start, **options.from_panel(settings))


class AlignWorker(Worker):
    """Runs :func:`api.solve` for a job gathered on the main thread."""

    def __init__(self, job: api.AlignJob):
        super().__init__(lambda callback: api.solve(job, callback), name="gradhog-align")
        self.job = job


def _redraw_sidebars(context) -> None:
    screen = context.screen
    for area in (screen.areas if screen else ()):
        if area.type == 'VIEW_3D':
            area.tag_redraw()


# --------------------------------------------------------------------------------------------
# Align Camera
# --------------------------------------------------------------------------------------------

class _Alignment(BackgroundOperator):
    """Align Camera and Refine from Camera: prepare, solve on a worker, apply as one undo step.
    (A mixin: Blender's operator classes must not subclass one another.)"""

    header_text = HEADER_TEXT
    #: Start from the camera's current pose instead of the global search (Refine from Camera).
    from_camera = False
    done_text = "Camera aligned"

    @classmethod
    def poll(cls, context):
        return context.scene is not None and hasattr(context.scene, "gradhog")

    def execute(self, context):
        """Synchronous run (scripts, background mode, Redo panel)."""
        if RUNNING:
            self.report({'ERROR'}, sentence(ALREADY_RUNNING))
            return {'CANCELLED'}
        job = None
        try:
            job = prepare_job(context, from_camera=self.from_camera)
            result = api.solve(job)
        except api.AlignError as error:
            if job is not None:
                api.discard(job)
            self.report({'ERROR'}, sentence(str(error)))
            return {'CANCELLED'}
        return self._finish_with(context, job, result)

    _job = None
    _scene_name = None

    def invoke(self, context, event):
        if bpy.app.background or context.window is None:
            return self.execute(context)
        if RUNNING:
            self.report({'ERROR'}, sentence(ALREADY_RUNNING))
            return {'CANCELLED'}
        try:
            # Main thread: scene data now; the Workbench coarse views (unless cached) a few per
            # timer event, so the interface stays responsive and Esc works from the start.
            job = prepare_job(context, coarse_views='later', from_camera=self.from_camera)
        except api.AlignError as error:
            self.report({'ERROR'}, sentence(str(error)))
            return {'CANCELLED'}
        self._job = job
        self._scene_name = context.scene.name
        RUNNING.add(self._scene_name)
        if job.pending_views is None:
            return self.start_worker(context, AlignWorker(job))
        self._begin_modal(context)
        return {'RUNNING_MODAL'}

    def modal(self, context, event):
        views = self._job.pending_views if self._job is not None else None
        if views is None:
            outcome = super().modal(context, event)
            if outcome == {'CANCELLED'} and self._job is not None:
                api.discard(self._job)  # cancelled or failed: the photo it loaded goes again
            return outcome
        if event.type in {'ESC', 'RIGHTMOUSE'} and event.value == 'PRESS':
            self._stop_rendering(context)
            self.report({'WARNING'}, f"{self.bl_label} cancelled: nothing was changed")
            return {'CANCELLED'}
        if event.type != 'TIMER':
            return {'PASS_THROUGH'}
        try:
            finished = views.render_some(seconds=0.08)
        except Exception as error:  # a render failure must not leave the temporary scene behind
            self._stop_rendering(context)
            traceback.print_exc()
            self.report({'ERROR'}, f"Rendering the coarse views failed: {error}")
            return {'CANCELLED'}
        progress = views.progress
        context.window_manager.progress_update(int(100 * progress))
        if self._area is not None:
            self._area.header_text_set(f"{self.header_text} — rendering views ({100 * progress:.0f} %)")
        if finished:
            self._job.coarse_views = views.views
            self._job.pending_views = None
            self._worker = AlignWorker(self._job)
            self._worker.start()
        return {'RUNNING_MODAL'}

    def _stop_rendering(self, context) -> None:
        if self._job is not None:
            api.discard(self._job)
        self._cleanup(context)

    def cancel(self, context):
        self._stop_rendering(context)
        super().cancel(context)

    def _cleanup(self, context) -> None:
        super()._cleanup(context)
        RUNNING.discard(self._scene_name)

    def finish(self, context, worker):
        return self._finish_with(context, worker.job, worker.result)

    def _finish_with(self, context, job, result):
        try:
            values = api.apply(job, result)
        except api.AlignError as error:
            api.discard(job)
            self.report({'ERROR'}, sentence(str(error)))
            return {'CANCELLED'}
        settings = settings_of(context)
        candidates.store(settings, values, job)
        if settings.camera is None and context.scene.camera is None:
            settings.camera = bpy.data.objects.get(values["camera"])
        _redraw_sidebars(context)
        self.report({'WARNING'} if values["ambiguous"] else {'INFO'},
                    self.done_text + ": azimuth {azimuth:.1f}°, elevation {elevation:.1f}°, "
                    "distance {distance:.3g}, roll {roll:.1f}°, score {score:.3f} in {seconds:.1f} s".format(**values)
                    + (" — close call: check the candidates" if values["ambiguous"] else ""))
        return {'FINISHED'}


class GRADHOG_OT_align_camera(_Alignment, bpy.types.Operator):
    """Align the camera to the photo: find the viewpoint from which the object looks as in the photo"""

    bl_idname = "gradhog.align_camera"
    bl_label = "Align Camera"
    bl_options = {'REGISTER', 'UNDO'}


class GRADHOG_OT_refine_camera(_Alignment, bpy.types.Operator):
    """Refine the camera from where it is now: put it roughly where the photo was taken (20-30° off is
    enough), then only nearby views are searched. Esc cancels"""

    bl_idname = "gradhog.refine_camera"
    bl_label = "Refine from Camera"
    bl_options = {'REGISTER', 'UNDO'}
    header_text = "Refining from the camera… Esc to cancel"
    from_camera = True
    done_text = "Camera refined"


# --------------------------------------------------------------------------------------------
# Candidates, camera, photo
# --------------------------------------------------------------------------------------------

class GRADHOG_OT_apply_candidate(bpy.types.Operator):
    """Place the camera at this candidate pose"""

    bl_idname = "gradhog.apply_candidate"
    bl_label = "Apply Candidate"
    bl_options = {'REGISTER', 'UNDO'}

    index: IntProperty(name="Candidate", min=0)

    def execute(self, context):
        error = candidates.apply(context, self.index)
        if error:
            self.report({'ERROR'}, sentence(error))
            return {'CANCELLED'}
        candidates.select(settings_of(context), self.index)
        return {'FINISHED'}


class GRADHOG_OT_new_camera(bpy.types.Operator):
    """Add a camera to the scene and align that one (it becomes the scene camera if there is none)"""

    bl_idname = "gradhog.new_camera"
    bl_label = "New Camera"
    bl_options = {'REGISTER', 'UNDO'}

    def execute(self, context):
        camera = blender_scene.new_camera(context.scene)
        settings_of(context).camera = camera
        self.report({'INFO'}, f"Added camera {camera.name!r}")
        return {'FINISHED'}


class GRADHOG_OT_open_photo(bpy.types.Operator):
    """Open the reference photo of the object"""

    bl_idname = "gradhog.open_photo"
    bl_label = "Open Photo"
    bl_options = {'REGISTER', 'UNDO'}

    filepath: StringProperty(subtype='FILE_PATH')
    filter_image: BoolProperty(default=True, options={'HIDDEN', 'SKIP_SAVE'})
    filter_folder: BoolProperty(default=True, options={'HIDDEN', 'SKIP_SAVE'})

    def invoke(self, context, event):
        context.window_manager.fileselect_add(self)
        return {'RUNNING_MODAL'}

    def execute(self, context):
        image = blender_scene.load_image(self.filepath)
        if image is None:
            self.report({'ERROR'}, f"Cannot read the photo {self.filepath}")
            return {'CANCELLED'}
        settings = settings_of(context)
        settings.photo_image = image
        settings.photo_path = self.filepath
        return {'FINISHED'}


# --------------------------------------------------------------------------------------------
# Draw Box: drag a rectangle over the photo in the camera view
# --------------------------------------------------------------------------------------------

def camera_frame_in_region(context, camera):
    """``(left, bottom, right, top)`` of the camera frame in region pixels, or None."""
    from bpy_extras.view3d_utils import location_3d_to_region_2d

    corners = [camera.matrix_world @ corner for corner in camera.data.view_frame(scene=context.scene)]
    points = [location_3d_to_region_2d(context.region, context.region_data, c) for c in corners]
    if any(p is None for p in points):
        return None
    xs, ys = [p.x for p in points], [p.y for p in points]
    return min(xs), min(ys), max(xs), max(ys)


def region_to_photo(frame, point, photo_size):
    """Region pixel ``point`` -> photo pixel (origin top-left) through the camera ``frame``."""
    left, bottom, right, top = frame
    width, height = photo_size
    u = (point[0] - left) / max(right - left, 1e-9)
    v = (top - point[1]) / max(top - bottom, 1e-9)
    return min(max(u, 0.0), 1.0) * width, min(max(v, 0.0), 1.0) * height


def _uniform_color_shader():
    import gpu

    # 2D positions: '2D_UNIFORM_COLOR' before 4.0 ('UNIFORM_COLOR' was the 3D one there), removed in 4.0.
    for name in ('2D_UNIFORM_COLOR', 'UNIFORM_COLOR'):
        try:
            return gpu.shader.from_builtin(name)
        except (ValueError, SystemError):
            continue
    return None


class GRADHOG_OT_draw_box(bpy.types.Operator):
    """Drag a box around the object over the photo in the camera view (Esc cancels)"""

    bl_idname = "gradhog.draw_box"
    bl_label = "Draw Box"
    bl_options = {'REGISTER', 'UNDO'}

    _start = None
    _end = None
    _handle = None

    @classmethod
    def poll(cls, context):
        region_data = getattr(context, "region_data", None)
        return (context.area is not None and context.area.type == 'VIEW_3D' and region_data is not None
                and region_data.view_perspective == 'CAMERA')

    def invoke(self, context, event):
        settings = settings_of(context)
        camera = context.scene.camera
        if settings.photo_image is None or camera is None:
            self.report({'ERROR'}, "Draw Box needs a photo and a scene camera (look through it: Numpad 0)")
            return {'CANCELLED'}
        width, height = blender_scene.upright_size(settings.photo_image)
        if width == 0 or height == 0:
            self.report({'ERROR'}, f"Cannot read the photo {settings.photo_image.name!r}")
            return {'CANCELLED'}
        # The box is drawn over the photo, so show it upright as the camera background at its own
        # aspect: box pixels are then the upright photo's, as the alignment reads it.
        render = context.scene.render
        if (render.resolution_x, render.resolution_y) != (width, height):
            render.resolution_x, render.resolution_y = width, height
            render.pixel_aspect_x = render.pixel_aspect_y = 1.0
        data = camera.data
        shown = blender_scene.display_image(settings.photo_image)
        if not any(bg.image == shown for bg in data.background_images):
            background = data.background_images.new()
            background.image = shown
            background.frame_method = 'FIT'
        data.show_background_images = True
        self._handle = bpy.types.SpaceView3D.draw_handler_add(self._draw, (context,), 'WINDOW', 'POST_PIXEL')
        context.window_manager.modal_handler_add(self)
        context.area.header_text_set("Draw Box: drag around the object, Esc to cancel")
        return {'RUNNING_MODAL'}

    def modal(self, context, event):
        context.area.tag_redraw()
        if event.type in {'ESC', 'RIGHTMOUSE'}:
            self._finish(context)
            return {'CANCELLED'}
        if event.type == 'LEFTMOUSE' and event.value == 'PRESS':
            self._start = self._end = (event.mouse_region_x, event.mouse_region_y)
        elif event.type == 'MOUSEMOVE' and self._start is not None:
            self._end = (event.mouse_region_x, event.mouse_region_y)
        elif event.type == 'LEFTMOUSE' and event.value == 'RELEASE' and self._start is not None:
            self._end = (event.mouse_region_x, event.mouse_region_y)
            return self._commit(context)
        return {'RUNNING_MODAL'}

    def _commit(self, context):
        settings = settings_of(context)
        frame = camera_frame_in_region(context, context.scene.camera)
        self._finish(context)
        if frame is None:
            self.report({'ERROR'}, "The camera frame is not visible")
            return {'CANCELLED'}
        size = blender_scene.upright_size(settings.photo_image)
        x0, y0 = region_to_photo(frame, self._start, size)
        x1, y1 = region_to_photo(frame, self._end, size)
        box = (round(min(x0, x1)), round(min(y0, y1)), round(max(x0, x1)), round(max(y0, y1)))
        if box[2] - box[0] < 2 or box[3] - box[1] < 2:
            self.report({'WARNING'}, "Box too small: drag around the object")
            return {'CANCELLED'}
        settings.box = box
        settings.use_box = True
        self.report({'INFO'}, "Box: {} {} {} {} (pixels)".format(*box))
        return {'FINISHED'}

    def _finish(self, context):
        if self._handle is not None:
            bpy.types.SpaceView3D.draw_handler_remove(self._handle, 'WINDOW')
            self._handle = None
        if context.area is not None:
            context.area.header_text_set(None)
            context.area.tag_redraw()

    def _draw(self, context):
        if self._start is None or self._end is None:
            return
        import gpu
        from gpu_extras.batch import batch_for_shader

        shader = _uniform_color_shader()
        if shader is None:
            return
        (x0, y0), (x1, y1) = self._start, self._end
        corners = ((x0, y0), (x1, y0), (x1, y1), (x0, y1))
        batch = batch_for_shader(shader, 'LINES', {"pos": [corners[i % 4] for i in (0, 1, 1, 2, 2, 3, 3, 0)]})
        gpu.state.line_width_set(2.0)
        shader.bind()
        shader.uniform_float("color", (1.0, 0.6, 0.1, 1.0))
        batch.draw(shader)
        gpu.state.line_width_set(1.0)


# --------------------------------------------------------------------------------------------
# Preview HOG and Pre-image: pictures of what the descriptor sees, as images in bpy.data
# --------------------------------------------------------------------------------------------

def show_picture(context, name: str, picture: np.ndarray) -> bpy.types.Image:
    """Store a gray ``(H, W)`` picture in ``bpy.data.images[name]`` and show it in an open Image Editor."""
    height, width = picture.shape
    image = bpy.data.images.get(name)
    if image is not None and tuple(image.size) != (width, height):
        bpy.data.images.remove(image)
        image = None
    if image is None:
        image = bpy.data.images.new(name, width, height, alpha=False, float_buffer=False)
    gray = np.clip(picture, 0.0, 1.0)[::-1]  # Blender stores the bottom row first
    rgba = np.concatenate([np.repeat(gray[..., None], 3, axis=-1), np.ones((height, width, 1))], axis=-1)
    image.pixels.foreach_set(rgba.astype(np.float32).ravel())
    image.update()
    screen = context.screen
    for area in (screen.areas if screen else ()):
        if area.type == 'IMAGE_EDITOR':
            area.spaces.active.image = image
            area.tag_redraw()
            break
    return image


def _photo_gray(context) -> np.ndarray:
    settings = settings_of(context)
    try:
        image = api.resolve_photo(photo_of(settings))
        rgba = blender_scene.read_photo(image).rgb  # upright: the box is in upright pixels
    except blender_scene.SceneError as error:
        raise api.AlignError(str(error)) from None
    if settings.use_box:
        x0, y0, x1, y1 = (int(v) for v in settings.box)
        if x1 - x0 >= 16 and y1 - y0 >= 16:
            rgba = rgba[y0:y1, x0:x1]
    return core().images.rgb_to_gray(rgba)


def _limit_size(gray: np.ndarray, longest: int) -> np.ndarray:
    height, width = gray.shape
    step = max(1, int(np.ceil(max(height, width) / longest)))
    return gray[::step, ::step]


def _picture_variant(settings, hog) -> str:
    """The panel's HOG variant if ``torch_backend.hog`` draws it (the glyphs and pre-images know the
    variants of :func:`hog.hog`; the pose-only scikit-image flavour falls back to the default)."""
    return settings.hog_variant if settings.hog_variant in hog.VARIANTS else options.PoseOptions.default("hog_variant")


class GRADHOG_OT_preview_hog(bpy.types.Operator):
    """Show the photo's HOG as star glyphs (image "GradHOG HOG", shown in an open Image Editor)"""

    bl_idname = "gradhog.preview_hog"
    bl_label = "Preview HOG"

    def execute(self, context):
        try:
            hog = core().hog
            import torch

            gray = _limit_size(_photo_gray(context), 480)
            variant = _picture_variant(settings_of(context), hog)
            features = hog.hog(torch.from_numpy(np.ascontiguousarray(gray))[None, None], variant)
            picture = hog.hog_glyphs(features, variant, glyph_size=11)
        except (api.AlignError, ValueError) as error:
            self.report({'ERROR'}, sentence(str(error)))
            return {'CANCELLED'}
        image = show_picture(context, "GradHOG HOG", picture)
        self.report({'INFO'}, f"HOG glyphs in image {image.name!r}")
        return {'FINISHED'}


class GRADHOG_OT_preimage(BackgroundOperator, bpy.types.Operator):
    """Reconstruct an image from the photo's HOG alone: what HOG sees (image "GradHOG Pre-image")"""

    bl_idname = "gradhog.preimage"
    bl_label = "Pre-image"
    header_text = "Reconstructing from HOG… Esc to cancel"

    iterations: IntProperty(name="Iterations", default=150, min=1, max=2000)

    def _work(self, context):
        """Gather the photo (main thread) and return the torch-only work for the worker."""
        hog, invert = core().hog, core().invert
        import torch

        gray = _limit_size(_photo_gray(context), 160)
        variant = _picture_variant(settings_of(context), hog)
        device = settings_of(context).device
        tensor = torch.from_numpy(np.ascontiguousarray(gray, dtype=np.float32))[None, None]
        iterations = self.iterations

        def work(callback):
            features = hog.hog(tensor, variant)
            picture = invert.reconstruct(features, variant, tuple(gray.shape), iterations=iterations,
                                         device=device, callback=callback)
            return picture.detach().cpu().numpy().reshape(gray.shape)

        return work

    def execute(self, context):
        try:
            picture = self._work(context)(None)
        except (api.AlignError, ValueError) as error:
            self.report({'ERROR'}, sentence(str(error)))
            return {'CANCELLED'}
        return self._show(context, picture)

    def invoke(self, context, event):
        if bpy.app.background or context.window is None:
            return self.execute(context)
        try:
            work = self._work(context)
        except (api.AlignError, ValueError) as error:
            self.report({'ERROR'}, sentence(str(error)))
            return {'CANCELLED'}
        return self.start_worker(context, Worker(work, name="gradhog-preimage"))

    def finish(self, context, worker):
        return self._show(context, worker.result)

    def _show(self, context, picture):
        image = show_picture(context, "GradHOG Pre-image", picture)
        self.report({'INFO'}, f"Pre-image in image {image.name!r}")
        return {'FINISHED'}


classes = (
    GRADHOG_OT_align_camera,
    GRADHOG_OT_refine_camera,
    GRADHOG_OT_apply_candidate,
    GRADHOG_OT_new_camera,
    GRADHOG_OT_open_photo,
    GRADHOG_OT_draw_box,
    GRADHOG_OT_preview_hog,
    GRADHOG_OT_preimage,
)
