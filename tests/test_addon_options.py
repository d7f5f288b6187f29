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
                        "focal_length": 'EXIF', "lens_mm": None, "sensor_width_mm": None,
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
