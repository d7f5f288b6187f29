"""Tests for torch_backend.camera: the convention, round trips, gradients and agreement with bpy."""
import math

import numpy as np
import pytest
import torch

from torch_backend.camera import (
    Camera,
    Intrinsics,
    camera_location_rotation,
    camera_to_world,
    euler_xyz_from_rotation,
    pose_from_camera_to_world,
    pose_from_world_to_camera,
    project_points,
    world_to_camera,
)


def _random_poses(generator, n, *, poles=True):
    az = torch.rand(n, generator=generator, dtype=torch.float64) * 720 - 360
    el = torch.rand(n, generator=generator, dtype=torch.float64) * 180 - 90
    if poles:
        el[:4] = torch.tensor([90.0, -90.0, 89.9999, -89.9999], dtype=torch.float64)
    dist = torch.rand(n, generator=generator, dtype=torch.float64) * 10 + 0.5
    roll = torch.rand(n, generator=generator, dtype=torch.float64) * 360 - 180
    return az, el, dist, roll


def test_convention_front_right_top_views():
    # az = 0: Front view, camera on -Y looking at +Y, X to the right, Z up.
    m = camera_to_world(0.0, 0.0, 4.0, dtype=torch.float64)
    expected = torch.tensor([[1, 0, 0, 0], [0, 0, -1, -4], [0, 1, 0, 0], [0, 0, 0, 1]], dtype=torch.float64)
    torch.testing.assert_close(m, expected, atol=1e-12, rtol=0)
    # az = 90: Right view, camera on +X, world +Y appears to the right.
    m = camera_to_world(90.0, 0.0, 4.0, dtype=torch.float64)
    torch.testing.assert_close(m[:3, 3], torch.tensor([4.0, 0, 0], dtype=torch.float64), atol=1e-12, rtol=0)
    torch.testing.assert_close(m[:3, 0], torch.tensor([0.0, 1, 0], dtype=torch.float64), atol=1e-12, rtol=0)
    # el = 90: Top view, +X right, +Y up.
    m = camera_to_world(0.0, 90.0, 4.0, dtype=torch.float64)
    torch.testing.assert_close(m[:3, :3], torch.eye(3, dtype=torch.float64), atol=1e-12, rtol=0)
    torch.testing.assert_close(m[:3, 3], torch.tensor([0.0, 0, 4], dtype=torch.float64), atol=1e-12, rtol=0)


def test_roll_is_right_handed_about_viewing_direction():
    # Rolling the camera by +90 about the viewing direction f: right' = -up, up' = right.
    m0 = camera_to_world(30.0, 20.0, 3.0, 0.0, dtype=torch.float64)
    m1 = camera_to_world(30.0, 20.0, 3.0, 90.0, dtype=torch.float64)
    torch.testing.assert_close(m1[:3, 0], -m0[:3, 1], atol=1e-12, rtol=0)
    torch.testing.assert_close(m1[:3, 1], m0[:3, 0], atol=1e-12, rtol=0)
    forward = -m0[:3, 2]
    # right-handed rotation by +90 about f maps right -> f x right
    torch.testing.assert_close(m1[:3, 0], torch.linalg.cross(forward, m0[:3, 0]), atol=1e-12, rtol=0)


def test_project_points_simple_values():
    # Front view, 50 mm lens on a 36 mm sensor, 100 x 50 image: focal = 50/36*100 px.
    pts = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 0, 1]], dtype=torch.float64)
    px = project_points(pts, azimuth=0.0, elevation=0.0, distance=5.0, resolution=(100, 50))
    f = 50 / 36 * 100
    expected = torch.tensor([[50, 25], [50 + f / 5, 25], [50, 25 - f / 5]], dtype=torch.float64)
    torch.testing.assert_close(px, expected, atol=1e-9, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_round_trip_matrix_pose_matrix(dtype):
    g = torch.Generator().manual_seed(0)
    az, el, dist, roll = (t.to(dtype) for t in _random_poses(g, 64))
    w2c = world_to_camera(az, el, dist, roll)
    assert w2c.dtype == dtype and w2c.shape == (64, 4, 4)
    pose = pose_from_world_to_camera(w2c)
    tol = 1e-12 if dtype == torch.float64 else 2e-5
    torch.testing.assert_close(world_to_camera(*pose), w2c, atol=tol * 10, rtol=0)
    c2w = camera_to_world(az, el, dist, roll)
    torch.testing.assert_close(c2w @ w2c, torch.eye(4, dtype=dtype).expand(64, 4, 4), atol=tol * 10, rtol=0)
    torch.testing.assert_close(camera_to_world(*pose_from_camera_to_world(c2w)), c2w, atol=tol * 10, rtol=0)


def test_round_trip_pose_matrix_pose_away_from_poles():
    g = torch.Generator().manual_seed(1)
    az, el, dist, roll = _random_poses(g, 64, poles=False)
    el = el.clamp(-89.0, 89.0)
    got = pose_from_world_to_camera(world_to_camera(az, el, dist, roll))
    wrap = lambda a: torch.remainder(a + 180, 360) - 180  # noqa: E731
    torch.testing.assert_close(wrap(got[0] - az), torch.zeros_like(az), atol=1e-9, rtol=0)
    torch.testing.assert_close(got[1], el, atol=1e-9, rtol=0)
    torch.testing.assert_close(got[2], dist, atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(wrap(got[3] - roll), torch.zeros_like(roll), atol=1e-9, rtol=0)
    assert bool((got[0] > -180).all() and (got[0] <= 180).all() and (got[3] > -180).all() and (got[3] <= 180).all())


@pytest.mark.parametrize("elevation", [90.0, -90.0])
def test_poles_are_stable_and_report_zero_roll(elevation):
    az = torch.tensor([0.0, 37.0, -150.0], dtype=torch.float64)
    roll = torch.tensor([0.0, 12.0, 100.0], dtype=torch.float64)
    w2c = world_to_camera(az, elevation, 2.0, roll)
    assert torch.isfinite(w2c).all()
    got_az, got_el, got_dist, got_roll = pose_from_world_to_camera(w2c)
    torch.testing.assert_close(got_el, torch.full_like(az, elevation))
    torch.testing.assert_close(got_roll, torch.zeros_like(roll))
    torch.testing.assert_close(world_to_camera(got_az, got_el, got_dist, got_roll), w2c, atol=1e-12, rtol=0)
    # Only az - roll (north) / az + roll (south) matters at the pole.
    combined = az - roll if elevation > 0 else az + roll
    torch.testing.assert_close(world_to_camera(combined, elevation, 2.0, 0.0), w2c, atol=1e-12, rtol=0)
    # ...and the pole is the continuous limit of nearby elevations.
    near = world_to_camera(az, elevation - math.copysign(1e-6, elevation), 2.0, roll)
    torch.testing.assert_close(near, w2c, atol=1e-6, rtol=0)


def test_euler_xyz_rebuilds_rotation_including_gimbal_lock():
    def rot(x, y, z):
        cx, sx, cy, sy, cz, sz = math.cos(x), math.sin(x), math.cos(y), math.sin(y), math.cos(z), math.sin(z)
        rx = torch.tensor([[1, 0, 0], [0, cx, -sx], [0, sx, cx]], dtype=torch.float64)
        ry = torch.tensor([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]], dtype=torch.float64)
        rz = torch.tensor([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]], dtype=torch.float64)
        return rz @ ry @ rx

    placement = camera_location_rotation(
        torch.tensor([10.0, 0.0, 123.0, 45.0]), torch.tensor([0.0, 0.0, 90.0, -30.0]), 3.0,
        torch.tensor([90.0, -90.0, 5.0, 0.0]), dtype=torch.float64)
    for r, e in zip(placement.rotation_matrix, placement.rotation_euler):
        torch.testing.assert_close(rot(*e.tolist()), r, atol=1e-9, rtol=0)
    torch.testing.assert_close(placement.location, placement.matrix_world[:, :3, 3])
    assert euler_xyz_from_rotation(torch.eye(3)).abs().max() == 0


def test_batched_shapes_and_shared_points():
    pts = torch.randn(7, 3, dtype=torch.float64)
    az = torch.tensor([0.0, 45.0, 90.0], dtype=torch.float64)
    batched = project_points(pts, azimuth=az, elevation=10.0, distance=6.0, resolution=(64, 48))
    assert batched.shape == (3, 7, 2)
    for i in range(3):
        single = project_points(pts, azimuth=float(az[i]), elevation=10.0, distance=6.0, resolution=(64, 48))
        torch.testing.assert_close(batched[i], single)
    per_pose = project_points(pts.expand(3, 7, 3), azimuth=az, elevation=10.0, distance=6.0, resolution=(64, 48),
                              lens_mm=torch.tensor([30.0, 50.0, 70.0], dtype=torch.float64))
    assert per_pose.shape == (3, 7, 2)
    assert project_points(pts.float(), azimuth=0.0, elevation=0.0, distance=6.0, resolution=(8, 8)).dtype == torch.float32


def test_gradcheck_every_parameter():
    pts = (torch.randn(5, 3, dtype=torch.float64) * 0.5).requires_grad_()
    params = [torch.tensor(v, dtype=torch.float64, requires_grad=True)
              for v in ([20.0, -70.0], [15.0, 80.0], [5.0, 4.0], [10.0, -30.0], [0.1, -0.2], [0.05, 0.3],
                        [35.0, 60.0], [36.0, 30.0], [24.0, 20.0])]

    def fn(p, az, el, dist, roll, sx, sy, lens, sw, sh):
        return project_points(p, azimuth=az, elevation=el, distance=dist, roll=roll, shift_x=sx, shift_y=sy,
                              lens_mm=lens, sensor_width_mm=sw, sensor_height_mm=sh, sensor_fit="VERTICAL",
                              resolution=(40, 30))

    assert torch.autograd.gradcheck(fn, (pts, *params))

    def fn_matrix(az, el, dist, roll):
        return world_to_camera(az, el, dist, roll)

    assert torch.autograd.gradcheck(fn_matrix, tuple(params[:4]))
    # Poles: the forward map is smooth there too.
    pole = [torch.tensor([90.0, -90.0], dtype=torch.float64, requires_grad=True)]
    assert torch.autograd.gradcheck(lambda el: world_to_camera(params[0], el, params[2], params[3]), pole)


def test_intrinsics_blender_dict_and_fit():
    intr = Intrinsics.from_blender_dict({"lens": 35, "sensor_width": 32, "sensor_fit": "AUTO", "shift_x": 0.1,
                                         "resolution_x": 1000, "resolution_y": 2000, "resolution_percentage": 50})
    assert intr.resolution == (500, 1000)
    assert not intr.horizontal_fit and intr.fit_span_px == 1000
    t = intr.tensors(torch.float64)
    assert float(t["focal_px"]) == pytest.approx(35 / 32 * 1000)
    assert float(t["cx"]) == pytest.approx(250 - 0.1 * 1000)
    back = Intrinsics.from_blender_dict(intr.to_blender_dict())
    assert back == intr
    assert intr.matrix(torch.float64).shape == (3, 3)


@pytest.mark.parametrize("bad", [
    dict(distance=0.0), dict(distance=-1.0), dict(azimuth=float("nan")), dict(sensor_fit="DIAGONAL"),
    dict(resolution=(0, 10)), dict(resolution=(10.5, 10)), dict(azimuth=torch.zeros(2, 2)),
    dict(lens_mm=0.0),
])
def test_bad_arguments_raise_value_error(bad):
    kwargs = dict(azimuth=0.0, elevation=0.0, distance=3.0, resolution=(10, 10))
    kwargs.update(bad)
    with pytest.raises(ValueError):
        project_points(torch.zeros(2, 3), **kwargs)
    with pytest.raises(ValueError):
        project_points(torch.zeros(2, 2), azimuth=0.0, elevation=0.0, distance=3.0, resolution=(10, 10))
    with pytest.raises(ValueError):
        pose_from_world_to_camera(torch.zeros(3, 3))


def test_intrinsics_coerce_aliases_and_float_properties():
    reference = Intrinsics(35.0, 32.0, 18.0, "VERTICAL", 0.1, -0.05, (640, 480))
    aliases = dict(lens=35, sensor_width=32, sensor_height_mm=18, sensor_fit="vertical", shift=(0.1, -0.05),
                   width=640.2, height=479.8)
    for given in (reference, reference.as_dict(), aliases, dict(reference.to_blender_dict(), lens_mm=35.0)):
        assert Intrinsics.coerce(given) == reference
    t = reference.tensors(torch.float64)
    assert reference.focal_px == float(t["focal_px"]) == pytest.approx(35 / 18 * 480)
    assert reference.principal_point == (float(t["cx"]), float(t["cy"]))
    half = reference.scaled(320, 240)
    assert half.resolution == (320, 240) and half.focal_px == pytest.approx(reference.focal_px / 2)
    assert reference.with_shift(0.0, 0.0).principal_point == (320.0, 240.0)


@pytest.mark.parametrize("change, message", [
    (dict(lens_mm=float("nan")), "non-finite"), (dict(sensor_width_mm=0.0), "positive"),
    (dict(sensor_fit="DIAGONAL"), "sensor_fit"), (dict(resolution=None), "resolution"),
    (dict(resolution=(0, 10)), "resolution"), (dict(shift_x="left"), "numbers"),
])
def test_intrinsics_coerce_names_the_bad_field(change, message):
    given = dict(Intrinsics(resolution=(64, 48)).as_dict(), **change)
    with pytest.raises(ValueError, match=f"photo camera: .*{message}"):
        Intrinsics.coerce(given, name="photo camera")
    with pytest.raises(ValueError, match="required"):
        Intrinsics.coerce(None)


def test_camera_object_equals_keyword_form():
    generator = torch.Generator().manual_seed(3)
    az, el, dist, roll = _random_poses(generator, 5, poles=False)
    shift = torch.rand(5, 2, generator=generator, dtype=torch.float64) * 0.2 - 0.1
    intrinsics = Intrinsics(42.0, 36.0, 24.0, "AUTO", 0.0, 0.0, (80, 60))
    points = torch.rand(7, 3, generator=generator, dtype=torch.float64) - 0.5
    camera = Camera.from_params(torch.stack([az, el, dist, roll, shift[:, 0], shift[:, 1]], 1), intrinsics)
    keywords = dict(intrinsics.as_dict(), shift_x=shift[:, 0], shift_y=shift[:, 1])
    expected = project_points(points, azimuth=az, elevation=el, distance=dist, roll=roll, **keywords)
    assert torch.equal(project_points(points, camera), expected)
    assert torch.equal(camera.project(points), expected)
    assert torch.equal(Camera.from_params(camera_params := torch.stack([az, el, dist, roll], 1), intrinsics)
                       .world_to_camera(), world_to_camera(*camera_params.unbind(1)))
    with pytest.raises(TypeError, match="not both"):
        project_points(points, camera, azimuth=0.0)
    with pytest.raises(ValueError, match="batched intrinsics"):
        project_points(points, Camera(0.0, 0.0, 3.0, intrinsics=intrinsics.with_shift(shift[:, 0], 0.0)))
    with pytest.raises(ValueError, match=r"\(B, 6\)"):
        Camera.from_params(torch.zeros(3, 5), intrinsics)


# --------------------------------------------------------------------------------------------
# agreement with Blender itself
# --------------------------------------------------------------------------------------------
@pytest.mark.bpy
def test_projection_agrees_with_bpy_world_to_camera_view():
    import bpy
    from bpy_extras.object_utils import world_to_camera_view
    from mathutils import Euler, Matrix, Vector

    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    cam_data = bpy.data.cameras.new("gradhog_test_cam")
    cam = bpy.data.objects.new("gradhog_test_cam", cam_data)
    scene.collection.objects.link(cam)
    scene.camera = cam
    scene.render.resolution_percentage = 100
    scene.render.pixel_aspect_x = scene.render.pixel_aspect_y = 1.0

    rng = np.random.default_rng(1234)
    worst = 0.0
    resolutions = [(640, 480), (480, 640), (128, 128), (301, 97), (97, 301)]
    for trial in range(40):
        width, height = resolutions[trial % len(resolutions)]
        fit = ("AUTO", "HORIZONTAL", "VERTICAL")[trial % 3]
        az = float(rng.uniform(-180, 180))
        el = float(rng.choice([90.0, -90.0])) if trial in (5, 6) else float(rng.uniform(-89, 89))
        dist = float(rng.uniform(2, 8))
        roll = float(rng.uniform(-180, 180))
        intr = dict(lens_mm=float(rng.uniform(15, 120)), sensor_width_mm=float(rng.uniform(20, 40)),
                    sensor_height_mm=float(rng.uniform(15, 30)), shift_x=float(rng.uniform(-0.3, 0.3)),
                    shift_y=float(rng.uniform(-0.3, 0.3)))
        scene.render.resolution_x, scene.render.resolution_y = width, height
        cam_data.lens, cam_data.sensor_width, cam_data.sensor_height = (
            intr["lens_mm"], intr["sensor_width_mm"], intr["sensor_height_mm"])
        cam_data.sensor_fit = fit
        cam_data.shift_x, cam_data.shift_y = intr["shift_x"], intr["shift_y"]
        placement = camera_location_rotation(az, el, dist, roll, dtype=torch.float64)
        if trial % 2:
            cam.matrix_world = Matrix(placement.matrix_world.tolist())
        else:  # the location + Euler route the add-on may use
            cam.rotation_mode = "XYZ"
            cam.location = Vector(placement.location.tolist())
            cam.rotation_euler = Euler(placement.rotation_euler.tolist(), "XYZ")
        bpy.context.view_layer.update()
        np.testing.assert_allclose(np.array(cam.matrix_world), placement.matrix_world.numpy(), atol=1e-5)

        points = rng.uniform(-1, 1, size=(50, 3))
        ours = project_points(torch.from_numpy(points), azimuth=az, elevation=el, distance=dist, roll=roll,
                              sensor_fit=fit, resolution=(width, height), **intr).numpy()
        theirs = []
        for p in points:
            v = world_to_camera_view(scene, cam, Vector(p.tolist()))
            theirs.append((v.x * width, (1.0 - v.y) * height))
        err = np.abs(ours - np.array(theirs)).max()
        worst = max(worst, err)
        assert err <= 0.01, (trial, fit, (width, height), err)
    print(f"max |torch - bpy| projection error over 40 cameras x 50 points: {worst:.2e} px")


def test_a_cropped_camera_sees_the_same_rays_in_the_window():
    from torch_backend.camera import Camera, Intrinsics

    full = Intrinsics(35.0, 36.0, 24.0, "AUTO", 0.05, -0.02, (640, 480))
    points = torch.tensor([[0.3, -0.2, 0.1], [-0.4, 0.25, 0.3], [0.0, 0.0, 0.0]], dtype=torch.float64)
    for window in ((100, 50, 300, 200), (400, 100, 520, 460), (0, 0, 640, 480)):
        crop = full.cropped(*window)
        assert crop.resolution == (window[2] - window[0], window[3] - window[1])
        assert crop.focal_px == pytest.approx(full.focal_px, rel=1e-12)
        seen = Camera(30.0, 20.0, 2.5, 5.0, full).project(points)
        seen_in_crop = Camera(30.0, 20.0, 2.5, 5.0, crop).project(points)
        offset = torch.tensor([window[0], window[1]], dtype=torch.float64)
        assert torch.allclose(seen_in_crop + offset, seen, atol=1e-9)
    moved = full.with_principal_point(300.0, 260.0)
    assert moved.principal_point == pytest.approx((300.0, 260.0), abs=1e-9)
