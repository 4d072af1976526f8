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
        "--seeds",
        default="42,43,44",
        help="comma-separated evaluation seeds (default 42,43,44, like the demo; spec §7.4: 3+)",
    )
    _add_solver_args(p)
    _add_protocol_args(p)
    _add_model_args(p)
    p.set_defaults(func=run)


def _add_solver_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--solver", default="cem", help="cem (default), icem, mppi or gradient")
    p.add_argument(
        "--samples",
        type=int,
        help="candidates per iteration (cem: the environment's studied budget, see "
        "--paper-budget; other solvers: 300)",
    )
    p.add_argument(
        "--iters",
        type=int,
        help="solver iterations (gradient: optimiser steps; cem: the studied budget; else 30)",
    )
    p.add_argument(
        "--paper-budget",
        dest="paper_budget",
        action="store_true",
        help="cem: plan at the paper's 300x30 instead of the environment's default, the cheapest "
        "setting inside 300x30's 95 %% interval where a compute study exists (TwoRoom: 50x10)",
    )
    p.add_argument(
        "--topk",
        type=int,
        help="elites (cem, icem, mppi; default 30, or samples // 10 (at least 2) with --samples)",
    )
    _add_key_values(p, "--solver-set", "any other solver setting, e.g. --solver-set lr=0.05")
    p.add_argument(
        "--cost-step",
        dest="cost_step",
        type=int,
        metavar="K",
        help="rank candidates on the embedding predicted after K blocks (1..horizon; "
        "default: the last, the reference)",
    )
    p.add_argument(
        "--policy",
        metavar="DIR",
        help="a `lewm policy train` folder: its proposal is the plan (no search); the pairs, "
        "seeds and scoring are the protocol's",
    )
    p.add_argument(
        "--policy-init",
        dest="policy_init",
        action="store_true",
        help="with --policy: the proposal is the solver's initial plan (CEM's initial mean)",
    )

    p.add_argument(
        "--compile",
        action="store_true",
        help="plan through torch.compile of the rollout (inductor, weights frozen): the same "
        "rollouts to float rounding, faster after two compiles (the first batch size, then any)",
    )


def _add_protocol_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--horizon", type=int, default=5, help="plan length in action blocks (5)")
    p.add_argument(
        "--receding", type=int, default=None, help="blocks executed per plan (default: horizon)"
    )
    p.add_argument("--context", type=int, default=1, help="context frames H (default 1)")
    p.add_argument(
        "--dataset-history",
        dest="dataset_history",
        action="store_true",
        help="with --context H > 1: the first solve's context holds the H-1 dataset frames "
        "(and their actions) before the start instead of the start frame repeated at rest",
    )
    p.add_argument("--budget", type=int, default=50, help="environment steps per episode (50)")
    p.add_argument("--goal-offset", type=int, default=25, help="steps from start to goal (25)")
    p.add_argument("--video", type=int, default=0, metavar="N", help="GIFs of the first N pairs")
    p.add_argument(
        "--profile",
        default="clean",
        choices=("clean", "reference"),
        help="clean (held-out episodes, per-episode solver streams) or reference",
    )
    _add_key_values(
        p, "--env-set", "environment constructor keyword, e.g. --env-set rest_start=true"
    )


def _add_key_values(p: argparse.ArgumentParser, flag: str, what: str) -> None:
    """A repeatable ``FLAG KEY=VALUE`` collected into a list (parsed by :func:`_settings`)."""
    dest = flag.lstrip("-").replace("-", "_")
    p.add_argument(
        flag,
        dest=dest,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"{what} (repeatable)",
    )


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | mps (default: auto)")
    p.add_argument(
        "--resize-frames",
        action="store_true",
        help="resize dataset frames to the model's image size instead of refusing a mismatch",
    )
    p.add_argument(
        "--stats-from",
        dest="stats_from",
        metavar="FILE.h5",
        help="authors' checkpoints: the training file whose actions give the normalisation "
        "statistics (default under --profile reference: the evaluation file)",
    )
    p.add_argument(
        "--identity-normalizer",
        dest="identity_normalizer",
        action="store_true",
        help="plan in raw action units: only for checkpoints trained without normalisation",
    )


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


def _budget(args: argparse.Namespace):
    """The CEM budget used when none is given (lewm.eval.budgets), or None: the solver's own
    defaults, or what --samples/--iters/--solver-set say."""
    from lewm.errors import ConfigError
    from lewm.eval.budgets import default_budget

    given = args.samples is not None or args.iters is not None
    given = given or any(
        i.split("=")[0].strip() in ("samples", "iterations") for i in args.solver_set
    )
    if args.paper_budget and (given or args.solver != "cem"):
        raise ConfigError("--paper-budget is CEM's 300x30: give it without --samples/--iters")
    if args.solver != "cem" or given or (args.policy and not args.policy_init):
        return None
    return default_budget(args.env, paper=args.paper_budget)


def _solver_settings(args: argparse.Namespace, budget=None) -> dict:
    """--solver-set, then --samples/--iters/--topk; with --samples alone, the one top-k rule."""
    settings = _settings(args.solver_set, "--solver-set")
    if budget is not None:
        settings = {**budget.solver_settings(), **settings}
    iters_key = "steps" if args.solver == "gradient" else "iterations"
    for key, value in (("samples", args.samples), (iters_key, args.iters), ("topk", args.topk)):
        if value is not None:
            settings[key] = value
    if args.samples is not None and "topk" not in settings:
        from dataclasses import fields

        from lewm.planning import SOLVERS
        from lewm.planning.solvers import default_topk

        cls = SOLVERS.get(args.solver)  # an unknown name is reported by EvalConfig
        known = {f.name: f.default for f in fields(cls)} if cls is not None else {}
        if "topk" in known:
            topk = default_topk(args.samples)  # the paper's 30 of 300
            # iCEM re-inserts keep_elites elites, so it needs at least that many
            settings["topk"] = max(
                topk, int(settings.get("keep_elites", known.get("keep_elites", 0)))
            )
    return settings


def _command(args: argparse.Namespace) -> list[str]:
    """The command line as typed (relative paths stay relative): ``args.argv`` when the
    console script recorded it, else ``sys.argv`` when it is this ``eval`` call."""
    import sys

    argv = getattr(args, "argv", None)
    if argv is None and sys.argv[1:2] == ["eval"]:
        argv = sys.argv[1:]
    if argv is None:  # called in-process with another argv: the parsed options
        argv = ["eval"] + [
            f"--{k.replace('_', '-')}={v}"
            for k, v in sorted(vars(args).items())
            if k not in ("func", "command") and v not in (None, False, [], "")
        ]
    return ["lewm", *map(str, argv)]


def _headline(results: dict) -> str:
    """One human line; every ± is the sample std over seeds (ddof 1), and says so."""
    n = len(results["seeds"])

    def rate(key: str) -> str:
        std = results[f"{key}_std"]
        return f"{results[key]:.1f} %" if std is None else f"{results[key]:.1f} ± {std:.1f} %"

    note = "one seed, no std" if n == 1 else f"± = sample std over {n} seeds, ddof 1"
    return f"success {rate('success_rate')}, random floor {rate('random_success_rate')} ({note})"


def run(args: argparse.Namespace) -> int:
    import json
    import sys

    from lewm.errors import ConfigError
    from lewm.eval.config import EvalConfig
    from lewm.eval.protocol import evaluate

    try:
        seeds = tuple(int(s) for s in args.seeds.split(",") if s.strip())
    except ValueError:
        raise ConfigError(f"--seeds expects comma-separated integers, got {args.seeds!r}") from None
    budget = _budget(args)
    if budget is not None:
        print(f"planning budget: {budget.label()}", file=sys.stderr, flush=True)
    config = EvalConfig(
        episodes=args.episodes,
        seeds=seeds,
        solver=args.solver,
        solver_settings=_solver_settings(args, budget),
        horizon=args.horizon,
        receding=args.receding,
        context=args.context,
        dataset_history=args.dataset_history,
        budget=args.budget,
        goal_offset=args.goal_offset,
        profile=args.profile,
        videos=args.video,
        device=args.device,
        env_kwargs=_settings(args.env_set, "--env-set"),
        resize_frames=args.resize_frames,
        stats_from=args.stats_from,
        identity_normalizer=args.identity_normalizer,
        cost_step=args.cost_step,
        policy=args.policy,
        policy_init=args.policy_init,
        compile=args.compile,
    )
    results = evaluate(args.ckpt, args.env, args.data, args.out, config, command=_command(args))
    print(_headline(results), file=sys.stderr, flush=True)
    keys = (
        "success_rate",
        "success_rate_std",
        "random_success_rate",
        "random_success_rate_std",
        "std_kind",
        "already_solved_fraction",
        "success_rate_excluding_solved",
        "plan_seconds_mean",
        "decision_ms_mean",
        "held_out",
    )
    summary = {k: results[k] for k in keys}
    summary["planning_budget"] = None if budget is None else budget.label()
    summary["results"] = f"{args.out}/results.json"
    print(json.dumps(summary))
    return 0
