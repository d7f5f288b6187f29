"""Build the installable add-on zip: ``python build_addon.py`` -> ``dist/gradhog-<version>.zip``.

One zip serves both Blender install routes:

- legacy add-on (Blender 3.x-4.1, Preferences > Add-ons > Install...): the zip holds one top folder
  ``blender_gradhog/`` whose ``__init__.py`` has ``bl_info``;
- extension (Blender 4.2+, Install from Disk / ``bpy.ops.extensions.package_install_files``): the same
  folder holds ``blender_manifest.toml``. Blender accepts a manifest inside a single top folder
  ("Extensions can optionally have all its files inside a folder", docs.blender.org, extensions >
  getting started; ``pkg_zipfile_detect_subdir_or_none`` in ``bl_pkg/cli/blender_ext.py``), and its
  legacy detector treats a zip with a manifest as an extension, so nothing is installed twice.

``torch_backend`` is vendored as ``blender_gradhog/torch_backend`` (it only uses relative imports;
``blender_gradhog/_backend.py`` finds it there). No tests, caches or wheels go in; PyTorch itself is
installed from the add-on's preferences (see ``blender_gradhog/deps.py``).

The version has one source of truth, ``pyproject.toml``: ``bl_info["version"]`` must agree (the build
stops otherwise) and the manifest in the zip is stamped with it.
"""
from __future__ import annotations

import argparse
import ast
import re
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
ADDON_PACKAGE = "blender_gradhog"
CORE_PACKAGE = "torch_backend"
MANIFEST_NAME = "blender_manifest.toml"
# Demo data travels with the add-on only while it stays small; bigger data belongs in a release asset.
MAX_DATA_BYTES = 5 * 1024 * 1024
# A fixed timestamp makes two builds of the same tree byte-identical.
ZIP_DATE_TIME = (2024, 1, 1, 0, 0, 0)
SKIPPED_DIRS = {"__pycache__", "tests", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
SKIPPED_SUFFIXES = {".pyc", ".pyo", ".whl", ".so", ".pyd", ".orig", ".rej", ".swp"}


class BuildError(RuntimeError):
    """The tree cannot be packaged as it is (version mismatch, missing file)."""


def project_version(root: Path = ROOT) -> str:
    """Return ``[project].version`` from ``pyproject.toml`` (the one source of the version)."""
    with open(root / "pyproject.toml", "rb") as handle:
        return tomllib.load(handle)["project"]["version"]


def bl_info_version(root: Path = ROOT) -> tuple[int, ...]:
    """Read ``bl_info["version"]`` from the add-on's ``__init__.py`` without importing it."""
    tree = ast.parse((root / ADDON_PACKAGE / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "bl_info" for target in node.targets
        ):
            return tuple(ast.literal_eval(node.value)["version"])
    raise BuildError(f"{ADDON_PACKAGE}/__init__.py has no bl_info")


def stamped_manifest(root: Path, version: str) -> str:
    """Return the manifest text with its ``version`` line set to ``version``."""
    text = (root / ADDON_PACKAGE / MANIFEST_NAME).read_text(encoding="utf-8")
    stamped, count = re.subn(r'(?m)^version\s*=\s*"[^"]*"', f'version = "{version}"', text)
    if count != 1:
        raise BuildError(f"{ADDON_PACKAGE}/{MANIFEST_NAME} must have exactly one top-level version line")
    return stamped


_ABSOLUTE_CORE_IMPORT = re.compile(r"(?m)^(\s*)from\s+torch_backend((?:\.\w+)*)\s+import\b")


def relative_core_imports(source: str, zip_name: str) -> str:
    """Rewrite ``from torch_backend[.x] import y`` to the vendored copy's relative form.

    ``torch_backend`` is meant to use relative imports only; this is the safety net that keeps the
    installed add-on importable when an absolute one slips in (there is no top-level
    ``torch_backend`` inside Blender). ``zip_name`` is the file's path inside the zip.
    """
    parts = zip_name.split("/")[1:-1]  # folders below blender_gradhog/
    inside_core = parts[:1] == [CORE_PACKAGE]

    def replace(match: re.Match) -> str:
        submodule = match.group(2)  # "" or ".hog"
        if inside_core:
            module = "." * len(parts) + submodule[1:]
        else:
            module = "." * (len(parts) + 1) + CORE_PACKAGE + submodule
        return f"{match.group(1)}from {module} import"

    return _ABSOLUTE_CORE_IMPORT.sub(replace, source)


def _package_files(package_dir: Path) -> list[Path]:
    files = []
    for path in sorted(package_dir.rglob("*")):
        relative = path.relative_to(package_dir)
        if not path.is_file() or any(part in SKIPPED_DIRS or part.startswith(".") for part in relative.parts):
            continue
        if path.suffix in SKIPPED_SUFFIXES:
            continue
        files.append(path)
    return files


def archive_members(root: Path = ROOT) -> dict[str, Path]:
    """Map each name inside the zip to the file it comes from (the manifest is added separately)."""
    members: dict[str, Path] = {}
    for path in _package_files(root / ADDON_PACKAGE):
        relative = path.relative_to(root / ADDON_PACKAGE).as_posix()
        if relative == MANIFEST_NAME or relative.startswith(f"{CORE_PACKAGE}/"):
            continue
        members[f"{ADDON_PACKAGE}/{relative}"] = path
    core_files = _package_files(root / CORE_PACKAGE)
    data_bytes = sum(p.stat().st_size for p in core_files if p.relative_to(root / CORE_PACKAGE).parts[0] == "data")
    for path in core_files:
        relative = path.relative_to(root / CORE_PACKAGE)
        if relative.parts[0] == "data" and data_bytes > MAX_DATA_BYTES:
            continue
        members[f"{ADDON_PACKAGE}/{CORE_PACKAGE}/{relative.as_posix()}"] = path
    return members


def build(out_dir: Path | None = None, root: Path = ROOT) -> Path:
    """Write ``gradhog-<version>.zip`` into ``out_dir`` (default ``<root>/dist``) and return its path."""
    version = project_version(root)
    addon_version = ".".join(str(part) for part in bl_info_version(root))
    if addon_version != version:
        raise BuildError(
            f"version mismatch: pyproject.toml says {version}, "
            f"{ADDON_PACKAGE}/__init__.py bl_info says {addon_version}; make them equal"
        )
    if not (root / CORE_PACKAGE / "__init__.py").is_file():
        raise BuildError(f"{CORE_PACKAGE}/__init__.py not found under {root}")
    out_dir = Path(out_dir) if out_dir is not None else root / "dist"
    out_dir.mkdir(parents=True, exist_ok=True)
    zip_path = out_dir / f"gradhog-{version}.zip"
    members = archive_members(root)
    members_text = {f"{ADDON_PACKAGE}/{MANIFEST_NAME}": stamped_manifest(root, version)}
    tmp_path = zip_path.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp_path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        # Directory entries first: some unzip tools (and Blender's legacy installer) like them.
        directories = sorted({str(Path(name).parent.as_posix()) + "/" for name in [*members, *members_text]})
        for directory in directories:
            info = zipfile.ZipInfo(directory, ZIP_DATE_TIME)
            info.external_attr = 0o40755 << 16
            archive.writestr(info, b"")
        for name in sorted([*members, *members_text]):
            info = zipfile.ZipInfo(name, ZIP_DATE_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            if name in members_text:
                data = members_text[name].encode("utf-8")
            elif name.endswith(".py"):
                data = relative_core_imports(members[name].read_text(encoding="utf-8"), name).encode("utf-8")
            else:
                data = members[name].read_bytes()
            archive.writestr(info, data)
    tmp_path.replace(zip_path)
    return zip_path


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python build_addon.py [--out DIR]``; prints the zip's path."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: dist/)")
    args = parser.parse_args(argv)
    try:
        zip_path = build(args.out)
    except BuildError as error:
        print(f"build_addon.py: error: {error}", file=sys.stderr)
        return 2
    with zipfile.ZipFile(zip_path) as archive:
        count = sum(1 for name in archive.namelist() if not name.endswith("/"))
    print(f"{zip_path} ({count} files, {zip_path.stat().st_size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
