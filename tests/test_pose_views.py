"""Tests of torch_backend.pose.views: the coarse view grid, constrained subsets, and the cache of
coarse views in memory and on disk."""
import multiprocessing
import os

import numpy as np
import pytest
import torch

from torch_backend import meshes
from torch_backend.intrinsics import Intrinsics
from torch_backend.pose.prepare import prepare_mesh
from torch_backend.pose.views import CoarseViewCache, views_within

CAM = Intrinsics.coerce(dict(lens_mm=50.0, resolution=(160, 120)))
GRID = (30.0, (0.0, 30.0, 60.0))


@pytest.fixture(scope="module")
def chair():
    vertices, faces = meshes.make_mesh("chair")
    return prepare_mesh(vertices, faces, max_faces=500)


def test_views_from_disk_equal_fresh_renders_and_skip_rendering(chair, tmp_path):
    fresh = CoarseViewCache(directory=tmp_path).get(chair, CAM, *GRID)
    again = CoarseViewCache(directory=tmp_path)
    loaded = again.get(chair, CAM, *GRID)
    assert (again.disk_hits, again.misses) == (1, 0)
    for name in ("images", "silhouettes", "params", "centroids", "radii"):
        assert torch.equal(getattr(fresh, name), getattr(loaded, name)), name
    # another field of view or grid is another entry
    other = CoarseViewCache(directory=tmp_path)
    other.get(chair, CAM.replace(lens_mm=20.0), *GRID)
    other.get(chair, CAM, 45.0, GRID[1])
    assert (other.disk_hits, other.misses) == (0, 2)
    assert len(list(tmp_path.iterdir())) == 3


def test_a_damaged_cache_file_is_rendered_again(chair, tmp_path):
    CoarseViewCache(directory=tmp_path).get(chair, CAM, *GRID)
    (path,) = tmp_path.iterdir()
    path.write_bytes(b"not a numpy file")
    cache = CoarseViewCache(directory=tmp_path)
    cache.get(chair, CAM, *GRID)
    assert cache.misses == 1
    assert CoarseViewCache(directory=tmp_path).get(chair, CAM, *GRID) is not None


def _fill(directory):
    vertices, faces = meshes.make_mesh("chair")
    cache = CoarseViewCache(directory=directory)
    views = cache.get(prepare_mesh(vertices, faces, max_faces=500), CAM, *GRID)
    return float(views.images.sum())


def test_concurrent_writers_leave_one_whole_file(tmp_path):
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        sums = pool.map(_fill, [str(tmp_path)] * 4)
    assert len(set(sums)) == 1
    files = os.listdir(tmp_path)
    assert len(files) == 1 and files[0].endswith(".npz")  # no temporary files left behind
    assert _fill(str(tmp_path)) == sums[0]


def test_an_unwritable_cache_folder_costs_only_speed(chair, tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("a file where the folder should be")
    with pytest.warns(UserWarning, match="could not write"):
        views = CoarseViewCache(directory=blocked / "cache").get(chair, CAM, *GRID)
    assert views.images.shape[0] == 3 * 12


def test_views_within_keeps_elevations_and_directions_asked_for(chair):
    views = CoarseViewCache().get(chair, CAM, 30.0, (-10.0, 0.0, 30.0, 60.0))
    assert views_within(views, (-90.0, 90.0)) is views
    ground = views_within(views, (0.0, 90.0))
    assert sorted(set(ground.params[:, 1].tolist())) == [0.0, 30.0, 60.0]
    between = views_within(views, (10.0, 20.0))  # widened to the grid rows around it
    assert sorted(set(between.params[:, 1].tolist())) == [0.0, 30.0]
    near = views_within(views, (-90.0, 90.0), around=(90.0, 30.0), reach=35.0)
    assert 0 < near.params.shape[0] < views.params.shape[0]
    for az, el in near.params[:, :2].tolist():
        assert el in (0.0, 30.0, 60.0) and abs((az - 90.0 + 180.0) % 360.0 - 180.0) <= 35.0
