"""build_addon.py: the zip's layout, metadata and reproducibility; installing it with bpy 5.0.1
(legacy add-on and 4.2+ extension routes, in a subprocess with a throw-away user folder) and
aligning through the installed copy."""
import ast
import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

import build_addon

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "blender"))
import helpers  # noqa: E402  (tests/blender/helpers.py)


@pytest.fixture(scope="module")
def built_zip(tmp_path_factory):
    return build_addon.build(tmp_path_factory.mktemp("dist"))


def _files(zip_path):
    with zipfile.ZipFile(zip_path) as archive:
        return [name for name in archive.namelist() if not name.endswith("/")]


def test_zip_name_and_single_top_folder(built_zip):
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert built_zip.name == f"gradhog-{version}.zip"
    names = _files(built_zip)
    assert {name.split("/")[0] for name in names} == {"blender_gradhog"}
    for required in ("__init__.py", "blender_manifest.toml", "deps.py", "preferences.py", "_backend.py",
                     "torch_backend/__init__.py"):
        assert f"blender_gradhog/{required}" in names, required


def test_zip_vendors_every_torch_backend_module_and_nothing_else(built_zip):
    names = set(_files(built_zip))
    checkout = {p.relative_to(ROOT).as_posix() for p in (ROOT / "torch_backend").rglob("*.py")
                if "__pycache__" not in p.parts}
    assert "torch_backend/pose/options.py" in checkout  # subpackages too
    vendored = {n.removeprefix("blender_gradhog/") for n in names if n.startswith("blender_gradhog/torch_backend/")}
    assert checkout <= vendored
    for name in names:
        assert "__pycache__" not in name and "/tests/" not in name
        assert not name.endswith((".pyc", ".whl", ".so")), name
    # Inside Blender there is no top-level torch_backend: every import of it in the zip is relative.
    with zipfile.ZipFile(built_zip) as archive:
        for name in names:
            if not name.endswith(".py"):
                continue
            tree = ast.parse(archive.read(name).decode("utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.level == 0:
                    assert not (node.module or "").startswith("torch_backend"), f"{name}: absolute import"
                if isinstance(node, ast.Import):
                    assert not any(a.name.startswith("torch_backend") for a in node.names), name


def test_absolute_core_imports_are_made_relative():
    source = "from torch_backend.hog import hog\n    from torch_backend import cli\nimport torch\n"
    assert build_addon.relative_core_imports(source, "blender_gradhog/torch_backend/invert.py") == (
        "from .hog import hog\n    from . import cli\nimport torch\n")
    assert build_addon.relative_core_imports(source, "blender_gradhog/cli.py") == (
        "from .torch_backend.hog import hog\n    from .torch_backend import cli\nimport torch\n")


def test_manifest_fields_and_version_agree(built_zip):
    with zipfile.ZipFile(built_zip) as archive:
        manifest = tomllib.loads(archive.read("blender_gradhog/blender_manifest.toml").decode())
        init_source = archive.read("blender_gradhog/__init__.py").decode()
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert manifest["schema_version"] == "1.0.0"
    assert manifest["id"] == "gradhog" and manifest["type"] == "add-on"
    assert manifest["version"] == version
    assert manifest["blender_version_min"] == "4.2.0"
    assert manifest["license"] == ["SPDX:GPL-3.0-or-later"]
    assert set(manifest["permissions"]) == {"files", "network"}
    for key in ("name", "tagline", "maintainer"):
        assert manifest[key]
    bl_info = next(ast.literal_eval(node.value) for node in ast.parse(init_source).body
                   if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "bl_info")
    assert ".".join(map(str, bl_info["version"])) == version
    # The checked-in manifest is kept equal too, so that nobody reads a stale version.
    checked_in = tomllib.loads((ROOT / "blender_gradhog" / "blender_manifest.toml").read_text())
    assert checked_in["version"] == version


def test_build_is_reproducible(built_zip, tmp_path):
    assert build_addon.build(tmp_path).read_bytes() == built_zip.read_bytes()


def test_version_mismatch_stops_the_build(tmp_path):
    for name in ("blender_gradhog", "torch_backend"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    pyproject = (ROOT / "pyproject.toml").read_text().replace('version = "', 'version = "9', 1)
    (tmp_path / "pyproject.toml").write_text(pyproject)
    with pytest.raises(build_addon.BuildError, match="version mismatch"):
        build_addon.build(tmp_path / "dist", root=tmp_path)


def test_command_line_prints_the_zip(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "build_addon.py"), "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "gradhog-" in result.stdout and (tmp_path / result.stdout.split()[0].split("/")[-1]).exists()


# ---------------------------------------------------------------------------------------------
# With bpy 5.0.1: Blender's own validator and both install routes, in a subprocess.
# ---------------------------------------------------------------------------------------------

def _blender_ext_cli():
    import importlib.util

    spec = importlib.util.find_spec("bpy")
    matches = sorted(Path(spec.origin).parent.glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
    if not matches:
        pytest.skip("this bpy build has no bl_pkg extension CLI")
    return matches[-1]


@pytest.mark.bpy
def test_blender_validates_the_extension_zip(built_zip):
    result = subprocess.run([sys.executable, str(_blender_ext_cli()), "validate", str(built_zip)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success" in result.stdout


def _api_has_align():
    source = ROOT / "blender_gradhog" / "api.py"
    return source.exists() and "def align(" in source.read_text(encoding="utf-8")


def _run_installed(tmp_path, zip_path, mode, extra=()):
    home = tmp_path / "home"
    home.mkdir()
    wheels = tmp_path / "wheels"
    helpers.make_probe_wheel(wheels)
    result_path = home / "result.json"
    command = [sys.executable, str(ROOT / "tests" / "blender" / "run_installed_align.py"), "--",
               "--zip", str(zip_path), "--mode", mode, "--probe-wheels", str(wheels),
               "--result", str(result_path), *extra]
    # Outside the checkout, so the working directory cannot make the checkout importable.
    run = subprocess.run(command, cwd=tmp_path, env=helpers.blender_user_env(home),
                         capture_output=True, text=True, timeout=900)
    result = json.loads(result_path.read_text()) if result_path.exists() else {}
    return run, result


def _assert_installed_run(run, result, home_prefix):
    log = (run.stdout + run.stderr)[-4000:]
    assert run.returncode == 0, log
    assert result.get("ok") is True, log
    assert result["module_file"].startswith(str(home_prefix)), result["module_file"]
    checks = result["checks"]
    for name in ("install", "enable", "installed copy", "torch importable", "install operator",
                 "installed package importable", "vendored torch_backend"):
        assert checks[name]["ok"], (name, checks[name])
    assert result["prefs_registered"] is True


@pytest.mark.bpy
@pytest.mark.parametrize("mode", ["legacy", "extension"])
def test_install_enable_and_align_with_bpy(built_zip, tmp_path, mode):
    extra = ["--align"] if _api_has_align() else []
    run, result = _run_installed(tmp_path, built_zip, mode, extra)
    _assert_installed_run(run, result, tmp_path / "home")
    expected_dir = {"legacy": "scripts/addons/blender_gradhog", "extension": "extensions/user_default/gradhog"}[mode]
    assert expected_dir in result["module_file"]
    if extra:
        assert result["checks"]["view direction recovered"]["ok"]
        assert result["checks"]["camera custom properties"]["ok"]
