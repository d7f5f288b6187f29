"""The built zip in a real Blender binary (Debian's 3.4.1 in CI: Python 3.11 without numpy).

Each test runs ``blender -b --factory-startup --python-exit-code 1 --python
tests/blender/run_installed_align.py`` with every Blender user folder moved to a temp dir. torch,
numpy and pillow come from this interpreter's site-packages as symlinks (no download).
"""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import build_addon

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "blender"))
import helpers  # noqa: E402

pytestmark = pytest.mark.blender


@pytest.fixture(scope="module")
def built_zip(tmp_path_factory):
    return build_addon.build(tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="module")
def torch_folder(tmp_path_factory):
    pytest.importorskip("torch")
    return helpers.link_torch_folder(tmp_path_factory.mktemp("torch_site"))


def run_blender(tmp_path, zip_path, *script_args):
    home = tmp_path / "home"
    home.mkdir()
    wheels = helpers.make_probe_wheel(tmp_path / "wheels").parent
    result_path = home / "result.json"
    command = [shutil.which("blender"), "-b", "--factory-startup", "--python-exit-code", "1",
               "--python", str(ROOT / "tests" / "blender" / "run_installed_align.py"), "--",
               "--zip", str(zip_path), "--mode", "legacy", "--probe-wheels", str(wheels),
               "--result", str(result_path), *script_args]
    run = subprocess.run(command, cwd=tmp_path, env=helpers.blender_user_env(home),
                         capture_output=True, text=True, timeout=900)
    result = json.loads(result_path.read_text()) if result_path.exists() else {}
    log = "\n".join(line for line in (run.stdout + run.stderr).splitlines() if "render  " not in line)
    return run, result, log[-5000:]


def test_install_with_torch_already_in_default_folder(built_zip, torch_folder, tmp_path):
    """Manual route (docs/blender_support.md): torch in the add-on's default folder, then install + enable."""
    run, result, log = run_blender(tmp_path, built_zip, "--torch-in-default-folder", str(torch_folder))
    assert run.returncode == 0, log
    assert result.get("ok") is True, log
    checks = result["checks"]
    assert result["module_file"].startswith(str(tmp_path / "home" / "scripts" / "addons")), result["module_file"]
    for name in ("default deps folder on sys.path", "torch importable", "install operator",
                 "installed package importable", "vendored torch_backend"):
        assert checks[name]["ok"], (name, checks[name])
    assert result["prefs_registered"] is True


def test_enable_without_numpy_then_point_preferences_at_torch_and_align(built_zip, torch_folder, tmp_path):
    """Artist route on a Blender without numpy: enable first (no torch, no numpy anywhere), then set
    the PyTorch Folder preference, then align a small scene through the installed add-on."""
    run, result, log = run_blender(tmp_path, built_zip, "--torch-folder", str(torch_folder), "--align")
    assert run.returncode == 0, log
    assert result.get("ok") is True, log
    checks = result["checks"]
    assert result["module_file"].startswith(str(tmp_path / "home" / "scripts" / "addons")), result["module_file"]
    for name in ("enable", "torch folder on sys.path", "torch importable", "install operator",
                 "vendored torch_backend", "camera custom properties", "view direction recovered",
                 "distance recovered"):
        assert checks[name]["ok"], (name, checks[name])
    assert result["prefs_registered"] is True
    if result["blender"].startswith("3.4"):  # Debian's build: no numpy until the folder is set
        assert result["numpy_found_after_enable"] is False and result["torch_found_after_enable"] is False


@pytest.mark.slow
def test_install_button_downloads_torch_then_align(built_zip, tmp_path):
    """The artist's button for real: pip downloads torch 2.13 CPU (+numpy, pillow) into the deps
    folder (~1 GB on disk, minutes), then an alignment runs on it. Needs network; slow."""
    run, result, log = run_blender(tmp_path, built_zip, "--install-torch", "--align")
    assert run.returncode == 0, log
    assert result.get("ok") is True, log
    for name in ("Install PyTorch (CPU)", "torch from the deps folder", "view direction recovered"):
        assert result["checks"][name]["ok"], (name, result["checks"][name])
