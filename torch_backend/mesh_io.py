"""Mesh arrays in and out: :func:`as_mesh`, the checked ``(vertices, faces)`` pair every function of
:mod:`torch_backend.meshes` takes and returns, and the OFF / Wavefront OBJ file formats.

``vertices`` is a ``(V, 3)`` float64 array of positions in scene units, ``faces`` an ``(F, 3)``
int64 array of zero-based vertex indices, counter-clockwise seen from outside. Needs only NumPy
(and :func:`torch_backend.triangle_mesh.check_mesh` for the checks); all of it is re-exported by
:mod:`torch_backend.meshes`.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence, Tuple, Union

import numpy as np

from .triangle_mesh import check_mesh

PathLike = Union[str, os.PathLike]
#: ``(vertices (V, 3) float64, faces (F, 3) int64)``, what the functions here take and return.
MeshArrays = Tuple[np.ndarray, np.ndarray]

__all__ = ["MeshArrays", "as_mesh", "read_off", "read_obj", "read_mesh", "write_obj"]


def as_mesh(vertices, faces, *, name: str = "mesh") -> MeshArrays:
    """Check and convert a mesh to ``(vertices (V, 3) float64, faces (F, 3) int64)`` numpy arrays.

    Runs :func:`check_mesh` (``ValueError`` for a wrong shape, no vertices, no faces, non-finite
    coordinates, non-integer or out-of-range face indices); ``name`` prefixes the messages.
    """
    v, f = check_mesh(vertices, faces, name=name)
    return v.detach().cpu().numpy().astype(np.float64, copy=False), f.cpu().numpy()


def _fan(polygon: Sequence[int]) -> Iterable[Tuple[int, int, int]]:
    """Triangulate a (convex, planar-ish) polygon as a fan from its first corner."""
    for k in range(1, len(polygon) - 1):
        yield polygon[0], polygon[k], polygon[k + 1]


def _check_path(path: PathLike) -> Path:
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such file")
    if p.is_dir():
        raise ValueError(f"{p}: is a directory, not a mesh file")
    return p


def _read_text(p: Path) -> list:
    try:
        return p.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as error:
        raise ValueError(f"{p}: cannot read ({error})") from None


def read_off(path: PathLike) -> MeshArrays:
    """Read an OFF file (PASCAL3D+ / ModelNet CAD format) as ``(V, 3)`` float64, ``(F, 3)`` int64.

    Accepts ``#`` comments, the ``OFF`` keyword on its own line or glued to the counts (``OFF8 6 0``,
    as in some ModelNet files), optional per-face colours, and polygons (fan-triangulated).
    Raises ``ValueError`` naming the file and line for malformed input.
    """
    p = _check_path(path)
    lines = _read_text(p)
    # (line number, tokens) for non-empty, comment-stripped lines
    rows = []
    for number, line in enumerate(lines, start=1):
        text = line.split("#", 1)[0].strip()
        if text:
            rows.append((number, text.split()))
    if not rows:
        raise ValueError(f"{p}: empty OFF file")
    number, tokens = rows[0]
    head = tokens[0].upper()
    if head in ("OFF", "COFF", "NOFF", "CNOFF", "NCOFF"):
        rest = tokens[1:]
    elif head.startswith("OFF") and head[3:].isdigit():  # "OFF8 6 0" (some ModelNet files)
        rest = [tokens[0][3:]] + tokens[1:]
    else:
        raise ValueError(f"{p}:{number}: not an OFF file (first keyword {tokens[0]!r}, expected 'OFF')")
    if rest:
        rows[0] = (number, rest)
        cursor = 0
    else:
        cursor = 1
    if cursor >= len(rows):
        raise ValueError(f"{p}: OFF header has no vertex/face counts")
    number, tokens = rows[cursor]
    try:
        n_vertices, n_faces = int(tokens[0]), int(tokens[1])
    except (ValueError, IndexError):
        raise ValueError(f"{p}:{number}: expected 'n_vertices n_faces n_edges', got {' '.join(tokens)!r}") from None
    if n_vertices < 0 or n_faces < 0:
        raise ValueError(f"{p}:{number}: negative vertex or face count")
    cursor += 1
    if len(rows) - cursor < n_vertices + n_faces:
        raise ValueError(
            f"{p}: truncated OFF file: header promises {n_vertices} vertices and {n_faces} faces, "
            f"found {len(rows) - cursor} data lines"
        )
    vertices = np.empty((n_vertices, 3), dtype=np.float64)
    for i in range(n_vertices):
        number, tokens = rows[cursor + i]
        try:
            vertices[i] = [float(t) for t in tokens[:3]]
            if len(tokens) < 3:
                raise ValueError
        except ValueError:
            raise ValueError(f"{p}:{number}: bad vertex line {' '.join(tokens)!r}") from None
    cursor += n_vertices
    faces = []
    for i in range(n_faces):
        number, tokens = rows[cursor + i]
        try:
            count = int(tokens[0])
            polygon = [int(t) for t in tokens[1 : 1 + count]]
        except ValueError:
            raise ValueError(f"{p}:{number}: bad face line {' '.join(tokens)!r}") from None
        if count < 3 or len(polygon) != count:
            raise ValueError(f"{p}:{number}: face needs >= 3 vertex indices, got {' '.join(tokens)!r}")
        if min(polygon) < 0 or max(polygon) >= n_vertices:
            raise ValueError(f"{p}:{number}: face index out of range [0, {n_vertices})")
        faces.extend(_fan(polygon))
    if n_vertices == 0:
        raise ValueError(f"{p}: mesh has no vertices")
    if not faces:
        raise ValueError(f"{p}: mesh has no faces")
    return as_mesh(vertices, np.asarray(faces, dtype=np.int64), name=str(p))


def read_obj(path: PathLike) -> MeshArrays:
    """Read the geometry of a Wavefront OBJ file as ``(V, 3)`` float64, ``(F, 3)`` int64.

    Reads ``v`` and ``f`` records (``i``, ``i/t``, ``i//n``, ``i/t/n``, negative = relative indices),
    fan-triangulates polygons and ignores everything else (normals, UVs, groups, materials).
    Raises ``ValueError`` naming the file and line for malformed input.
    """
    p = _check_path(path)
    vertices, faces = [], []
    for number, line in enumerate(_read_text(p), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        tokens = text.split()
        key = tokens[0]
        if key == "v":
            try:
                if len(tokens) < 4:
                    raise ValueError
                vertices.append([float(t) for t in tokens[1:4]])
            except ValueError:
                raise ValueError(f"{p}:{number}: bad vertex line {text!r}") from None
        elif key == "f":
            polygon = []
            for token in tokens[1:]:
                head = token.split("/", 1)[0]
                try:
                    index = int(head)
                except ValueError:
                    raise ValueError(f"{p}:{number}: bad face index {token!r}") from None
                if index == 0:
                    raise ValueError(f"{p}:{number}: OBJ indices start at 1, got 0")
                index = index - 1 if index > 0 else len(vertices) + index
                if not 0 <= index < len(vertices):
                    raise ValueError(
                        f"{p}:{number}: face index {token!r} refers to a missing vertex "
                        f"({len(vertices)} defined so far)"
                    )
                polygon.append(index)
            if len(polygon) < 3:
                raise ValueError(f"{p}:{number}: face needs >= 3 vertices, got {text!r}")
            faces.extend(_fan(polygon))
    if not vertices:
        raise ValueError(f"{p}: no vertices ('v' lines) found")
    if not faces:
        raise ValueError(f"{p}: no faces ('f' lines) found")
    return as_mesh(np.asarray(vertices), np.asarray(faces, dtype=np.int64), name=str(p))


def read_mesh(path: PathLike) -> MeshArrays:
    """Read an ``.off`` or ``.obj`` file by its extension (see :func:`read_off`, :func:`read_obj`)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".off":
        return read_off(path)
    if suffix == ".obj":
        return read_obj(path)
    raise ValueError(f"{path}: unsupported mesh format {suffix!r} (expected .off or .obj)")


def write_obj(path: PathLike, vertices, faces, *, precision: int = 6) -> None:
    """Write a triangle mesh (``(V, 3)`` vertices, ``(F, 3)`` zero-based faces) as Wavefront OBJ.

    ``precision`` is the number of significant digits per coordinate.
    """
    v, f = as_mesh(vertices, faces)
    lines = ["# written by gradhog (torch_backend.meshes)", f"# {len(v)} vertices, {len(f)} faces"]
    lines += [f"v {x:.{precision}g} {y:.{precision}g} {z:.{precision}g}" for x, y, z in v]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in f]
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
