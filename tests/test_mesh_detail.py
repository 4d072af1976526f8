"""Coarser visual meshes for Cube's renderer: fewer triangles, same physics."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("ogbench")
pytest.importorskip("fast_simplification")

from lewm.envs import mesh_detail  # noqa: E402
from lewm.envs.cube import CubeEnv  # noqa: E402
from lewm.envs.mesh_detail import (  # noqa: E402
    MIN_FACES,
    coarse_copy,
    corner_normals,
    rendered_meshes,
    vertex_normals,
)
from lewm.errors import ConfigError  # noqa: E402

KW = {"image_size": 32, "render_size": 32, "fast_render": True}


@pytest.fixture(scope="module")
def envs():
    full, coarse = CubeEnv(**KW), CubeEnv(**KW, mesh_detail=0.1)
    yield full, coarse
    full.close()
    coarse.close()


def _unit_box():
    points = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)], float)
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    faces = np.array([t for a, b, c, d in quads for t in ((a, b, c), (a, c, d))])
    return points, faces


def test_corner_normals_keep_hard_edges_and_smooth_soft_ones():
    points, faces = _unit_box()
    centre = points.mean(axis=0)
    normals, index = corner_normals(points, faces, crease_deg=40.0)
    # 90-degree edges are creases: each corner carries its own face's normal, one per side
    assert len(normals) == 6 and index.shape == faces.shape
    for face, corners in zip(faces, index, strict=True):
        axis = int(np.flatnonzero(np.ptp(points[face], axis=0) == 0)[0])  # the face's plane
        outward = np.eye(3)[axis] * (1.0 if points[face[0], axis] == 1 else -1.0)
        for n in normals[corners]:
            assert np.allclose(n, outward, atol=1e-6)
    # past the crease everything is smooth: one normal per vertex, pointing out of the box
    normals, index = corner_normals(points, faces, crease_deg=100.0)
    assert len(normals) == 8
    for face, corners in zip(faces, index, strict=True):
        for v, n in zip(face, normals[corners], strict=True):
            assert np.dot(n, points[v] - centre) > 0.5
    smooth = vertex_normals(points, faces)
    assert np.allclose(np.linalg.norm(smooth, axis=1), 1.0)
    assert all(np.dot(n, p - centre) > 0.5 for n, p in zip(smooth, points, strict=True))


def test_coarse_copy_cuts_rendered_triangles_and_leaves_the_model_alone(envs):
    full, coarse = envs
    model = full._model
    faces_before = model.mesh_facenum.copy()
    look = coarse_copy(model, 0.1)
    assert np.array_equal(model.mesh_facenum, faces_before)  # the simulator's model is untouched
    meshes = rendered_meshes(model)
    big = [m for m in meshes if faces_before[m] >= MIN_FACES]
    assert big, "the arm has large visual meshes"
    total_before = int(faces_before[meshes].sum())
    total_after = int(look.mesh_facenum[meshes].sum())
    assert total_after < 0.35 * total_before
    for m in big:
        assert look.mesh_facenum[m] < faces_before[m]
        fa, fn = int(look.mesh_faceadr[m]), int(look.mesh_facenum[m])
        assert look.mesh_face[fa : fa + fn].max() < look.mesh_vertnum[m]
        assert look.mesh_facenormal[fa : fa + fn].max() < look.mesh_normalnum[m]
    # meshes the renderer does not draw (collision group) keep every triangle
    for m in set(range(model.nmesh)) - set(meshes):
        assert look.mesh_facenum[m] == faces_before[m]
    assert look.mesh_vert.shape == model.mesh_vert.shape  # same array sizes: same MjData
    # deterministic: a fresh decimation gives the same arrays as the cached one (collected
    # frames are reproducible)
    mesh_detail._cache.clear()
    again = coarse_copy(model, 0.1)
    assert coarse_copy(model, 0.1) is again  # one shared copy per process
    for name in ("mesh_vert", "mesh_normal", "mesh_face", "mesh_facenormal", "mesh_facenum"):
        assert np.array_equal(getattr(look, name), getattr(again, name)), name


def test_same_physics_nearly_the_same_frames(envs):
    full, coarse = envs
    rng = np.random.default_rng(0)
    full.reset(seed=3)
    coarse.reset(seed=3)
    diffs = []
    for action in rng.uniform(-1, 1, size=(12, 5)).astype(np.float32):
        obs_full, *_ = full.step(action)
        obs_coarse, *_ = coarse.step(action)
        assert np.array_equal(obs_full, obs_coarse)
        assert np.array_equal(full._data.qpos, coarse._data.qpos)
        diffs.append(np.abs(full.render().astype(int) - coarse.render().astype(int)).mean())
    assert 0.0 < np.mean(diffs) < 4.0  # coarser, but the same scene (measured: ~1.5 of 255)


def test_colour_changes_reach_the_coarse_renderer(envs):
    _, coarse = envs
    coarse.reset(seed=1)
    before = coarse.render().astype(int)
    coarse.set_cube_color((0.0, 1.0, 0.0))
    after = coarse.render().astype(int)
    assert np.array_equal(coarse._look.geom_rgba, coarse._model.geom_rgba)
    assert np.abs(after - before).sum() > 0
    greener = (after[..., 1] - before[..., 1]) > 50
    assert greener.any()


@pytest.mark.parametrize("bad", [0.0, -0.5, 1.5, "half"])
def test_mesh_detail_is_checked(bad):
    with pytest.raises(ConfigError, match="mesh_detail"):
        CubeEnv(**KW, mesh_detail=bad)


def test_evaluation_inherits_mesh_detail_from_the_file():
    """An evaluation env is built from the file's recorded keywords: it must draw the same meshes."""
    from lewm.envs.factory import make_env

    recorded = {"fast_render": True, "render_size": 16, "mesh_detail": 0.1, "workers": 2}
    env, used = make_env("cube", 16, recorded_kwargs=recorded)
    try:
        assert used == {"fast_render": True, "render_size": 16, "mesh_detail": 0.1}
        assert env.unwrapped.mesh_detail == 0.1 and env.unwrapped._look is not env.unwrapped._model
    finally:
        env.close()
