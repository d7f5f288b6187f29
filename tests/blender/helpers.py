"""Helpers for the real-Blender tests and the screenshot script (run with the project's Python).

- :func:`link_torch_folder`: a folder that holds torch, numpy, pillow and their dependencies as
  symlinks into this Python's site-packages: what a user gets with ``pip install --target``,
  without downloading anything (CI caches nothing and the CPU torch index may be unreachable).
- :func:`make_probe_wheel`: a tiny pure-Python wheel, so the add-on's Install button can run
  ``pip install --no-index --find-links`` for real in seconds.
- :func:`blender_user_env`: environment variables that send every Blender user folder to a temp dir.
"""
from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import os
import re
import zipfile
from pathlib import Path

TORCH_STACK = ("torch", "numpy", "pillow")


def _requirement_names(dist: importlib.metadata.Distribution) -> list[str]:
    names = []
    for requirement in dist.requires or []:
        name, _, marker = requirement.partition(";")
        if "extra" in marker:
            continue
        names.append(re.split(r"[\s<>=!~\[(]", name.strip(), maxsplit=1)[0])
    return names


def distribution_closure(roots=TORCH_STACK) -> list[importlib.metadata.Distribution]:
    """The installed distributions ``roots`` need (not-installed optional ones are skipped)."""
    seen: dict[str, importlib.metadata.Distribution] = {}
    todo = list(roots)
    while todo:
        name = todo.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in seen:
            continue
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            if name in roots:
                raise
            continue
        seen[key] = dist
        todo.extend(_requirement_names(dist))
    return list(seen.values())


def link_torch_folder(dest: os.PathLike, roots=TORCH_STACK) -> Path:
    """Fill ``dest`` with symlinks to the top-level entries of ``roots`` and their dependencies."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for dist in distribution_closure(roots):
        base = Path(dist.locate_file(""))
        tops = {Path(str(f)).parts[0] for f in dist.files or [] if not str(f).startswith("..")}
        for top in tops:
            source = base / top
            if top.endswith(".pth") or top == "__pycache__" or not source.exists():
                continue
            link = dest / top
            if not link.exists():
                link.symlink_to(source)
    return dest


def make_probe_wheel(folder: os.PathLike, name: str = "gradhog_probe", version: str = "1.0") -> Path:
    """Write ``<name>-<version>-py3-none-any.whl`` (module ``<name>`` with ``VALUE = 42``)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    dist_info = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": b"VALUE = 42\n",
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: gradhog-tests\nRoot-Is-Purelib: true\n"
                              b"Tag: py3-none-any\n",
    }
    record_lines = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record_lines.append(f"{path},sha256={digest},{len(data)}")
    record_lines.append(f"{dist_info}/RECORD,,")
    files[f"{dist_info}/RECORD"] = ("\n".join(record_lines) + "\n").encode()
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return wheel


def blender_user_env(home: os.PathLike, base: dict | None = None) -> dict:
    """``os.environ`` plus the variables that move Blender's user folders under ``home``."""
    home = Path(home)
    env = dict(os.environ if base is None else base)
    env.update(
        GRADHOG_TEST_HOME=str(home),
        BLENDER_USER_SCRIPTS=str(home / "scripts"),
        BLENDER_USER_CONFIG=str(home / "config"),
        BLENDER_USER_DATAFILES=str(home / "datafiles"),
        BLENDER_USER_EXTENSIONS=str(home / "extensions"),  # 4.2+
        BLENDER_USER_RESOURCES=str(home / "resources"),  # 4.2+
        PYTHONNOUSERSITE="1",
    )
    # A developer's PYTHONPATH could make the checkout importable and hide a broken install.
    env.pop("PYTHONPATH", None)
    return env
