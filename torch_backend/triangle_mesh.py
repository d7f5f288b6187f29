"""The one validated triangle-mesh type of gradhog (re-exported as ``torch_backend.meshes.Mesh``).

Every entry point that takes a mesh (the renderer, simplification, pose estimation, the file
readers) checks it with :func:`check_mesh`, so a bad mesh gets the same clear message wherever it
enters. :class:`Mesh` is checked once when it is built and then carries what the renderer needs
(edge adjacency, orientation), computed on first use and kept.

Vertices are ``(V, 3)`` positions in scene units in the mesh's own frame (the camera looks at its
origin); faces are ``(F, 3)`` zero-based vertex indices, counter-clockwise seen from outside.
Only relative imports: this package is vendored into the Blender add-on.
"""
from __future__ import annotations

import hashlib
from typing import Any, NamedTuple, Optional

import numpy as np
import torch
from torch import Tensor

__all__ = ["Mesh", "MeshTopology", "check_mesh", "edge_adjacency"]


def _as_tensor(value: Any, what: str, prefix: str) -> Tensor:
    """A tensor or array-like as a tensor; numpy arrays are wrapped without a copy."""
    if isinstance(value, Tensor):
        return value
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{prefix}{what} must be an array or tensor, got {type(value).__name__}") from error
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise ValueError(f"{prefix}{what} must be a numeric array, got dtype {array.dtype}")
    if not array.flags.writeable or not array.flags.c_contiguous:
        array = np.array(array, copy=True, order="C")
    return torch.from_numpy(array)


def _check_vertices(vertices: Any, prefix: str) -> Tensor:
    vertices = _as_tensor(vertices, "vertices", prefix)
    if vertices.dim() != 2 or vertices.shape[1] != 3:
        raise ValueError(f"{prefix}vertices must have shape (V, 3), got {tuple(vertices.shape)}")
    if vertices.shape[0] == 0:
        raise ValueError(f"{prefix}vertices: the mesh is empty (no vertices)")
    if not vertices.is_floating_point():
        vertices = vertices.to(torch.float64)
    bad = int((~torch.isfinite(vertices.detach())).any(dim=1).sum())
    if bad:
        raise ValueError(f"{prefix}vertices: {bad} of {vertices.shape[0]} are not finite (NaN or inf)")
    return vertices


def _check_faces(faces: Any, n_vertices: int, device: torch.device, prefix: str, allow_no_faces: bool) -> Tensor:
    faces = _as_tensor(faces, "faces", prefix)
    if faces.numel() == 0 and not allow_no_faces:
        raise ValueError(f"{prefix}faces: the mesh has no faces")
    if faces.dim() != 2 or faces.shape[1] != 3:
        raise ValueError(f"{prefix}faces must have shape (F, 3) (triangulate polygons first: "
                         f"torch_backend.simplify.triangulate), got {tuple(faces.shape)}")
    if faces.dtype == torch.bool or faces.is_complex():
        raise ValueError(f"{prefix}faces must be integer vertex indices, got {faces.dtype}")
    if faces.is_floating_point():
        # Some exporters store indices as floats; whole numbers are accepted, anything else is not.
        if not bool((torch.isfinite(faces) & (faces == faces.round())).all()):
            raise ValueError(f"{prefix}faces must be integer vertex indices, got non-integer {faces.dtype} values")
    faces = faces.to(device=device, dtype=torch.long)
    if faces.numel() and (int(faces.min()) < 0 or int(faces.max()) >= n_vertices):
        raise ValueError(f"{prefix}face indices must lie in [0, {n_vertices - 1}], "
                         f"got [{int(faces.min())}, {int(faces.max())}]")
    return faces


def check_mesh(vertices: Any, faces: Any, *, name: Optional[str] = None,
               allow_no_faces: bool = False) -> tuple[Tensor, Tensor]:
    """Check a triangle mesh and return it as tensors (the package's one mesh check).

    Args:
        vertices: (V, 3) positions (tensor, array or nested lists); V > 0, all finite.
        faces: (F, 3) vertex indices in ``[0, V)``; integer dtype, or floats holding whole numbers.
        name: prefixed to the messages (e.g. a file name).
        allow_no_faces: accept F = 0 (intermediate results of simplification).

    Returns:
        ``(vertices, faces)``: vertices (V, 3) floating tensor (float inputs keep dtype, device and
        autograd graph; others become float64; numpy arrays are shared, not copied), faces (F, 3)
        int64 on the vertices' device.

    Raises:
        ValueError: naming the bad field, e.g. ``"vertices: 3 of 1204 are not finite (NaN or inf)"``.
    """
    prefix = f"{name}: " if name else ""
    vertices = _check_vertices(vertices, prefix)
    return vertices, _check_faces(faces, vertices.shape[0], vertices.device, prefix, allow_no_faces)


def edge_adjacency(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """Neighbours across the edges of a triangle mesh ((F, 3) int array, F > 0).

    Returns:
        neighbour (F, 3): the face across edge i (vertex i -> i+1) of each face, -1 for a boundary
            or non-manifold edge (shared by one or by more than two faces);
        opposite (F, 3): that neighbour's vertex off the shared edge (-1 likewise);
        closed: every edge is shared by exactly two faces that traverse it in opposite directions.
    """
    n_faces = len(faces)
    start = np.concatenate([faces[:, 0], faces[:, 1], faces[:, 2]]).astype(np.int64)  # edge-major
    end = np.concatenate([faces[:, 1], faces[:, 2], faces[:, 0]]).astype(np.int64)
    third = np.concatenate([faces[:, 2], faces[:, 0], faces[:, 1]]).astype(np.int64)
    n = int(faces.max()) + 1
    undirected = np.minimum(start, end) * n + np.maximum(start, end)
    order = np.argsort(undirected, kind="stable")
    keys = undirected[order]
    first = np.r_[True, keys[1:] != keys[:-1]]
    group = np.cumsum(first) - 1
    group_size = np.bincount(group)[group]
    neighbour_row = np.full(len(keys), -1, np.int64)
    pair = group_size == 2
    is_first = pair & first
    firsts = np.nonzero(is_first)[0]
    neighbour_row[order[firsts]] = order[firsts + 1]
    neighbour_row[order[firsts + 1]] = order[firsts]
    has = neighbour_row >= 0
    neighbour = np.where(has, neighbour_row % max(n_faces, 1), -1)
    opposite = np.where(has, third[np.where(has, neighbour_row, 0)], -1)
    closed = bool(pair.all()) and bool((start[np.where(has, neighbour_row, 0)] == end)[has].all())
    return neighbour.reshape(3, n_faces).T.copy(), opposite.reshape(3, n_faces).T.copy(), closed


class MeshTopology(NamedTuple):
    """What the rasterizer needs beyond positions (see :attr:`Mesh.topology`).

    faces: (F', 3) long, the mesh's faces without degenerate ones (repeated indices, zero area).
    neighbours: (F', 3) long, the face across edge i (vertex i -> i+1); -1 for boundary and
        non-manifold edges.
    opposite: (F', 3) long, that neighbour's vertex off the shared edge (-1 likewise).
    closed: every edge shared by exactly two faces in opposite directions (back faces can be culled).
    outward: +1.0 when the faces wind counter-clockwise seen from outside (positive volume), else -1.0.
    """

    faces: Tensor
    neighbours: Tensor
    opposite: Tensor
    closed: bool
    outward: float


def _topology(vertices: Tensor, faces: Tensor) -> MeshTopology:
    v = vertices.detach().to(torch.float64)
    tri = v[faces]
    cross = torch.linalg.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    area2 = torch.linalg.vector_norm(cross, dim=-1)
    scale = float((v.max(0).values - v.min(0).values).norm()) or 1.0
    keep = (area2 > 1e-12 * scale * scale) & (faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) \
        & (faces[:, 2] != faces[:, 0])
    if not bool(keep.any()):
        raise ValueError("the mesh has no face with non-zero area")
    faces = faces[keep]
    neighbours, opposite, closed = edge_adjacency(faces.cpu().numpy())
    as_long = lambda a: torch.from_numpy(a).to(device=vertices.device, dtype=torch.long)  # noqa: E731
    volume = float((tri[keep, 0] * cross[keep]).sum()) / 6.0
    return MeshTopology(faces, as_long(neighbours), as_long(opposite), closed, 1.0 if volume >= 0 else -1.0)


class Mesh:
    """A checked triangle mesh (build it once, render it many times).

    ``Mesh(vertices, faces)`` runs :func:`check_mesh`; the attributes are then fixed (do not
    modify the tensors in place: the cached topology and hash would go stale).

    Attributes:
        vertices: (V, 3) float tensor (may require grad; numpy input is shared, not copied).
        faces: (F, 3) long tensor on the vertices' device, as given (degenerate faces included).
    """

    __slots__ = ("vertices", "faces", "_topology")

    def __init__(self, vertices: Any, faces: Any, *, name: Optional[str] = None):
        self.vertices, self.faces = check_mesh(vertices, faces, name=name)
        self._topology: Optional[MeshTopology] = None

    @classmethod
    def from_arrays(cls, vertices: Any, faces: Any = None, *, name: Optional[str] = None) -> "Mesh":
        """``Mesh(vertices, faces)``, or ``vertices`` itself when it already is a :class:`Mesh`."""
        if isinstance(vertices, Mesh):
            return vertices
        return cls(vertices, faces, name=name)

    def __repr__(self) -> str:
        return (f"Mesh({self.num_vertices} vertices, {self.num_faces} faces, {self.vertices.dtype}, "
                f"{self.vertices.device})")

    @property
    def num_vertices(self) -> int:
        return int(self.vertices.shape[0])

    @property
    def num_faces(self) -> int:
        return int(self.faces.shape[0])

    @property
    def topology(self) -> MeshTopology:
        """Drawable faces, edge adjacency and orientation (computed on first use, then kept).

        Raises ``ValueError`` when no face has a non-zero area.
        """
        if self._topology is None:
            self._topology = _topology(self.vertices, self.faces)
        return self._topology

    # the renderer's names for the topology
    neighbours = property(lambda self: self.topology.neighbours, doc="See :class:`MeshTopology`.")
    opposite = property(lambda self: self.topology.opposite, doc="See :class:`MeshTopology`.")
    closed = property(lambda self: self.topology.closed, doc="See :class:`MeshTopology`.")
    outward = property(lambda self: self.topology.outward, doc="See :class:`MeshTopology`.")

    def to(self, device: Any = None, dtype: Optional[torch.dtype] = None) -> "Mesh":
        """The same mesh with vertices of ``dtype`` and everything on ``device`` (no new checks)."""
        moved = object.__new__(Mesh)
        moved.vertices = self.vertices.to(device=device, dtype=dtype)
        moved.faces = self.faces.to(device=moved.vertices.device)
        moved._topology = None
        if self._topology is not None:
            topo = self._topology
            dev = moved.vertices.device
            moved._topology = topo._replace(faces=topo.faces.to(dev), neighbours=topo.neighbours.to(dev),
                                            opposite=topo.opposite.to(dev))
        return moved

    def numpy(self) -> tuple[np.ndarray, np.ndarray]:
        """``(vertices (V, 3) float64, faces (F, 3) int64)`` numpy arrays (detached, on the CPU)."""
        vertices = self.vertices.detach().cpu().to(torch.float64).numpy()
        return vertices, self.faces.cpu().numpy().astype(np.int64, copy=False)

    def content_hash(self, salt: str = "") -> str:
        """SHA-1 hex digest of the float64 vertex bytes, the int64 face bytes and ``salt``.

        Equal for equal meshes whatever their dtype or device (float32 vertices hash as their exact
        float64 values); ``salt`` folds in settings that change what is derived from the mesh.
        """
        vertices, faces = self.numpy()
        digest = hashlib.sha1()
        digest.update(np.ascontiguousarray(vertices).tobytes())
        digest.update(np.ascontiguousarray(faces).tobytes())
        if salt:
            digest.update(str(salt).encode())
        return digest.hexdigest()
