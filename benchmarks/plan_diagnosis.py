"""Why does planning fail? Model errors, or the actions the environment executes?

On the evaluation pairs of one seed (the same pairs ``lewm eval`` draws), for the first plan of
each pair (open loop, ``horizon`` blocks = 25 raw steps, no replanning), this prints:

- **replay**: the dataset's own 25 actions from the restored start: how often they reach the
  goal and the final goal distance. If replaying the data does not reach its own goal, the
  environment does not execute what was recorded (restore or action mismatch).
- **model cost** (squared distance of the predicted final embedding to the goal's) of the
  dataset's actions, of the planner's plan and of uniform random plans in the action bounds.
- **prediction error**: the squared distance between the predicted final embedding and the
  embedding of the frame the environment really reaches, for the dataset's actions and for
  the plan. A plan whose predicted cost is far below the dataset's but whose prediction error
  is far above it exploits the model where it is wrong.
- **real outcome**: final goal distance after the plan and after a random plan.
- **action support**: per-dimension |normalised action| of the plan against the data's.

    python benchmarks/plan_diagnosis.py --ckpt checkpoints/pusht --env pusht \\
        --data data/pusht_eval.h5 --samples 300 --iters 30
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ckpt", required=True)
    p.add_argument("--env", required=True)
    p.add_argument("--data", required=True, help="the evaluation HDF5 file")
    p.add_argument("--episodes", type=int, default=50)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--solver", default="cem", help="cem, icem or mppi (default cem)")
    p.add_argument("--samples", type=int, default=300)
    p.add_argument("--init-std", type=float, default=None, help="the solver's initial std")
    p.add_argument("--iters", type=int, default=30)
    p.add_argument("--random-plans", type=int, default=300, help="random plans scored per pair")
    p.add_argument("--cost-step", type=int, default=None)
    return p.parse_args(argv)


def _stats(x) -> dict[str, float]:
    x = np.asarray(x, dtype=np.float64)
    return {"median": float(np.median(x)), "mean": float(x.mean())}


def _run_open_loop(envs, data, raw_plans: np.ndarray):
    """Restore every pair, execute (n, T, A) raw actions; (success any step, final dist, frame)."""
    from lewm.eval.restore import restore

    success, dist, frames = [], [], []
    for env, d, plan in zip(envs, data, raw_plans, strict=True):
        restore(env, d.init_row, d.goal_row, d.reset_seed)
        hit = False
        for a in plan:
            _, _, _, _, info = env.step(a.astype(np.float32))
            hit = hit or bool(info["success"])
        success.append(hit)
        dist.append(float(env.goal_distance()))
        frames.append(np.asarray(env.render()))
    return np.array(success), np.array(dist), np.stack(frames)


def main(argv=None) -> dict:
    args = parse_args(argv)
    from lewm.data.hdf5 import open_h5
    from lewm.data.transforms import frames_to_pixels
    from lewm.eval.config import EvalConfig
    from lewm.eval.prepare import prepare
    from lewm.eval.restore import read_pairs, restore_all
    from lewm.eval.scoring import Notes

    cfg = EvalConfig(
        episodes=args.episodes, seeds=(args.seed,), cost_step=args.cost_step, solver=args.solver,
        solver_settings={"samples": args.samples, "iterations": args.iters}
        | ({} if args.init_std is None else {"init_std": args.init_std}),
    )  # fmt: skip
    setup = prepare(args.ckpt, args.env, args.data, cfg, None, Notes(lambda m: None))
    model, pairs = setup.model, setup.pairs[args.seed]
    data = read_pairs(setup.data, pairs, setup.info.n_rows, setup.size, args.seed, 0)
    f, hp = model.frameskip, cfg.mpc_config(args.seed).horizon
    steps = f * hp
    with open_h5(setup.data) as h5:
        actions = h5["action"][:]
        all_norm = model.action_normalizer.normalize(actions[~np.isnan(actions).any(1)])
    expert_raw = np.stack([actions[p.start_row : p.start_row + steps] for p in pairs])
    n, a_dim = len(pairs), model.action_dim
    with setup.environments() as envs:
        restore_all(envs.envs, data)
        policy = setup.policy(args.seed, envs.bounds)
        policy.reset(n, episode_ids=[p.index for p in pairs])
        frames = np.stack([d.start_frame for d in data])
        goals = np.stack([d.goal_frame for d in data])
        policy.act(frames, goals)  # the first solve of every pair
        plan_norm = policy.records[-1].plan  # (n, Hp, fA)
        plan_raw = model.action_normalizer.denormalize(plan_norm.reshape(n, steps, a_dim))
        low, high = (np.broadcast_to(np.asarray(b, np.float64), (a_dim,)) for b in envs.bounds)
        rng = np.random.default_rng(args.seed)
        rand_raw = rng.uniform(low, high, size=(n, args.random_plans, steps, a_dim))
        rep = _run_open_loop(envs.envs, data, expert_raw)
        pln = _run_open_loop(envs.envs, data, plan_raw)
        rnd = _run_open_loop(envs.envs, data, rand_raw[:, 0])
    objective = policy.objective
    with torch.no_grad():
        px = torch.as_tensor(frames_to_pixels(frames), dtype=torch.float32)
        gx = torch.as_tensor(frames_to_pixels(goals), dtype=torch.float32)
        ctx = objective.prepare(px, gx)

        def blocks(raw):  # (n, S, steps, A) raw -> (n, S, Hp, fA) normalised
            norm = model.action_normalizer.normalize(raw).astype(np.float32)
            return torch.from_numpy(norm.reshape(n, -1, hp, f * a_dim))

        def predicted(raw):  # final predicted embedding (n, D) of one plan per pair
            traj = model.rollout(ctx.context_emb, blocks(raw[:, None])[:, 0])
            return traj[:, -1]

        def reached(frames_):
            px_ = torch.as_tensor(frames_to_pixels(frames_), dtype=torch.float32)
            return model.encode(px_[:, None])[:, 0]

        cost = {
            "dataset_actions": objective(ctx, blocks(expert_raw[:, None]))[:, 0].numpy(),
            "plan": objective(ctx, torch.from_numpy(plan_norm[:, None]))[:, 0].numpy(),
            "random_mean": objective(ctx, blocks(rand_raw)).mean(1).numpy(),
            "random_min": objective(ctx, blocks(rand_raw)).min(1).values.numpy(),
        }
        pred_err = {
            "dataset_actions": ((predicted(expert_raw) - reached(rep[2])) ** 2).sum(-1).numpy(),
            "plan": ((predicted(plan_raw) - reached(pln[2])) ** 2).sum(-1).numpy(),
            "random": ((predicted(rand_raw[:, 0]) - reached(rnd[2])) ** 2).sum(-1).numpy(),
        }
    initial = np.array([0.0])  # goal distances at the start, from a fresh restore
    with setup.environments() as envs:
        restore_all(envs.envs, data)
        initial = np.array([e.goal_distance() for e in envs.envs[:n]])
    out = {
        "pairs": n,
        "solver": f"{cfg.solver} {args.samples}x{args.iters}",
        "init_std": args.init_std,
        "cost_step": args.cost_step,
        "initial_distance": _stats(initial),
        "replay_dataset_actions": {"success": float(rep[0].mean()), "final": _stats(rep[1])},
        "plan_open_loop": {"success": float(pln[0].mean()), "final": _stats(pln[1])},
        "random_open_loop": {"success": float(rnd[0].mean()), "final": _stats(rnd[1])},
        "plan_farther_than_start": int((pln[1] > initial).sum()),
        "model_cost": {k: _stats(v) for k, v in cost.items()},
        "plan_cost_below_dataset": int((cost["plan"] < cost["dataset_actions"]).sum()),
        "prediction_error": {k: _stats(v) for k, v in pred_err.items()},
        "abs_normalised_action_p99": {
            "data": np.percentile(np.abs(all_norm), 99, axis=0).round(3).tolist(),
            "plan": np.percentile(np.abs(plan_norm.reshape(-1, a_dim)), 99, axis=0)
            .round(3)
            .tolist(),
            "bounds": np.abs(model.action_normalizer.normalize(np.stack([low, high])))
            .max(0)
            .round(3)
            .tolist(),
        },
    }
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
