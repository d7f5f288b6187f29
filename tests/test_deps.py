"""blender_gradhog.deps without Blender: requirements, the pip command, progress parsing and a real
background ``pip install --no-index`` of a tiny wheel."""
import sys
import tomllib
from pathlib import Path

import pytest

from blender_gradhog import deps

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "blender"))
import helpers  # noqa: E402


def test_pins_match_pyproject():
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    normalized = {requirement.replace(" ", "") for requirement in declared}
    for pin in (deps.TORCH_REQUIREMENT, deps.NUMPY_REQUIREMENT, deps.PILLOW_REQUIREMENT):
        assert pin.replace(" ", "") in normalized, pin


def test_requirements_only_add_what_blender_lacks():
    assert deps.requirements(missing=[]) == [deps.TORCH_REQUIREMENT]
    assert deps.requirements(missing=["numpy", "PIL"]) == [
        deps.TORCH_REQUIREMENT, deps.NUMPY_REQUIREMENT, deps.PILLOW_REQUIREMENT]


def test_pip_command_uses_cpu_index_or_local_wheels(tmp_path):
    online = deps.pip_install_command(tmp_path, python="py", packages=["torch==2.13.0"], platform="linux")
    assert online[:4] == ["py", "-m", "pip", "install"]
    assert online[online.index("--target") + 1] == str(tmp_path)
    assert online[online.index("--index-url") + 1] == deps.TORCH_CPU_INDEX_URL
    assert online[-1] == "torch==2.13.0"
    offline = deps.pip_install_command(tmp_path, python="py", wheels_folder="/w", packages=["x"], platform="linux")
    assert "--no-index" in offline and offline[offline.index("--find-links") + 1] == "/w"
    assert "--index-url" not in offline
    mac = deps.pip_install_command(tmp_path, python="py", packages=["x"], platform="darwin")
    assert "--index-url" not in mac


def test_progress_moves_forward_only():
    lines = ["Looking in indexes: x", "Collecting torch==2.13.0", "  Downloading torch-2.13.0.whl (190 MB)",
             "Collecting numpy", "  Downloading numpy.whl", "Installing collected packages: numpy, torch",
             "Successfully installed numpy torch"]
    progress, downloads, seen = 0.0, 0, []
    for line in lines:
        downloads += line.strip().startswith("Downloading")
        progress = deps.progress_from_line(line, progress, downloads)
        seen.append(progress)
    assert seen == sorted(seen) and 0 < seen[0] < seen[2] < seen[5] < seen[-1] == 1.0
    assert deps.progress_from_line("some warning", 0.4) == 0.4


def test_background_pip_install_of_a_local_wheel(tmp_path):
    wheels = tmp_path / "wheels"
    helpers.make_probe_wheel(wheels)
    target = tmp_path / "target"
    command = deps.pip_install_command(target, wheels_folder=wheels, packages=["gradhog_probe"])
    job = deps.PipInstall(command, target).start()
    assert job.wait(timeout=300) == 0, "\n".join(job.log)
    assert job.progress == 1.0 and any(line.startswith("Successfully installed") for line in job.log)
    assert (target / "gradhog_probe" / "__init__.py").exists()
    added = deps.add_to_sys_path(target)
    try:
        assert added and str(target) == sys.path[-1]
        import gradhog_probe

        assert gradhog_probe.VALUE == 42
    finally:
        sys.path.remove(str(target))
        sys.modules.pop("gradhog_probe", None)


def test_failed_pip_reports_its_error(tmp_path):
    command = deps.pip_install_command(tmp_path / "t", wheels_folder=tmp_path, packages=["no_such_pkg_xyz"])
    job = deps.PipInstall(command, tmp_path / "t").start()
    assert job.wait(timeout=300) != 0
    assert "no_such_pkg_xyz" in job.failure_reason()


def test_add_to_sys_path_ignores_missing_folders(tmp_path):
    assert deps.add_to_sys_path(tmp_path / "absent") is False
    assert str(tmp_path / "absent") not in sys.path


def test_status_reports_this_torch():
    pytest.importorskip("torch")
    status = deps.torch_status()
    assert status.importable and status.version.startswith("2.")
    assert "PyTorch" in status.summary()
