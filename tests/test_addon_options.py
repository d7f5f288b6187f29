"""blender_gradhog.options (no bpy): both command lines' alignment flags read PoseOptions, and their
values reach ``api.prepare`` as one PoseOptions; torch_backend.lru, the caches' one shape."""
from __future__ import annotations

import argparse
import math

import pytest

from blender_gradhog import options
from blender_gradhog.errors import AlignError
from torch_backend.lru import LRU
from torch_backend.pose import HOG_VARIANTS, PoseOptions


def parse(argv, **kwargs):
    parser = argparse.ArgumentParser()
    options.add_arguments(parser, **kwargs)
    return parser.parse_args(argv)


def test_flag_defaults_are_pose_options_defaults():
    keywords = options.from_arguments(parse([]))
    assert keywords["options"] == PoseOptions()
    assert keywords == {"bbox": None, "mask": None, "mask_source": 'ALPHA', "device": 'cpu', "options": PoseOptions(),
                        "focal_length": 'EXIF', "lens_mm": None, "sensor_width_mm": None, "initial_pose": None,
                        "coarse_views": False, "cache_dir": options.default_cache_dir()}


@pytest.mark.parametrize("argv, expected", [
    (["--coarse-renderer", "blender"], {"coarse_views": True, "cache_dir": None}),
    (["--no-cache"], {"coarse_views": False, "cache_dir": None}),
    (["--cache-dir", "/tmp/views"], {"coarse_views": False, "cache_dir": "/tmp/views"}),
])
def test_coarse_renderer_and_cache_flags(argv, expected):
    keywords = options.from_arguments(parse(argv))
    assert {name: keywords[name] for name in expected} == expected


@pytest.mark.parametrize("argv, expected", [
    ([], {"focal_length": 'EXIF', "lens_mm": None, "sensor_width_mm": None}),
    (["--lens-mm", "exif"], {"focal_length": 'EXIF', "lens_mm": None, "sensor_width_mm": None}),
    (["--lens-mm", "AUTO", "--sensor-width-mm", "23.5"], {"focal_length": 'ESTIMATE', "lens_mm": None, "sensor_width_mm": 23.5}),
    (["--lens-mm", "35"], {"focal_length": 'CAMERA', "lens_mm": 35.0, "sensor_width_mm": None}),
])
def test_lens_flag_chooses_the_focal_length_source(argv, expected):
    keywords = options.from_arguments(parse(argv))
    assert {name: keywords[name] for name in expected} == expected


@pytest.mark.parametrize("argv", [["--lens-mm", "wide"], ["--sensor-width-mm", "auto"]])
def test_lens_flags_that_are_no_length_are_refused_by_the_parser(argv):
    with pytest.raises(SystemExit):
        parse(argv)


@pytest.mark.parametrize("argv", [["--lens-mm", "0"], ["--lens-mm=-5"], ["--lens-mm", "nan"], ["--sensor-width-mm", "0"]])
def test_lengths_that_are_not_positive_raise_align_error_naming_the_flag(argv):
    with pytest.raises(AlignError, match=argv[0].split("=")[0]):
        options.from_arguments(parse(argv))


def test_demo_parser_can_leave_out_the_lens_flags():
    assert not hasattr(parse([], lens=False), "lens_mm")


def test_flags_reach_pose_options():
    args = parse(["--top-k", "5", "--seed", "7", "--no-refine", "--starts", "2", "--iterations", "9",
                  "--hog-variant", "dalal", "--no-alpha-mask", "--bbox", "1", "2", "30", "40"])
    keywords = options.from_arguments(args)
    assert keywords["options"] == PoseOptions(top_k=5, seed=7, refine=False, starts=2, iterations=9, hog_variant="dalal")
    assert keywords["mask_source"] == 'NONE' and keywords["bbox"] == [1.0, 2.0, 30.0, 40.0]
    with pytest.raises(SystemExit):
        parse(["--hog-variant", "nope"])
    for variant in HOG_VARIANTS:
        assert options.from_arguments(parse(["--hog-variant", variant]))["options"].hog_variant == variant


@pytest.mark.parametrize("argv, expected", [
    (["--level-camera"], PoseOptions(level_camera=True)),
    (["--on-ground"], PoseOptions(elevation_range=(0.0, 90.0))),
    (["--elevation-range", "-30", "45"], PoseOptions(elevation_range=(-30.0, 45.0))),
    (["--on-ground", "--elevation-range", "-30", "45"], PoseOptions(elevation_range=(0.0, 45.0))),
])
def test_constraint_flags_reach_pose_options(argv, expected):
    assert options.from_arguments(parse(argv))["options"] == expected


def test_constraint_flags_read_their_help_from_pose_options():
    parser = argparse.ArgumentParser()
    options.add_arguments(parser)
    helps = {action.dest: action.help for action in parser._actions}
    assert helps["level_camera"] == PoseOptions.help("level_camera")
    assert helps["elevation_range"].startswith(PoseOptions.help("elevation_range"))
    assert "elevation >= 0" in helps["on_ground"]


@pytest.mark.parametrize("argv, fragment", [
    (["--on-ground", "--elevation-range", "-60", "-10"], "on the ground"),
    (["--elevation-range", "50", "10"], "elevation_range"),
    (["--elevation-range", "-100", "10"], "elevation_range"),
])
def test_impossible_elevation_limits_raise_align_error(argv, fragment):
    with pytest.raises(AlignError, match=fragment):
        options.from_arguments(parse(argv))


def test_init_pose_flag_becomes_the_start_pose():
    keywords = options.from_arguments(parse(["--init-pose", "30", "-12.5", "3", "4"]))
    assert keywords["initial_pose"] == {"azimuth": 30.0, "elevation": -12.5, "distance": 3.0, "roll": 4.0}
    assert options.from_arguments(parse([]))["initial_pose"] is None
    assert options.from_arguments(parse([]), {"initial_pose": [10, 20]})["initial_pose"]["roll"] == 0.0
    with pytest.raises(AlignError, match="elevation"):
        options.from_arguments(parse(["--init-pose", "30", "95", "3", "0"]))
    with pytest.raises(SystemExit):
        parse(["--init-pose", "30", "20"])
    assert not hasattr(parse([], cues=False), "init_pose")  # the demo has its own photo


@pytest.mark.parametrize("value, expected", [
    ((10, 20), {"azimuth": 10.0, "elevation": 20.0, "roll": 0.0}),
    ({"azimuth": 1, "elevation": 2, "roll": 3}, {"azimuth": 1.0, "elevation": 2.0, "roll": 3.0}),
])
def test_start_pose_accepts_sequences_and_mappings(value, expected):
    pose = options.start_pose(value)
    assert {name: pose[name] for name in expected} == expected and math.isnan(pose["distance"])
    for bad in ((1,), (1, 2, 3, 4, 5), ("a", 2), (math.nan, 2), {"azimuth": 1}):
        with pytest.raises(AlignError):
            options.start_pose(bad)


def test_a_manifest_entry_overrides_box_and_mask(tmp_path):
    keywords = options.from_arguments(parse(["--mask", "global.png"]), {"bbox": [0, 0, 9, 9], "mask": "m.png"})
    assert keywords["bbox"] == [0, 0, 9, 9] and keywords["mask"].endswith("m.png")
    assert options.from_arguments(parse(["--mask", "//rel.png"]))["mask"] == "//rel.png"  # Blender resolves it


def test_demo_parser_has_no_cue_flags():
    args = parse([], cues=False)
    assert not hasattr(args, "bbox") and not hasattr(args, "mask")
    assert options.from_arguments(args)["options"] == PoseOptions()


def test_bad_values_raise_align_error_naming_them():
    with pytest.raises(AlignError, match="top_k"):
        options.from_arguments(parse(["--top-k", "0"]))
    with pytest.raises(AlignError, match="unknown"):
        options.pose_options({"nope": 1})


def test_json_ready_turns_non_finite_into_null():
    assert options.json_ready({"a": [1.0, math.inf], "b": (math.nan, 2)}) == {"a": [1.0, None], "b": [None, 2]}


def test_lru_keeps_the_most_recently_used():
    cache = LRU(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "a" is now the most recent
    cache.put("c", 3)
    assert "b" not in cache and cache.get("a") == 1 and cache.get("c") == 3 and len(cache) == 2
    assert cache.get("b", "missing") == "missing"


def test_batch_script_takes_the_same_refine_and_constraint_flags():
    from blender_gradhog import batch

    args = batch.parse_arguments(["--photo", "p.png", "--object", "Chair", "--out", "r.json", "--init-pose",
                                  "30", "20", "3", "0", "--level-camera", "--elevation-range", "0", "60"])
    keywords = options.from_arguments(args)
    assert keywords["initial_pose"] == {"azimuth": 30.0, "elevation": 20.0, "distance": 3.0, "roll": 0.0}
    assert keywords["options"] == PoseOptions(level_camera=True, elevation_range=(0.0, 60.0))
