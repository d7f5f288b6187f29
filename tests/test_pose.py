"""Tests of torch_backend.pose: recovery of known poses on synthetic photos, modes, errors, API.

Photos are rendered with torch_backend.render at a known pose over a cluttered background, so the
ground truth is exact. Everything runs at low resolution with few iterations (seconds); the full
accuracy study is bench/pose_accuracy.py.
"""
import math

import numpy as np
import pytest
import torch

from torch_backend import meshes, pose, render
from torch_backend.pose import CoarseViewCache, CoarseViews, Pose, estimate_pose
from torch_backend.pose.prepare import prepare_mesh
from torch_backend.pose.refine import view_directions

WIDTH, HEIGHT = 160, 120
INTRINSICS = dict(lens_mm=50.0, sensor_width_mm=36.0, sensor_height_mm=24.0, sensor_fit="AUTO",
                  resolution=(WIDTH, HEIGHT))
FAST = dict(explore_iterations=8, iterations=10, work_size=112, explore_size=72)


def clutter(seed, height=HEIGHT, width=WIDTH):
    """Noise plus random rectangles: edges everywhere, like a real background."""
    rng = np.random.default_rng(seed)
    image = rng.uniform(0.2, 0.6, (height, width, 3))
    for _ in range(25):
        x0, y0 = rng.integers(0, width - 10), rng.integers(0, height - 10)
        w, h = rng.integers(5, 40), rng.integers(5, 30)
        image[y0:y0 + h, x0:x0 + w] = rng.uniform(0, 1, 3)
    return image


def photo_of(vertices, faces, true: Pose, seed=0, intrinsics=INTRINSICS):
    """Shaded render of the mesh at ``true`` over clutter; returns (photo HxWx3, mask HxW bool)."""
    width, height = intrinsics["resolution"]
    result = render.render(
        torch.as_tensor(vertices, dtype=torch.float64), torch.as_tensor(faces),
        azimuth=true.azimuth, elevation=true.elevation, distance=true.distance, roll=true.roll,
        shift_x=true.shift_x, shift_y=true.shift_y, lens_mm=intrinsics["lens_mm"],
        sensor_width_mm=intrinsics["sensor_width_mm"], sensor_height_mm=intrinsics["sensor_height_mm"],
        sensor_fit=intrinsics["sensor_fit"], resolution=(width, height), sharpness=0.3,
    )
    silhouette = result.silhouette.numpy()
    shaded = result.shaded.numpy()
    # A coloured object (not gray like the render) so photo and render differ in appearance.
    colour = np.stack([0.9 * shaded, 0.5 * shaded, 0.2 + 0.3 * shaded], -1)
    photo = silhouette[..., None] * colour + (1 - silhouette[..., None]) * clutter(seed, height, width)
    return photo.astype(np.float32), silhouette > 0.5


def azimuth_error(a, b):
    return abs((a - b + 180.0) % 360.0 - 180.0)


@pytest.fixture(scope="module")
def chair():
    vertices, faces = meshes.make_mesh("chair")
    return vertices, faces, float(np.linalg.norm(vertices, axis=1).max())


@pytest.fixture(scope="module")
def cache():
    return CoarseViewCache()


@pytest.fixture(scope="module")
def mask_case(chair, cache):
    vertices, faces, radius = chair
    true = Pose(35.0, 25.0, 3.2 * radius, 12.0, 0.03, -0.02)
    photo, mask = photo_of(vertices, faces, true, seed=1)
    result = estimate_pose(photo, vertices, faces, INTRINSICS, mask=mask, cache=cache, **FAST)
    return true, photo, mask, result


def test_mask_mode_recovers_pose(mask_case):
    true, _, _, result = mask_case
    est = result.pose
    assert result.mode == "mask"
    assert azimuth_error(est.azimuth, true.azimuth) < 3.0
    assert abs(est.elevation - true.elevation) < 3.0
    assert abs(est.roll - true.roll) < 3.0
    assert abs(est.distance / true.distance - 1) < 0.03
    assert abs(est.shift_x - true.shift_x) < 0.01 and abs(est.shift_y - true.shift_y) < 0.01
    assert result.iou > 0.85
    # The refinement must improve on the grid (or at least not lose it).
    assert azimuth_error(est.azimuth, true.azimuth) <= azimuth_error(result.coarse_pose.azimuth, true.azimuth) + 1.0


def test_candidates_are_distinct_and_sorted(mask_case):
    _, _, _, result = mask_case
    assert 1 <= len(result.candidates) <= 3
    assert result.candidates[0][0] == result.pose
    scores = [score for _, score in result.candidates]
    assert scores == sorted(scores, reverse=True)
    directions = [view_directions(torch.tensor([[p.azimuth, p.elevation]])) for p, _ in result.candidates]
    for i in range(len(directions)):
        for j in range(i):
            angle = math.degrees(math.acos(float((directions[i] @ directions[j].T).clamp(-1, 1))))
            assert angle >= 15.0


def test_alpha_channel_is_the_mask_and_mesh_units_do_not_matter(chair, cache):
    vertices, faces, radius = chair
    true = Pose(220.0, 40.0, 3.0 * radius, -8.0, 0.0, 0.0)
    photo, mask = photo_of(vertices, faces, true, seed=2)
    rgba = np.concatenate([photo, mask[..., None].astype(np.float32)], -1)
    # Same object in millimetres: the distance comes back in millimetres.
    result = estimate_pose(rgba, vertices * 1000.0, faces, INTRINSICS, cache=cache, **FAST)
    assert result.mode == "mask"
    assert azimuth_error(result.pose.azimuth, true.azimuth) < 4.0
    assert abs(result.pose.distance / (1000.0 * true.distance) - 1) < 0.04


@pytest.mark.parametrize("variant", ["uoctti", "dalal", "skimage"])
def test_box_mode_easy_case(chair, cache, variant):
    """Box mode with each HOG flavour (the add-on's "HOG Variant" reaches the objective)."""
    vertices, faces, radius = chair
    true = Pose(300.0, 20.0, 3.0 * radius, 0.0, 0.0, 0.0)
    photo, mask = photo_of(vertices, faces, true, seed=3)
    # Easy: plain dark background, so the colours tell object from background.
    photo = np.where(mask[..., None], photo, 0.08).astype(np.float32)
    ys, xs = np.nonzero(mask)
    box = (xs.min() - 3, ys.min() - 3, xs.max() + 4, ys.max() + 4)
    result = estimate_pose(photo, vertices, faces, INTRINSICS, bbox=box, cache=cache, hog_variant=variant, **FAST)
    assert result.mode == "box"
    assert azimuth_error(result.pose.azimuth, true.azimuth) < 10.0
    assert abs(result.pose.elevation - true.elevation) < 10.0


def test_photo_mode_finds_the_object_itself(chair, cache):
    """Photo alone: the object boxes come from GrabCut inside the frame; box mode runs on each."""
    vertices, faces, radius = chair
    true = Pose(140.0, 25.0, 3.0 * radius, 5.0, 0.02, 0.0)
    photo, mask = photo_of(vertices, faces, true, seed=4)
    photo = np.where(mask[..., None], photo, 0.1 + 0.05 * clutter(4)).astype(np.float32)
    messages = []
    result = estimate_pose(photo, vertices, faces, INTRINSICS, cache=cache,
                           callback=lambda progress, message: messages.append(message), **FAST)
    assert result.mode == "photo"
    assert any("object guess" in message for message in messages)
    assert azimuth_error(result.pose.azimuth, true.azimuth) < 15.0
    assert abs(result.pose.distance / true.distance - 1) < 0.1


def test_same_seed_same_result(mask_case, chair, cache):
    vertices, faces, _ = chair
    _, photo, mask, first = mask_case
    again = estimate_pose(photo, vertices, faces, INTRINSICS, mask=mask, cache=cache, **FAST)
    assert again.pose == first.pose
    assert again.candidates == first.candidates


def test_callback_progress_and_cancel(mask_case, chair, cache):
    vertices, faces, _ = chair
    _, photo, mask, _ = mask_case
    seen = []
    estimate_pose(photo, vertices, faces, INTRINSICS, mask=mask, cache=cache, refine=False,
                  callback=lambda p, m: seen.append((p, m)))
    progress = [p for p, _ in seen]
    assert progress == sorted(progress) and progress[0] >= 0.0 and progress[-1] == 1.0
    calls = []

    def cancel_at_refinement(progress, message):
        calls.append(message)
        return False if message == "refining" else None

    with pytest.raises(pose.Cancelled):
        estimate_pose(photo, vertices, faces, INTRINSICS, mask=mask, cache=cache, callback=cancel_at_refinement, **FAST)
    assert calls[-1] == "refining"


def test_coarse_views_from_outside_match_the_builtin_grid(mask_case, chair):
    vertices, faces, _ = chair
    true, photo, mask, _ = mask_case
    poses = pose.coarse_view_poses(vertices, INTRINSICS)
    assert len(poses) == len(pose.DEFAULT_ELEVATIONS) * 36
    view_intrinsics = pose.coarse_view_intrinsics(INTRINSICS)
    assert view_intrinsics["resolution"] == (pose.COARSE_VIEW_SIZE, pose.COARSE_VIEW_SIZE)
    images, silhouettes = pose.render_coarse_views(vertices, faces, poses, view_intrinsics)
    views = CoarseViews(images.numpy(), silhouettes.numpy(), poses, view_intrinsics)
    result = estimate_pose(photo, vertices, faces, INTRINSICS, mask=mask, coarse_views=views, refine=False)
    assert azimuth_error(result.pose.azimuth, true.azimuth) <= 10.0
    assert abs(result.pose.elevation - true.elevation) <= 10.0


def test_roll_and_shift_conventions_agree_with_camera(chair):
    """A grid pose converted from a 2-D similarity must project the mesh onto the mask."""
    vertices, faces, radius = chair
    true = Pose(60.0, 30.0, 3.0 * radius, 25.0, -0.04, 0.05)
    _, mask = photo_of(vertices, faces, true, seed=4)
    result = estimate_pose(np.zeros((HEIGHT, WIDTH, 3)), vertices, faces, INTRINSICS, mask=mask, refine=False,
                           azimuth_step=10.0)
    est = result.pose
    assert abs(est.roll - true.roll) <= 6.0  # the grid has 10 degree roll steps
    assert abs(est.shift_x - true.shift_x) < 0.03 and abs(est.shift_y - true.shift_y) < 0.03


def test_cache_is_reused(chair):
    vertices, faces, radius = chair
    cache = CoarseViewCache()
    true = Pose(35.0, 25.0, 3.0 * radius)
    photo, mask = photo_of(vertices, faces, true, seed=5)
    for _ in range(2):
        estimate_pose(photo, vertices, faces, INTRINSICS, mask=mask, cache=cache, refine=False)
    assert (cache.misses, cache.hits) == (1, 1)


# ---------------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny():
    vertices, faces = meshes.box((1.0, 0.5, 0.3))
    photo = np.zeros((HEIGHT, WIDTH, 3), np.float32)
    mask = np.zeros((HEIGHT, WIDTH), bool)
    mask[40:80, 50:110] = True
    return vertices, faces, photo, mask


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(photo=object()), "photo"),
        (dict(photo=np.zeros((HEIGHT, WIDTH, 5))), "photo"),
        (dict(photo=np.full((HEIGHT, WIDTH, 3), np.nan)), "NaN"),
        (dict(vertices=np.zeros((0, 3)), faces=np.zeros((0, 3), int)), "empty"),
        (dict(faces=np.zeros((0, 3), int)), "no faces"),
        (dict(faces=np.array([[0, 1, 99]])), "indices"),
        (dict(bbox=(500, 500, 600, 600), mask=None), "outside"),
        (dict(bbox=(10, 10, 5, 20), mask=None), "x0 < x1"),
        (dict(mask=np.ones((HEIGHT + 1, WIDTH))), "differs"),
        (dict(mask=np.zeros((HEIGHT, WIDTH))), "empty"),
        (dict(intrinsics=dict(INTRINSICS, lens_mm=float("nan"))), "non-finite"),
        (dict(intrinsics=dict(INTRINSICS, resolution=(100, 100))), "differs from the photo"),
        (dict(intrinsics=dict(INTRINSICS, sensor_fit="DIAGONAL")), "sensor_fit"),
    ],
)
def test_clear_errors(tiny, change, message):
    vertices, faces, photo, mask = tiny
    args = dict(photo=photo, vertices=vertices, faces=faces, intrinsics=INTRINSICS, mask=mask, bbox=None)
    args.update(change)
    with pytest.raises(ValueError, match=message):
        estimate_pose(args["photo"], args["vertices"], args["faces"], args["intrinsics"], mask=args["mask"],
                      bbox=args["bbox"], refine=False)


def test_unknown_option_and_missing_file(tiny, tmp_path):
    vertices, faces, photo, mask = tiny
    with pytest.raises(ValueError, match="unknown option"):
        estimate_pose(photo, vertices, faces, INTRINSICS, mask=mask, iterationz=3)
    with pytest.raises(FileNotFoundError):
        estimate_pose(tmp_path / "missing.png", vertices, faces, INTRINSICS, mask=mask)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    with pytest.raises(ValueError, match="broken.png"):
        estimate_pose(broken, vertices, faces, INTRINSICS, mask=mask)


def test_intrinsics_object_from_camera_module(tiny):
    from torch_backend.camera import Intrinsics

    vertices, faces, photo, mask = tiny
    result = estimate_pose(photo, vertices, faces, Intrinsics(resolution=(WIDTH, HEIGHT)), mask=mask,
                           refine=False, elevations=(0.0, 30.0), azimuth_step=30.0)
    assert isinstance(result.pose, Pose) and math.isfinite(result.score)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["chair", "table", "car", "mug", "stool"])
def test_mask_mode_procedural_meshes_slow(name):
    vertices, faces = meshes.make_mesh(name, units="mm" if name == "mug" else "m")
    radius = float(np.linalg.norm(vertices, axis=1).max())
    rng = np.random.default_rng(7)
    errors = []
    for index in range(3):
        # Keep the bounding sphere inside the 50 mm frame (the photos fill 40-80 %).
        true = Pose(float(rng.uniform(0, 360)), float(rng.uniform(0, 70)), float(rng.uniform(4.0, 5.5)) * radius,
                    float(rng.uniform(-20, 20)), 0.0, 0.0)
        photo, mask = photo_of(vertices, faces, true, seed=10 + index)
        result = estimate_pose(photo, vertices, faces, INTRINSICS, mask=mask, top_k=3)
        best = min(azimuth_error(p.azimuth, true.azimuth) for p, _ in result.candidates)
        errors.append(best)
    assert np.median(errors) < 5.0


def test_torch_photo_uint8_photo_and_device_argument(mask_case, chair, cache):
    vertices, faces, _ = chair
    true, photo, mask, _ = mask_case
    as_tensor = torch.from_numpy(photo).permute(2, 0, 1)
    as_uint8 = np.round(photo * 255).astype(np.uint8)
    for image in (as_tensor, as_uint8):
        result = estimate_pose(image, vertices, faces, INTRINSICS, mask=mask, cache=cache, refine=False, device="cpu")
        assert azimuth_error(result.pose.azimuth, true.azimuth) <= 10.0


def test_prepared_mesh_is_reused_for_the_same_content(chair):
    """A batch of photos of one mesh (and photo mode's several object guesses) simplify it once."""
    vertices, faces, _ = chair
    first = prepare_mesh(vertices, faces, max_faces=500)
    again = prepare_mesh(np.array(vertices, copy=True), np.array(faces, copy=True), max_faces=500)
    assert again is first and first.faces.shape[0] <= 500
    assert prepare_mesh(vertices, faces, max_faces=600) is not first


def test_unknown_hog_variant_is_refused(tiny):
    vertices, faces, photo, mask = tiny
    with pytest.raises(ValueError, match="hog_variant"):
        estimate_pose(photo, vertices, faces, INTRINSICS, mask=mask, hog_variant="sift")


def test_level_camera_and_ground_constraints_are_kept(chair, cache):
    """What the artist knows: a level camera keeps roll at 0, an object on the ground keeps the
    camera above the horizon."""
    vertices, faces, radius = chair
    true = Pose(60.0, 5.0, 3.2 * radius, 0.0)
    photo, mask = photo_of(vertices, faces, true, seed=4)
    result = estimate_pose(photo, vertices, faces, INTRINSICS, mask=mask, cache=cache, level_camera=True,
                           elevation_range=(0.0, 90.0), **FAST)
    for candidate, _ in result.candidates:
        assert candidate.roll == 0.0
        assert candidate.elevation >= 0.0
    assert azimuth_error(result.pose.azimuth, true.azimuth) < 5.0


@pytest.mark.parametrize("offset", [25.0, -30.0])
def test_refinement_from_a_rough_initial_pose(mask_case, chair, cache, offset):
    """Started 25-30 deg off (as an artist places the camera by hand), the search stays near the
    start and lands on the true pose."""
    true, photo, mask, _ = mask_case
    vertices, faces, _ = chair
    start = (true.azimuth + offset, true.elevation - offset / 3, true.distance * 1.2, true.roll - 10.0)
    result = estimate_pose(photo, vertices, faces, INTRINSICS, mask=mask, cache=cache, initial_pose=start, **FAST)
    assert azimuth_error(result.pose.azimuth, true.azimuth) < 3.0
    assert abs(result.pose.elevation - true.elevation) < 3.0
    for candidate, _ in result.candidates:  # nothing far from the start is searched
        assert azimuth_error(candidate.azimuth, start[0]) <= 45.0 + 15.0


def test_initial_pose_must_be_angles():
    with pytest.raises(ValueError, match="initial_pose"):
        estimate_pose(np.zeros((HEIGHT, WIDTH, 3)), *meshes.make_mesh("chair"), INTRINSICS,
                      bbox=(10, 10, 50, 50), initial_pose=("north", 10))


def test_margin_to_the_next_distinct_pose(mask_case):
    _, _, _, result = mask_case
    assert result.margin >= 0.0
    assert result.ambiguous == (result.margin < 0.02)
    if len(result.candidates) > 1:
        assert result.margin == pytest.approx(result.candidates[0][1] - result.candidates[1][1])
