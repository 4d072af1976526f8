"""Frames per second of step + render for the 2-D environments, on one core.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_envs.py [--steps 5000] [--sizes 64 224]

Prints one JSON object: per environment and frame size, step+render, step-only
and render-only rates (uniform random actions, reset every max_episode_steps),
and the mean absolute pixel difference between a direct 64x64 frame and
PIL-bilinear(224 frame) of the same state (the reference's resize).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402


def _rates(cls, size: int, steps: int, limit: int, seed: int = 0) -> dict:
    env = cls(image_size=size)
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    actions = rng.uniform(-1, 1, (steps, 2)).astype(np.float32)
    env.render()  # build caches outside the timing

    def loop(do_step: bool, do_render: bool) -> float:
        env.reset(seed=seed)
        t0 = time.perf_counter()
        for i in range(steps):
            if do_step:
                _, _, term, _, _ = env.step(actions[i])
                if term or (i + 1) % limit == 0:
                    env.reset(seed=seed + i)
            if do_render:
                env.render()
        return steps / (time.perf_counter() - t0)

    return {
        "step_render_fps": round(loop(True, True), 1),
        "step_fps": round(loop(True, False), 1),
        "render_fps": round(loop(False, True), 1),
    }


def _resize_error(cls, n_states: int = 200, seed: int = 0) -> dict:
    from PIL import Image

    small, big = cls(image_size=64), cls(image_size=224)
    diffs, maxes = [], []
    for i in range(n_states):
        small.reset(seed=seed + i)
        row = small.record()
        big.load_state(row)
        small.load_state(row)
        ref = Image.fromarray(big.render()).resize((64, 64), Image.Resampling.BILINEAR)
        d = np.abs(small.render().astype(np.int32) - np.asarray(ref, dtype=np.int32))
        diffs.append(d.mean())
        maxes.append(d.max())
    return {
        "states": n_states,
        "mean_abs_diff": round(float(np.mean(diffs)), 4),
        "max_abs_diff": int(np.max(maxes)),
    }


def main() -> None:
    from lewm.envs import ENVS
    from lewm.envs.factory import load_object

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=5000)
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 224])
    p.add_argument("--envs", nargs="+", default=["tworoom", "pusht"])
    args = p.parse_args()
    result = {
        "benchmark": "env step+render",
        "threads": os.environ.get("OMP_NUM_THREADS"),
        "cpu": platform.processor() or platform.machine(),
        "steps": args.steps,
        "envs": {},
    }
    for name in args.envs:
        cls = load_object(ENVS[name].entry_point)
        limit = ENVS[name].max_episode_steps
        entry = {str(s): _rates(cls, s, args.steps, limit) for s in args.sizes}
        entry["64_vs_pil_of_224"] = _resize_error(cls)
        result["envs"][name] = entry
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
