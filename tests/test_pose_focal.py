"""Tests of focal-length estimation with the pose (estimate_pose(..., focal="estimate")).

A wide-angle photo of a box close up shows strong perspective, so its lens is recoverable; the
same box far away with a telephoto lens cannot tell the lens, and the reported range must say so.
"""
import numpy as np
import pytest

from torch_backend import meshes
from torch_backend.pose import CoarseViewCache, Pose, PoseOptions, estimate_pose
from torch_backend.pose.refine import candidate_lenses, lens_for_fov
from torch_backend.intrinsics import Intrinsics

from test_pose import azimuth_error, photo_of

WIDTH, HEIGHT = 160, 120
FAST = dict(explore_iterations=8, iterations=10, work_size=112, explore_size=72, final_iterations=0, fov_count=5)


def intrinsics(lens_mm):
    return dict(lens_mm=lens_mm, sensor_width_mm=36.0, sensor_height_mm=24.0, sensor_fit="AUTO",
                resolution=(WIDTH, HEIGHT))


def test_candidate_lenses_span_the_fields_of_view_log_spaced():
    cam = Intrinsics.coerce(intrinsics(50.0))
    lenses = candidate_lenses(cam, PoseOptions(fov_range=(10.0, 100.0), fov_count=3))
    # 36 mm across: 100 deg -> 15.1 mm, sqrt(10 * 100) = 31.6 deg -> 63.6 mm, 10 deg -> 205.7 mm
    assert lenses == pytest.approx([15.10, 63.56, 205.75], rel=1e-3)
    assert lens_for_fov(cam, 39.5978) == pytest.approx(50.0, rel=1e-4)


@pytest.fixture(scope="module")
def chair():
    vertices, faces = meshes.make_mesh("chair")
    return np.asarray(vertices), np.asarray(faces)


def test_wide_angle_lens_is_recovered_with_the_pose(chair):
    vertices, faces = chair
    radius = float(np.linalg.norm(vertices, axis=1).max())
    true_lens = 20.0
    true = Pose(40.0, 25.0, 2.2 * radius, 0.0)
    photo, mask = photo_of(vertices, faces, true, seed=3, intrinsics=intrinsics(true_lens))
    # Started from the default 50 mm lens: the estimate must move to the true one.
    result = estimate_pose(photo, vertices, faces, intrinsics(50.0), mask=mask, cache=CoarseViewCache(),
                           focal="estimate", **FAST)
    assert result.lens_source == "estimated"
    assert result.lens_mm == pytest.approx(true_lens, rel=0.15)
    low, high = result.lens_range_mm
    assert low <= result.lens_mm <= high
    assert azimuth_error(result.pose.azimuth, true.azimuth) < 10.0
    # the distance follows the lens: the image size is what the photo fixes
    assert result.pose.distance / result.lens_mm == pytest.approx(true.distance / true_lens, rel=0.1)


def test_given_lens_is_reported_as_given(chair):
    vertices, faces = chair
    radius = float(np.linalg.norm(vertices, axis=1).max())
    photo, mask = photo_of(vertices, faces, Pose(40.0, 25.0, 3 * radius), seed=3, intrinsics=intrinsics(35.0))
    result = estimate_pose(photo, vertices, faces, intrinsics(35.0), mask=mask, cache=CoarseViewCache(),
                           refine=False)
    assert (result.lens_mm, result.lens_source, result.lens_range_mm) == (35.0, "given", None)
    assert "lens_mm" not in result.pose.as_dict()
