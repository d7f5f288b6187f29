"""Build a pose set that looks like real photos of household objects in clutter (Cycles, CPU).

The clean set of ``bench/make_pose_dataset.py`` composites one textured object over a photo. Real
photos (Kinect-style, objects on a table) break box and photo modes for reasons that set never
shows, so every photo here carries them:

* the object **stands on a textured surface** (a table-top plane at its lowest point, textured
  with a tinted scikit-image photo: brick, gravel, grass, ...), rendered in full by Cycles with the
  object, so the **contact and cast shadows** are real; beyond the table's edge, a crop of a real
  photo (transparent film, composited);
* **other objects** (boxes, cylinders, the other procedural meshes at random sizes and materials)
  stand around it and, on most photos, one in front of it (on the table, or on steep views hanging
  on the line of sight like a lamp): **partial occlusion 0-40 %** of the
  object's full silhouette, measured from two mask renders and stored as ``occlusion``;
* **texture-less, low-contrast** objects on ~60 %: a plain diffuse colour, mostly close to the
  surface's mean colour (``textureless``, ``low_contrast``);
* **small objects**: the object's box spans 60-120 px on ~40 % of the photos (``small``), 120-260 px
  otherwise, in 640x480 / 480x360 / 360x480 photos; lens 28-85 mm; elevation 8-80 deg (the camera
  is above the table), roll within +-30 deg;
* **sensor noise** (signal-dependent), **motion or defocus blur**, exposure and white balance
  jitter; **JPEG** (quality 60-95) for about half of the photos; **gray** photos (single channel)
  for every fourth photo (25 %, ``gray``; the colour version is kept as ``<id>_colour.png``).

Written under ``--out`` (same layout and JSON keys as the clean set, so
``bench/pose_accuracy.py --set DIR`` reads it unchanged)::

    index.json, meshes/<name>.obj
    <id>.png | <id>.jpg          the photo (RGB, or L when gray)
    <id>_mask.png                the VISIBLE part of the object (0 / 255): what an artist paints
    <id>_amodal.png              the full silhouette, occluders ignored (0 / 255)
    <id>.json                    the clean set's keys (``bbox`` = tight box of the visible part)
                                 plus occlusion, amodal_bbox, object_px, gray, small, textureless,
                                 low_contrast, jpeg_quality, blur/noise settings, occluders, surface

Decided sets (50 photos, 10 per mesh, interleaved): **development set = ``--seed 11``**
(``bench/data/pose_real_dev``: all design decisions are made on it), **reported set =
``--seed 10``** (``bench/data/pose_real``: run once, at the end). Deterministic for a ``--seed``.

Usage::

    .venv/bin/python bench/make_real_pose_dataset.py --seed 11 --out bench/data/pose_real_dev
    .venv/bin/python bench/make_real_pose_dataset.py --seed 10 --out bench/data/pose_real
    .venv/bin/python bench/make_real_pose_dataset.py --sheet docs/pose_real_examples.png \\
        --out bench/data/pose_real_dev        # contact sheet of an existing set only
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

import make_pose_dataset as base  # noqa: E402  (also silences bpy's deprecation warnings)
import pose_common  # noqa: E402

from torch_backend import meshes  # noqa: E402

RESOLUTIONS = ((640, 480), (480, 360), (480, 360), (360, 480))
SURFACES = ("brick", "gravel", "grass", "coins", "moon", "camera")  # gray textures, tinted
BACKDROPS = base.BACKGROUNDS + ("cat", "hubble_deep_field")
OCCLUDER_KINDS = ("box", "cylinder", "mesh")


@dataclass
class RealisticSettings:
    """Shares of the effects (per photo) and their ranges; pixel sizes refer to the photo."""

    small_fraction: float = 0.4
    small_px: tuple = (60.0, 120.0)  # larger side of the object's full box
    large_px: tuple = (120.0, 260.0)
    elevation_range: tuple = (8.0, 80.0)
    lens_range: tuple = (28.0, 85.0)
    textureless_fraction: float = 0.6
    low_contrast_fraction: float = 0.75  # of the texture-less ones: colour near the surface's
    front_occluder_fraction: float = 0.75
    max_occlusion: float = 0.40
    distractors: tuple = (1, 4)
    gray_every: int = 4
    jpeg_fraction: float = 0.5
    jpeg_quality: tuple = (60, 95)
    motion_blur_fraction: float = 0.2
    defocus_fraction: float = 0.2
    noise_fraction: float = 0.8
    samples: int = 8
    mask_samples: int = 16
    threads: int = 1


# --------------------------------------------------------------------------------------------
# materials
# --------------------------------------------------------------------------------------------
def _srgb_to_linear(c):
    c = np.asarray(c, dtype=np.float64)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _plain_material(name: str, colour, roughness: float):
    """Texture-less diffuse material of a linear RGB ``colour`` (3,)."""
    import bpy

    mat = bpy.data.materials.new(name)
    mat.use_nodes = True
    bsdf = mat.node_tree.nodes["Principled BSDF"]
    bsdf.inputs["Base Color"].default_value = (*np.clip(colour, 0.0, 1.0), 1.0)
    bsdf.inputs["Roughness"].default_value = float(roughness)
    return mat


def _surface_material(rng, folder: Path, tile: float):
    """Table-top material: a tinted gray scikit-image photo repeated every ``tile`` scene units
    (object coordinates). Returns (material, mean linear colour (3,), info)."""
    import bpy
    import skimage.data
    from PIL import Image

    name = SURFACES[rng.integers(len(SURFACES))]
    gray = np.asarray(getattr(skimage.data, name)(), dtype=np.float64) / 255.0
    hue = rng.uniform(0.2, 1.0, size=3)
    tint = 1.0 - rng.uniform(0.0, 0.6) * (1.0 - hue / hue.max())  # mostly unsaturated tops
    contrast = rng.uniform(0.3, 1.0)  # real table tops are calmer than these test images
    level = rng.uniform(0.25, 0.8)
    srgb = np.clip((level + contrast * (gray[..., None] - gray.mean())) * tint, 0.0, 1.0)
    path = folder / f"surface_{name}_{rng.integers(1 << 30)}.png"
    Image.fromarray((srgb * 255).round().astype(np.uint8)).save(path)
    mat = bpy.data.materials.new("surface")
    mat.use_nodes = True
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    coords = nodes.new("ShaderNodeTexCoord")
    mapping = nodes.new("ShaderNodeMapping")
    mapping.inputs["Scale"].default_value = (1.0 / tile, 1.0 / tile, 1.0 / tile)
    mapping.inputs["Rotation"].default_value = (0.0, 0.0, float(rng.uniform(0, 2 * math.pi)))
    texture = nodes.new("ShaderNodeTexImage")
    texture.image = bpy.data.images.load(str(path))
    texture.extension = "REPEAT"
    links.new(coords.outputs["Object"], mapping.inputs["Vector"])
    links.new(mapping.outputs["Vector"], texture.inputs["Vector"])
    bsdf = nodes["Principled BSDF"]
    links.new(texture.outputs["Color"], bsdf.inputs["Base Color"])
    bsdf.inputs["Roughness"].default_value = float(rng.uniform(0.4, 0.9))
    mean = _srgb_to_linear(srgb).reshape(-1, 3).mean(axis=0)
    return mat, mean, {"image": name, "tint": tint.tolist(), "tile": tile}


def _target_material(rng, name: str, surface_mean, settings: RealisticSettings):
    """The object's material: the clean set's noise texture, or a plain colour (often close to
    the surface's mean colour). Returns (material, flags)."""
    if rng.random() >= settings.textureless_fraction:
        return base._material(rng, name), {"textureless": False, "low_contrast": False}
    low = bool(rng.random() < settings.low_contrast_fraction)
    if low:
        colour = surface_mean * rng.uniform(0.6, 1.6) * rng.uniform(0.85, 1.15, size=3)
    else:
        colour = _srgb_to_linear(rng.uniform(0.05, 0.9, size=3))
    material = _plain_material(f"{name}_plain", colour, rng.uniform(0.4, 0.9))
    return material, {"textureless": True, "low_contrast": low}


def _clutter_material(rng, index: int):
    if rng.random() < 0.5:
        palette = list(base.PALETTES)[rng.integers(len(base.PALETTES))]
        return base._material(rng, palette)
    return _plain_material(f"clutter_{index}", _srgb_to_linear(rng.uniform(0.05, 0.95, size=3)),
                           rng.uniform(0.2, 0.9))


# --------------------------------------------------------------------------------------------
# scene: table, target, clutter
# --------------------------------------------------------------------------------------------
def _footprint(vertices) -> float:
    """Largest horizontal distance from the mesh's vertical axis to a vertex (scene units)."""
    return float(np.linalg.norm(vertices[:, :2], axis=1).max())


def _clutter_mesh(rng, target: str, height: float):
    """A random object standing at the origin (lowest point z = 0, centred in x, y), about
    ``height`` tall: ``(vertices (V, 3), faces (F, 3), kind)``."""
    kind = OCCLUDER_KINDS[rng.integers(len(OCCLUDER_KINDS))]
    if kind == "box":
        size = np.array([rng.uniform(0.3, 1.2), rng.uniform(0.3, 1.2), 1.0]) * height
        v, f = meshes.box(size)
    elif kind == "cylinder":
        v, f = meshes.cylinder(radius=float(rng.uniform(0.15, 0.5) * height), height=height)
    else:
        others = [n for n in base.MESH_UNITS if n != target]
        kind = others[rng.integers(len(others))]
        v, f = meshes.make_mesh(kind)
        v = v * (height / np.ptp(v[:, 2]))
    v = np.asarray(v, dtype=np.float64)
    v = v @ meshes.rotation_matrix("z", float(rng.uniform(0, 360))).T
    v = v - np.array([*(v[:, :2].max(0) + v[:, :2].min(0)) / 2, v[:, 2].min()])
    return v, np.asarray(f), kind


def _add_plane(size: float, z: float, offset):
    import bpy

    h = size / 2
    corners = [(-h, -h, 0.0), (h, -h, 0.0), (h, h, 0.0), (-h, h, 0.0)]
    obj = base._add_mesh("table", np.array(corners), np.array([[0, 1, 2], [0, 2, 3]]))
    obj.location = (float(offset[0]), float(offset[1]), float(z))
    return obj


def build_scene(rng, name, vertices, faces, pose, settings: RealisticSettings, folder: Path, *,
                width, height, seed):
    """Cycles scene of the object on a textured table among clutter, seen from ``pose``.
    Returns ``(scene, objects dict, info dict)``; the object keeps its mesh coordinates."""
    scene = base._reset_scene(width, height, settings.samples, True, threads=settings.threads)
    scene.cycles.seed = int(seed)
    scene.cycles.max_bounces = 2  # diffuse table-top scene: two bounces carry the soft shadows
    radius = meshes.mesh_radius(vertices)
    cam = base._camera(scene, pose, radius)
    cam.data.clip_start = pose["distance"] * 1e-3
    cam.data.clip_end = pose["distance"] * 100.0
    target = base._add_mesh(name, vertices, faces)
    floor = float(vertices[:, 2].min())
    foot, tall = _footprint(vertices), float(np.ptp(vertices[:, 2]))
    tile = float(rng.uniform(1.0, 4.0) * radius)
    surface, surface_mean, surface_info = _surface_material(rng, folder, tile)
    plane = _add_plane(rng.uniform(30.0, 80.0) * radius, floor - 1e-4 * radius,
                       rng.uniform(-3.0, 3.0, size=2) * radius)
    plane.data.materials.append(surface)
    material, flags = _target_material(rng, name, surface_mean, settings)
    target.data.materials.append(material)
    base._lights(rng, scene)
    toward = np.asarray(pose_common.camera_matrix_world(
        pose["azimuth"], pose["elevation"], pose["distance"], pose["roll"])[:2, 3], dtype=np.float64)
    toward = toward / max(np.linalg.norm(toward), 1e-9)  # ground direction to the camera
    side = np.array([-toward[1], toward[0]])
    clutter = []
    count = int(rng.integers(settings.distractors[0], settings.distractors[1] + 1))
    front = bool(rng.random() < settings.front_occluder_fraction)
    camera_z, camera_ground = pose["distance"] * math.sin(math.radians(pose["elevation"])), \
        pose["distance"] * math.cos(math.radians(pose["elevation"]))
    for k in range(count + int(front)):
        v, f, kind = _clutter_mesh(rng, name, tall * float(rng.uniform(0.3, 1.1)))
        reach = foot + _footprint(v)
        if front and k == 0:  # in front of the object, partly across its silhouette
            # tall enough that its far edge cuts the line of sight to a point of the object's
            # lower part (seen from above, a low object in front hides nothing); at most 2.5
            # object heights
            aim = tall * rng.uniform(0.15, 0.65)
            edge = foot * rng.uniform(1.0, 1.3)
            sight = aim + (camera_z - floor - aim) * edge / max(camera_ground, 1e-9)
            lift = 0.0
            if sight <= 2.5 * tall:
                v = v * (sight * rng.uniform(1.0, 1.4) / float(np.ptp(v[:, 2])))
                reach = edge + _footprint(v)
            else:  # steep view: the occluder hangs on the line of sight (a lamp, a shelf)
                t = float(rng.uniform(0.3, 0.6))
                v = v * (1.0 - t)
                reach = t * camera_ground
                lift = aim + t * (camera_z - floor - aim) - 0.5 * float(np.ptp(v[:, 2]))
            lateral = float(rng.choice([-1.0, 1.0]) * rng.uniform(0.0, 0.6)) * (foot + _footprint(v))
            at = toward * reach + side * lateral
        else:  # around it: beside or behind, never inside it
            angle = rng.uniform(0.0, 2 * math.pi)
            at = np.array([math.cos(angle), math.sin(angle)]) * reach * rng.uniform(1.05, 3.0)
        obj = base._add_mesh(f"clutter_{k}_{kind}", v, f)
        obj.location = (float(at[0]), float(at[1]), floor + (lift if front and k == 0 else 0.0))
        obj.data.materials.append(_clutter_material(rng, k))
        clutter.append({"object": obj, "kind": kind, "front": bool(front and k == 0),
                        "at": at, "side": side})
    info = {"surface": surface_info, **flags}
    return scene, {"target": target, "plane": plane, "clutter": clutter}, info


# --------------------------------------------------------------------------------------------
# renders
# --------------------------------------------------------------------------------------------
def _render(scene, folder: Path) -> np.ndarray:
    import bpy
    from PIL import Image

    path = folder / "render.png"
    scene.render.filepath = str(path)
    bpy.ops.render.render(write_still=True)
    return np.asarray(Image.open(path).convert("RGBA"), dtype=np.float32) / 255.0


def _emission(name: str, value: float):
    import bpy

    mat = bpy.data.materials.get(name)
    if mat is None:
        mat = bpy.data.materials.new(name)
        mat.use_nodes = True
        nodes = mat.node_tree.nodes
        nodes.remove(nodes["Principled BSDF"])
        emit = nodes.new("ShaderNodeEmission")
        emit.inputs["Color"].default_value = (value, value, value, 1.0)
        mat.node_tree.links.new(emit.outputs["Emission"], nodes["Material Output"].inputs["Surface"])
    return mat


def render_masks(scene, objects, settings: RealisticSettings, folder: Path):
    """Coverage ``(H, W)`` float of the object's visible part and of its full silhouette, from
    two emission-only renders (object white, everything else black, then everything else hidden)."""
    others = [objects["plane"]] + [c["object"] for c in objects["clutter"]]
    saved = {o.name: o.data.materials[0] for o in [objects["target"], *others]}
    samples, bounces, denoise = scene.cycles.samples, scene.cycles.max_bounces, scene.cycles.use_denoising
    scene.cycles.samples, scene.cycles.max_bounces, scene.cycles.use_denoising = settings.mask_samples, 0, False
    objects["target"].data.materials[0] = _emission("mask_white", 1.0)
    for o in others:
        o.data.materials[0] = _emission("mask_black", 0.0)
    rgba = _render(scene, folder)
    # straight alpha, sRGB-encoded colour: coverage of the white object = linear(R) * A
    visible = _srgb_to_linear(rgba[..., 0]) * rgba[..., 3]
    hidden = [o for o in others if not o.hide_render]
    for o in hidden:
        o.hide_render = True
    amodal = _render(scene, folder)[..., 3]
    for o in hidden:
        o.hide_render = False
    for o in [objects["target"], *others]:
        o.data.materials[0] = saved[o.name]
    scene.cycles.samples, scene.cycles.max_bounces, scene.cycles.use_denoising = samples, bounces, denoise
    return visible, amodal


def settle_occlusion(scene, objects, settings, folder: Path, slide: float):
    """Render the masks; while more than ``max_occlusion`` of the silhouette is hidden, slide the
    front occluder sideways by ``slide`` scene units (up to 4 times), then hide clutter, one object
    at a time. Returns ``(visible mask, amodal mask, occlusion)``, masks at coverage >= 0.5."""
    actions = []
    for item in objects["clutter"]:
        actions += [("slide", item)] * 4 if item["front"] else []
    actions += [("hide", item) for item in sorted(objects["clutter"], key=lambda c: not c["front"])]
    while True:
        visible, amodal = render_masks(scene, objects, settings, folder)
        full = amodal >= 0.5
        vis = (visible >= 0.5) & full
        occlusion = 1.0 - vis.sum() / max(full.sum(), 1)
        if occlusion <= settings.max_occlusion or not actions:
            return vis, full, float(occlusion)
        action, item = actions.pop(0)
        obj = item["object"]
        if action == "slide":  # away from the object's axis, on the side it already is
            offset = np.array([obj.location.x, obj.location.y]) @ item["side"]
            step = (1.0 if offset >= 0 else -1.0) * slide * item["side"]
            obj.location.x, obj.location.y = obj.location.x + step[0], obj.location.y + step[1]
        else:
            obj.hide_render = True
            item["hidden"] = True


# --------------------------------------------------------------------------------------------
# camera effects
# --------------------------------------------------------------------------------------------
def _motion_kernel(length: float, angle: float) -> np.ndarray:
    size = int(math.ceil(length)) | 1
    kernel = np.zeros((size, size), np.float32)
    c = size // 2
    for t in np.linspace(-length / 2, length / 2, 4 * size):
        kernel[int(round(c + t * math.sin(angle))), int(round(c + t * math.cos(angle)))] += 1.0
    return kernel / kernel.sum()


def _disk_kernel(radius: float) -> np.ndarray:
    r = int(math.ceil(radius))
    y, x = np.mgrid[-r : r + 1, -r : r + 1]
    kernel = np.clip(radius + 0.5 - np.hypot(x, y), 0.0, 1.0).astype(np.float32)
    return kernel / kernel.sum()


def camera_effects(rng, photo, settings: RealisticSettings):
    """Exposure / white balance jitter, motion or defocus blur, signal-dependent sensor noise on an
    ``(H, W, 3)`` float photo in [0, 1]. Returns ``(photo, info)``."""
    import cv2

    info = {"exposure": float(rng.uniform(0.75, 1.25)), "white_balance": rng.uniform(0.9, 1.1, 3).tolist(),
            "motion_blur_px": 0.0, "motion_blur_deg": 0.0, "defocus_px": 0.0, "noise_std": 0.0}
    photo = np.clip(photo * info["exposure"] * np.asarray(info["white_balance"]), 0.0, 1.0)
    draw = rng.random()
    if draw < settings.motion_blur_fraction:
        info["motion_blur_px"] = float(rng.uniform(3.0, 9.0))
        info["motion_blur_deg"] = float(rng.uniform(0.0, 180.0))
        kernel = _motion_kernel(info["motion_blur_px"], math.radians(info["motion_blur_deg"]))
        photo = cv2.filter2D(photo.astype(np.float32), -1, kernel, borderType=cv2.BORDER_REFLECT)
    elif draw < settings.motion_blur_fraction + settings.defocus_fraction:
        info["defocus_px"] = float(rng.uniform(1.0, 3.0))
        photo = cv2.filter2D(photo.astype(np.float32), -1, _disk_kernel(info["defocus_px"]),
                             borderType=cv2.BORDER_REFLECT)
    if rng.random() < settings.noise_fraction:
        read, shot = float(rng.uniform(0.005, 0.025)), float(rng.uniform(0.0, 0.03))
        std = np.sqrt(read ** 2 + shot ** 2 * photo)
        photo = photo + rng.normal(0.0, 1.0, photo.shape) * std
        info["noise_std"] = float(np.sqrt(read ** 2 + shot ** 2 * 0.5))  # at mid gray
        info["noise_read_std"], info["noise_shot"] = read, shot
    return np.clip(photo, 0.0, 1.0).astype(np.float32), info


# --------------------------------------------------------------------------------------------
# one photo, the set, the contact sheet
# --------------------------------------------------------------------------------------------
def sample_real_pose(rng, vertices, width, height, settings: RealisticSettings):
    """Viewpoint from above the table whose projected mesh box spans ``small_px`` or ``large_px``
    pixels (larger side). Returns ``(pose, target_px)``."""
    small = bool(rng.random() < settings.small_fraction)
    px = float(rng.uniform(*(settings.small_px if small else settings.large_px)))
    fill = px / min(width, height)  # box side >= px: the rescale below only shrinks it
    pose = base.sample_pose(rng, vertices, width, height, fill_range=(fill, fill),
                            elevation_range=settings.elevation_range, lens_range=settings.lens_range)
    for _ in range(6):  # about the projected origin, which lies inside the box: stays in frame
        _, (lo, hi) = base._fill(vertices, pose, width, height)
        pose["distance"] *= float(max(hi - lo)) / px
    return pose, px


def _contrast(photo, visible) -> float:
    """Mean luma difference (0-1) between the visible object and a 6-px ring around it."""
    import cv2

    luma = photo @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    ring = cv2.dilate(visible.astype(np.uint8), np.ones((13, 13), np.uint8)).astype(bool) & ~visible
    if not visible.any() or not ring.any():
        return 0.0
    return float(abs(luma[visible].mean() - luma[ring].mean()))


def make_real_photo(rng, index, name, vertices, faces, settings, folder: Path, *, width, height, seed):
    """Render one realistic photo. Returns ``(photo (H, W, 3) float, colour version or None,
    visible mask (H, W) bool, amodal mask (H, W) bool, truth dict)``; ``photo`` is gray
    (three equal channels) on the gray photos."""
    pose, px = sample_real_pose(rng, vertices, width, height, settings)
    scene, objects, info = build_scene(rng, name, vertices, faces, pose, settings, folder,
                                       width=width, height=height, seed=seed)
    slide = 0.35 * _footprint(vertices)
    visible, amodal, occlusion = settle_occlusion(scene, objects, settings, folder, slide)
    rgba = _render(scene, folder)
    name_bg = BACKDROPS[rng.integers(len(BACKDROPS))]
    backdrop, bg_info = base.background_crop(rng, width, height, name=name_bg)
    alpha = rgba[..., 3:4]
    photo = rgba[..., :3] * alpha + backdrop * (1.0 - alpha)
    photo, effects = camera_effects(rng, photo, settings)
    gray = index % settings.gray_every == settings.gray_every - 1
    colour = photo if gray else None
    if gray:
        photo = np.repeat((photo @ np.array([0.299, 0.587, 0.114], dtype=np.float32))[..., None], 3, axis=2)
    jpeg = int(rng.integers(settings.jpeg_quality[0], settings.jpeg_quality[1] + 1)) \
        if rng.random() < settings.jpeg_fraction else None
    full_box = pose_common.bbox_of_mask(amodal)
    object_px = max(full_box[2] - full_box[0], full_box[3] - full_box[1])
    truth = base.pose_truth(name, pose, vertices, width, height)
    truth.update(
        bbox=list(pose_common.bbox_of_mask(visible)), amodal_bbox=list(full_box),
        occlusion=occlusion, object_px=int(object_px), target_px=px, small=bool(object_px <= 120),
        gray=bool(gray), jpeg_quality=jpeg, contrast=_contrast(photo, visible), **info,
        background=bg_info, **effects,
        clutter=[{"kind": c["kind"], "front": c["front"], "hidden": bool(c.get("hidden", False)),
                  "location": list(c["object"].location)} for c in objects["clutter"]],
    )
    return photo, colour, visible, amodal, truth


def _to_uint8(image):
    return (np.clip(image, 0.0, 1.0) * 255).round().astype(np.uint8)


def save_photo(out: Path, photo_id: str, photo, colour, visible, amodal, truth) -> None:
    """Write the photo (PNG or JPEG, L when gray), its colour version, masks and ground truth."""
    from PIL import Image

    image = Image.fromarray(_to_uint8(photo[..., 0] if truth["gray"] else photo))
    if truth["jpeg_quality"] is None:
        name = f"{photo_id}.png"
        image.save(out / name)
    else:
        name = f"{photo_id}.jpg"
        image.save(out / name, quality=truth["jpeg_quality"])
    if colour is not None:
        Image.fromarray(_to_uint8(colour)).save(out / f"{photo_id}_colour.png")
        truth["colour_photo"] = f"{photo_id}_colour.png"
    Image.fromarray(visible.astype(np.uint8) * 255).save(out / f"{photo_id}_mask.png")
    Image.fromarray(amodal.astype(np.uint8) * 255).save(out / f"{photo_id}_amodal.png")
    truth.update(id=photo_id, photo=name, mask=f"{photo_id}_mask.png", amodal=f"{photo_id}_amodal.png",
                 mesh=f"meshes/{truth['mesh_name']}.obj")
    (out / f"{photo_id}.json").write_text(json.dumps(truth, indent=1))


def build_real_set(out: Path, per_mesh: int, seed: int, names, settings: RealisticSettings) -> float:
    """Render ``per_mesh`` photos of each mesh (interleaved) into ``out``; returns seconds."""
    rng = np.random.default_rng(seed)
    mesh_data = base.write_meshes(out, names)
    entries = []
    start = time.perf_counter()
    order = [name for _ in range(per_mesh) for name in names]
    with tempfile.TemporaryDirectory() as tmp:
        for index, name in enumerate(order):
            v, f = mesh_data[name]
            width, height = RESOLUTIONS[index % len(RESOLUTIONS)]
            t0 = time.perf_counter()
            photo, colour, visible, amodal, truth = make_real_photo(
                rng, index, name, v, f, settings, Path(tmp), width=width, height=height,
                seed=seed * 1000 + index)
            photo_id = f"{index:04d}_{name}"
            save_photo(out, photo_id, photo, colour, visible, amodal, truth)
            entries.append(f"{photo_id}.json")
            print(f"[{index + 1}/{len(order)}] {photo_id} {width}x{height} {truth['object_px']} px "
                  f"occ {100 * truth['occlusion']:.0f} % el={truth['elevation']:.0f} "
                  f"{'gray ' if truth['gray'] else ''}{'plain ' if truth['textureless'] else ''}"
                  f"({time.perf_counter() - t0:.1f} s)", flush=True)
    seconds = time.perf_counter() - start
    (out / "index.json").write_text(json.dumps({
        "photos": entries, "seed": seed, "per_mesh": per_mesh, "meshes": list(names),
        "recipe": "bench/make_real_pose_dataset.py", "settings": asdict(settings),
        "build_seconds": seconds,
    }, indent=1))
    return seconds


def contact_sheet(root: Path, path: Path, count: int = 12, columns: int = 4, cell=(256, 192)) -> None:
    """Grid of the first ``count`` photos of a set, each with its visible mask's outline (green)
    and a caption (id, object size, occlusion, flags)."""
    import cv2
    from PIL import Image, ImageDraw

    records = pose_common.load_index(root)[:count]
    rows = math.ceil(len(records) / columns)
    sheet = Image.new("RGB", (columns * cell[0], rows * (cell[1] + 14)), "white")
    for k, record in enumerate(records):
        photo = np.asarray(Image.open(record["photo_path"]).convert("RGB")).copy()
        mask = np.asarray(Image.open(record["mask_path"])) > 127
        edge = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
        photo[edge > 0] = (0, 255, 0)
        tile = Image.fromarray(photo)
        tile.thumbnail(cell)
        x, y = (k % columns) * cell[0], (k // columns) * (cell[1] + 14)
        sheet.paste(tile, (x, y + 14))
        flags = [f for f in ("gray", "textureless", "small") if record.get(f)]
        if record.get("jpeg_quality"):
            flags.append(f"jpg{record['jpeg_quality']}")
        ImageDraw.Draw(sheet).text(
            (x + 2, y + 1), f"{record['id']} {record['object_px']}px occ {100 * record['occlusion']:.0f}% "
            + " ".join(flags), fill="black")
    path.parent.mkdir(parents=True, exist_ok=True)
    # 256 colours: the noisy photos would make a full-colour PNG several times larger
    sheet.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(path, optimize=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "data" / "pose_real_dev")
    parser.add_argument("--seed", type=int, default=11, help="11: development set, 10: reported set")
    parser.add_argument("--per-mesh", type=int, default=10, help="photos per mesh (default 10)")
    parser.add_argument("--meshes", nargs="+", default=list(base.MESH_UNITS), choices=list(base.MESH_UNITS))
    parser.add_argument("--samples", type=int, default=RealisticSettings.samples,
                        help="Cycles samples per pixel (denoised)")
    parser.add_argument("--threads", type=int, default=RealisticSettings.threads, help="Cycles threads")
    parser.add_argument("--sheet", type=Path, default=None,
                        help="write a contact sheet of the set at --out here (building it if missing)")
    args = parser.parse_args(argv)
    if not (args.sheet and (args.out / "index.json").exists()):
        settings = RealisticSettings(samples=args.samples, threads=args.threads)
        seconds = build_real_set(args.out, args.per_mesh, args.seed, args.meshes, settings)
        count = args.per_mesh * len(args.meshes)
        print(f"{count} photos written to {args.out} in {seconds:.1f} s ({seconds / count:.2f} s per photo)")
    if args.sheet:
        contact_sheet(args.out, args.sheet)
        print(f"contact sheet written to {args.sheet}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
