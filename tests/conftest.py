"""Shared pytest configuration: markers that skip cleanly when an optional dependency is absent."""
import ctypes.util
import importlib.util
import shutil

import pytest


def _has_module(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def pytest_collection_modifyitems(config, items):
    missing = {
        "bpy": None if _has_module("bpy") else "bpy (Blender as a Python module) is not installed",
        "blender": None if shutil.which("blender") else "no `blender` binary on PATH",
        "vlfeat": None if ctypes.util.find_library("vl") else "libvl (Debian libvlfeat-dev) not found",
    }
    for item in items:
        for marker, reason in missing.items():
            if reason and marker in item.keywords:
                item.add_marker(pytest.mark.skip(reason=reason))
