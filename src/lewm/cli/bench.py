"""``lewm bench plan``: planning speed of a random-init model on this machine (JSON)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="benchmarks that print JSON")
    bsub = p.add_subparsers(dest="bench", metavar="BENCH")
    plan = bsub.add_parser("plan", help="seconds per CEM solve and per predictor call")
    plan.add_argument("--preset", default="paper", help="tiny | small | paper (default: paper)")
    plan.add_argument("--solver", default="cem", help="cem | icem | mppi | gradient (default: cem)")
    plan.add_argument("--samples", type=int, default=300)
    plan.add_argument("--iters", type=int, default=30)
    plan.add_argument("--horizon", type=int, default=5)
    plan.add_argument("--repeats", type=int, default=3)
    plan.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
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

    if min(args.samples, args.iters, args.horizon, args.repeats, args.threads) <= 0:
        raise ConfigError("--samples, --iters, --horizon, --repeats and --threads must be positive")
    out = bench_plan(
        args.preset,
        args.solver,
        samples=args.samples,
        iterations=args.iters,
        horizon=args.horizon,
        repeats=args.repeats,
        threads=args.threads,
        baseline=args.baseline,
    )
    print(json.dumps(out, indent=2))
    return 0
