"""The Blender path sees the photo as a viewer does, and tells which lens it used (bpy module).

* EXIF orientation (issue 15 §1): the demo photo (320 x 240) stored sideways with each orientation
  tag 1-8 aligns to the same pose as the upright photo through ``api.align`` and ``gradhog align``;
  resolution, box, mask, background image and overlay are upright.
* One reader (issue 15 §2): the same photo as RGBA, RGB + mask file, gray + alpha and 16-bit RGBA
  gives the same pose; masks and alpha are coverage (>= one half).
* The lens (issue 13): EXIF / given / default / estimated, in the JSON, the panel and on the camera.
"""
from __future__ import annotations

import json
import math
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.bpy

bpy = pytest.importorskip("bpy")
torch = pytest.importorskip("torch")
from PIL import Image  # noqa: E402

import blender_gradhog as addon  # noqa: E402
from blender_gradhog import api, cli, cli_align, scene as blender_scene  # noqa: E402
from torch_backend import images  # noqa: E402

DATA = Path(cli_align.demo_assets())
TRUTH = json.loads((DATA / "demo_truth.json").read_text())
UPRIGHT = np.asarray(Image.open(DATA / TRUTH["photo"]).convert("RGB"))
MASK = np.asarray(Image.open(DATA / TRUTH["mask"]).convert("L"))
FAST = {"refine": False, "top_k": 1}
ORIENTATION_TAG = 0x0112


def rotation_error(a: dict, b: dict) -> float:
    return cli_align.rotation_error_degrees(a, b)


def save_with_orientation(path: Path, upright: np.ndarray, orientation: int, **tags) -> Path:
    """Store ``upright`` as a camera would with EXIF ``orientation`` (stored pixels turned the other way)."""
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = orientation
    for tag, value in tags.items():
        exif.get_ifd(0x8769)[tag] = value
    stored = images.apply_orientation(upright, orientation, inverse=True)
    Image.fromarray(np.ascontiguousarray(stored)).save(path, exif=exif)
    return path


def write_png16(path: Path, values: np.ndarray) -> Path:
    """A 16-bit PNG (gray, gray+alpha, RGB or RGBA) from a uint16 ``(H, W, C)`` array (Pillow cannot write one)."""
    height, width, channels = values.shape
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    rows = b"".join(b"\x00" + values[row].astype(">u2").tobytes() for row in range(height))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
                     + chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="module")
def chair():
    """A fresh scene holding the demo chair (no camera): returns a function giving the object."""
    def make():
        cli_align.fresh_scene()
        addon.register()
        return cli_align.import_mesh(DATA / TRUTH["mesh"])
    return make


@pytest.fixture(scope="module")
def upright_pose(chair):
    obj = chair()
    return api.align(str(DATA / TRUTH["photo"]), obj, mask=str(DATA / TRUTH["mask"]), **FAST)


# --------------------------------------------------------------------------------------------
# EXIF orientation
# --------------------------------------------------------------------------------------------

def test_blender_ignores_the_tag_and_the_reader_turns_the_photo_upright(tmp_path):
    path = save_with_orientation(tmp_path / "side.png", UPRIGHT, 6)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    image = blender_scene.load_image(str(path))
    assert tuple(image.size) == (240, 320)  # Blender: the stored, sideways pixels
    photo = blender_scene.read_photo(image)
    assert photo.size == (320, 240) == blender_scene.upright_size(image)
    np.testing.assert_array_equal(np.round(photo.rgb * 255).astype(np.uint8), UPRIGHT)
    shown = blender_scene.display_image(image)
    assert shown is not image and tuple(shown.size) == (320, 240)
    assert blender_scene.display_image(blender_scene.load_image(str(DATA / TRUTH["photo"]))).name == TRUTH["photo"]


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_orientation_aligns_like_the_upright_photo(tmp_path, chair, upright_pose, orientation):
    photo = save_with_orientation(tmp_path / f"photo{orientation}.png", UPRIGHT, orientation)
    mask = save_with_orientation(tmp_path / f"mask{orientation}.png", MASK, orientation)  # tagged like the photo
    obj = chair()
    result = api.align(str(photo), obj, mask=str(mask), **FAST)
    assert rotation_error(result, upright_pose) <= 0.5
    assert result["distance"] == pytest.approx(upright_pose["distance"], rel=1e-3)
    assert result["resolution"] == [320, 240]
    render = bpy.context.scene.render
    assert (render.resolution_x, render.resolution_y) == (320, 240)
    background = bpy.data.objects[result["camera"]].data.background_images[0].image
    assert tuple(background.size) == (320, 240)
    pixels = np.empty(320 * 240 * 4, dtype=np.float32)
    background.pixels.foreach_get(pixels)
    shown = np.round(pixels.reshape(240, 320, 4)[::-1, :, :3] * 255).astype(np.uint8)
    np.testing.assert_array_equal(shown, UPRIGHT)  # what the artist sees behind the camera is upright


@pytest.mark.parametrize("orientation", [6, 7])
def test_box_in_upright_pixels_on_a_sideways_photo(tmp_path, chair, orientation):
    box = TRUTH["bbox"]
    obj = chair()
    upright = api.align(str(DATA / TRUTH["photo"]), obj, bbox=box, mask_source='BOX', **FAST)
    photo = save_with_orientation(tmp_path / "photo.png", UPRIGHT, orientation)
    obj = chair()
    sideways = api.align(str(photo), obj, bbox=box, mask_source='BOX', **FAST)
    assert rotation_error(sideways, upright) <= 0.5
    assert sideways["resolution"] == [320, 240]


def test_an_untagged_mask_of_the_upright_size_fits_a_sideways_photo(tmp_path, chair, upright_pose):
    photo = save_with_orientation(tmp_path / "photo.png", UPRIGHT, 8)
    result = api.align(str(photo), chair(), mask=str(DATA / TRUTH["mask"]), **FAST)
    assert rotation_error(result, upright_pose) <= 0.5


@pytest.mark.parametrize("orientation", [3, 6])
def test_gradhog_align_reads_a_sideways_photo_upright(tmp_path, capsys, orientation):
    outputs = {}
    for name, path in (("upright", DATA / TRUTH["photo"]),
                       ("sideways", save_with_orientation(tmp_path / "side.png", UPRIGHT, orientation))):
        out, overlay = tmp_path / f"{name}.json", tmp_path / f"{name}.png"
        code = cli.main(["align", "--photo", str(path), "--mesh", str(DATA / TRUTH["mesh"]), "--bbox",
                         *map(str, TRUTH["bbox"]), "--out", str(out), "--overlay", str(overlay),
                         "--no-refine", "--top-k", "1", "--quiet"])
        assert code == 0, capsys.readouterr()
        outputs[name] = json.loads(out.read_text())
        with Image.open(overlay) as picture:
            assert picture.size == (320, 240)
    assert rotation_error(outputs["sideways"], outputs["upright"]) <= 0.5
    assert outputs["sideways"]["resolution"] == [320, 240]


# --------------------------------------------------------------------------------------------
# One reader: alpha, mask file, gray + alpha, 16 bits
# --------------------------------------------------------------------------------------------

def _soft(mask: np.ndarray) -> np.ndarray:
    """The demo mask with an anti-aliased edge (a 3 x 3 box blur): coverage between 0 and 255."""
    padded = np.pad(mask.astype(np.float64), 1, mode="edge")
    blurred = sum(padded[i:i + mask.shape[0], j:j + mask.shape[1]] for i in range(3) for j in range(3)) / 9.0
    return np.round(blurred).astype(np.uint8)


@pytest.mark.slow
def test_every_way_of_storing_photo_and_mask_gives_one_pose(tmp_path, chair):
    soft = _soft(MASK)
    assert len(np.unique(soft)) > 5  # a soft edge, where "non-zero" and "at least half" differ
    gray = np.asarray(Image.fromarray(UPRIGHT).convert("L"))
    gray_rgb = np.repeat(gray[..., None], 3, axis=-1)
    Image.fromarray(np.dstack([UPRIGHT, soft])).save(tmp_path / "rgba.png")
    Image.fromarray(UPRIGHT).save(tmp_path / "rgb.png")
    Image.fromarray(soft).save(tmp_path / "mask.png")
    Image.fromarray(np.dstack([gray, soft]), "LA").save(tmp_path / "gray_alpha.png")
    Image.fromarray(gray_rgb).save(tmp_path / "gray_rgb.png")
    write_png16(tmp_path / "rgba16.png", np.dstack([UPRIGHT, soft]).astype(np.uint16) * 257)
    refine = {"refine": True, "starts": 2, "iterations": 20, "top_k": 1}
    runs = {
        "rgba": dict(photo="rgba.png"),
        "rgb + mask file": dict(photo="rgb.png", mask="mask.png"),
        "rgba16": dict(photo="rgba16.png"),
        "gray + alpha": dict(photo="gray_alpha.png"),
        "gray rgb + mask file": dict(photo="gray_rgb.png", mask="mask.png"),
    }
    poses = {}
    for name, run in runs.items():
        mask = str(tmp_path / run["mask"]) if "mask" in run else None
        poses[name] = api.align(str(tmp_path / run["photo"]), chair(), mask=mask, **refine)
        assert poses[name]["cue"] == "mask"
    for name in runs:
        assert rotation_error(poses[name], poses["rgba"]) <= 0.1, name
    print({name: round(rotation_error(pose, TRUTH), 2) for name, pose in poses.items()})


def test_a_soft_mask_file_counts_coverage_of_at_least_half(tmp_path):
    soft = _soft(MASK)
    Image.fromarray(soft).save(tmp_path / "mask.png")
    bpy.ops.wm.read_factory_settings(use_empty=True)
    masks = __import__("torch_backend.masks", fromlist=["as_mask"])
    mask = api._mask_array(str(tmp_path / "mask.png"), MASK.shape, masks)
    np.testing.assert_array_equal(mask, soft >= 128)
    assert mask.sum() < (soft > 0).sum()  # the soft edge does not grow the object


# --------------------------------------------------------------------------------------------
# The lens: EXIF, given, default, estimated
# --------------------------------------------------------------------------------------------

EXIF_LENS = {0x920A: 4.25, 0xA405: 26}  # FocalLength 4.25 mm, FocalLengthIn35mmFilm 26 mm (a phone)


def _save_jpeg(path: Path, orientation: int) -> Path:
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = orientation
    for tag, value in EXIF_LENS.items():
        exif.get_ifd(0x8769)[tag] = value
    stored = images.apply_orientation(UPRIGHT, orientation, inverse=True)
    Image.fromarray(np.ascontiguousarray(stored)).save(path, exif=exif, quality=95)
    return path


def test_cli_lens_from_exif_by_default_given_as_a_number_else_default(tmp_path, capsys):
    jpeg = _save_jpeg(tmp_path / "phone.jpg", 6)
    lens = images.read_lens(jpeg)
    assert lens is not None and lens.lens_mm == pytest.approx(4.25)
    runs = {"exif": [str(jpeg)], "given": [str(jpeg), "--lens-mm", "35", "--sensor-width-mm", "24"],
            "default": [str(DATA / TRUTH["photo"])]}
    results = {}
    for source, argv in runs.items():
        out = tmp_path / f"{source}.json"
        assert cli.main(["align", "--photo", *argv, "--mesh", str(DATA / TRUTH["mesh"]), "--mask",
                         str(DATA / TRUTH["mask"]), "--out", str(out), "--quiet", "--no-refine", "--top-k", "1"]) == 0
        results[source] = json.loads(out.read_text())
        assert results[source]["lens_source"] == source
        assert "lens_range_mm" not in results[source]
        camera = bpy.data.objects[results[source]["camera"]]
        assert camera["gradhog_lens_source"] == source
        assert camera.data.lens == pytest.approx(results[source]["lens_mm"])
        assert camera.data.sensor_width == pytest.approx(results[source]["sensor_width_mm"])
    assert (results["exif"]["lens_mm"], results["exif"]["sensor_width_mm"]) == pytest.approx((lens.lens_mm, lens.sensor_width_mm))
    assert results["exif"]["sensor_fit"] == "AUTO"
    assert (results["given"]["lens_mm"], results["given"]["sensor_width_mm"]) == (35.0, 24.0)
    assert (results["default"]["lens_mm"], results["default"]["sensor_width_mm"]) == (50.0, 36.0)
    assert "lens 50.0 mm (default)" in capsys.readouterr().out


def test_api_exif_falls_back_to_the_cameras_lens(tmp_path, chair):
    obj = chair()
    camera = blender_scene.new_camera(bpy.context.scene, "Mine")
    camera.data.lens, camera.data.sensor_width = 85.0, 30.0
    result = api.align(str(DATA / TRUTH["photo"]), obj, camera, focal_length='EXIF', mask=str(DATA / TRUTH["mask"]), **FAST)
    assert (result["lens_mm"], result["sensor_width_mm"], result["lens_source"]) == (85.0, 30.0, "given")
    exif = api.align(str(_save_jpeg(tmp_path / "phone.jpg", 1)), obj, camera, focal_length='CAMERA',
                     mask=str(DATA / TRUTH["mask"]), **FAST)
    assert (exif["lens_mm"], exif["lens_source"]) == (85.0, "given")  # Keep Camera's ignores EXIF
    with pytest.raises(api.AlignError, match="focal_length"):
        api.align(str(DATA / TRUTH["photo"]), obj, camera, focal_length='GUESS', **FAST)


def test_panel_writes_the_exif_lens_with_the_pose_in_one_undo_step(tmp_path, chair):
    obj = chair()
    scene = bpy.context.scene
    camera = blender_scene.new_camera(scene, "Panel Camera")
    settings = scene.gradhog
    assert settings.focal_length == 'EXIF'
    settings.photo_path = str(_save_jpeg(tmp_path / "phone.jpg", 6))
    settings.target, settings.camera = obj, camera
    settings.mask_source, settings.mask_image = 'IMAGE', blender_scene.load_image(str(DATA / TRUTH["mask"]))
    settings.refine, settings.top_k = False, 2
    bpy.ops.ed.undo_push(message="before align")
    before = blender_scene.camera_state(camera, scene)
    assert bpy.ops.gradhog.align_camera() == {'FINISHED'}
    bpy.ops.ed.undo_push(message="Align Camera")
    camera = bpy.data.objects["Panel Camera"]
    lens = images.read_lens(settings.photo_path)
    assert camera.data.lens == pytest.approx(lens.lens_mm) and camera.data.sensor_fit == 'AUTO'
    assert camera.data.sensor_width == pytest.approx(lens.sensor_width_mm, rel=1e-5)
    assert camera["gradhog_lens_source"] == "exif" == settings.result_lens_source
    from blender_gradhog import panel

    assert panel.lens_summary(settings).startswith(f"Lens {lens.lens_mm:.1f} mm (exif)")
    bpy.ops.ed.undo()
    assert blender_scene.camera_state(bpy.data.objects["Panel Camera"], bpy.context.scene) == before


@pytest.mark.slow
def test_cli_auto_estimates_the_lens_and_reports_its_range(tmp_path, capsys):
    out = tmp_path / "auto.json"
    assert cli.main(["align", "--photo", str(DATA / TRUTH["photo"]), "--mesh", str(DATA / TRUTH["mesh"]),
                     "--mask", str(DATA / TRUTH["mask"]), "--lens-mm", "auto", "--out", str(out), "--quiet",
                     "--starts", "1", "--iterations", "8", "--top-k", "1"]) == 0
    result = json.loads(out.read_text())
    assert result["lens_source"] == "estimated"
    low, high = result["lens_range_mm"]
    assert low <= result["lens_mm"] <= high
    assert math.isfinite(result["lens_mm"]) and result["lens_mm"] > 0
    camera = bpy.data.objects[result["camera"]]
    assert camera.data.lens == pytest.approx(result["lens_mm"]) and camera["gradhog_lens_source"] == "estimated"
    print(f"estimated {result['lens_mm']:.1f} mm in [{low:.1f}, {high:.1f}] (truth {TRUTH['lens_mm']} mm)")


@pytest.mark.blender
def test_real_blender_batch_aligns_a_sideways_photo_upright(tmp_path):
    """Debian's Blender 3.4 binary runs batch.py on the demo photo and on its sideways copy (tag 6,
    box in upright pixels): the same pose, an upright resolution and an upright background image."""
    import os
    import shutil
    import subprocess
    import sysconfig

    blender = shutil.which("blender")
    setup = tmp_path / "setup.py"
    setup.write_text(
        "import bpy\n"
        "bpy.ops.wm.read_factory_settings(use_empty=True)\n"
        f"bpy.ops.wm.obj_import(filepath={str(DATA / TRUTH['mesh'])!r}, forward_axis='Y', up_axis='Z')\n"
        "bpy.context.selected_objects[0].name = 'Chair'\n"
        f"bpy.ops.wm.save_as_mainfile(filepath={str(tmp_path / 'scene.blend')!r})\n")
    subprocess.run([blender, "-b", "--factory-startup", "--python-exit-code", "1", "--python", str(setup)],
                   check=True, capture_output=True, timeout=120)
    environment = dict(os.environ, PYTHONPATH=sysconfig.get_paths()["purelib"])
    sideways = save_with_orientation(tmp_path / "side.png", UPRIGHT, 6)
    results = {}
    for name, photo in (("upright", DATA / TRUTH["photo"]), ("sideways", sideways)):
        completed = subprocess.run(
            [blender, "-b", str(tmp_path / "scene.blend"), "--python-use-system-env", "--python-exit-code", "1",
             "--python", str(Path(addon.__file__).parent / "batch.py"), "--", "--photo", str(photo),
             "--bbox", *map(str, TRUTH["bbox"]), "--object", "Chair", "--out", str(tmp_path / f"{name}.json"),
             "--save", str(tmp_path / f"{name}.blend"), "--no-refine", "--top-k", "1"],
            capture_output=True, text=True, timeout=400, env=environment)
        assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-2000:]
        results[name] = json.loads((tmp_path / f"{name}.json").read_text())
    assert results["sideways"]["resolution"] == [320, 240]
    assert rotation_error(results["sideways"], results["upright"]) <= 0.5
    bpy.ops.wm.open_mainfile(filepath=str(tmp_path / "sideways.blend"))
    scene = bpy.context.scene
    assert (scene.render.resolution_x, scene.render.resolution_y) == (320, 240)
    shown = [bg.image for bg in scene.camera.data.background_images]
    assert shown and tuple(shown[-1].size) == (320, 240) and shown[-1].name.endswith("(upright)")
