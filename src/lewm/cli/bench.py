"""``lewm bench plan``: planning speed of a random-init model on this machine (JSON)."""

from __future__ import annotations

import argparse

# the integer options of `bench plan`: (flag, bench_plan keyword, default)
_COUNTS = (
    ("--samples", "samples", 300),
    ("--iters", "iterations", 30),
    ("--horizon", "horizon", 5),
    ("--repeats", "repeats", 3),
    ("--threads", "threads", 2),
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="benchmarks that print JSON")
    bsub = p.add_subparsers(dest="bench", metavar="BENCH")
    plan = bsub.add_parser("plan", help="seconds per solve (CEM by default) and per predictor call")
    plan.add_argument("--preset", default="paper", help="tiny | small | paper (default: paper)")
    plan.add_argument(
        "--solver",
        default="cem",
        help="cem | icem | mppi | gradient (default: cem); gradient keeps its own 100 samples "
        "and 30 steps; top-k is default_topk(samples)",
    )
    for flag, dest, default in _COUNTS:
        helptext = "torch CPU threads (default 2)" if dest == "threads" else f"(default {default})"
        plan.add_argument(
            flag, dest=dest, metavar=flag[2:].upper(), type=int, default=default, help=helptext
        )
    plan.add_argument(
        "--baseline",
        action="store_true",
        help="also time the straightforward reference rollout and compare plans",
    )
    plan.set_defaults(func=run_plan)
    p.set_defaults(func=lambda args: p.print_help() or 2)


def run_plan(args: argparse.Namespace) -> int:
    import json

    from lewm.bench import bench_plan
    from lewm.errors import ConfigError

    counts = {dest: getattr(args, dest) for _, dest, _ in _COUNTS}
    if min(counts.values()) <= 0:
        flags = ", ".join(flag for flag, _, _ in _COUNTS)
        raise ConfigError(f"{flags} must be positive")
    out = bench_plan(args.preset, args.solver, baseline=args.baseline, **counts)
    print(json.dumps(out, indent=2))
    return 0
