"""Import point for the pure-torch core, wherever it lives.

In a checkout (and a pip install) ``torch_backend`` is a top-level package; in the built add-on zip
it is vendored as ``blender_gradhog.torch_backend``. Import it through :func:`load` inside
functions, never at module level, so the add-on registers (and can say "install PyTorch") even
when torch is missing.
"""
from __future__ import annotations

import importlib
from types import ModuleType


def load(submodule: str = "") -> ModuleType:
    """Return ``torch_backend`` (or ``torch_backend.<submodule>``), vendored copy first."""
    suffix = f".{submodule}" if submodule else ""
    try:
        return importlib.import_module(f"{__package__}.torch_backend{suffix}")
    except ModuleNotFoundError as error:
        if not (error.name or "").startswith(f"{__package__}.torch_backend"):
            raise
    return importlib.import_module(f"torch_backend{suffix}")
