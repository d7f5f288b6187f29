"""PyTorch (and numpy, pillow) for the add-on: where they live, how they get there, whether they load.

PyTorch is far too big to ship inside the add-on zip, so the add-on installs it on request, with
Blender's own Python, into a private folder (``pip install --target``), and puts that folder on
``sys.path``. The folder is

- Blender 4.2+ extension: ``bpy.utils.extension_path_user(__package__)/site-packages-py3.X``
  (e.g. ``~/.config/blender/4.2/extensions/.user/user_default/gradhog/site-packages-py3.11``);
- legacy add-on: ``<user scripts>/gradhog_deps/site-packages-py3.X``
  (e.g. ``~/.config/blender/3.4/scripts/gradhog_deps/site-packages-py3.11``).

The Python version is part of the name because wheels are built per Python minor version. Offline
machines point the add-on's preferences at any folder that already holds ``torch`` instead.

This module imports without ``bpy``: the pip command and its progress parsing are plain Python.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import queue
import re
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

# Kept equal to [project].dependencies in pyproject.toml (tests/test_build_addon.py checks it).
TORCH_REQUIREMENT = "torch==2.13.0"
NUMPY_REQUIREMENT = "numpy>=1.26,<2"
PILLOW_REQUIREMENT = "pillow>=9"
# PyPI's Linux/Windows torch wheels pull in GBs of CUDA libraries; the CPU index has the small build.
TORCH_CPU_INDEX_URL = "https://download.pytorch.org/whl/cpu"
PYPI_INDEX_URL = "https://pypi.org/simple"

_ROOT_PACKAGE = __package__ or "blender_gradhog"


def site_dir_name() -> str:
    """Name of the per-Python-version folder the packages go to, e.g. ``site-packages-py3.11``."""
    return f"site-packages-py{sys.version_info[0]}.{sys.version_info[1]}"


def default_deps_dir(package: str = _ROOT_PACKAGE) -> Path:
    """Folder the **Install PyTorch** button installs into (needs ``bpy``; not created here).

    ``package`` is the add-on's package name: ``bl_ext.<repo>.gradhog`` for an extension,
    ``blender_gradhog`` for a legacy add-on or a checkout.
    """
    import bpy

    if package.startswith("bl_ext.") and hasattr(bpy.utils, "extension_path_user"):
        base = Path(bpy.utils.extension_path_user(package, create=True))
    else:
        base = Path(bpy.utils.user_resource("SCRIPTS", path="gradhog_deps"))
    return base / site_dir_name()


def add_to_sys_path(folder: str | os.PathLike) -> bool:
    """Append ``folder`` to ``sys.path`` (after Blender's own modules) if it exists; True if on it.

    Appending, not prepending, keeps Blender's bundled numpy & co. in charge when both exist.
    """
    folder = os.path.abspath(os.fspath(folder))
    if not os.path.isdir(folder):
        return False
    if folder not in sys.path:
        sys.path.append(folder)
        importlib.invalidate_caches()
    return True


def configured_folders(package: str = _ROOT_PACKAGE) -> list[Path]:
    """The folders that may hold torch: the user's folder from the preferences, then the default."""
    folders = []
    try:
        import bpy

        addon = bpy.context.preferences.addons.get(package)
        prefs = getattr(addon, "preferences", None)
        custom = getattr(prefs, "torch_folder", "") if prefs is not None else ""
        if custom:
            folders.append(Path(bpy.path.abspath(custom)))
        folders.append(default_deps_dir(package))
    except (ImportError, AttributeError, ValueError):
        # Without Blender (or before the preferences exist) only sys.path as it is counts.
        pass
    return folders


def protect_multiprocessing_main() -> None:
    """Stop Blender 3.x from crashing at exit once torch has been imported from a script.

    ``import multiprocessing`` (torch does it) aliases ``sys.modules["__mp_main__"]`` to the current
    ``__main__``. Inside ``blender --python script.py`` that is the script's temporary ``__main__``,
    which Blender frees when the script ends; at quit ``addon_utils.disable_all()`` reads an
    attribute of every module and segfaults on the freed one (seen with Debian's Blender 3.4.1, exit
    code 139 after a successful run). A module of our own in that slot is never freed. The alias only
    matters to spawned worker processes, which nothing inside Blender starts.
    """
    import multiprocessing  # noqa: F401  (imported now so that torch's import cannot re-alias it)
    import types

    if type(sys.modules.get("__mp_main__")).__name__ != "_GradhogMainPlaceholder":
        placeholder = type("_GradhogMainPlaceholder", (types.ModuleType,), {})("__mp_main__")
        sys.modules["__mp_main__"] = placeholder


def hide_torch_from_addon_utils() -> None:
    """Keep Blender from calling ``unregister()`` on torch's namespace modules at quit.

    ``addon_utils.disable_all()`` treats every module with a truthy ``__addon_enabled__`` as an
    add-on; ``torch.ops`` and ``torch.classes`` answer any attribute, so Blender printed
    "Exception in module unregister(): '_ops.py'" at every quit after torch was imported.
    """
    for name, module in list(sys.modules.items()):
        if name.split(".")[0] == "torch" and name in ("torch.ops", "torch.classes"):
            try:
                module.__addon_enabled__ = False
            except (AttributeError, TypeError):
                pass


def ensure_torch_path(package: str = _ROOT_PACKAGE) -> list[str]:
    """Put the configured torch folder(s) on ``sys.path``; return the folders that are now on it.

    Called by the add-on at register and before each alignment. Cheap: it never imports torch.
    Inside Blender it also applies :func:`protect_multiprocessing_main`.
    """
    if "bpy" in sys.modules:
        protect_multiprocessing_main()
    return [str(folder) for folder in configured_folders(package) if add_to_sys_path(folder)]


def missing_modules() -> list[str]:
    """Names among torch/numpy/PIL that cannot be found on ``sys.path`` (no import happens)."""
    return [name for name in ("torch", "numpy", "PIL") if importlib.util.find_spec(name) is None]


@dataclass
class TorchStatus:
    """What the preferences show: torch importable?, its version and devices, or why not."""

    importable: bool
    version: str = ""
    cuda_available: bool = False
    numpy_version: str = ""
    location: str = ""
    error: str = ""

    def summary(self) -> str:
        """One line for the UI, e.g. ``PyTorch 2.13.0+cpu (CPU only), numpy 1.26.4``."""
        if not self.importable:
            return f"PyTorch not available: {self.error}"
        device = "CUDA available" if self.cuda_available else "CPU only"
        numpy_part = f", numpy {self.numpy_version}" if self.numpy_version else ", numpy missing"
        return f"PyTorch {self.version} ({device}){numpy_part}"


def torch_status() -> TorchStatus:
    """Import torch (seconds the first time) and report its version, CUDA and numpy."""
    importlib.invalidate_caches()
    if "bpy" in sys.modules:
        protect_multiprocessing_main()
    try:
        import torch
    except Exception as error:  # ImportError, or a broken install raising OSError/RuntimeError.
        return TorchStatus(importable=False, error=f"{type(error).__name__}: {error}")
    if "bpy" in sys.modules:
        hide_torch_from_addon_utils()
    try:
        import numpy

        numpy_version = numpy.__version__
    except Exception:
        numpy_version = ""
    try:
        cuda = bool(torch.cuda.is_available())
    except Exception:
        cuda = False
    return TorchStatus(
        importable=True,
        version=str(torch.__version__),
        cuda_available=cuda,
        numpy_version=numpy_version,
        location=str(Path(torch.__file__).parent.parent),
    )


def requirements(missing: list[str] | None = None) -> list[str]:
    """Requirement strings to install: torch always, numpy and pillow only where Blender lacks them.

    Blender 4.x bundles numpy (possibly 2.x, which torch also supports); installing a second numpy
    next to it would only shadow or be shadowed, so it is left alone. Debian's Blender has neither.
    """
    missing = missing_modules() if missing is None else missing
    wanted = [TORCH_REQUIREMENT]
    if "numpy" in missing:
        wanted.append(NUMPY_REQUIREMENT)
    if "PIL" in missing:
        wanted.append(PILLOW_REQUIREMENT)
    return wanted


def pip_install_command(
    target: str | os.PathLike,
    *,
    python: str | None = None,
    wheels_folder: str | os.PathLike | None = None,
    packages: list[str] | None = None,
    platform: str = sys.platform,
) -> list[str]:
    """The ``pip install --target`` command line the Install button runs.

    ``wheels_folder``: install offline from local ``.whl`` files (``--no-index --find-links``).
    Otherwise torch comes from the PyTorch CPU index on Linux/Windows (PyPI as the extra index for
    its dependencies) and from PyPI on macOS (whose PyPI wheels are already CPU/MPS builds).
    """
    command = [
        python or sys.executable, "-m", "pip", "install",
        "--target", os.fspath(target),
        "--upgrade", "--no-input", "--disable-pip-version-check", "--progress-bar", "off",
        "--only-binary", ":all:",
    ]
    if wheels_folder:
        command += ["--no-index", "--find-links", os.fspath(wheels_folder)]
    elif platform != "darwin":
        command += ["--index-url", TORCH_CPU_INDEX_URL, "--extra-index-url", PYPI_INDEX_URL]
    return command + list(packages if packages is not None else requirements())


# pip's line prefixes in the order they appear; each moves the progress bar forward.
_PIP_STAGES = (
    (re.compile(r"^(Looking in|Processing|Collecting)\b"), 0.05),
    (re.compile(r"^\s*Downloading\b"), 0.10),
    (re.compile(r"^\s*Using cached\b"), 0.10),
    (re.compile(r"^Installing collected packages"), 0.70),
    (re.compile(r"^Successfully installed"), 1.0),
)


def progress_from_line(line: str, previous: float, downloads_seen: int = 0) -> float:
    """Map one line of pip output to a progress fraction in [0, 1] (never going backwards).

    pip prints no overall percentage with ``--progress-bar off``; downloads (the slow part, torch is
    ~200 MB) approach 0.65 one package at a time, then install and success finish the bar.
    """
    for pattern, value in _PIP_STAGES:
        if pattern.search(line):
            if value == 0.10:
                value = 0.10 + 0.55 * (1.0 - 0.7 ** max(downloads_seen, 1))
            return max(previous, value)
    return previous


@dataclass
class PipInstall:
    """A ``pip install`` running in the background; :meth:`poll` it from a Blender timer.

    Output is read by a thread (a blocking pipe read must never stall Blender's UI) into a queue.
    """

    command: list[str]
    target: Path
    progress: float = 0.0
    last_line: str = ""
    log: list[str] = field(default_factory=list)
    returncode: int | None = None
    _downloads: int = 0
    _process: subprocess.Popen | None = None
    _lines: queue.Queue = field(default_factory=queue.Queue)
    _reader: threading.Thread | None = None

    def start(self) -> "PipInstall":
        """Create the target folder and start pip; returns self."""
        self.target.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, PYTHONNOUSERSITE="1", PIP_NO_WARN_SCRIPT_LOCATION="1")
        self._process = subprocess.Popen(
            self.command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            text=True, bufsize=1, env=env,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:
            self._lines.put(line.rstrip())
        self._process.stdout.close()

    def poll(self) -> bool:
        """Consume new output, update :attr:`progress`/:attr:`last_line`; True once pip has exited."""
        while True:
            try:
                line = self._lines.get_nowait()
            except queue.Empty:
                break
            if not line:
                continue
            self.log.append(line)
            self.last_line = line
            if re.match(r"^\s*Downloading\b", line):
                self._downloads += 1
            self.progress = progress_from_line(line, self.progress, self._downloads)
        if self._process is None:
            return True
        code = self._process.poll()
        if code is None or (self._reader is not None and self._reader.is_alive()):
            return False
        if self.returncode is None:
            self.returncode = code
            self.poll()  # Lines that arrived between the last read and exit.
            if code == 0:
                self.progress = 1.0
        return True

    def wait(self, timeout: float | None = None) -> int:
        """Block until pip exits (background mode, tests); return its exit code."""
        assert self._process is not None
        self._process.wait(timeout=timeout)
        if self._reader is not None:
            self._reader.join(timeout=10)
        while not self.poll():
            pass
        return int(self.returncode)

    def cancel(self) -> None:
        """Stop pip (Esc in Blender). A partly written target folder is left for pip to redo."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()

    def failure_reason(self) -> str:
        """The most telling line of a failed run's output (pip's last ERROR line, else the last line)."""
        errors = [line for line in self.log if line.startswith("ERROR")]
        return (errors[-1] if errors else self.last_line) or f"pip exited with code {self.returncode}"


def pip_available(python: str | None = None) -> bool:
    """True when ``python -m pip`` runs (Debian's system Python may lack pip; official Blender has it)."""
    try:
        result = subprocess.run(
            [python or sys.executable, "-m", "pip", "--version"],
            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def ensure_pip(python: str | None = None) -> tuple[bool, str]:
    """Make ``pip`` available to ``python`` with ``ensurepip --user`` if needed; (ok, message)."""
    if pip_available(python):
        return True, "pip available"
    try:
        result = subprocess.run(
            [python or sys.executable, "-m", "ensurepip", "--user", "--default-pip"],
            capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return False, f"could not run ensurepip: {error}"
    if result.returncode == 0 and pip_available(python):
        return True, "pip installed with ensurepip"
    tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
    return False, (
        f"Blender's Python ({python or sys.executable}) has no pip and ensurepip failed ({tail[0]}); "
        "install pip for it (Debian: apt install python3-pip) or use the 'PyTorch folder' field"
    )
