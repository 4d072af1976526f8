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
import sys
from dataclasses import dataclass

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


@dataclass
class Plans:
    """Raw action plans (n, S, steps, A) per pair, and where the environment took them."""

    frames: np.ndarray  # (n, h, w, 3) start frames
    goals: np.ndarray  # (n, h, w, 3) goal frames
    recorded: np.ndarray  # (n, steps, A): the file's own actions
    plan_norm: np.ndarray  # (n, Hp, fA): the planner's first plan, normalised
    plan: np.ndarray  # (n, steps, A)
    random: np.ndarray  # (n, R, steps, A), uniform in the bounds
    bounds: tuple[np.ndarray, np.ndarray]
    initial: np.ndarray  # (n,) goal distance at the start
    outcomes: dict  # name -> (success (n,), final distance (n,), final frame (n, h, w, 3))


def _eval_setup(args):
    from lewm.eval.config import EvalConfig
    from lewm.eval.prepare import prepare
    from lewm.eval.scoring import Notes

    settings = {"samples": args.samples, "iterations": args.iters}
    if args.init_std is not None:
        settings["init_std"] = args.init_std
    cfg = EvalConfig(
        episodes=args.episodes, seeds=(args.seed,), cost_step=args.cost_step, solver=args.solver,
        solver_settings=settings,
    )  # fmt: skip
    return cfg, prepare(args.ckpt, args.env, args.data, cfg, None, Notes(lambda m: None))


def _plans(setup, args, recorded: np.ndarray) -> tuple[Plans, object]:
    """Restore every pair, solve once, draw random plans, execute all three open loop."""
    from lewm.eval.restore import read_pairs, restore_all

    model, pairs = setup.model, setup.pairs[args.seed]
    data = read_pairs(setup.data, pairs, setup.info.n_rows, setup.size, args.seed, 0)
    n, (steps, a_dim) = len(pairs), recorded.shape[1:]
    with setup.environments() as envs:
        restore_all(envs.envs, data)
        initial = np.array([e.goal_distance() for e in envs.envs[:n]])
        policy = setup.policy(args.seed, envs.bounds)
        policy.reset(n, episode_ids=[p.index for p in pairs])
        frames = np.stack([d.start_frame for d in data])
        goals = np.stack([d.goal_frame for d in data])
        policy.act(frames, goals)  # the first solve of every pair
        plan_norm = policy.records[-1].plan
        plan = model.action_normalizer.denormalize(plan_norm.reshape(n, steps, a_dim))
        low, high = (np.broadcast_to(np.asarray(b, np.float64), (a_dim,)) for b in envs.bounds)
        rng = np.random.default_rng(args.seed)
        rand = rng.uniform(low, high, size=(n, args.random_plans, steps, a_dim))
        outcomes = {
            name: _run_open_loop(envs.envs, data, raw)
            for name, raw in (("recorded", recorded), ("plan", plan), ("random", rand[:, 0]))
        }
    plans = Plans(frames, goals, recorded, plan_norm, plan, rand, (low, high), initial, outcomes)
    return plans, policy.objective


@torch.no_grad()
def _model_figures(model, objective, p: Plans) -> tuple[dict, dict]:
    """(model cost, prediction error) per kind of plan, (n,) arrays."""
    from lewm.data.transforms import frames_to_pixels

    def pixels(frames):
        return torch.as_tensor(frames_to_pixels(frames), dtype=torch.float32)

    n, hp, fa = p.plan_norm.shape
    ctx = objective.prepare(pixels(p.frames), pixels(p.goals))

    def blocks(raw):  # (n, S, steps, A) raw -> (n, S, Hp, fA) normalised
        norm = model.action_normalizer.normalize(raw).astype(np.float32)
        return torch.from_numpy(norm.reshape(n, -1, hp, fa))

    def error(raw, reached_frames):  # predicted vs reached final embedding, (n,)
        predicted = model.rollout(ctx.context_emb, blocks(raw[:, None])[:, 0])[:, -1]
        reached = model.encode(pixels(reached_frames)[:, None])[:, 0]
        return ((predicted - reached) ** 2).sum(-1).numpy()

    random_costs = objective(ctx, blocks(p.random))
    cost = {
        "dataset_actions": objective(ctx, blocks(p.recorded[:, None]))[:, 0].numpy(),
        "plan": objective(ctx, torch.from_numpy(p.plan_norm[:, None]))[:, 0].numpy(),
        "random_mean": random_costs.mean(1).numpy(),
        "random_min": random_costs.min(1).values.numpy(),
    }
    err = {
        "dataset_actions": error(p.recorded, p.outcomes["recorded"][2]),
        "plan": error(p.plan, p.outcomes["plan"][2]),
        "random": error(p.random[:, 0], p.outcomes["random"][2]),
    }
    return cost, err


def _p99(x: np.ndarray) -> list[float]:
    return np.percentile(np.abs(x), 99, axis=0).round(3).tolist()


def main(argv=None) -> dict:
    args = parse_args(argv)
    from lewm.data.hdf5 import open_h5

    cfg, setup = _eval_setup(args)
    model, pairs = setup.model, setup.pairs[args.seed]
    steps = model.frameskip * cfg.mpc_config(args.seed).horizon
    with open_h5(setup.data) as h5:
        actions = h5["action"][:]
    recorded = np.stack([actions[p.start_row : p.start_row + steps] for p in pairs])
    plans, objective = _plans(setup, args, recorded)
    cost, err = _model_figures(model, objective, plans)
    norm = model.action_normalizer.normalize
    rep, pln, rnd = (plans.outcomes[k] for k in ("recorded", "plan", "random"))
    out = {
        "pairs": len(pairs),
        "solver": f"{cfg.solver} {args.samples}x{args.iters}",
        "init_std": args.init_std,
        "cost_step": args.cost_step,
        "initial_distance": _stats(plans.initial),
        "replay_dataset_actions": {"success": float(rep[0].mean()), "final": _stats(rep[1])},
        "plan_open_loop": {"success": float(pln[0].mean()), "final": _stats(pln[1])},
        "random_open_loop": {"success": float(rnd[0].mean()), "final": _stats(rnd[1])},
        "plan_farther_than_start": int((pln[1] > plans.initial).sum()),
        "model_cost": {k: _stats(v) for k, v in cost.items()},
        "plan_cost_below_dataset": int((cost["plan"] < cost["dataset_actions"]).sum()),
        "prediction_error": {k: _stats(v) for k, v in err.items()},
        "abs_normalised_action_p99": {
            "data": _p99(norm(actions[~np.isnan(actions).any(1)])),
            "plan": _p99(plans.plan_norm.reshape(-1, model.action_dim)),
            "bounds": np.abs(norm(np.stack(plans.bounds))).max(0).round(3).tolist(),
        },
    }
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    from lewm.errors import LewmError

    try:
        main()
    except LewmError as exc:  # bad input: one line, like the lewm commands
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
