"""Coarser visual meshes for the renderer: faster software rendering, same physics.

Without a GPU, MuJoCo renders through Mesa's llvmpipe, and the cost of a Cube frame
is the triangles of the UR5e and Robotiq meshes (about 185,000), not the pixels: a
64² frame costs as much as a 224² one. :func:`coarse_copy` returns a copy of a
compiled model whose rendered meshes (geom group 2, the visual class) keep about a
given fraction of their triangles (quadric decimation, ``fast-simplification``).
The copy only feeds the renderer; the simulator keeps stepping the original, so
dynamics, contacts and every recorded state are exactly the same.

Meshes are edited inside their existing slots of the model's arrays (a coarse mesh
has fewer vertices, normals and faces than the original), so the copy keeps every
array's size and ``mjv_updateScene`` accepts it with the simulator's ``MjData``.
Normals are per face corner with a crease angle, so hard edges stay hard.
"""

from __future__ import annotations

import copy
import hashlib
from typing import Any

import numpy as np

MIN_FACES = 1000  # smaller meshes are left as they are: nothing to gain
CREASE_DEG = 40.0  # corners whose faces bend more than this get separate normals
VISUAL_GROUP = 2
MESH_ARRAYS = (
    "mesh_vert", "mesh_vertnum", "mesh_normal", "mesh_normalnum",
    "mesh_face", "mesh_facenormal", "mesh_facenum",
)  # fmt: skip

# (model digest, keep) -> the coarse copy. An evaluation builds an environment per pair (50
# per seed, ~350 MB each): they share one copy, decimated once per process. Sharing is safe:
# environments render one at a time and each copies its own colours in first.
_cache: dict[tuple[str, float], Any] = {}


def coarse_copy(model: Any, keep: float) -> Any:
    """A copy of ``model`` whose rendered meshes keep about ``keep`` of their triangles
    (shared by every caller in this process with the same model and ``keep``)."""
    if not 0.0 < keep <= 1.0:
        raise ValueError(f"mesh detail must be in (0, 1], got {keep!r}")
    if keep == 1.0:
        return copy.deepcopy(model)
    key = (_digest(model), float(keep))
    if key not in _cache:
        look = copy.deepcopy(model)
        for mesh in rendered_meshes(look):
            if int(look.mesh_facenum[mesh]) >= MIN_FACES:
                _simplify_in_place(look, mesh, keep)
        _cache[key] = look
    return _cache[key]


def _digest(model: Any) -> str:
    """Fingerprint of the mesh data, of which geoms draw which mesh, and of the shadow map."""
    h = hashlib.sha256(str(model.vis.quality.shadowsize).encode())
    for name in (*MESH_ARRAYS, "geom_type", "geom_group", "geom_dataid"):
        h.update(np.ascontiguousarray(getattr(model, name)).tobytes())
    return h.hexdigest()


def rendered_meshes(model: Any) -> list[int]:
    """Ids of the meshes drawn by visual-group geoms."""
    import mujoco

    return sorted(
        {
            int(model.geom_dataid[g])
            for g in range(model.ngeom)
            if model.geom_type[g] == mujoco.mjtGeom.mjGEOM_MESH
            and model.geom_group[g] == VISUAL_GROUP
        }
    )


def _simplify_in_place(model: Any, mesh: int, keep: float) -> None:
    import fast_simplification

    va, vn = int(model.mesh_vertadr[mesh]), int(model.mesh_vertnum[mesh])
    fa, fn = int(model.mesh_faceadr[mesh]), int(model.mesh_facenum[mesh])
    na, nn = int(model.mesh_normaladr[mesh]), int(model.mesh_normalnum[mesh])
    # STL meshes arrive with a vertex per face corner: weld them, or decimation tears holes
    welded, index = np.unique(model.mesh_vert[va : va + vn], axis=0, return_inverse=True)
    faces = index.reshape(-1)[model.mesh_face[fa : fa + fn]]
    points, faces = fast_simplification.simplify(
        welded.astype(np.float32), faces.astype(np.int64), target_reduction=1.0 - keep
    )
    normals, face_normals = corner_normals(points.astype(np.float64), faces, CREASE_DEG)
    if len(normals) > nn:  # no room for split normals: smooth ones, one per vertex
        normals, face_normals = vertex_normals(points.astype(np.float64), faces), faces
    model.mesh_vert[va : va + len(points)] = points
    model.mesh_vertnum[mesh] = len(points)
    model.mesh_normal[na : na + len(normals)] = normals
    model.mesh_normalnum[mesh] = len(normals)
    model.mesh_face[fa : fa + len(faces)] = faces
    model.mesh_facenormal[fa : fa + len(faces)] = face_normals
    model.mesh_facenum[mesh] = len(faces)


def _face_normals(points: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted face normals (F, 3): the cross product of two edges."""
    tri = points[faces]
    return np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def vertex_normals(points: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Smooth unit normals (V, 3): the area-weighted mean of each vertex's faces."""
    normals = np.zeros_like(points)
    weighted = _face_normals(points, faces)
    for corner in range(3):
        np.add.at(normals, faces[:, corner], weighted)
    return _unit(normals)


def corner_normals(
    points: np.ndarray, faces: np.ndarray, crease_deg: float
) -> tuple[np.ndarray, np.ndarray]:
    """Unit normals per face corner, shared where faces meet at less than ``crease_deg``.

    Returns the distinct normals (N, 3) and, per face, the indices of its corners'
    normals (F, 3): MuJoCo's ``mesh_normal`` / ``mesh_facenormal`` layout.
    """
    weighted = _face_normals(points, faces)
    unit = _unit(weighted)
    corners = faces.reshape(-1)
    corner_face = np.repeat(np.arange(len(faces)), 3)
    order = np.argsort(corners, kind="stable")
    bounds = np.searchsorted(corners[order], np.arange(len(points) + 1))
    out = np.zeros((len(corners), 3))
    cos_crease = np.cos(np.radians(crease_deg))
    for v in range(len(points)):
        members = order[bounds[v] : bounds[v + 1]]
        around = corner_face[members]
        smooth = (unit[around] @ unit[around].T) >= cos_crease
        out[members] = smooth.astype(np.float64) @ weighted[around]
    normals, index = np.unique(_unit(out).round(6), axis=0, return_inverse=True)
    return normals, index.reshape(-1, 3)
