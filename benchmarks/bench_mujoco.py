"""CPU speed of the MuJoCo environments (issue 5); prints one JSON document.

Measures, on one core (the process is pinned to one CPU, so MuJoCo's software
renderer cannot spread over more):

- frames/s of ``step`` + ``render`` for Reacher and Cube at 64x64 and 224x224, with
  the separate step and render costs; Cube with shadows (the reference look), without
  shadows (``fast_render=True``) and with a 1024 shadow map;
- what turning shadows off changes in the frames: mean absolute pixel difference
  (0-255 scale) against the default render of the same states; and what coarser
  visual meshes (``mesh_detail``) change against the shadows-off render;
- the wall time of ``lewm.envs.collect.collect`` for N episodes of each environment
  with 2 worker processes (Reacher: random policy; Cube: expert), at ``--collect-size``.

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_mujoco.py            # everything
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_mujoco.py --collect-episodes 0  # speed only
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_mujoco.py --steps 0 --collect cube_expert
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_mujoco.py --only cube_fast \
        --collect cube_expert_fast_direct,cube_expert_fast_direct_mesh --collect-episodes 10
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402


def _pin_one_core() -> tuple[int | None, set[int] | None]:
    """Pin this process to its first allowed CPU; returns (cpu, previous affinity)."""
    if not hasattr(os, "sched_setaffinity"):
        return None, None
    previous = set(os.sched_getaffinity(0))
    cpu = min(previous)
    os.sched_setaffinity(0, {cpu})
    return cpu, previous


def _progress(key: str, value: dict) -> None:
    """One line per finished measurement on stderr, so a long run can be followed."""
    print(json.dumps({key: value}), file=sys.stderr, flush=True)


def _time_env(make, image_size: int, steps: int, seed: int = 0) -> dict:
    """frames/s of step+render, plus per-call step and render milliseconds."""
    env = make(image_size)
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    actions = rng.uniform(-1, 1, size=(steps + 5, *env.action_space.shape)).astype(np.float32)
    for a in actions[:5]:  # warm-up (first render allocates)
        env.step(a)
        env.render()
    t_step = t_render = 0.0
    for a in actions[5:]:
        t0 = time.perf_counter()
        env.step(a)
        t1 = time.perf_counter()
        env.render()
        t2 = time.perf_counter()
        t_step += t1 - t0
        t_render += t2 - t1
    env.close()
    return {
        "frames_per_s": round(steps / (t_step + t_render), 2),
        "step_ms": round(1000 * t_step / steps, 2),
        "render_ms": round(1000 * t_render / steps, 2),
    }


def _shadow_pixel_cost(image_size: int, states: int, seed: int = 0) -> dict:
    """Mean |default - variant| pixel difference over the states of an expert rollout."""
    from lewm.envs.cube import CubeEnv, CubeExpert

    env = CubeEnv(image_size=image_size)
    small_map = CubeEnv(image_size=image_size, shadow_size=1024)
    expert = CubeExpert(env, seed=seed)
    obs, info = env.reset(seed=seed)
    expert.reset()
    diffs_off, diffs_1024 = [], []
    for _ in range(states):
        for _ in range(10):  # spread the states over an episode
            obs, _, _, _, info = env.step(expert(obs, info))
        row = env.record()
        env.set_fast_render(False)
        shadows = env.render().astype(np.int16)
        env.set_fast_render(True)
        diffs_off.append(np.abs(env.render().astype(np.int16) - shadows).mean())
        small_map.reset(seed=seed)
        small_map.load_state(row)
        diffs_1024.append(np.abs(small_map.render().astype(np.int16) - shadows).mean())
    env.close()
    small_map.close()
    return {
        "mean_abs_pixel_diff_shadows_off": round(float(np.mean(diffs_off)), 3),
        "max_state_pixel_diff_shadows_off": round(float(np.max(diffs_off)), 3),
        "mean_abs_pixel_diff_shadow_map_1024": round(float(np.mean(diffs_1024)), 3),
        "states": states,
    }


def _mesh_pixel_cost(image_size: int, states: int, detail: float, seed: int = 0) -> dict:
    """Mean |full meshes - coarse meshes| pixel difference, shadows off, same states."""
    from lewm.envs.cube import CubeEnv, CubeExpert

    kwargs = {"image_size": image_size, "render_size": image_size, "fast_render": True}
    env, coarse = CubeEnv(**kwargs), CubeEnv(**kwargs, mesh_detail=detail)
    expert = CubeExpert(env, seed=seed)
    obs, info = env.reset(seed=seed)
    coarse.reset(seed=seed)
    expert.reset()
    diffs = []
    for _ in range(states):
        for _ in range(10):  # spread the states over an episode
            obs, _, _, _, info = env.step(expert(obs, info))
        coarse.load_state(env.record())
        diffs.append(np.abs(coarse.render().astype(np.int16) - env.render().astype(np.int16)))
    env.close()
    coarse.close()
    return {
        "mesh_detail": detail,
        "mean_abs_pixel_diff": round(float(np.mean(diffs)), 3),
        "max_state_pixel_diff": round(float(max(d.mean() for d in diffs)), 3),
        "share_of_pixels_off_by_more_than_8": round(
            float(np.mean([(d.max(axis=-1) > 8).mean() for d in diffs])), 4
        ),
        "states": states,
    }


def _collect_time(env: str, policy: str, episodes: int, size: int, env_kwargs: dict) -> dict:
    from lewm.data.hdf5 import inspect_dataset
    from lewm.envs.collect import collect

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"{env}.h5"
        t0 = time.perf_counter()
        collect(
            env, policy, episodes, size, 0, out, workers=2, env_kwargs=env_kwargs, progress=False
        )
        wall = time.perf_counter() - t0
        info = inspect_dataset(out)
        mb = out.stat().st_size / 2**20
    return {
        "episodes": episodes,
        "rows": info.n_rows,
        "image_size": size,
        "workers": 2,
        "env_kwargs": env_kwargs,
        "wall_s": round(wall, 1),
        "rows_per_s": round(info.n_rows / wall, 2),
        "file_mb": round(mb, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--steps", type=int, default=100, help="timed steps per speed measurement (0 skips)"
    )
    parser.add_argument(
        "--collect-episodes", type=int, default=100, help="0 skips the collection timing"
    )
    parser.add_argument(
        "--collect-size", type=int, default=64, help="frame size of the collection timing"
    )
    parser.add_argument(
        "--collect",
        default="reacher_random,cube_expert,cube_expert_fast",
        help="collections to time (comma-separated): reacher_random, cube_expert (shadows), "
        "cube_expert_fast (shadows off), cube_expert_fast_direct (and rendered at the frame "
        "size), cube_expert_fast_direct_mesh (and mesh_detail 0.1: the cube recipe's setting)",
    )
    parser.add_argument(
        "--only",
        default="",
        help="time only the step+render settings whose name starts with one of these "
        "(comma-separated, e.g. cube_fast); default all",
    )
    args = parser.parse_args()

    from lewm.envs import mujoco_gl
    from lewm.envs.cube import CubeEnv
    from lewm.envs.reacher import ReacherEnv

    backend = mujoco_gl.configure()
    result: dict = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cpus_visible": os.cpu_count(),
            "loadavg_1m_at_start": round(os.getloadavg()[0], 2)
            if hasattr(os, "getloadavg")
            else None,
            "python": sys.version.split()[0],
            "MUJOCO_GL": backend,
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        }
    }
    result["machine"]["pinned_cpu"], affinity = _pin_one_core()

    sizes = (64, 224)
    makers = {
        "reacher": (lambda s: ReacherEnv(image_size=s), sizes),
        "cube_shadows": (lambda s: CubeEnv(image_size=s), sizes),
        "cube_shadow_map_1024": (lambda s: CubeEnv(image_size=s, shadow_size=1024), sizes),
        "cube_fast_render": (lambda s: CubeEnv(image_size=s, fast_render=True), sizes),
        # Rendering directly at 64 instead of PIL-resizing a 224 render (render_size=64).
        "reacher_direct_render": (lambda s: ReacherEnv(image_size=s, render_size=s), (64,)),
        "cube_fast_render_direct": (
            lambda s: CubeEnv(image_size=s, fast_render=True, render_size=s),
            (64,),
        ),
        # ... and the arm's visual meshes at a tenth of their triangles (the cube recipe)
        "cube_fast_render_direct_mesh_0.1": (
            lambda s: CubeEnv(image_size=s, fast_render=True, render_size=s, mesh_detail=0.1),
            sizes,
        ),
    }
    prefixes = tuple(filter(None, args.only.split(",")))
    if prefixes:
        makers = {k: v for k, v in makers.items() if k.startswith(prefixes)}
    speed: dict = {}
    result["step_render_one_core"] = speed
    if args.steps > 0:
        for name, (make, env_sizes) in makers.items():
            for size in env_sizes:
                key = f"{name}@{size}"
                speed[key] = _time_env(make, size, args.steps)
                _progress(key, speed[key])
        for size in (224, 64):
            if not prefixes or "cube_shadows".startswith(prefixes):
                key = f"cube_shadow_appearance_{size}"
                result[key] = _shadow_pixel_cost(size, states=10)
                _progress(key, result[key])
            if not prefixes or "cube_fast_render_direct_mesh".startswith(prefixes):
                key = f"cube_mesh_detail_appearance_{size}"
                result[key] = _mesh_pixel_cost(size, states=10, detail=0.1)
                _progress(key, result[key])

    if args.collect_episodes > 0:
        if affinity is not None:
            os.sched_setaffinity(0, affinity)  # the 2 workers inherit it
        collection: dict = {}
        result["collect_2_workers"] = collection
        jobs = {
            "reacher_random": ("reacher", "random", {"terminate_at_goal": False}),
            "cube_expert": ("cube", "expert", {}),
            "cube_expert_fast": ("cube", "expert", {"fast_render": True}),
            "cube_expert_fast_direct": (
                "cube",
                "expert",
                {"fast_render": True, "render_size": args.collect_size},
            ),
            "cube_expert_fast_direct_mesh": (
                "cube",
                "expert",
                {"fast_render": True, "render_size": args.collect_size, "mesh_detail": 0.1},
            ),
        }
        for key in filter(None, args.collect.split(",")):
            if key not in jobs:
                parser.error(f"--collect: unknown {key!r}; choose from {sorted(jobs)}")
            env, policy, kwargs = jobs[key]
            collection[key] = _collect_time(
                env, policy, args.collect_episodes, args.collect_size, kwargs
            )
            _progress(key, collection[key])
    if hasattr(os, "getloadavg"):
        result["machine"]["loadavg_1m_at_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
