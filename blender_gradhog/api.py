"""Align a Blender camera to a photo of a known mesh, from Python scripts.

>>> import bpy, blender_gradhog.api as gradhog
>>> result = gradhog.align("//photos/chair.jpg", bpy.data.objects["Chair"])
>>> result["azimuth"], result["elevation"], result["distance"], result["score"]

The work is split in three steps so that the modal operator can run the middle one on a worker
thread: :func:`prepare` gathers everything from Blender (main thread; it also renders the coarse
views with Workbench), :func:`solve` runs ``torch_backend.pose.estimate_pose`` (any thread, no
``bpy``), :func:`apply` writes the camera (main thread). :func:`align` chains them.
Nothing in the scene changes before :func:`apply`, so an error or a cancellation leaves it as it was.
"""
from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from typing import Any, Callable

import bpy

from . import scene as blender_scene
from .views import CoarseViewJob
from ._backend import TORCH_MISSING, core, float64, np  # noqa: F401  (TORCH_MISSING: part of the script API)
from .errors import AlignCancelled, AlignError
from .options import POSE_NAMES, PoseOptions, pose_options, start_pose

__all__ = ["align", "refine", "prepare", "solve", "apply", "discard", "camera_pose", "AlignJob", "AlignError",
           "AlignCancelled", "PoseOptions", "FOCAL_LENGTHS"]

#: Where the lens comes from: the camera's own, the photo's EXIF (else the camera's), or estimated
#: with the pose (starting from the camera's).
FOCAL_LENGTHS = ('CAMERA', 'EXIF', 'ESTIMATE')


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------

def resolve_photo(photo) -> bpy.types.Image:
    """A ``bpy.types.Image`` for ``photo`` (an image, an image name, or a file path).

    Movies and ``//`` paths in a never-saved file are refused with the reason.
    """
    if isinstance(photo, bpy.types.Image):
        return photo
    if photo is None or photo == "":
        raise AlignError("no photo: choose the reference photo first")
    if isinstance(photo, bpy.types.MovieClip):
        raise AlignError(f"{photo.name!r} is a movie clip, not a photo: {blender_scene.MOVIE_HINT}")
    if isinstance(photo, (str, os.PathLike)):
        photo = os.fspath(photo)
        if photo in bpy.data.images:
            return bpy.data.images[photo]
        if blender_scene.relative_to_unsaved(photo):
            raise AlignError(f"the photo path {photo!r} is relative to the .blend file, which is not saved "
                             "yet: save the file or use an absolute path")
        if os.path.splitext(photo)[1].lower() in bpy.path.extensions_movie:
            raise AlignError(f"{photo} is a movie: {blender_scene.MOVIE_HINT}")
        absolute = bpy.path.abspath(photo)
        if not os.path.exists(absolute):
            raise AlignError(f"photo not found: {absolute}")
        image = blender_scene.load_image(absolute)
        if image is None:
            raise AlignError(f"cannot read the photo {absolute} (not an image Blender can open)")
        return image
    raise AlignError(f"photo must be an image or a file path, got {type(photo).__name__}")


def _mask_array(mask, shape, masks) -> np.ndarray:
    """An ``(H, W)`` bool mask from an image, a path or an array of coverage (object: >= one half)."""
    if isinstance(mask, (str, os.PathLike)) or isinstance(mask, bpy.types.Image):
        try:
            mask = blender_scene.read_mask(resolve_photo(mask))  # upright, as the photo
        except blender_scene.SceneError as error:
            raise AlignError(f"mask: {error}") from None
    return masks.as_mask(mask, shape, name="mask")


@dataclass
class AlignJob:
    """Everything :func:`solve` needs, gathered from Blender on the main thread (no ``bpy`` inside).

    Attributes:
        photo: ``(H, W, 3)`` float32 RGB in ``[0, 1]``, upright (EXIF orientation applied), first row
            at the top.
        mask: ``(H, W)`` bool object mask or ``None``; bbox: ``(x0, y0, x1, y1)`` pixels or ``None``.
        mesh: the target's evaluated mesh in its mesh frame (scene units).
        intrinsics: ``torch_backend.camera.Intrinsics`` of the photo (resolution = upright photo size).
        lens_source: where ``intrinsics``' lens came from (``"given"``, ``"exif"``, ``"default"``);
            with ``options.focal == "estimate"`` it is only the starting lens.
        coarse_views: Blender-rendered coarse views or ``None`` (the backend renders its own).
        options: the :class:`PoseOptions` of ``estimate_pose``; device: ``'cpu'`` or ``'cuda'``.
        camera_name, object_name, scene_name, photo_name: what :func:`apply` writes to.
        pending_views: a :class:`CoarseViewJob` still to render (``prepare(coarse_views='later')``).
        cache_dir: folder of the on-disk coarse-view cache for views the backend renders (None: memory only).
        loaded_images: names of the images :func:`prepare` loaded (:func:`discard` removes them).
        initial_pose: ``{"azimuth", "elevation", "distance", "roll"}`` (degrees, scene units) to start
            from instead of the global search, or None.
    """

    photo: np.ndarray
    mask: np.ndarray | None
    bbox: tuple | None
    mesh: blender_scene.MeshData
    intrinsics: Any
    coarse_views: Any
    options: PoseOptions
    device: str
    camera_name: str | None
    object_name: str
    scene_name: str
    photo_name: str
    cue: str
    lock_focal_length: bool = True
    lens_source: str = "given"
    prepare_seconds: float = 0.0
    pending_views: Any = None
    cache_dir: str | None = None
    loaded_images: tuple = ()
    initial_pose: dict | None = None


def prepare(photo, obj, camera=None, *, scene=None, bbox=None, mask=None, mask_source: str = 'ALPHA',
            device: str = 'cpu', lock_focal_length: bool = True, coarse_views: bool = True, depsgraph=None,
            cache_dir: str | None = None, focal_length: str = 'CAMERA', lens_mm: float | None = None,
            sensor_width_mm: float | None = None, options: PoseOptions | None = None, initial_pose=None,
            **overrides) -> AlignJob:
    """Gather the photo, cues, evaluated mesh and intrinsics, and render the coarse views (main thread).

    The photo's pixels come from its file through ``torch_backend.images`` (upright, whatever its
    EXIF orientation, bit depth or alpha), the same on every Blender version; see
    :func:`blender_gradhog.scene.read_photo`.

    Args:
        photo: ``bpy.types.Image``, image name or file path.
        obj: the mesh object seen in the photo.
        camera: camera object to align; ``None``: the scene camera (a new camera at apply time
            when the scene has none).
        bbox: ``(x0, y0, x1, y1)`` box around the object in upright photo pixels (origin top-left).
        mask: explicit mask (image, path or ``(H, W)`` array of coverage: object where >= one half),
            upright photo-sized; overrides ``mask_source``.
        mask_source: ``'ALPHA'`` (photo alpha when it has one), ``'IMAGE'`` (needs ``mask``),
            ``'BOX'`` (outlines judged by the photo's colours around ``bbox``) or ``'NONE'``.
        coarse_views: render the coarse views with Blender now (True), let the backend render
            them (False), or ``'later'``: ``job.pending_views`` is a :class:`CoarseViewJob` to
            render step by step (its temporary scene exists until it finishes or is closed).
        cache_dir: with ``coarse_views=False``, a folder where the backend keeps its renders for
            later processes (:class:`torch_backend.pose.CoarseViewCache`); None: memory only.
        focal_length: one of :data:`FOCAL_LENGTHS`: ``'CAMERA'`` keeps the camera's lens, ``'EXIF'``
            takes the photo's EXIF lens when it has one (else the camera's), ``'ESTIMATE'``
            estimates it with the pose (``estimate_pose(focal="estimate")``).
        lens_mm, sensor_width_mm: replace the camera's lens / sensor width (mm) before that choice
            (a ``lens_mm`` wins over EXIF). Without a camera: Blender's 50 mm on 36 mm ("default").
        options: the :class:`PoseOptions` of ``estimate_pose`` (default: its defaults);
            ``overrides`` replace some of them (e.g. ``top_k=5, iterations=40, hog_variant='dalal'``).
        initial_pose: start from this pose instead of the global search (rough is enough): a mapping
            with ``azimuth, elevation`` (and ``distance, roll``) or ``(azimuth, elevation[, distance,
            roll])``, degrees; see :func:`refine`.

    Raises:
        AlignError: with a one-line reason; the scene is unchanged.
    """
    started = time.perf_counter()
    options = pose_options(overrides, base=options)
    initial_pose = start_pose(initial_pose)
    scene = scene or bpy.context.scene
    if obj is None:
        raise AlignError("no target object: pick the mesh seen in the photo")
    if camera is not None and camera.type != 'CAMERA':
        raise AlignError(f"{camera.name!r} is not a camera")
    camera = camera or scene.camera
    problem = blender_scene.camera_problem(camera) if camera is not None else None
    if problem:
        raise AlignError(problem)
    core()  # without PyTorch, say how to install it before anything else can fail
    with _new_images() as loaded:  # photos and masks loaded here go again if prepare fails
        image = resolve_photo(photo)
        _check_device(device)
        try:
            picture = blender_scene.read_photo(image)
            mesh = blender_scene.mesh_arrays(obj, depsgraph)
        except blender_scene.SceneError as error:
            raise AlignError(str(error)) from None
        bbox, mask_array = _object_cues(picture, bbox, mask, mask_source)
    height, width = picture.rgb.shape[:2]
    cue = "mask" if mask_array is not None else "box" if bbox is not None else "photo"
    lens, lens_source = choose_lens(focal_length, picture.lens, camera, lens_mm=lens_mm,
                                    sensor_width_mm=sensor_width_mm)
    intrinsics = photo_intrinsics(camera, width, height, lens=lens)
    if focal_length == 'ESTIMATE':
        options = pose_options({"focal": "estimate"}, base=options)
        coarse_views = False  # the backend renders views for each candidate field of view itself
    views = pending = None
    if coarse_views == 'later':  # the caller renders them step by step (modal operator)
        pending = CoarseViewJob(mesh, intrinsics, options)
        views = pending.views  # already there when cached
    elif coarse_views:
        views = CoarseViewJob(mesh, intrinsics, options).render_all()
    return AlignJob(
        photo=picture.rgb, mask=mask_array, bbox=bbox, mesh=mesh,
        intrinsics=intrinsics, coarse_views=views, options=options, device=device,
        camera_name=camera.name if camera else None, object_name=obj.name, scene_name=scene.name,
        photo_name=image.name, cue=cue, lock_focal_length=lock_focal_length, lens_source=lens_source,
        prepare_seconds=time.perf_counter() - started, pending_views=pending if views is None else None,
        cache_dir=cache_dir, loaded_images=tuple(loaded), initial_pose=initial_pose,
    )


@contextlib.contextmanager
def _new_images():
    """Yields a list that receives the names of images loaded inside the block; on an error they
    are removed again (when nothing else uses them), so a refused alignment leaves no trace."""
    before = {image.as_pointer() for image in bpy.data.images}
    loaded: list[str] = []
    try:
        yield loaded
    except BaseException:
        _remove_unused(image.name for image in bpy.data.images if image.as_pointer() not in before)
        raise
    loaded.extend(image.name for image in bpy.data.images if image.as_pointer() not in before)


def _remove_unused(names) -> None:
    for name in list(names):
        image = bpy.data.images.get(name)
        if image is not None and image.users == 0:
            bpy.data.images.remove(image)


def discard(job: AlignJob) -> None:
    """Forget a job that will not be applied (cancelled, failed): close its pending coarse views and
    remove the photos and masks that :func:`prepare` loaded, unless something uses them by now."""
    if job.pending_views is not None:
        job.pending_views.close()
        job.pending_views = None
    _remove_unused(job.loaded_images)


def _check_device(device: str) -> None:
    if device not in ('cpu', 'cuda'):
        raise AlignError(f"device must be 'cpu' or 'cuda', got {device!r}")
    if device == 'cuda':
        import torch

        if not torch.cuda.is_available():
            raise AlignError("device CUDA was chosen but this PyTorch has no usable CUDA GPU: pick CPU")


def _object_cues(picture, bbox, mask, mask_source: str) -> tuple:
    """``(bbox, mask)`` checked against the upright photo (a ``torch_backend.images.Photo``): the box
    as a tuple or None, an ``(H, W)`` bool mask or None. Masks and alpha are coverage (>= one half)."""
    masks = core().masks
    shape = picture.rgb.shape[:2]
    try:
        if bbox is not None:
            bbox = tuple(masks.validate_box(bbox, shape))
        if mask is not None:
            mask_array = _mask_array(mask, shape, masks)
        elif mask_source == 'IMAGE':
            raise AlignError("mask source is 'Mask Image' but no mask image is set")
        elif mask_source == 'ALPHA' and picture.alpha is not None:
            mask_array = masks.alpha_mask(picture.alpha)  # None for an opaque alpha channel
        else:
            mask_array = None
        if mask_source == 'BOX' and bbox is None:
            raise AlignError("mask source is 'Auto from Box' but no crop box is set")
    except ValueError as error:
        raise AlignError(str(error)) from None
    return bbox, mask_array


def photo_intrinsics(camera, width: int, height: int, lens: dict | None = None):
    """Intrinsics of ``camera`` (Blender's 50 mm / 36 mm defaults without one) at the photo's size;
    ``lens`` (Blender names: ``lens``, ``sensor_width``...) replaces the camera's values."""
    data = camera.data if camera is not None else None
    values = {"resolution_x": width, "resolution_y": height}
    if data is not None:
        values.update(lens=data.lens, sensor_width=data.sensor_width, sensor_height=data.sensor_height,
                      sensor_fit=data.sensor_fit)
    values.update(lens or {})
    return core().camera.Intrinsics.from_blender_dict(values)


def choose_lens(focal_length: str, exif_lens, camera, *, lens_mm: float | None = None,
                sensor_width_mm: float | None = None) -> tuple[dict, str]:
    """The lens to align with, as Blender camera values (``lens``, ``sensor_width``...), and its
    source (``torch_backend.images.LENS_SOURCES``; "estimated" is decided by :func:`solve`).

    ``exif_lens`` is the photo's ``LensInfo`` or None; see :func:`prepare` for the rest.
    """
    images = core().images
    if focal_length not in FOCAL_LENGTHS:
        raise AlignError(f"focal_length must be one of {', '.join(FOCAL_LENGTHS)}, got {focal_length!r}")
    for name, value in (("lens_mm", lens_mm), ("sensor_width_mm", sensor_width_mm)):
        if value is not None and not (np.isfinite(value) and value > 0):
            raise AlignError(f"{name} must be a positive number of millimetres, got {value}")
    values, source = {}, images.LENS_GIVEN if camera is not None else images.LENS_DEFAULT
    if sensor_width_mm is not None:
        values["sensor_width"] = float(sensor_width_mm)
    if lens_mm is not None:
        values["lens"], source = float(lens_mm), images.LENS_GIVEN
    elif focal_length == 'EXIF' and exif_lens is not None:
        # The EXIF sensor spans the photo's longer side: Blender's AUTO fit.
        values = {"lens": exif_lens.lens_mm, "sensor_width": exif_lens.sensor_width_mm,
                  "sensor_height": exif_lens.sensor_height_mm, "sensor_fit": 'AUTO'}
        source = images.LENS_EXIF
    return values, source


# --------------------------------------------------------------------------------------------
# Solve (any thread: no bpy below until apply)
# --------------------------------------------------------------------------------------------

_BACKEND_CACHES: dict = {}


def _backend_cache(directory: str | None):
    """One :class:`CoarseViewCache` per cache folder (None: the backend's process-wide one)."""
    if directory is None:
        return None
    if directory not in _BACKEND_CACHES:
        _BACKEND_CACHES[directory] = core().pose.CoarseViewCache(directory=directory)
    return _BACKEND_CACHES[directory]


def solve(job: AlignJob, callback: Callable[[float, str], bool] | None = None):
    """Run ``estimate_pose`` for ``job``; ``callback(progress, message)`` returning False cancels.

    Raises:
        AlignCancelled: cancelled through the callback.
        AlignError: the backend rejected the inputs (one-line reason).
    """
    pose = core().pose
    try:
        return pose.estimate_pose(
            job.photo, job.mesh.vertices, job.mesh.faces, job.intrinsics, bbox=job.bbox, mask=job.mask,
            coarse_views=job.coarse_views, options=job.options, device=job.device, callback=callback,
            cache=_backend_cache(job.cache_dir), initial_pose=job.initial_pose)
    except pose.Cancelled:
        raise AlignCancelled("alignment cancelled: the camera was not changed") from None
    except ValueError as error:
        raise AlignError(str(error)) from None


# --------------------------------------------------------------------------------------------
# Apply (main thread)
# --------------------------------------------------------------------------------------------

def pose_values(pose) -> dict:
    """``azimuth, elevation, distance, roll, shift_x, shift_y`` of a backend pose as floats."""
    return {name: float(getattr(pose, name, 0.0)) for name in
            ("azimuth", "elevation", "distance", "roll", "shift_x", "shift_y")}


def camera_matrix(frame: np.ndarray, values: dict) -> np.ndarray:
    """World ``matrix_world`` of a camera at pose ``values`` relative to a mesh ``frame`` (4 x 4)."""
    local = core().camera.camera_to_world(values["azimuth"], values["elevation"], values["distance"],
                                          values["roll"], dtype=float64()).numpy()
    return np.asarray(frame, dtype=np.float64) @ local


def place_camera(camera, scene, frame, values: dict, *, lens_mm: float, sensor_width_mm: float,
                 sensor_fit: str, width: int, height: int, photo, score: float, lens_source: str = "given") -> None:
    """Write a pose and lens to ``camera`` (see :func:`blender_gradhog.scene.write_camera`); the
    lens's source goes into the custom property ``gradhog_lens_source``."""
    problem = blender_scene.camera_problem(camera)  # it may have changed since prepare
    if problem:
        raise AlignError(problem)
    properties = {f"gradhog_{name}": value for name, value in values.items()}
    properties["gradhog_score"] = score
    properties["gradhog_lens_source"] = str(lens_source)
    blender_scene.write_camera(
        camera, scene, camera_to_world=camera_matrix(frame, values), lens_mm=lens_mm,
        sensor_width_mm=sensor_width_mm, sensor_fit=sensor_fit, shift_x=values["shift_x"],
        shift_y=values["shift_y"], width=width, height=height, photo=photo, properties=properties)


def current_frame(obj) -> np.ndarray:
    """The object's mesh frame (rigid ``4 x 4``) as evaluated now (drivers, constraints, parents)."""
    evaluated = obj.evaluated_get(bpy.context.evaluated_depsgraph_get())
    frame, _ = blender_scene.rigid_frame(evaluated.matrix_world)
    return np.array(frame, dtype=np.float64)


def camera_pose(camera, obj, depsgraph=None) -> dict:
    """Where ``camera`` is now relative to ``obj``'s mesh frame, in the pose convention:
    ``{"azimuth", "elevation", "distance", "roll"}`` (degrees, scene units); the inverse of
    :func:`camera_matrix`. The direction is that of the camera's centre seen from the object's
    origin, so a camera placed roughly (not aimed exactly at the origin) still gives its viewpoint.
    Scale on the camera or the object is ignored (their rigid frames are used)."""
    depsgraph = depsgraph or bpy.context.evaluated_depsgraph_get()
    frame, _ = blender_scene.rigid_frame(obj.evaluated_get(depsgraph).matrix_world)
    placed, _ = blender_scene.rigid_frame(camera.evaluated_get(depsgraph).matrix_world)
    local = np.linalg.inv(np.array(frame, dtype=np.float64)) @ np.array(placed, dtype=np.float64)
    if not np.linalg.norm(local[:3, 3]) > 1e-9:
        raise AlignError(f"the camera {camera.name!r} sits at the origin of {obj.name!r}: move it to where the photo was taken from")
    import torch

    values = core().camera.pose_from_camera_to_world(torch.from_numpy(local))
    return {name: float(value) for name, value in zip(POSE_NAMES, values)}


def apply(job: AlignJob, result, *, camera=None) -> dict:
    """Write the best pose of ``result`` to the job's camera (main thread) and return the result dict.

    The object's *current* world transform is used, so moving the object after :func:`prepare`
    still gives a camera that frames it as in the photo.
    """
    scene = bpy.data.scenes.get(job.scene_name)
    obj = bpy.data.objects.get(job.object_name)
    if scene is None or obj is None:
        raise AlignError("the scene or the target object was deleted during the alignment")
    if camera is None and job.camera_name is not None:
        camera = bpy.data.objects.get(job.camera_name)
        if camera is None:
            raise AlignError(f"the camera {job.camera_name!r} was deleted during the alignment")
    if camera is None:
        camera = blender_scene.new_camera(scene)
    frame = current_frame(obj)
    settings = job.intrinsics.to_blender_dict()
    lens, source = used_lens(job, result)
    values = pose_values(result.pose)
    photo = bpy.data.images.get(job.photo_name)
    # Pose and lens are written together: one undo step (the operator's) holds both.
    place_camera(camera, scene, frame, values, lens_mm=lens, sensor_width_mm=settings["sensor_width"],
                 sensor_fit=settings["sensor_fit"], width=job.intrinsics.width,
                 height=job.intrinsics.height, photo=photo, score=float(result.score), lens_source=source)
    return result_dict(job, result, camera=camera)


def used_lens(job: AlignJob, result) -> tuple[float, str]:
    """``(lens_mm, lens_source)`` of a result: the estimate when the focal length was estimated,
    else the job's lens (``lock_focal_length`` is kept for old scripts; the lens is never changed
    unless estimated)."""
    if getattr(result, "lens_source", None) == core().images.LENS_ESTIMATED:
        return float(result.lens_mm), core().images.LENS_ESTIMATED
    return float(job.intrinsics.to_blender_dict()["lens"]), job.lens_source


def result_dict(job: AlignJob, result, *, camera=None) -> dict:
    """The result as JSON-ready values (what ``gradhog align`` writes): the pose, ``lens_mm``,
    ``sensor_width_mm``, ``sensor_fit``, ``lens_source`` (and ``lens_range_mm`` when estimated)..."""
    settings = job.intrinsics.to_blender_dict()
    values = pose_values(result.pose)
    lens, source = used_lens(job, result)
    candidates = []
    for candidate, score in getattr(result, "candidates", ()) or ():
        candidates.append({**pose_values(candidate), "score": float(score),
                           "lens_mm": float(getattr(candidate, "lens_mm", None) or lens)})
    extra = {}
    margin = float(getattr(result, "margin", float("nan")))
    if getattr(result, "lens_range_mm", None) is not None:
        extra["lens_range_mm"] = [float(value) for value in result.lens_range_mm]
    return {
        **values,
        "lens_mm": lens,
        "sensor_width_mm": float(settings["sensor_width"]),
        "sensor_fit": settings["sensor_fit"],
        "lens_source": source,
        **extra,
        "score": float(result.score),
        # How much to trust it: the gap to the next distinct pose (NaN: no rival) and the share of
        # the silhouette explained.
        "margin": margin,
        "ambiguous": bool(getattr(result, "ambiguous", margin < core().pose.AMBIGUOUS_MARGIN)),
        "iou": float(getattr(result, "iou", float("nan"))),
        "initial_pose": dict(job.initial_pose) if job.initial_pose is not None else None,
        "seconds": float(getattr(result, "seconds", 0.0)) + job.prepare_seconds,
        "candidates": candidates,
        "resolution": [job.intrinsics.width, job.intrinsics.height],
        "cue": job.cue,
        "photo": job.photo_name,
        "object": job.object_name,
        "camera": camera.name if camera is not None else job.camera_name,
    }


def align(photo, obj, camera=None, *, callback: Callable[[float, str], bool] | None = None,
          **options) -> dict:
    """Align ``camera`` (default: the scene camera, or a new one) to ``photo`` of ``obj``.

    Args:
        photo: ``bpy.types.Image``, image name or file path.
        obj: mesh object seen in the photo (its evaluated mesh and world transform are used).
        camera: camera object to write.
        callback: ``callback(progress in [0, 1], message) -> bool``; False cancels.
        options: see :func:`prepare` (``bbox``, ``mask``, ``mask_source``, ``device``,
            ``focal_length``, ``lens_mm``, ``sensor_width_mm``, ``options``) plus :class:`PoseOptions`
            fields (``top_k``, ``seed``...).

    Returns:
        dict with ``azimuth, elevation, roll`` (degrees), ``distance`` (scene units),
        ``shift_x, shift_y, lens_mm, sensor_width_mm, lens_source`` (``lens_range_mm`` when
        estimated), ``score, seconds, candidates`` and ``camera``.

    Raises:
        AlignError: one-line reason (AlignCancelled when cancelled); the scene is then unchanged.
    """
    job = prepare(photo, obj, camera, **options)
    try:
        result = solve(job, callback)
        return apply(job, result, camera=camera)
    except AlignError:
        discard(job)
        raise


def refine(photo, obj, camera=None, *, scene=None, callback: Callable[[float, str], bool] | None = None,
           **options) -> dict:
    """:func:`align` starting from where ``camera`` is now (placed by hand; 20-30 degrees off is
    enough), skipping the global search: only views within ``initial_reach`` (45 degrees) of its
    viewpoint are searched, rolls around its roll (see :func:`camera_pose`).

    Args:
        camera: the roughly placed camera (default: the scene camera); it is the one written.
        options: as :func:`align`.

    Returns:
        :func:`align`'s dict; ``initial_pose`` holds the camera's pose it started from.

    Raises:
        AlignError: no camera, or as :func:`align`; the scene is then unchanged.
    """
    scene = scene or bpy.context.scene
    camera = camera or scene.camera
    if camera is None:
        raise AlignError("no camera: place a camera roughly where the photo was taken from first")
    if obj is None:
        raise AlignError("no target object: pick the mesh seen in the photo")
    if camera.type != 'CAMERA':
        raise AlignError(f"{camera.name!r} is not a camera")
    start = camera_pose(camera, obj)
    return align(photo, obj, camera, scene=scene, callback=callback, initial_pose=start, **options)

