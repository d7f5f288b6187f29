"""Tests for torch_backend.render: agreement with Blender, gradients, degenerate input, batching."""
import numpy as np
import pytest
import torch

from blender_silhouettes import BlenderSilhouetteRenderer, box, chair, cylinder, icosphere, merge
from torch_backend import meshes
from torch_backend.camera import Camera, Intrinsics
from torch_backend.render import (DEFAULT_SHARPNESS, Mesh, RasterizationSettings, ShadingSettings, render,
                                  render_silhouette)

@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Tiny tensors: on the shared 2-core machine extra intra-op threads only add contention.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


POSE_NAMES = ("azimuth", "elevation", "distance", "roll", "shift_x", "shift_y")
MESHES = {
    "box": lambda: box((0.1, 0.0, 0.05), (1.0, 0.6, 0.8)),
    "icosphere": lambda: icosphere(2),
    "cylinder": lambda: cylinder(),
    "chair": chair,
}


def _random_camera(rng):
    return dict(azimuth=float(rng.uniform(-180, 180)), elevation=float(rng.uniform(-70, 85)),
                distance=float(rng.uniform(3.0, 6.0)), roll=float(rng.uniform(-30, 30)),
                lens_mm=float(rng.uniform(30, 70)), shift_x=float(rng.uniform(-0.1, 0.1)),
                shift_y=float(rng.uniform(-0.1, 0.1)))


@pytest.mark.bpy
def test_silhouette_agrees_with_blender_workbench():
    rng = np.random.default_rng(2024)
    ious = {}
    for name, build in MESHES.items():
        vertices, faces = build()
        for resolution in ((128, 128), (96, 128)):
            blender = BlenderSilhouetteRenderer(vertices, faces, resolution)
            mesh = Mesh.from_arrays(torch.from_numpy(vertices), torch.from_numpy(faces))
            for _ in range(3):
                camera = _random_camera(rng)
                theirs = blender.render(**camera)
                ours = (render_silhouette(mesh, resolution=resolution, **camera) > 0.5).numpy()
                union = (theirs | ours).sum()
                assert union > 50, "the mesh must be in view for the comparison to mean anything"
                ious.setdefault(name, []).append((theirs & ours).sum() / union)
    all_ious = np.concatenate([np.array(v) for v in ious.values()])
    summary = ", ".join(f"{k}: mean {np.mean(v):.4f} min {np.min(v):.4f}" for k, v in ious.items())
    print(f"\nIoU vs Blender over {len(all_ious)} views: mean {all_ious.mean():.4f}, min {all_ious.min():.4f} ({summary})")
    assert len(all_ious) >= 20
    assert all_ious.mean() >= 0.98, summary
    assert all_ious.min() >= 0.95, summary


def _gradient_cosine(vertices, faces, base, target, steps, *, shaded, sharpness=DEFAULT_SHARPNESS,
                     resolution=(96, 80)):
    mesh = Mesh.from_arrays(torch.from_numpy(vertices), torch.from_numpy(faces))

    def image(pose):
        camera = dict(zip(POSE_NAMES, pose), resolution=resolution, sharpness=sharpness)
        if shaded:
            return render(mesh, **camera).shaded
        return render_silhouette(mesh, **camera)

    with torch.no_grad():
        goal = image([torch.tensor(v, dtype=torch.float64) for v in target])
    pose = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in base]
    ((image(pose) - goal) ** 2).sum().backward()
    autograd = torch.stack([p.grad for p in pose])
    finite = []
    for i, h in enumerate(steps):
        with torch.no_grad():
            plus = [torch.tensor(v, dtype=torch.float64) for v in base]
            minus = [torch.tensor(v, dtype=torch.float64) for v in base]
            plus[i] += h
            minus[i] -= h
            finite.append((((image(plus) - goal) ** 2).sum() - ((image(minus) - goal) ** 2).sum()) / (2 * h))
    finite = torch.stack(finite)
    # compare in units of the steps (degrees, scene units and shift units have different scales)
    scale = torch.tensor(steps, dtype=torch.float64)
    a, b = autograd * scale, finite * scale
    assert torch.isfinite(a).all()
    return float(a @ b / (a.norm() * b.norm()))


# steps move the image by roughly 0.02-0.05 px: the loss is smooth at that scale
_STEPS = (0.02, 0.02, 0.001, 0.02, 0.0002, 0.0002)
_POSES = [
    ((30.0, 20.0, 4.0, 5.0, 0.02, -0.01), (33.0, 18.0, 4.2, 3.0, 0.0, 0.0)),
    ((-120.0, 35.0, 3.5, -10.0, -0.03, 0.02), (-116.0, 31.0, 3.4, -7.0, -0.02, 0.03)),
]


# the pose optimizer anneals the sharpness from ~2 px down to ~0.4 px
@pytest.mark.parametrize("sharpness", [DEFAULT_SHARPNESS, 1.0])
@pytest.mark.parametrize("name", ["box", "icosphere", "chair"])
@pytest.mark.parametrize("base,target", _POSES)
def test_silhouette_gradient_matches_finite_differences(name, base, target, sharpness):
    vertices, faces = MESHES[name]()
    cosine = _gradient_cosine(vertices, faces, base, target, _STEPS, shaded=False, sharpness=sharpness)
    print(f"\nsilhouette gradient cosine ({name}, sharpness {sharpness}): {cosine:.4f}")
    assert cosine >= 0.95


@pytest.mark.parametrize("sharpness", [DEFAULT_SHARPNESS, 1.0])
@pytest.mark.parametrize("name", ["box", "icosphere", "chair"])
@pytest.mark.parametrize("base,target", _POSES)
def test_shaded_gradient_matches_finite_differences(name, base, target, sharpness):
    vertices, faces = MESHES[name]()
    cosine = _gradient_cosine(vertices, faces, base, target, _STEPS, shaded=True, sharpness=sharpness)
    print(f"\nshaded gradient cosine ({name}, sharpness {sharpness}): {cosine:.4f}")
    assert cosine >= 0.95


def test_degenerate_and_behind_camera_faces_give_finite_gradients():
    vertices, faces = box()
    extra_vertices = np.array([[0.0, 0.0, 0.0], [0.5, 0.5, 0.5], [1.0, 1.0, 1.0],  # collinear
                               [0.0, -3.2, 0.0], [0.3, -3.2, 0.1], [0.0, -2.0, 0.3],  # straddles the camera plane
                               [0.2, -5.0, 0.0], [0.4, -5.0, 0.2], [0.1, -5.0, 0.4]])  # fully behind the camera
    vertices = np.concatenate([vertices, extra_vertices])
    faces = np.concatenate([faces, [[8, 9, 10], [0, 0, 1], [2, 2, 2], [11, 12, 13], [14, 15, 16],
                                    [3, 4, 5], [3, 5, 4]]])  # plus a zero-thickness double-sided sliver
    v = torch.tensor(vertices, dtype=torch.float64, requires_grad=True)
    pose = {k: torch.tensor([val, val + 1.0], dtype=torch.float64, requires_grad=True)
            for k, val in (("azimuth", 0.0), ("elevation", 10.0), ("roll", 0.0))}
    out = render(v, torch.tensor(faces), distance=3.0, resolution=(48, 40), **pose)
    loss = out.silhouette.sum() + out.shaded.sum() + out.depth.sum()
    loss.backward()
    for tensor in (out.silhouette, out.shaded, out.depth):
        assert torch.isfinite(tensor).all()
    assert torch.isfinite(v.grad).all()
    for value in pose.values():
        assert torch.isfinite(value.grad).all()


def test_empty_view_is_zero_with_zero_gradients():
    vertices, faces = box((50.0, 0.0, 0.0))
    v = torch.tensor(vertices, requires_grad=True)
    az = torch.tensor(0.0, requires_grad=True)
    sil = render_silhouette(v, faces, azimuth=az, elevation=0.0, distance=5.0, resolution=(16, 12))
    assert sil.shape == (12, 16) and float(sil.detach().abs().sum()) == 0.0
    sil.sum().backward()
    assert float(v.grad.abs().sum()) == 0.0 and float(az.grad) == 0.0


def test_batched_equals_single_and_numpy_input():
    vertices, faces = chair()
    az = torch.tensor([10.0, 100.0, -60.0])
    el = torch.tensor([15.0, 40.0, -10.0])
    batched = render(vertices.astype(np.float32), faces, azimuth=az, elevation=el, distance=4.0, resolution=(40, 32))
    assert batched.silhouette.shape == (3, 32, 40) and batched.shaded.shape == (3, 32, 40)
    assert batched.silhouette.dtype == torch.float32
    for i in range(3):
        single = render(vertices.astype(np.float32), faces, azimuth=float(az[i]), elevation=float(el[i]),
                        distance=4.0, resolution=(40, 32))
        assert single.silhouette.shape == (32, 40)
        torch.testing.assert_close(batched.silhouette[i], single.silhouette, atol=1e-5, rtol=0)
        torch.testing.assert_close(batched.shaded[i], single.shaded, atol=1e-5, rtol=0)
    assert float(batched.silhouette.min()) >= 0.0 and float(batched.silhouette.max()) <= 1.0
    assert float(batched.shaded.min()) >= 0.0 and float(batched.shaded.max()) <= 1.0 + 1e-6


def test_culling_does_not_change_the_thresholded_silhouette():
    vertices, faces = merge(icosphere(1), box((0.9, 0.0, 0.0), (0.5, 0.2, 0.2)))
    mesh = Mesh.from_arrays(vertices, faces)
    assert mesh.closed
    camera = dict(azimuth=40.0, elevation=25.0, distance=4.0, resolution=(64, 48))
    culled = render_silhouette(mesh, **camera) > 0.5
    two_sided = render_silhouette(mesh, backface_culling=False, **camera) > 0.5
    assert (culled != two_sided).sum() <= 2


def test_open_mesh_renders_both_sides():
    # a single square facing -Y seen from the front and from behind: same silhouette
    vertices = np.array([[-0.5, 0.0, -0.5], [0.5, 0.0, -0.5], [0.5, 0.0, 0.5], [-0.5, 0.0, 0.5]])
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    assert not Mesh.from_arrays(vertices, faces).closed
    front = render_silhouette(vertices, faces, azimuth=0.0, elevation=0.0, distance=3.0, resolution=(32, 32))
    back = render_silhouette(vertices, faces, azimuth=180.0, elevation=0.0, distance=3.0, resolution=(32, 32))
    torch.testing.assert_close(front, back.flip(-1), atol=1e-5, rtol=0)
    # no seam along the diagonal: the interior is fully covered
    inside = front[10:22, 10:22]
    assert float(inside.min()) > 0.99


def test_gradcheck_small_scene():
    vertices = torch.tensor([[-0.4, 0.0, -0.3], [0.5, 0.1, -0.4], [0.1, -0.2, 0.5]], dtype=torch.float64,
                            requires_grad=True)
    faces = torch.tensor([[0, 1, 2]])
    az = torch.tensor(12.0, dtype=torch.float64, requires_grad=True)
    shift = torch.tensor(0.03, dtype=torch.float64, requires_grad=True)

    def fn(v, a, s):
        return render(v, faces, azimuth=a, elevation=8.0, distance=2.5, shift_x=s, resolution=(12, 10),
                      sharpness=1.0)

    assert torch.autograd.gradcheck(lambda v, a, s: fn(v, a, s).silhouette, (vertices, az, shift), atol=1e-5)
    assert torch.autograd.gradcheck(lambda v, a, s: fn(v, a, s).shaded, (vertices, az, shift), atol=1e-5)


@pytest.mark.parametrize("kwargs, message", [
    (dict(vertices=np.zeros((0, 3)), faces=np.zeros((0, 3), int)), "vertices"),
    (dict(vertices=np.zeros((4, 2)), faces=np.zeros((1, 3), int)), "vertices"),
    (dict(vertices=np.eye(3), faces=np.array([[0, 1, 2, 0]])), "faces"),
    (dict(vertices=np.eye(3), faces=np.array([[0, 1, 3]])), "indices"),
    (dict(vertices=np.eye(3), faces=np.array([[0.0, 1.5, 2.0]])), "integer"),
    (dict(vertices=np.array([[0, 0, 0], [1, 0, 0], [2, 0, 0]], float), faces=np.array([[0, 1, 2]])), "area"),
    (dict(vertices=np.array([[np.nan, 0, 0], [1, 0, 0], [0, 1, 0]]), faces=np.array([[0, 1, 2]])), "finite"),
])
def test_bad_meshes_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        render_silhouette(kwargs["vertices"], kwargs["faces"], azimuth=0.0, elevation=0.0, distance=3.0,
                          resolution=(8, 8))


def test_bad_render_options_raise():
    vertices, faces = box()
    with pytest.raises(ValueError, match="sharpness"):
        render_silhouette(vertices, faces, azimuth=0.0, elevation=0.0, distance=3.0, resolution=(8, 8), sharpness=0.0)
    with pytest.raises(ValueError, match="distance"):
        render_silhouette(vertices, faces, azimuth=0.0, elevation=0.0, distance=-3.0, resolution=(8, 8))


# The vectorised renderer against the slow per-pixel reference in tests/reference_render.py.
_REFERENCE_MESHES = {
    "box": lambda: box((0.1, 0.0, 0.05), (1.0, 0.6, 0.8)),
    "sphere and box": lambda: merge(icosphere(1), box((0.9, 0.0, 0.0), (0.5, 0.2, 0.2))),
    "open square": lambda: (np.array([[-0.5, 0.0, -0.5], [0.5, 0.0, -0.5], [0.5, 0.0, 0.5], [-0.5, 0.0, 0.5]]),
                            np.array([[0, 1, 2], [0, 2, 3]])),
}
_REFERENCE_VIEWS = dict(azimuth=[30.0, -120.0, 75.0], elevation=[20.0, 35.0, -15.0], distance=[3.2, 3.5, 3.0],
                        roll=[5.0, -10.0, 0.0], shift_x=[0.02, -0.03, 0.0], shift_y=[-0.01, 0.02, 0.05],
                        lens_mm=[40.0, 50.0, 35.0])


@pytest.mark.parametrize("sharpness", [DEFAULT_SHARPNESS, 1.0])
@pytest.mark.parametrize("name", sorted(_REFERENCE_MESHES))
def test_renderer_equals_per_pixel_reference(name, sharpness):
    from reference_render import render_reference

    vertices, faces = _REFERENCE_MESHES[name]()
    resolution = (24, 20)
    expected = render_reference(vertices, faces, resolution=resolution, sharpness=sharpness, **_REFERENCE_VIEWS)
    camera = {k: torch.tensor(v, dtype=torch.float64) for k, v in _REFERENCE_VIEWS.items()}
    ours = render(torch.from_numpy(vertices), faces, resolution=resolution, sharpness=sharpness, **camera)
    assert float(ours.silhouette.max()) > 0.99 and float(ours.silhouette.min()) < 0.01, "views must show an outline"
    for got, want in zip(ours, expected):
        np.testing.assert_allclose(got.numpy(), want, atol=1e-6, rtol=0)
    silhouette_only = render_silhouette(torch.from_numpy(vertices), faces, resolution=resolution, sharpness=sharpness,
                                        **camera)
    reference_silhouette, _, _ = render_reference(vertices, faces, resolution=resolution, sharpness=sharpness,
                                                  shading=False, **_REFERENCE_VIEWS)
    np.testing.assert_allclose(silhouette_only.numpy(), reference_silhouette, atol=1e-6, rtol=0)


def test_camera_and_settings_objects_equal_the_keyword_form():
    vertices, faces = chair()
    params = torch.tensor([[20.0, 15.0, 3.5, 4.0, 0.02, -0.01], [-70.0, 40.0, 4.0, -8.0, 0.0, 0.03]],
                          dtype=torch.float64)
    intrinsics = Intrinsics(lens_mm=45.0, resolution=(40, 30))
    mesh = meshes.Mesh(vertices, faces)
    assert Mesh is meshes.Mesh
    keywords = dict(azimuth=params[:, 0], elevation=params[:, 1], distance=params[:, 2], roll=params[:, 3],
                    shift_x=params[:, 4], shift_y=params[:, 5], lens_mm=45.0, resolution=(40, 30))
    expected = render(vertices, faces, sharpness=0.7, ambient=0.3, background=0.1, **keywords)
    ours = render(mesh, camera=Camera.from_params(params, intrinsics), raster_settings=RasterizationSettings(0.7),
                  shading_settings=ShadingSettings(ambient=0.3, background=0.1))
    for got, want in zip(ours, expected):
        assert torch.equal(got, want)
    assert torch.equal(render_silhouette(mesh, camera=Camera.from_params(params, intrinsics), sharpness=0.7),
                       expected.silhouette)
    with pytest.raises(TypeError, match="not both"):
        render(mesh, camera=Camera.from_params(params, intrinsics), azimuth=0.0)
    with pytest.raises(TypeError, match="not both"):
        render_silhouette(mesh, raster_settings=RasterizationSettings(), sharpness=1.0, **keywords)
