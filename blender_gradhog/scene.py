"""Blender side of the alignment: data out of the scene, coarse views rendered by Blender, camera in.

Everything here runs on Blender's main thread and uses ``bpy.data`` (never context-dependent
``bpy.ops`` edits), so it works from any mode and workspace. Arrays leave this module as NumPy so
the torch work can run on another thread without touching Blender.

The *mesh frame* is the target object's world transform without its scale: the object's scale
(and any shear) is baked into the vertices instead, because a scaled camera is not a camera. Poses
are expressed in this frame, so distances come out in scene units.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import tempfile
import time
from dataclasses import dataclass

import bpy
from mathutils import Matrix

from ._backend import core, exif, np  # np imported on first use: loading a photo or adding a camera works without it

# Camera and scene properties :func:`write_camera` may change; :func:`camera_state` snapshots them.
_CAMERA_DATA_FIELDS = ("type", "lens", "lens_unit", "sensor_fit", "sensor_width", "sensor_height",
                       "shift_x", "shift_y", "show_background_images")
_RENDER_FIELDS = ("resolution_x", "resolution_y", "pixel_aspect_x", "pixel_aspect_y")
_CUSTOM_PROPERTIES = ("gradhog_azimuth", "gradhog_elevation", "gradhog_distance", "gradhog_roll",
                      "gradhog_shift_x", "gradhog_shift_y", "gradhog_score", "gradhog_lens_source")


class SceneError(ValueError):
    """Something in the scene stops the alignment (no mesh, empty mesh, unreadable photo...)."""


# --------------------------------------------------------------------------------------------
# Photos and masks
# --------------------------------------------------------------------------------------------

def load_image(path: str) -> bpy.types.Image | None:
    """Load ``path`` into ``bpy.data.images`` (reusing an already loaded copy); ``None`` if unreadable."""
    absolute = bpy.path.abspath(path)
    if not os.path.isfile(absolute):
        return None
    already_loaded = {image.as_pointer() for image in bpy.data.images}
    try:
        image = bpy.data.images.load(absolute, check_existing=True)
    except RuntimeError:  # Blender cannot decode it
        return None
    if image.size[0] == 0 or image.size[1] == 0:  # loaded lazily: a broken file shows up here
        if image.as_pointer() not in already_loaded:
            bpy.data.images.remove(image)
        return None
    return image


MOVIE_HINT = "GradHOG needs a still image (save a frame as PNG or JPEG)"


def relative_to_unsaved(path: str) -> bool:
    """Whether ``path`` is ``//``-relative to a .blend file that was never saved (so points nowhere)."""
    return str(path).startswith("//") and not bpy.data.filepath


def image_pixels(image: bpy.types.Image) -> np.ndarray:
    """Pixels of a Blender image as ``float32`` ``H x W x 4`` in ``[0, 1]``, first row at the top.

    Raises:
        SceneError: a movie or image sequence, or no pixels (the message says why: missing file,
            path relative to an unsaved .blend, unsupported format).
    """
    if image.source in ('MOVIE', 'SEQUENCE'):
        kind = "a movie" if image.source == 'MOVIE' else "an image sequence"
        raise SceneError(f"{image.name!r} is {kind}: {MOVIE_HINT}")
    width, height = image.size  # asking for the size loads the file's pixels
    channels = image.channels
    if width == 0 or height == 0:
        raise SceneError(_unreadable(image))
    flat = np.empty(width * height * channels, dtype=np.float32)
    image.pixels.foreach_get(flat)
    pixels = flat.reshape(height, width, channels)[::-1]  # Blender stores the bottom row first
    if channels == 4:
        rgba = pixels
    elif channels == 3:
        rgba = np.concatenate([pixels, np.ones_like(pixels[..., :1])], axis=-1)
    elif channels in (1, 2):
        gray = np.repeat(pixels[..., :1], 3, axis=-1)
        alpha = pixels[..., 1:2] if channels == 2 else np.ones_like(gray[..., :1])
        rgba = np.concatenate([gray, alpha], axis=-1)
    else:
        raise SceneError(f"photo {image.name!r} has {channels} channels")
    rgba = np.ascontiguousarray(np.clip(rgba, 0.0, 1.0), dtype=np.float32)
    if not np.isfinite(rgba).all():
        raise SceneError(f"photo {image.name!r} has non-finite pixels")
    return rgba


def _unreadable(image: bpy.types.Image) -> str:
    """Why ``image`` has no pixels, in one line."""
    path = image.filepath
    if image.packed_file is None and image.source == 'FILE' and path:
        if relative_to_unsaved(path):
            return (f"photo {image.name!r}: its path {path!r} is relative to the .blend file, which is not "
                    "saved yet: save the file or use an absolute path")
        if not os.path.exists(bpy.path.abspath(path)):
            return f"photo {image.name!r}: file not found: {bpy.path.abspath(path)}"
    where = bpy.path.abspath(path) if path else "no file"
    return f"cannot read the photo {image.name!r} ({where})"


def image_has_alpha(image: bpy.types.Image, rgba: np.ndarray) -> bool:
    """Whether the photo carries a real alpha channel (not an opaque fill)."""
    return image.channels == 4 and image.alpha_mode != 'NONE' and bool((rgba[..., 3] < 0.999).any())


# The solver reads a photo's file itself (``torch_backend.images``) rather than Blender's
# ``image.pixels``: Blender ignores the EXIF orientation (3.4 and 5.0 alike) and turns 16-bit PNGs
# into linear, premultiplied floats, so the same picture would give other pixels, and another pose,
# depending on how it was saved. Blender's pixels remain for images without a file (packed, generated).

def photo_file(image: bpy.types.Image | None) -> str | None:
    """The file on disk ``image`` was loaded from (absolute path), or ``None`` when its pixels live only
    in Blender (packed into the .blend, generated, a render result) or the file is missing."""
    if image is None or image.source != 'FILE' or image.packed_file is not None or not image.filepath:
        return None
    path = bpy.path.abspath(image.filepath, library=image.library)
    return path if os.path.isfile(path) else None


def read_photo(image: bpy.types.Image):
    """The photo as the solver sees it: a ``torch_backend.images.Photo`` (upright ``rgb (H, W, 3)``
    float32 in ``[0, 1]``, ``alpha (H, W)`` or ``None``, EXIF ``lens`` or ``None``, ``size = (W, H)``).

    Read from the file by ``torch_backend.images.read_photo`` whenever there is one (and Pillow can
    decode it), else from Blender's pixels (``orientation`` 1, no lens).

    Raises:
        SceneError: neither Pillow nor Blender can read the pixels.
    """
    images = core().images
    path = photo_file(image)
    if path is not None:
        try:
            return images.read_photo(path)
        except ValueError:
            pass  # a format only Blender reads (OpenEXR, HDR...): its pixels are linear floats anyway
    rgba = image_pixels(image)
    alpha = np.ascontiguousarray(rgba[..., 3]) if image_has_alpha(image, rgba) else None
    height, width = rgba.shape[:2]
    return images.Photo(np.ascontiguousarray(rgba[..., :3]), alpha, 1, None, (width, height), None)


def read_mask(image: bpy.types.Image) -> np.ndarray:
    """A mask image's coverage, upright: ``(H, W)`` float32 in ``[0, 1]`` (its alpha when it is a
    cut-out, else its brightest colour channel; see ``torch_backend.images.read_mask``)."""
    path = photo_file(image)
    if path is not None:
        try:
            return core().images.read_mask(path)
        except ValueError:
            pass
    rgba = image_pixels(image)
    return np.ascontiguousarray(rgba[..., 3] if image_has_alpha(image, rgba) else rgba[..., :3].max(axis=-1))


def upright_size(image: bpy.types.Image) -> tuple[int, int]:
    """``(width, height)`` of the photo as viewers show it (EXIF orientation applied); Blender's
    ``image.size`` for images without a readable file. ``(0, 0)`` when there are no pixels."""
    path, orientation = photo_file(image), exif()
    if path is not None and orientation is not None:
        try:
            return tuple(orientation.upright_size(path))
        except (OSError, ValueError):
            pass
    return tuple(image.size)


def display_image(image: bpy.types.Image | None) -> bpy.types.Image | None:
    """The image to show behind the camera: ``image`` itself, or an upright PNG copy (in the system's
    temporary folder, ``gradhog-upright``) when its file has an EXIF orientation, because Blender
    draws the stored pixels and ignores the tag. ``None`` stays ``None``."""
    path, orientation = photo_file(image), exif()
    if path is None or orientation is None:
        return image
    try:
        turn = orientation.orientation(path)
    except (OSError, ValueError):
        return image
    if turn == 1:
        return image
    copy = _upright_copy(path)
    upright = load_image(copy) if copy is not None else None
    if upright is None:
        return image
    if not upright.name.endswith("(upright)"):
        upright.name = f"{image.name} (upright)"
    return upright


def _upright_copy(path: str) -> str | None:
    """Write (once per file version) an upright 8-bit PNG of ``path``; its path, or None on failure."""
    stat = os.stat(path)
    key = hashlib.sha1(f"{path}|{stat.st_mtime_ns}|{stat.st_size}".encode()).hexdigest()[:16]
    folder = os.path.join(tempfile.gettempdir(), "gradhog-upright")
    target = os.path.join(folder, f"{os.path.splitext(os.path.basename(path))[0]}-{key}.png")
    if os.path.isfile(target):
        return target
    try:
        images = core().images
        photo = images.read_photo(path, with_lens=False)
        pixels = photo.rgb if photo.alpha is None else np.concatenate([photo.rgb, photo.alpha[..., None]], axis=-1)
        os.makedirs(folder, exist_ok=True)
        partial = f"{target}.{os.getpid()}.png"
        images.save_image(partial, pixels)
        os.replace(partial, target)  # another Blender writing the same copy never sees half a file
    except (OSError, ValueError):
        return None
    return target


# --------------------------------------------------------------------------------------------
# Mesh
# --------------------------------------------------------------------------------------------

@dataclass
class MeshData:
    """The target object's evaluated mesh in its *mesh frame*.

    Attributes:
        vertices: ``(V, 3)`` float64, scene units, the object's scale applied.
        faces: ``(F, 3)`` int64 triangle vertex indices.
        frame: ``4 x 4`` rigid world matrix of the mesh frame (object location and rotation).
    """

    vertices: np.ndarray
    faces: np.ndarray
    frame: np.ndarray


def rigid_frame(world: Matrix) -> tuple[Matrix, Matrix]:
    """Split a world matrix into ``(frame, linear)``: a rigid frame and the 3x3 rest (scale, shear)."""
    location, rotation, _scale = world.decompose()
    frame = Matrix.Translation(location) @ rotation.to_matrix().to_4x4()
    linear = rotation.to_matrix().transposed() @ world.to_3x3()
    return frame, linear


#: Object types whose evaluated geometry Blender turns into a mesh (curves and text: with their
#: bevel, extrusion or fill).
GEOMETRY_TYPES = ('MESH', 'CURVE', 'SURFACE', 'FONT', 'META')
_TYPE_NAMES = {'FONT': "text", 'META': "metaball", 'GPENCIL': "grease pencil", 'GREASEPENCIL': "grease pencil",
               'LIGHT_PROBE': "light probe", 'LIGHTPROBE': "light probe"}


def mesh_arrays(obj: bpy.types.Object, depsgraph=None) -> MeshData:
    """Triangles of ``obj``'s evaluated mesh (modifiers, shape keys, edit-mode state) in its mesh frame.

    Curves, surfaces, text and metaballs are converted as Blender evaluates them.

    Raises:
        SceneError: ``obj`` has no geometry (empty, light, camera...), its evaluated mesh has no
            triangles, or some vertices are not finite (counted, before anything is rendered).
    """
    if obj is None:
        raise SceneError("no target object: pick the mesh seen in the photo")
    if obj.type not in GEOMETRY_TYPES:
        kind = _TYPE_NAMES.get(obj.type, obj.type.lower().replace("_", " "))
        article = "an" if kind[0] in "aeiou" else "a"
        raise SceneError(f"{obj.name!r} is {article} {kind}, not a mesh object: pick the mesh seen in the photo")
    if depsgraph is None:
        depsgraph = bpy.context.evaluated_depsgraph_get()
    evaluated = obj.evaluated_get(depsgraph)
    mesh = evaluated.to_mesh()
    try:
        mesh.calc_loop_triangles()
        vertex_count, triangle_count = len(mesh.vertices), len(mesh.loop_triangles)
        if (vertex_count == 0 or triangle_count == 0) and obj.type != 'MESH':
            kind = _TYPE_NAMES.get(obj.type, obj.type.lower())
            raise SceneError(f"{obj.name!r} is a {kind} without faces: give it a bevel or an extrude depth "
                             "(Object Data properties, Geometry)")
        if vertex_count == 0 or triangle_count == 0:
            raise SceneError(f"{obj.name!r} has an empty mesh (no faces)")
        vertices = np.empty(vertex_count * 3, dtype=np.float64)
        mesh.vertices.foreach_get("co", vertices)
        faces = np.empty(triangle_count * 3, dtype=np.int64)
        mesh.loop_triangles.foreach_get("vertices", faces)
    finally:
        evaluated.to_mesh_clear()
    vertices, faces = vertices.reshape(-1, 3), faces.reshape(-1, 3)
    _check_finite(obj, vertices, faces)
    frame, linear = rigid_frame(evaluated.matrix_world)
    vertices = vertices @ np.array(linear, dtype=np.float64).T
    if not np.isfinite(vertices).all():
        raise SceneError(f"{obj.name!r} has a transform that is not finite (NaN or inf in its world matrix)")
    if np.ptp(vertices, axis=0).max() <= 0.0:
        raise SceneError(f"{obj.name!r} has a degenerate mesh (all vertices in one point)")
    return MeshData(vertices, faces, np.array(frame, dtype=np.float64))


def _check_finite(obj, vertices: np.ndarray, faces: np.ndarray) -> None:
    """The backend's one mesh check (it counts non-finite vertices), named after the object."""
    if np.isfinite(vertices).all():
        return
    from ._backend import core

    try:
        core().meshes.check_mesh(vertices, faces, name=repr(obj.name))
    except ValueError as error:
        raise SceneError(str(error)) from None
    raise SceneError(f"{obj.name!r}: some vertices are not finite (NaN or inf)")  # pragma: no cover


# --------------------------------------------------------------------------------------------
# Coarse views rendered by Blender (Workbench)
# --------------------------------------------------------------------------------------------

def workbench_engine_id() -> str:
    """The Workbench engine's identifier (the same in 3.x, 4.x and 5.x)."""
    return 'BLENDER_WORKBENCH'


class ViewRenderer:
    """Renders the mesh alone from several cameras with Blender's Workbench engine, a few at a time.

    The mesh is copied into a temporary scene (the user's scenes, objects and render settings are
    never touched); :meth:`close` removes everything temporary. :meth:`render_some` lets a modal
    operator render between timer events so the interface stays responsive and cancellable.

    Args:
        vertices: ``(V, 3)`` mesh-frame vertices; faces: ``(F, 3)`` triangle indices.
        camera_matrices: ``N`` camera-to-mesh-frame ``4 x 4`` matrices (Blender camera axes:
            looking down -Z, +Y up).
        camera: Blender camera data by name: ``lens``, ``sensor_width``, ``sensor_height``,
            ``sensor_fit`` (as ``Intrinsics.to_blender_dict()`` gives them).
        width, height: render size in pixels.
        shifts: optional ``N`` pairs ``(shift_x, shift_y)`` (Blender units, fraction of the sensor).
    """

    def __init__(self, vertices, faces, camera_matrices, *, camera: dict, width: int, height: int, shifts=None):
        self.matrices = [np.asarray(m, dtype=np.float64) for m in camera_matrices]
        self.shifts = list(shifts) if shifts is not None else [(0.0, 0.0)] * len(self.matrices)
        self.width, self.height = int(width), int(height)
        self.shaded = np.empty((len(self.matrices), self.height, self.width), dtype=np.float32)
        self.silhouettes = np.empty_like(self.shaded)
        self.done = 0
        self._existing_render_result = bpy.data.images.get("Render Result")
        self._created: list = []
        self._folder = tempfile.TemporaryDirectory(prefix="gradhog-views-")
        self._path = os.path.join(self._folder.name, "view.png")
        self._scene = bpy.data.scenes.new("GradHOG coarse views (temporary)")
        try:
            self._build(vertices, faces, camera)
        except BaseException:
            self.close()
            raise

    def _build(self, vertices, faces, camera: dict) -> None:
        mesh = bpy.data.meshes.new("GradHOG coarse mesh (temporary)")
        self._created.append((bpy.data.meshes, mesh))
        mesh.vertices.add(len(vertices))
        mesh.vertices.foreach_set("co", np.asarray(vertices, dtype=np.float32).ravel())
        _set_triangles(mesh, np.asarray(faces, dtype=np.int32))
        obj = bpy.data.objects.new("GradHOG coarse object (temporary)", mesh)
        self._created.insert(0, (bpy.data.objects, obj))
        self._scene.collection.objects.link(obj)
        self._camera_data = bpy.data.cameras.new("GradHOG coarse camera (temporary)")
        self._created.append((bpy.data.cameras, self._camera_data))
        self._camera = bpy.data.objects.new("GradHOG coarse camera (temporary)", self._camera_data)
        self._created.insert(0, (bpy.data.objects, self._camera))
        self._scene.collection.objects.link(self._camera)
        self._scene.camera = self._camera
        for name in ("lens", "sensor_width", "sensor_height", "sensor_fit"):
            if name in camera:
                setattr(self._camera_data, name, camera[name])
        extent = float(np.linalg.norm(np.ptp(np.asarray(vertices), axis=0))) or 1.0
        far = max((float(np.linalg.norm(m[:3, 3])) for m in self.matrices), default=1.0) + extent
        self._camera_data.clip_start = max(1e-6, far * 1e-5)
        self._camera_data.clip_end = far * 2.0
        _configure_workbench(self._scene, self.width, self.height)
        self._scene.render.filepath = self._path

    @property
    def finished(self) -> bool:
        return self.done >= len(self.matrices)

    def render_some(self, seconds: float = 0.1) -> bool:
        """Render views for about ``seconds`` (at least one); returns True when all are done."""
        started = time.perf_counter()
        while not self.finished:
            index = self.done
            self._camera.matrix_world = Matrix(self.matrices[index].tolist())
            shift_x, shift_y = self.shifts[index]
            self._camera_data.shift_x, self._camera_data.shift_y = float(shift_x), float(shift_y)
            with _silenced_stdout():  # Blender logs "Saved: ..." for every still
                bpy.ops.render.render(write_still=True, scene=self._scene.name)
            rgba = _read_png(self._path, self.width, self.height)
            self.shaded[index] = rgba[..., 0]
            self.silhouettes[index] = rgba[..., 3]
            self.done += 1
            if time.perf_counter() - started >= seconds:
                break
        return self.finished

    def close(self) -> None:
        """Remove every temporary datablock and file (safe to call twice)."""
        for collection, block in self._created:
            collection.remove(block)
        self._created.clear()
        if self._scene is not None:
            bpy.data.scenes.remove(self._scene)
            self._scene = None
            render_result = bpy.data.images.get("Render Result")
            # Blender 3.x keeps a user on it and logs an error when it is removed: leave it there.
            removable = render_result is not None and (render_result.users == 0 or bpy.app.version >= (4, 0, 0))
            if self._existing_render_result is None and removable:
                bpy.data.images.remove(render_result)
        self._folder.cleanup()


def render_views(vertices, faces, camera_matrices, *, camera: dict, width: int, height: int,
                 shifts=None) -> tuple[np.ndarray, np.ndarray]:
    """Render all views at once (see :class:`ViewRenderer` for the arguments).

    Returns:
        ``(shaded, silhouettes)``: float32 ``(N, H, W)`` gray studio-lit renders on black and
        anti-aliased silhouettes in ``[0, 1]``.
    """
    renderer = ViewRenderer(vertices, faces, camera_matrices, camera=camera, width=width, height=height,
                            shifts=shifts)
    try:
        renderer.render_some(seconds=float("inf"))
    finally:
        renderer.close()
    return renderer.shaded, renderer.silhouettes


@contextlib.contextmanager
def _silenced_stdout():
    """Send the C-level stdout to /dev/null for a moment (Blender prints from C, not via sys.stdout)."""
    try:
        sys.stdout.flush()
        saved = os.dup(1)
    except (AttributeError, OSError, ValueError):  # no real file descriptor (embedded consoles)
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def _set_triangles(mesh, faces: np.ndarray) -> None:
    count = len(faces)
    mesh.loops.add(count * 3)
    mesh.polygons.add(count)
    mesh.loops.foreach_set("vertex_index", faces.ravel())
    mesh.polygons.foreach_set("loop_start", np.arange(0, count * 3, 3, dtype=np.int32))
    if bpy.app.version < (4, 0, 0):  # computed from loop_start (read-only) since 4.0
        mesh.polygons.foreach_set("loop_total", np.full(count, 3, dtype=np.int32))
    mesh.update(calc_edges=True)
    mesh.validate(clean_customdata=False)


def _configure_workbench(scene, width: int, height: int) -> None:
    render = scene.render
    render.engine = workbench_engine_id()
    render.resolution_x, render.resolution_y = int(width), int(height)
    render.resolution_percentage = 100
    render.pixel_aspect_x = render.pixel_aspect_y = 1.0
    render.film_transparent = True
    render.use_compositing = False
    render.use_sequencer = False
    settings = render.image_settings
    settings.file_format = 'PNG'
    settings.color_mode = 'RGBA'
    settings.color_depth = '8'
    scene.view_settings.view_transform = 'Standard'
    scene.view_settings.look = 'None'
    scene.view_settings.exposure = 0.0
    scene.view_settings.gamma = 1.0
    scene.display.render_aa = '8'
    shading = scene.display.shading
    shading.light = 'STUDIO'
    shading.color_type = 'SINGLE'
    shading.single_color = (0.8, 0.8, 0.8)
    shading.show_object_outline = False
    shading.show_cavity = False
    shading.show_shadows = False
    shading.show_xray = False
    shading.show_backface_culling = False


def _read_png(path: str, width: int, height: int) -> np.ndarray:
    image = bpy.data.images.load(path, check_existing=False)
    try:
        image.colorspace_settings.name = 'Non-Color'  # keep the written 8-bit values as they are
        flat = np.empty(width * height * 4, dtype=np.float32)
        image.pixels.foreach_get(flat)
    finally:
        bpy.data.images.remove(image)
    return flat.reshape(height, width, 4)[::-1]


# --------------------------------------------------------------------------------------------
# Camera write-back
# --------------------------------------------------------------------------------------------

def camera_problem(camera: bpy.types.Object) -> str | None:
    """Why the aligned pose could not be written to ``camera`` exactly, in one line (None: it can).

    Refused: orthographic and panoramic lenses, active constraints (they would move the camera
    off the written pose) and a parent scaled non-uniformly (the camera would come out sheared).
    A parent with rotation, translation and uniform scale is fine: ``matrix_world`` compensates it.
    """
    name = camera.name
    kind = {'ORTHO': "orthographic", 'PANO': "panoramic"}.get(camera.data.type)
    if kind:
        return f"camera {name!r} is {kind}: GradHOG aligns perspective cameras only (set its Type to Perspective)"
    active = [c.name for c in camera.constraints if not c.mute and c.influence > 0.0]
    if active:
        return (f"camera {name!r} has constraint(s) {', '.join(active)} that would move it off the aligned "
                "pose: mute them or align another camera")
    if camera.parent is not None:
        # The parent's effect on the camera (parent world @ parent inverse, bones included).
        try:
            effective = camera.matrix_world @ camera.matrix_basis.inverted()
        except ValueError:  # a camera scaled to zero
            return f"camera {name!r} has a zero scale: set its scale to 1"
        linear = np.array(effective.to_3x3(), dtype=np.float64)
        gram = linear.T @ linear
        scale = np.trace(gram) / 3.0
        if scale <= 0.0 or np.abs(gram - scale * np.eye(3)).max() > 1e-6 * scale:
            return (f"camera {name!r} is parented to {camera.parent.name!r}, which is scaled non-uniformly: "
                    "the camera would come out sheared; clear the parent (Keep Transform) or apply its scale")
    return None


def camera_state(camera: bpy.types.Object, scene: bpy.types.Scene) -> dict:
    """Everything :func:`write_camera` may change, as plain values (for exact comparisons)."""
    data = camera.data
    return {
        "matrix_world": [tuple(row) for row in camera.matrix_world],
        "location": tuple(camera.location),
        "rotation_mode": camera.rotation_mode,
        "rotation_euler": tuple(camera.rotation_euler),
        "rotation_quaternion": tuple(camera.rotation_quaternion),
        "scale": tuple(camera.scale),
        **{f"data.{name}": getattr(data, name) for name in _CAMERA_DATA_FIELDS},
        "background_images": [(bg.image.name if bg.image else None, bg.frame_method, bg.show_background_image)
                              for bg in data.background_images],
        **{f"prop.{name}": camera.get(name) for name in _CUSTOM_PROPERTIES},
        **{f"render.{name}": getattr(scene.render, name) for name in _RENDER_FIELDS},
        "units": (scene.unit_settings.system, scene.unit_settings.scale_length),
    }


def write_camera(camera: bpy.types.Object, scene: bpy.types.Scene, *, camera_to_world,
                 lens_mm: float, sensor_width_mm: float, sensor_fit: str, shift_x: float,
                 shift_y: float, width: int, height: int, photo: bpy.types.Image | None,
                 properties: dict) -> None:
    """Place ``camera`` and make the scene render the photo's frame (main thread, ``bpy.data`` only).

    Sets the world matrix (parents respected), a perspective lens with the given sensor, lens
    shift, the render resolution to the photo's (upright) pixel size with square pixels, the photo
    as the camera's background image (upright: :func:`display_image`) and ``gradhog_*`` custom
    properties (numbers, or strings such as ``gradhog_lens_source``). Scene units are left alone.
    """
    matrix = Matrix([list(row) for row in np.asarray(camera_to_world, dtype=np.float64)])
    camera.matrix_world = matrix
    data = camera.data
    data.type = 'PERSP'
    data.lens_unit = 'MILLIMETERS'
    data.sensor_fit = sensor_fit
    data.sensor_width = float(sensor_width_mm)
    data.lens = float(lens_mm)
    data.shift_x, data.shift_y = float(shift_x), float(shift_y)
    render = scene.render
    render.resolution_x, render.resolution_y = int(width), int(height)
    render.pixel_aspect_x = render.pixel_aspect_y = 1.0
    photo = display_image(photo)
    if photo is not None:
        background = next((bg for bg in data.background_images if bg.image == photo), None)
        if background is None:
            background = data.background_images.new()
            background.image = photo
        background.frame_method = 'FIT'
        background.show_background_image = True
        data.show_background_images = True
    for name, value in properties.items():
        camera[name] = value if isinstance(value, str) else float(value)


def new_camera(scene: bpy.types.Scene, name: str = "GradHOG Camera") -> bpy.types.Object:
    """A new camera object linked to the scene's master collection (the scene camera if it has none)."""
    data = bpy.data.cameras.new(name)
    camera = bpy.data.objects.new(name, data)
    scene.collection.objects.link(camera)
    if scene.camera is None:
        scene.camera = camera
    return camera
