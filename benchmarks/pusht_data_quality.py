"""Does the PushT collection policy really push? Expert against uniform random.

    .venv/bin/python benchmarks/pusht_data_quality.py [--episodes 200] [--policy-set max_speed=0.4]

Runs collection-length episodes (200 steps, ending at success as in
``lewm collect``) without rendering and prints one JSON object per policy:
the fraction of steps with agent-block contact, the per-dimension action std, the distribution of the block
displacement per episode (start -> end of its position, in px, and of its
rotation, in rad), the block's path length, the success rate and the mean
episode length.
"""

from __future__ import annotations

import argparse
import json

import numpy as np


def _quantiles(x) -> dict:
    q = np.percentile(np.asarray(x, dtype=np.float64), [10, 25, 50, 75, 90])
    return {
        "mean": round(float(np.mean(x)), 2),
        **{
            k: round(float(v), 2)
            for k, v in zip(("p10", "p25", "median", "p75", "p90"), q, strict=True)
        },
        "frac_over_50px": None,
    }


def run(
    policy_name: str, episodes: int, seed: int, max_steps: int, policy_kwargs: dict | None = None
) -> dict:
    from lewm.envs import ENVS
    from lewm.envs.collect import episode_seeds
    from lewm.envs.factory import load_object
    from lewm.envs.pusht import PushTEnv

    env = PushTEnv(image_size=8)  # frames are not rendered here
    policy_cls = load_object(ENVS["pusht"].policies[policy_name])
    contact_steps = steps = wins = 0
    disp, rot, path, lengths, actions = [], [], [], [], []
    for i in range(episodes):
        env_seed, policy_seed = episode_seeds(seed, i)
        obs, info = env.reset(seed=env_seed)
        policy = policy_cls(env, seed=policy_seed, **(policy_kwargs or {}))
        policy.reset()
        start = np.asarray(env.block_pose(), dtype=np.float64)
        prev = start.copy()
        travelled = 0.0
        n = 0
        for _ in range(max_steps):
            n += 1
            action = np.asarray(policy(obs, info), dtype=np.float32)
            actions.append(action)
            obs, _, term, trunc, info = env.step(action)
            contact_steps += env.agent_block_contacts > 0
            steps += 1
            pose = np.asarray(env.block_pose(), dtype=np.float64)
            travelled += float(np.linalg.norm(pose[:2] - prev[:2]))
            prev = pose
            if term or trunc:
                break
        wins += bool(term)
        lengths.append(n)
        disp.append(float(np.linalg.norm(prev[:2] - start[:2])))
        rot.append(abs(float(prev[2] - start[2])))
        path.append(travelled)
    d = _quantiles(disp)
    d["frac_over_50px"] = round(float(np.mean(np.asarray(disp) > 50)), 3)
    r = _quantiles(rot)
    r.pop("frac_over_50px")
    pl = _quantiles(path)
    pl.pop("frac_over_50px")
    return {
        "episodes": episodes,
        "contact_fraction": round(contact_steps / steps, 4),
        "action_std": np.std(np.asarray(actions, np.float64), axis=0).round(3).tolist(),
        "block_displacement_px": d,
        "block_rotation_rad": r,
        "block_path_length_px": pl,
        "success_rate": round(wins / episodes, 3),
        "mean_episode_steps": round(float(np.mean(lengths)), 1),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--episodes", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-steps", type=int, default=200)
    p.add_argument("--policy-set", action="append", default=[], metavar="KEY=VALUE",
                   help="expert keyword, e.g. max_speed=0.4 (repeatable)")  # fmt: skip
    args = p.parse_args()
    from lewm.cli.eval import _settings

    expert_kwargs = _settings(args.policy_set, "--policy-set")
    out = {
        "benchmark": "pusht data quality",
        "max_steps": args.max_steps,
        "expert_kwargs": expert_kwargs,
        "expert": run("expert", args.episodes, args.seed, args.max_steps, expert_kwargs),
        "random": run("random", args.episodes, args.seed, args.max_steps),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
