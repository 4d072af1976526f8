"""``lewm demo [--env ENV]``: collect, train, plan toward goal images, report (resumable)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="one command per environment: collect -> train -> CEM planning evaluation",
        description="Collect data, train, evaluate with the paper's protocol on held-out "
        "episodes (with the random floor) and write everything under --out, following the "
        "environment's recipe (lewm.recipes; without --env: the 30-minute TwoRoom demo). "
        "Rerun the same command to continue a killed run: collection, training and "
        "evaluation resume where they stopped.",
    )
    p.add_argument(
        "--env",
        default=None,
        help="tworoom, pusht, reacher or cube: that environment's recipe (default: the "
        "30-minute TwoRoom demo)",
    )
    p.add_argument("--out", default="demo_out", help="output directory (default: demo_out)")
    p.add_argument(
        "--train-episodes", type=int, default=None, help="training episodes (default: the recipe's)"
    )
    p.add_argument("--steps", type=int, default=None, help="training steps (default: the recipe's)")
    p.add_argument("--preset", default=None, help="size preset to train (default: the recipe's)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--seeds", default=None, help="evaluation seeds (default 42,43,44)")
    p.add_argument("--pairs", type=int, default=None, help="start/goal pairs per seed (default 50)")
    p.add_argument(
        "--samples", type=int, default=None, help="planner samples (default: the recipe's)"
    )
    p.add_argument(
        "--iters", type=int, default=None, help="planner iterations (default: the recipe's)"
    )
    p.add_argument(
        "--paper-budget",
        dest="paper_budget",
        action="store_true",
        help="plan with the paper's CEM 300x30 instead of the recipe's solver and budget",
    )
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--quick",
        action="store_true",
        help="the recipe at smoke-test size (tiny data, tiny model, 2 pairs): hours become seconds",
    )
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lewm.demo import run_demo
    from lewm.errors import ConfigError
    from lewm.eval.budgets import PAPER
    from lewm.recipes import quick, recipe

    cfg = recipe(args.env)
    if args.quick:
        cfg = quick(cfg)
    if args.seeds is not None:
        try:
            cfg.seeds = tuple(int(s) for s in args.seeds.split(",") if s.strip())
        except ValueError:
            raise ConfigError(
                f"--seeds must be comma-separated integers, got {args.seeds!r}"
            ) from None
    for name, attr in (
        ("train_episodes", "train_episodes"),
        ("steps", "train_steps"),
        ("pairs", "pairs"),
        ("samples", "samples"),
        ("iters", "iterations"),
    ):
        value = getattr(args, name)
        if value is not None:
            if value <= 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be positive")
            setattr(cfg, attr, value)
    if args.paper_budget:
        if args.samples is not None or args.iters is not None:
            raise ConfigError("--paper-budget is CEM's 300x30: give it without --samples/--iters")
        cfg.solver, cfg.topk = "cem", None
        cfg.samples, cfg.iterations = PAPER.samples, PAPER.iterations
    if args.preset is not None:
        cfg.preset = args.preset
    cfg.overrides = [*cfg.overrides, *args.overrides]
    cfg.device = args.device
    run_demo(args.out, cfg, progress=not args.no_progress)
    return 0
