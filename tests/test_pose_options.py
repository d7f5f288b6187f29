"""Tests of torch_backend.pose.options: one validated options object with every default once."""
import dataclasses

import pytest

from torch_backend.pose import HOG_VARIANTS, PoseOptions


def test_every_field_has_a_help_text_and_a_json_ready_default():
    options = PoseOptions()
    for field in dataclasses.fields(PoseOptions):
        assert PoseOptions.help(field.name).strip(), field.name
    as_dict = options.as_dict()
    assert set(as_dict) == {field.name for field in dataclasses.fields(PoseOptions)}
    assert isinstance(as_dict["elevations"], list)


def test_mode_dependent_weights_are_filled_per_mode_and_explicit_ones_kept():
    mask = PoseOptions().for_mode("mask")
    box = PoseOptions().for_mode("box")
    assert (mask.iou_weight, mask.hog_weight, mask.color_weight) == (1.0, 0.0, 0.0)
    assert (box.iou_weight, box.hog_weight, box.color_weight) == (0.0, 1.5, 1.5)
    assert PoseOptions(hog_weight=0.7).for_mode("mask").hog_weight == 0.7
    with pytest.raises(ValueError, match="mode"):
        PoseOptions().for_mode("sketch")


def test_from_mapping_names_unknown_options_and_keeps_the_base():
    base = PoseOptions(top_k=5)
    assert PoseOptions.from_mapping({"seed": 2}, base=base) == PoseOptions(top_k=5, seed=2)
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['iterationz'\]"):
        PoseOptions.from_mapping({"iterationz": 3})


@pytest.mark.parametrize("bad, message", [
    (dict(top_k=0), "top_k"),
    (dict(hog_variant="sift"), "hog_variant"),
    (dict(azimuth_step=0), "azimuth_step"),
    (dict(work_size=4), "work_size"),
    (dict(iterations=-1), "iterations"),
    (dict(iterations=2.5), "whole number"),
    (dict(learning_rate=float("nan")), "learning_rate"),
    (dict(box_weight=-1.0), "box_weight"),
    (dict(elevations=()), "elevations"),
    (dict(rolls=("a",)), "rolls"),
    (dict(seed="1"), "seed"),
])
def test_bad_values_are_refused_with_the_field_named(bad, message):
    with pytest.raises(ValueError, match=message):
        PoseOptions(**bad)


def test_numbers_are_normalised_and_sequences_become_tuples():
    options = PoseOptions(top_k=4.0, elevations=[0, 10], learning_rate=1)
    assert options.top_k == 4 and isinstance(options.top_k, int)
    assert options.elevations == (0.0, 10.0)
    assert isinstance(options.learning_rate, float)
    assert PoseOptions.default("hog_variant") == HOG_VARIANTS[0]
