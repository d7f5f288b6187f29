"""Build the synthetic pose benchmark set (and the demo assets) with Blender's Cycles on the CPU.

Each photo is one of the project's procedural meshes (``torch_backend.meshes``: chair, table, stool,
car, mug — the mug in millimetres), textured and lit, rendered with a transparent film and
composited over a random crop of one of scikit-image's bundled real photos, at a random viewpoint
(az in [0, 360), el in [-5, 80], roll in [-30, 30] degrees), lens (35-150 mm, ``--lens-range``),
distance such that the object fills 40-80 % of the frame (``--fill-range``), sometimes with a lens
shift, blur or sensor noise.

Written under ``--out`` (default ``bench/data/pose_set/``)::

    index.json                   list of the ground-truth files, plus build settings
    meshes/<name>.obj            the exact meshes (scene units as in the ground truth)
    <id>.png                     RGB photo (composited, opaque)
    <id>_mask.png                the object's alpha, thresholded at 0.5 (0 / 255)
    <id>.json                    ground truth: azimuth, elevation, roll (deg), distance (scene
                                 units, camera centre to mesh origin), shift_x/y, lens_mm,
                                 sensor_width_mm, sensor_fit, width, height, bbox, ...

Deterministic for a ``--seed`` (same numpy draws, fixed Cycles seed per render).

Usage::

    .venv/bin/python bench/make_pose_dataset.py [--out DIR] [--per-mesh 10] [--samples 16]
    .venv/bin/python bench/make_pose_dataset.py --demo   # writes torch_backend/data/demo_*
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

import pose_common  # noqa: E402

# bpy 5.0 warns that Material/World.use_nodes go away in 6.0; they are still needed here
warnings.filterwarnings("ignore", category=DeprecationWarning)

from torch_backend import meshes  # noqa: E402

BACKGROUNDS = (
    "astronaut", "coffee", "chelsea", "rocket", "camera", "coins", "moon", "brick", "grass",
    "gravel", "immunohistochemistry",
)
MESH_UNITS = {"chair": "m", "table": "m", "stool": "m", "car": "m", "mug": "mm"}
# base colours (linear RGB) per object, varied per photo
PALETTES = {
    "chair": [(0.30, 0.13, 0.05), (0.55, 0.35, 0.15), (0.05, 0.05, 0.06), (0.6, 0.6, 0.55)],
    "table": [(0.45, 0.25, 0.10), (0.70, 0.55, 0.35), (0.15, 0.15, 0.15), (0.8, 0.8, 0.8)],
    "stool": [(0.05, 0.05, 0.05), (0.50, 0.06, 0.04), (0.60, 0.60, 0.60), (0.35, 0.20, 0.08)],
    "car": [(0.60, 0.03, 0.02), (0.03, 0.10, 0.45), (0.75, 0.75, 0.75), (0.08, 0.25, 0.08)],
    "mug": [(0.85, 0.85, 0.82), (0.05, 0.20, 0.55), (0.70, 0.40, 0.05), (0.15, 0.15, 0.15)],
}
RESOLUTIONS = ((256, 192), (192, 256), (224, 224), (240, 160))


# --------------------------------------------------------------------------------------------
# backgrounds
# --------------------------------------------------------------------------------------------
def background_crop(rng: np.random.Generator, width: int, height: int, name: str | None = None):
    """A random crop of a scikit-image sample photo (``name``, default a random one) resized to
    ``(height, width, 3)`` float in [0, 1]."""
    import skimage.data
    from PIL import Image

    if name is None:
        name = BACKGROUNDS[rng.integers(len(BACKGROUNDS))]
    image = np.asarray(getattr(skimage.data, name)())
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    image = image[..., :3]
    h, w = image.shape[:2]
    aspect = width / height
    scale = rng.uniform(0.5, 1.0)
    ch = int(min(h, w / aspect) * scale)
    cw = int(ch * aspect)
    y0 = int(rng.integers(0, h - ch + 1))
    x0 = int(rng.integers(0, w - cw + 1))
    crop = Image.fromarray(image[y0 : y0 + ch, x0 : x0 + cw]).resize((width, height), Image.BICUBIC)
    if rng.random() < 0.5:
        crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
    return np.asarray(crop, dtype=np.float32) / 255.0, {"image": name, "crop": [x0, y0, x0 + cw, y0 + ch]}


# --------------------------------------------------------------------------------------------
# Blender scene
# --------------------------------------------------------------------------------------------
def _reset_scene(width: int, height: int, samples: int, denoise: bool, threads: int = 2):
    import bpy

    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = samples
    scene.cycles.use_adaptive_sampling = True
    scene.cycles.max_bounces = 4
    scene.cycles.use_denoising = bool(denoise)
    if denoise:
        scene.cycles.denoiser = "OPENIMAGEDENOISE"
    scene.render.film_transparent = True
    scene.render.resolution_x = width
    scene.render.resolution_y = height
    scene.render.resolution_percentage = 100
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGBA"
    scene.render.image_settings.color_depth = "8"
    scene.view_settings.view_transform = "Standard"
    scene.render.threads_mode = "FIXED"
    scene.render.threads = int(threads)
    world = bpy.data.worlds.new("World")
    scene.world = world
    return scene


def _add_mesh(name: str, vertices: np.ndarray, faces: np.ndarray):
    import bpy

    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata(vertices.tolist(), [], faces.tolist())
    mesh.update()
    try:  # smooth round parts, keep box edges sharp (Blender >= 4.1)
        mesh.shade_smooth()
        mesh.set_sharp_from_angle(angle=math.radians(35.0))
    except AttributeError:
        pass
    obj = bpy.data.objects.new(name, mesh)
    bpy.context.scene.collection.objects.link(obj)
    return obj


def _material(rng: np.random.Generator, name: str, colour=None):
    """Principled material with a two-tone noise texture on generated (bbox-normalised)
    coordinates, so the pattern scale does not depend on the mesh units."""
    import bpy

    palette = PALETTES[name]
    base = np.asarray(palette[rng.integers(len(palette))]) * rng.uniform(0.8, 1.2, size=3)
    if colour is not None:
        base = np.asarray(colour, dtype=np.float64)
    second = np.clip(base * rng.uniform(0.4, 0.8) + rng.uniform(0.0, 0.08, size=3), 0, 1)
    mat = bpy.data.materials.new(f"{name}_material")
    mat.use_nodes = True
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    bsdf = nodes["Principled BSDF"]
    coords = nodes.new("ShaderNodeTexCoord")
    noise = nodes.new("ShaderNodeTexNoise")
    noise.inputs["Scale"].default_value = float(rng.uniform(3.0, 9.0))
    noise.inputs["Detail"].default_value = float(rng.uniform(1.0, 6.0))
    ramp = nodes.new("ShaderNodeValToRGB")
    ramp.color_ramp.elements[0].color = (*np.clip(base, 0, 1), 1.0)
    ramp.color_ramp.elements[1].color = (*second, 1.0)
    links.new(coords.outputs["Generated"], noise.inputs["Vector"])
    links.new(noise.outputs["Fac"], ramp.inputs["Fac"])
    links.new(ramp.outputs["Color"], bsdf.inputs["Base Color"])
    bsdf.inputs["Roughness"].default_value = float(rng.uniform(0.3, 0.8))
    metallic = 0.6 if name == "car" and rng.random() < 0.5 else 0.0
    bsdf.inputs["Metallic"].default_value = metallic
    return mat


def _lights(rng: np.random.Generator, scene):
    import bpy

    background = scene.world.node_tree.nodes["Background"] if scene.world.use_nodes else None
    if background is None:
        scene.world.use_nodes = True
        background = scene.world.node_tree.nodes["Background"]
    tint = rng.uniform(0.7, 1.0, size=3)
    background.inputs["Color"].default_value = (*tint, 1.0)
    background.inputs["Strength"].default_value = float(rng.uniform(0.3, 0.8))
    sun_data = bpy.data.lights.new("sun", "SUN")
    sun_data.energy = float(rng.uniform(2.0, 5.0))
    sun_data.angle = math.radians(float(rng.uniform(2.0, 15.0)))
    sun = bpy.data.objects.new("sun", sun_data)
    # from somewhere above the horizon, any side: shading varies, the object is always lit
    sun.rotation_euler = (math.radians(rng.uniform(10, 60)), 0.0, math.radians(rng.uniform(0, 360)))
    scene.collection.objects.link(sun)


def _camera(scene, pose: dict, radius: float):
    import bpy
    import mathutils

    cam_data = bpy.data.cameras.new("camera")
    cam_data.lens = pose["lens_mm"]
    cam_data.sensor_width = pose["sensor_width_mm"]
    cam_data.sensor_fit = "AUTO"
    cam_data.shift_x = pose["shift_x"]
    cam_data.shift_y = pose["shift_y"]
    cam_data.clip_start = max(pose["distance"] - 3 * radius, pose["distance"] * 1e-3)
    cam_data.clip_end = pose["distance"] + 3 * radius
    cam = bpy.data.objects.new("camera", cam_data)
    matrix = pose_common.camera_matrix_world(
        pose["azimuth"], pose["elevation"], pose["distance"], pose["roll"]
    )
    cam.matrix_world = mathutils.Matrix(matrix.tolist())
    scene.collection.objects.link(cam)
    scene.camera = cam
    return cam


def render_rgba(name, vertices, faces, pose, *, width, height, samples, denoise, seed, rng, colour=None):
    """Render the mesh at ``pose`` with a transparent film: ``(H, W, 4)`` float in [0, 1]
    (straight alpha)."""
    import bpy
    from PIL import Image

    scene = _reset_scene(width, height, samples, denoise)
    scene.cycles.seed = int(seed)
    obj = _add_mesh(name, vertices, faces)
    obj.data.materials.append(_material(rng, name, colour))
    _lights(rng, scene)
    _camera(scene, pose, meshes.mesh_radius(vertices))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "render.png"
        scene.render.filepath = str(path)
        bpy.ops.render.render(write_still=True)
        return np.asarray(Image.open(path).convert("RGBA"), dtype=np.float32) / 255.0


# --------------------------------------------------------------------------------------------
# viewpoints
# --------------------------------------------------------------------------------------------
def _fill(vertices, pose, width, height):
    uv = pose_common.project(
        vertices, pose["azimuth"], pose["elevation"], pose["distance"], pose["roll"],
        width=width, height=height, lens_mm=pose["lens_mm"], sensor_width_mm=pose["sensor_width_mm"],
        shift_x=pose["shift_x"], shift_y=pose["shift_y"],
    )
    lo, hi = uv.min(axis=0), uv.max(axis=0)
    return max((hi[0] - lo[0]) / width, (hi[1] - lo[1]) / height), (lo, hi)


def sample_pose(rng, vertices, width, height, *, shift_probability=0.5, fill_range=(0.4, 0.8),
                elevation_range=(-5.0, 80.0), lens_range=(35.0, 150.0)):
    """Random viewpoint whose projected mesh fills ``fill_range`` of the frame (larger box side /
    image side; default 40-80 %) and stays inside it; elevation uniform in ``elevation_range``
    (degrees), lens log-uniform in ``lens_range`` (mm)."""
    pose = {
        "azimuth": float(rng.uniform(0.0, 360.0)),
        "elevation": float(rng.uniform(*elevation_range)),
        "roll": float(rng.uniform(-30.0, 30.0)),
        "lens_mm": float(np.exp(rng.uniform(np.log(lens_range[0]), np.log(lens_range[1])))),
        "sensor_width_mm": 36.0,
        "shift_x": 0.0,
        "shift_y": 0.0,
    }
    target = float(rng.uniform(*fill_range))
    radius = meshes.mesh_radius(vertices)
    f = pose_common.focal_pixels(width, height, pose["lens_mm"])
    pose["distance"] = radius * f / (0.5 * target * max(width, height)) + radius
    for _ in range(8):  # image extent ~ 1/distance; a few fixed-point steps absorb perspective
        fill, _ = _fill(vertices, pose, width, height)
        pose["distance"] *= fill / target
    fill, (lo, hi) = _fill(vertices, pose, width, height)
    if rng.random() < shift_probability:
        size = max(width, height)
        margin = 3.0
        # shift moves the object by -shift_x * size (x) and +shift_y * size (y, image down)
        want = rng.uniform(-0.08, 0.08, size=2)
        sx_range = ((hi[0] - width + margin) / size, (lo[0] - margin) / size)
        sx = float(np.clip(want[0], min(sx_range), max(sx_range)))
        sy_range = ((margin - lo[1]) / size, (height - margin - hi[1]) / size)
        sy = float(np.clip(want[1], min(sy_range), max(sy_range)))
        pose["shift_x"], pose["shift_y"] = sx, sy
    pose["fill"] = target
    return pose


def degrade(rng, image):
    """Optionally blur and/or add sensor noise to an ``(H, W, 3)`` photo; returns (image, info)."""
    from PIL import Image, ImageFilter

    info = {"blur_sigma": 0.0, "noise_std": 0.0}
    if rng.random() < 0.3:
        info["blur_sigma"] = float(rng.uniform(0.6, 1.6))
        pil = Image.fromarray((image * 255).round().astype(np.uint8))
        image = np.asarray(pil.filter(ImageFilter.GaussianBlur(info["blur_sigma"])), dtype=np.float32) / 255
    if rng.random() < 0.3:
        info["noise_std"] = float(rng.uniform(0.01, 0.04))
        image = np.clip(image + rng.normal(0.0, info["noise_std"], image.shape), 0.0, 1.0)
    return image.astype(np.float32), info


def pose_truth(name, pose, vertices, width, height) -> dict:
    """Ground-truth keys of one photo that follow from the mesh and the camera alone (the photo's
    own keys, ``bbox`` and the rest, are added by the caller)."""
    return {
        "mesh_name": name,
        "units": MESH_UNITS[name],
        "azimuth": pose["azimuth"],
        "elevation": pose["elevation"],
        "roll": pose["roll"],
        "distance": pose["distance"],
        "shift_x": pose["shift_x"],
        "shift_y": pose["shift_y"],
        "lens_mm": pose["lens_mm"],
        "sensor_width_mm": pose["sensor_width_mm"],
        "sensor_fit": "AUTO",
        "width": width,
        "height": height,
        "fill_target": pose["fill"],
        "mesh_radius": meshes.mesh_radius(vertices),
        "camera_matrix_world": pose_common.camera_matrix_world(
            pose["azimuth"], pose["elevation"], pose["distance"], pose["roll"]
        ).tolist(),
        "convention": "torch_backend.camera: C = d (cos el sin az, -cos el cos az, sin el), looking "
        "at the mesh origin with +Z up, then rolled about the view axis; az=0 is Blender's Front "
        "view (camera on -Y); degrees",
    }


def make_photo(rng, name, vertices, faces, *, width, height, samples, denoise, seed, allow_degrade=True, **draw):
    """Render one composited photo: returns (rgb (H, W, 3) uint8, mask (H, W) uint8, truth dict)."""
    pose = sample_pose(rng, vertices, width, height, **draw)
    rgba = render_rgba(name, vertices, faces, pose, width=width, height=height, samples=samples,
                       denoise=denoise, seed=seed, rng=rng)
    background, bg_info = background_crop(rng, width, height)
    alpha = rgba[..., 3:4]
    photo = rgba[..., :3] * alpha + background * (1.0 - alpha)
    info = {"blur_sigma": 0.0, "noise_std": 0.0}
    if allow_degrade:
        photo, info = degrade(rng, photo)
    mask = (alpha[..., 0] >= 0.5).astype(np.uint8) * 255
    truth = pose_truth(name, pose, vertices, width, height)
    truth.update(bbox=list(pose_common.bbox_of_mask(mask)), background=bg_info, **info)
    rgb = (np.clip(photo, 0, 1) * 255).round().astype(np.uint8)
    return rgb, mask, truth


# --------------------------------------------------------------------------------------------
# entry points
# --------------------------------------------------------------------------------------------
def write_meshes(out: Path, names) -> dict:
    """Create ``out`` and write ``meshes/<name>.obj``; returns ``{name: (vertices, faces)}``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "meshes").mkdir(exist_ok=True)
    mesh_data = {}
    for name in names:
        v, f = meshes.make_mesh(name, units=MESH_UNITS[name])
        meshes.write_obj(out / "meshes" / f"{name}.obj", v, f, precision=9)
        mesh_data[name] = (v, f)
    return mesh_data


def build_set(out: Path, per_mesh: int, samples: int, denoise: bool, seed: int, names, **draw) -> float:
    from PIL import Image

    rng = np.random.default_rng(seed)
    mesh_data = write_meshes(out, names)
    entries = []
    start = time.perf_counter()
    order = [(name, k) for k in range(per_mesh) for name in names]
    for index, (name, _) in enumerate(order):
        v, f = mesh_data[name]
        width, height = RESOLUTIONS[index % len(RESOLUTIONS)]  # every mesh in every aspect
        t0 = time.perf_counter()
        rgb, mask, truth = make_photo(rng, name, v, f, width=width, height=height, samples=samples,
                                      denoise=denoise, seed=seed * 1000 + index, **draw)
        photo_id = f"{index:04d}_{name}"
        Image.fromarray(rgb).save(out / f"{photo_id}.png")
        Image.fromarray(mask).save(out / f"{photo_id}_mask.png")
        truth.update(id=photo_id, photo=f"{photo_id}.png", mask=f"{photo_id}_mask.png",
                     mesh=f"meshes/{name}.obj")
        (out / f"{photo_id}.json").write_text(json.dumps(truth, indent=1))
        entries.append(f"{photo_id}.json")
        print(f"[{index + 1}/{len(order)}] {photo_id} {width}x{height} az={truth['azimuth']:.1f} "
              f"el={truth['elevation']:.1f} roll={truth['roll']:.1f} lens={truth['lens_mm']:.0f}mm "
              f"({time.perf_counter() - t0:.1f} s)", flush=True)
    seconds = time.perf_counter() - start
    (out / "index.json").write_text(json.dumps({
        "photos": entries, "seed": seed, "samples": samples, "denoise": denoise,
        "per_mesh": per_mesh, "meshes": list(names), "build_seconds": seconds,
        **{key: list(value) for key, value in draw.items()},
    }, indent=1))
    return seconds


def build_demo(out: Path, samples: int, seed: int) -> None:
    """Demo assets: ``demo_chair.obj``, ``demo_photo.png`` (RGB), ``demo_mask.png``,
    ``demo_truth.json`` at a known, fixed pose."""
    from PIL import Image

    out.mkdir(parents=True, exist_ok=True)
    v, f = meshes.chair(units="m", segments=12)
    obj_path = out / "demo_chair.obj"
    meshes.write_obj(obj_path, v, f, precision=5)
    v, f = meshes.read_obj(obj_path)  # render exactly what is shipped
    rng = np.random.default_rng(seed)
    width, height = 320, 240
    pose = {"azimuth": 35.0, "elevation": 20.0, "roll": 4.0, "lens_mm": 50.0,
            "sensor_width_mm": 36.0, "shift_x": 0.02, "shift_y": -0.015}
    target = 0.65
    pose["distance"] = 3.0
    for _ in range(10):
        fill, _ = _fill(v, pose, width, height)
        pose["distance"] *= fill / target
    pose["distance"] = round(pose["distance"], 4)
    rgba = render_rgba("chair", v, f, pose, width=width, height=height, samples=samples,
                       denoise=True, seed=seed, rng=rng, colour=(0.40, 0.18, 0.06))
    background, bg_info = background_crop(np.random.default_rng(seed + 1), width, height, name="rocket")
    alpha = rgba[..., 3:4]
    rgb = (np.clip(rgba[..., :3] * alpha + background * (1 - alpha), 0, 1) * 255).round().astype(np.uint8)
    mask = (alpha[..., 0] >= 0.5).astype(np.uint8) * 255
    Image.fromarray(rgb).save(out / "demo_photo.png", optimize=True)
    Image.fromarray(mask).save(out / "demo_mask.png", optimize=True)
    truth = {
        "photo": "demo_photo.png", "mask": "demo_mask.png", "mesh": "demo_chair.obj", "units": "m",
        "azimuth": pose["azimuth"], "elevation": pose["elevation"], "roll": pose["roll"],
        "distance": pose["distance"], "shift_x": pose["shift_x"], "shift_y": pose["shift_y"],
        "lens_mm": pose["lens_mm"], "sensor_width_mm": pose["sensor_width_mm"], "sensor_fit": "AUTO",
        "width": width, "height": height, "bbox": list(pose_common.bbox_of_mask(mask)),
        "background": bg_info,
        "made_by": "bench/make_pose_dataset.py --demo (Blender Cycles, CPU)",
    }
    (out / "demo_truth.json").write_text(json.dumps(truth, indent=1) + "\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default bench/data/pose_set, or torch_backend/data with --demo)")
    parser.add_argument("--per-mesh", type=int, default=10, help="photos per mesh (default 10)")
    parser.add_argument("--meshes", nargs="+", default=list(MESH_UNITS), choices=list(MESH_UNITS))
    parser.add_argument("--samples", type=int, default=16, help="Cycles samples per pixel")
    parser.add_argument("--denoise", action="store_true", help="OpenImageDenoise on (off by default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lens-range", type=float, nargs=2, default=(35.0, 150.0), metavar=("LOW", "HIGH"),
                        help="lenses (mm, 36 mm sensor) drawn log-uniform in this range (default 35 150)")
    parser.add_argument("--fill-range", type=float, nargs=2, default=(0.4, 0.8), metavar=("LOW", "HIGH"),
                        help="share of the frame the object's box fills (larger side; default 0.4 0.8)")
    parser.add_argument("--demo", action="store_true", help="write the demo assets instead")
    args = parser.parse_args(argv)
    if args.demo:
        out = args.out or REPO / "torch_backend" / "data"
        t0 = time.perf_counter()
        build_demo(out, samples=max(args.samples, 64), seed=args.seed)
        print(f"demo assets written to {out} in {time.perf_counter() - t0:.1f} s")
        return 0
    out = args.out or REPO / "bench" / "data" / "pose_set"
    seconds = build_set(out, args.per_mesh, args.samples, args.denoise, args.seed, args.meshes,
                        lens_range=tuple(args.lens_range), fill_range=tuple(args.fill_range))
    count = args.per_mesh * len(args.meshes)
    print(f"{count} photos written to {out} in {seconds:.1f} s ({seconds / count:.2f} s per photo)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
