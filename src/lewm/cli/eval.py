"""``lewm eval``: the paper's evaluation protocol (spec §7) for a trained checkpoint."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "eval",
        help="evaluate a checkpoint with the paper's planning protocol",
        description=(
            "Plan toward goal images with MPC from start states drawn from a dataset (spec §7): "
            "goal = the state --goal-offset steps later, --budget steps, success if the success "
            "test fires at any step. Also runs a random policy on the same pairs. Writes "
            "OUT/results.json (only when everything succeeded) and, with --video N, GIFs. "
            "Example: lewm eval --ckpt runs/tworoom --env tworoom --data tworoom_eval.h5 "
            "--seeds 42,43,44 --out runs/tworoom/eval"
        ),
    )
    p.add_argument("--ckpt", required=True, help="run directory (or the authors' checkpoint)")
    p.add_argument("--env", required=True, help="environment: tworoom, pusht, reacher or cube")
    p.add_argument("--data", required=True, help="evaluation HDF5 file (reference layout)")
    p.add_argument("--out", required=True, help="output directory for results.json and videos/")
    p.add_argument("--episodes", type=int, default=50, help="start/goal pairs per seed (50)")
    p.add_argument(
        "--seeds", default="42", help="comma-separated evaluation seeds (default 42; use 3+)"
    )
    p.add_argument("--solver", default="cem", help="cem (default), icem, mppi or gradient")
    p.add_argument("--samples", type=int, help="candidates per iteration (solver default: 300)")
    p.add_argument(
        "--iters", type=int, help="solver iterations (gradient: optimiser steps; default 30)"
    )
    p.add_argument(
        "--topk",
        type=int,
        help="elites (cem, icem, mppi; default 30, or samples/10 with --samples)",
    )
    p.add_argument(
        "--solver-set",
        dest="solver_set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other solver setting, e.g. --solver-set lr=0.05 (repeatable)",
    )
    p.add_argument("--horizon", type=int, default=5, help="plan length in action blocks (5)")
    p.add_argument(
        "--receding", type=int, default=None, help="blocks executed per plan (default: horizon)"
    )
    p.add_argument("--context", type=int, default=1, help="context frames H (default 1)")
    p.add_argument("--budget", type=int, default=50, help="environment steps per episode (50)")
    p.add_argument("--goal-offset", type=int, default=25, help="steps from start to goal (25)")
    p.add_argument("--video", type=int, default=0, metavar="N", help="GIFs of the first N pairs")
    p.add_argument(
        "--profile",
        default="clean",
        choices=("clean", "reference"),
        help="clean (held-out episodes, per-episode solver streams) or reference",
    )
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | mps (default: auto)")
    p.add_argument(
        "--env-set",
        dest="env_set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="environment constructor keyword, e.g. --env-set rest_start=true (repeatable)",
    )
    p.add_argument(
        "--resize-frames",
        action="store_true",
        help="resize dataset frames to the model's image size instead of refusing a mismatch",
    )
    p.set_defaults(func=run)


def _settings(items: list[str], flag: str) -> dict:
    import json

    from lewm.errors import ConfigError

    out = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{flag} expects KEY=VALUE, got {item!r}")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw  # a bare string
        out[key.strip()] = value
    return out


def run(args: argparse.Namespace) -> int:
    import json

    from lewm.errors import ConfigError
    from lewm.eval.protocol import evaluate

    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        raise ConfigError(f"--seeds expects comma-separated integers, got {args.seeds!r}") from None
    settings = _settings(args.solver_set, "--solver-set")
    iters_key = "steps" if args.solver == "gradient" else "iterations"
    for key, value in (("samples", args.samples), (iters_key, args.iters), ("topk", args.topk)):
        if value is not None:
            settings[key] = value
    if args.samples is not None and args.topk is None and "topk" not in settings:
        from dataclasses import fields

        from lewm.planning import SOLVERS

        cls = SOLVERS.get(args.solver)  # an unknown name is reported by evaluate()
        known = {f.name: f.default for f in fields(cls)} if cls is not None else {}
        if "topk" in known:
            topk = max(2, round(args.samples / 10))  # the paper's 30 of 300
            # iCEM re-inserts keep_elites elites, so it needs at least that many
            topk = max(topk, int(settings.get("keep_elites", known.get("keep_elites", 0))))
            settings["topk"] = topk
    results = evaluate(
        args.ckpt,
        args.env,
        args.data,
        args.out,
        episodes=args.episodes,
        seeds=seeds,
        solver=args.solver,
        solver_settings=settings,
        horizon=args.horizon,
        receding=args.receding,
        context=args.context,
        budget=args.budget,
        goal_offset=args.goal_offset,
        profile=args.profile,
        videos=args.video,
        device=args.device,
        env_kwargs=_settings(args.env_set, "--env-set"),
        resize_frames=args.resize_frames,
    )
    keys = (
        "success_rate",
        "success_rate_std",
        "random_success_rate",
        "already_solved_fraction",
        "success_rate_excluding_solved",
        "plan_seconds_mean",
        "held_out",
    )
    summary = {k: results[k] for k in keys}
    summary["results"] = f"{args.out}/results.json"
    print(json.dumps(summary))
    return 0
