"""The add-on's one way to what may be missing: NumPy, PyTorch and the pure-torch core.

The core, ``torch_backend``, is a top-level package in a checkout (and a pip install); the add-on
zip vendors it as ``blender_gradhog.torch_backend``. :data:`package` is the vendored copy when there
is one, else the installed package: :func:`_find_package` is the one vendored-or-installed switch.
It goes by module name because no statement in the zip may import a top-level ``torch_backend``,
which Blender does not have (``tests/test_build_addon.py`` checks). The core's torch-free parts
(``cli``, ``LRU``, the pose options) are imported at once; :func:`core` imports the torch ones on
first use, so the add-on registers (and says how to install PyTorch) in a Blender without torch,
or even without NumPy.
"""
from __future__ import annotations

import importlib
from types import ModuleType

from . import deps
from .errors import AlignError


def _find_package() -> ModuleType:
    """``blender_gradhog.torch_backend`` if the add-on vendors it, else the top-level ``torch_backend``."""
    try:
        return importlib.import_module(".torch_backend", __package__)  # the add-on zip
    except ModuleNotFoundError as error:
        if error.name != f"{__package__}.torch_backend":
            raise
    return importlib.import_module("torch_backend")  # a checkout or a pip install


def _submodule(name: str) -> ModuleType:
    return importlib.import_module(f"{package.__name__}.{name}")


package = _find_package()
cli = _submodule("cli")
pose_options = _submodule("pose.options")
LRU = _submodule("lru").LRU

TORCH_MISSING = "PyTorch is not installed: open Preferences ▸ Add-ons ▸ GradHOG ▸ Install PyTorch"
#: The core's modules the add-on uses; they import torch.
TORCH_MODULES = ("camera", "hog", "images", "invert", "masks", "meshes", "pose")


class _LazyNumpy:
    """NumPy, imported on first use: loading a photo, adding a camera or drawing the panel must work
    in a Blender built without NumPy (the panel then says what to install)."""

    def __getattr__(self, name: str):
        import numpy

        return getattr(numpy, name)


np = _LazyNumpy()


def float64():
    """``torch.float64`` (torch imported on first use, after :func:`core` made it importable)."""
    import torch

    return torch.float64


def exif() -> ModuleType | None:
    """``torch_backend.exif`` (EXIF orientation and lens: NumPy and Pillow, no torch), or ``None``
    in a Blender without Pillow."""
    try:
        return _submodule("exif")
    except ImportError:
        return None


def core() -> ModuleType:
    """``torch_backend`` with its torch modules imported: ``core().pose.estimate_pose``, ``core().camera``...

    Raises:
        AlignError: PyTorch or NumPy cannot be imported (the message says how to install them).
    """
    deps.ensure_torch_path(__package__)  # a PyTorch installed from the add-on preferences
    try:
        import numpy  # noqa: F401  (installed with PyTorch by the preferences' button)
        import torch  # noqa: F401  (the most common missing piece, named in the message)
    except ImportError:
        raise AlignError(TORCH_MISSING) from None
    # torch.ops/torch.classes look like add-ons to Blender's quit handler; hide them.
    deps.hide_torch_from_addon_utils()
    try:
        for name in TORCH_MODULES:
            _submodule(name)
    except ModuleNotFoundError as error:
        if (error.name or "").split(".")[0] in ("torch", "numpy"):
            raise AlignError(TORCH_MISSING) from None
        raise
    return package
