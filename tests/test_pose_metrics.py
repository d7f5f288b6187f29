"""Tests for the pose benchmark's viewpoint-error math (bench/pose_common.py)."""
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import pose_common  # noqa: E402


def test_azimuth_error_wraps():
    assert pose_common.azimuth_error(350.0, 10.0) == pytest.approx(20.0)
    assert pose_common.azimuth_error(10.0, 350.0) == pytest.approx(20.0)
    assert pose_common.azimuth_error(-90.0, 270.0) == pytest.approx(0.0)
    assert pose_common.azimuth_error(0.0, 180.0) == pytest.approx(180.0)


def test_rotation_error_of_single_axis_changes():
    # at the equator an azimuth change is a rotation about world z by the same angle
    assert pose_common.rotation_error((30, 0, 0), (10, 0, 0)) == pytest.approx(20.0)
    # a roll change is a rotation about the viewing axis by the same angle
    assert pose_common.rotation_error((40, 25, 12), (40, 25, -3)) == pytest.approx(15.0)
    # an elevation change at fixed azimuth is a rotation about the camera's right axis
    assert pose_common.rotation_error((70, 10, 0), (70, 45, 0)) == pytest.approx(35.0)
    # a front/back flip is a half turn
    assert pose_common.rotation_error((0, 0, 0), (180, 0, 0)) == pytest.approx(180.0)


def test_rotation_error_is_small_near_the_pole_where_azimuth_is_not():
    # looking almost straight down, a 40 degree azimuth change compensated by roll barely rotates
    # the camera: the geodesic error is the fair measure there, the azimuth error is not
    est, true = (40.0, 89.0, 40.0), (0.0, 89.0, 0.0)
    assert pose_common.azimuth_error(est[0], true[0]) == pytest.approx(40.0)
    assert pose_common.rotation_error(est, true) < 1.5


def test_rotation_error_is_a_metric_on_random_poses():
    rng = np.random.default_rng(0)
    for _ in range(20):
        a, b, c = (tuple(rng.uniform([0, -80, -60], [360, 80, 60])) for _ in range(3))
        ab, ba = pose_common.rotation_error(a, b), pose_common.rotation_error(b, a)
        assert ab == pytest.approx(ba, abs=1e-6)
        assert pose_common.rotation_error(a, a) == pytest.approx(0.0, abs=1e-4)
        assert 0.0 <= ab <= 180.0
        assert ab <= pose_common.rotation_error(a, c) + pose_common.rotation_error(c, b) + 1e-6


def test_rotation_matrix_follows_the_camera_convention():
    # az = 0: Blender's front view, camera on -Y looking along +Y with +X to the right
    r = pose_common.camera_rotation(0.0, 0.0, 0.0)
    np.testing.assert_allclose(r[:, 0], [1, 0, 0], atol=1e-12)
    np.testing.assert_allclose(r[:, 2], [0, -1, 0], atol=1e-12)
    np.testing.assert_allclose(r.T @ r, np.eye(3), atol=1e-12)


def test_summarize_accuracies_and_medians():
    rows = [
        {"az_err": e, "el_err": 1.0, "rot_err": e, "dist_err": 0.01 * k, "seconds": 2.0}
        for k, e in enumerate([5.0, 14.0, 20.0, 50.0, 120.0])
    ]
    s = pose_common.summarize(rows)
    assert s["acc_15"] == pytest.approx(40.0)
    assert s["acc_22.5"] == pytest.approx(60.0)
    assert s["acc_45"] == pytest.approx(60.0)
    assert s["acc_90"] == pytest.approx(80.0)
    assert s["median_rot_err"] == pytest.approx(20.0)
    assert s["median_dist_err"] == pytest.approx(0.02)
    assert s["n"] == 5
    with pytest.raises(ValueError):
        pose_common.summarize([])


def test_relative_distance_error_and_mask_box():
    assert pose_common.relative_distance_error(1030.0, 1000.0) == pytest.approx(0.03)
    mask = np.zeros((10, 20), bool)
    mask[2:5, 3:9] = True
    assert pose_common.bbox_of_mask(mask) == (3, 2, 9, 5)
    with pytest.raises(ValueError, match="empty"):
        pose_common.bbox_of_mask(np.zeros((4, 4)))


def test_subset_tags_of_realistic_and_clean_records():
    record = {"gray": True, "occlusion": 0.25, "small": True, "textureless": False}
    assert pose_common.subset_tags(record) == ["gray", "occluded", "small"]
    record = {"gray": False, "occlusion": 0.05, "small": False, "textureless": True}
    assert pose_common.subset_tags(record) == ["colour", "unoccluded", "textureless"]
    assert pose_common.subset_tags({"azimuth": 10.0}) == []
