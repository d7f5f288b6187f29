"""The built zip on every Blender the README lists: installed through Blender's own installer into
a clean user folder, enabled, the demo aligned and undone (``tests/blender/run_installed_align.py``).

- ``bpy`` 4.2 LTS, 4.5 LTS and 5.0.1 from PyPI, each in its own throw-away venv under
  ``.cache/bpy-venvs/<version>`` (made on first use; pip caches the ~375 MB wheels), through the
  4.2+ extension installer (``extensions.package_install_files``);
- Debian's Blender 3.4 binary (``blender`` on PATH), through the legacy add-on installer.

torch, numpy and pillow reach every Blender the offline way the add-on documents: its PyTorch
Folder preference pointed at a folder of symlinks into this interpreter's site-packages.
Run with ``pytest -m versions`` (CI runs it after the default suite).
"""
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import build_addon

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "blender"))
import helpers  # noqa: E402

pytestmark = [pytest.mark.versions, pytest.mark.slow]

BPY_VERSIONS = ("4.2.23", "4.5.15", "5.0.1")
VENVS = ROOT / ".cache" / "bpy-venvs"


@pytest.fixture(scope="module")
def built_zip(tmp_path_factory):
    return build_addon.build(tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="module")
def torch_folder(tmp_path_factory):
    pytest.importorskip("torch")
    return helpers.link_torch_folder(tmp_path_factory.mktemp("torch_site"))


def bpy_python(version: str) -> Path:
    """The Python of a venv holding ``bpy==version`` (created and filled on first use)."""
    venv = VENVS / version
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import bpy, sys; sys.stdout.write(bpy.app.version_string)"]
    if python.exists() and subprocess.run(probe, capture_output=True, text=True).stdout.startswith(version):
        return python
    shutil.rmtree(venv, ignore_errors=True)
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(venv)], check=True)
    install = subprocess.run([str(python), "-m", "pip", "install", "-q", f"bpy=={version}"],
                             capture_output=True, text=True, timeout=1800)
    if install.returncode != 0:
        pytest.fail(f"pip install bpy=={version} failed: {install.stderr[-2000:]}")
    return python


def run_installed(tmp_path, command_head, zip_path, mode, torch_folder):
    home = tmp_path / "home"
    home.mkdir()
    result_path = home / "result.json"
    command = [*command_head, "--", "--zip", str(zip_path), "--mode", mode, "--torch-folder", str(torch_folder),
               "--demo", "--result", str(result_path)]
    started = time.perf_counter()
    run = subprocess.run(command, cwd=tmp_path, env=helpers.blender_user_env(home),
                         capture_output=True, text=True, timeout=1200)
    seconds = time.perf_counter() - started
    result = json.loads(result_path.read_text()) if result_path.exists() else {}
    log = "\n".join(line for line in (run.stdout + run.stderr).splitlines() if "render  " not in line)
    print(f"{result.get('blender')}: {seconds:.0f} s, demo {result.get('demo')}")
    return run, result, log[-5000:]


def assert_installed_and_aligned(run, result, log, home):
    assert run.returncode == 0, log
    assert result.get("ok") is True, log
    assert result["module_file"].startswith(str(home)), result["module_file"]
    for name in ("install", "enable", "installed copy", "torch importable", "vendored torch_backend",
                 "demo aligned", "undo restores the camera", "redo re-applies the alignment"):
        assert result["checks"][name]["ok"], (name, result["checks"][name])


@pytest.mark.bpy
@pytest.mark.parametrize("version", BPY_VERSIONS)
def test_bpy_extension_install_aligns_the_demo_and_undoes(version, built_zip, torch_folder, tmp_path):
    python = bpy_python(version)
    script = ROOT / "tests" / "blender" / "run_installed_align.py"
    run, result, log = run_installed(tmp_path, [str(python), str(script)], built_zip, "extension", torch_folder)
    assert result.get("blender", "").startswith(version), (result.get("blender"), log)
    assert_installed_and_aligned(run, result, log, tmp_path / "home")


@pytest.mark.blender
def test_debian_blender_legacy_install_aligns_the_demo_and_undoes(built_zip, torch_folder, tmp_path):
    blender = shutil.which("blender")
    if blender is None:
        pytest.skip("no blender binary on PATH")
    script = ROOT / "tests" / "blender" / "run_installed_align.py"
    head = [blender, "-b", "--factory-startup", "--python-exit-code", "1", "--python", str(script)]
    run, result, log = run_installed(tmp_path, head, built_zip, "legacy", torch_folder)
    assert_installed_and_aligned(run, result, log, tmp_path / "home")
