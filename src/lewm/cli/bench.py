"""``lewm bench plan``: planning speed of a random-init model on this machine (JSON)."""

from __future__ import annotations

import argparse

# the integer options of `bench plan`: (flag, bench_plan keyword, default); None = decided
# in run_plan (repeats: 3, or 5 with --json; threads: the physical cores)
_COUNTS = (
    ("--samples", "samples", 300),
    ("--iters", "iterations", 30),
    ("--horizon", "horizon", 5),
    ("--repeats", "repeats", None),
    ("--threads", "threads", None),
)
_HELP = {
    "repeats": "timed solves after a warm-up (default 3; 5 with --json)",
    "threads": "torch CPU threads (default: the physical cores)",
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="benchmarks that print JSON")
    bsub = p.add_subparsers(dest="bench", metavar="BENCH")
    plan = bsub.add_parser(
        "plan",
        help="seconds per solve (CEM by default) and per predictor call, GFLOP, GFLOP/s",
        description="Times planning solves of a random-init model. --json: the full "
        "measurement (>= 5 solves, the reference rollout in the same run, the machine's "
        "matmul peak); keys in docs/planning.md.",
    )
    plan.add_argument("--model", default="lewm", choices=("lewm", "dinowm"), help="(lewm)")
    plan.add_argument("--preset", default="paper", help="lewm: tiny | small | paper (paper)")
    plan.add_argument(
        "--solver",
        default="cem",
        help="cem | icem | mppi | gradient (default: cem); gradient keeps its own 100 samples "
        "and 30 steps; top-k is default_topk(samples)",
    )
    for flag, dest, default in _COUNTS:
        helptext = _HELP.get(dest, f"(default {default})")
        plan.add_argument(
            flag, dest=dest, metavar=flag[2:].upper(), type=int, default=default, help=helptext
        )
    plan.add_argument(
        "--baseline",
        action="store_true",
        help="also time the straightforward reference rollout and compare plans",
    )
    plan.add_argument(
        "--json",
        action="store_true",
        help="the full measurement: --baseline, the matmul peak, at least 5 solves",
    )
    plan.add_argument(
        "--compile",
        action="store_true",
        help="also time the fast rollout under torch.compile (inductor; opt-in, compiles first)",
    )
    plan.add_argument("--image-size", type=int, default=224, help="dinowm: frame size (224)")
    plan.add_argument("--action-dim", type=int, default=2, help="dinowm: action dimension (2)")
    plan.add_argument(
        "--max-solve-seconds",
        type=float,
        default=60.0,
        help="dinowm: above this estimate the solve is extrapolated from timed iterations (60)",
    )
    plan.set_defaults(func=run_plan)
    p.set_defaults(func=lambda args: p.print_help() or 2)


def run_plan(args: argparse.Namespace) -> int:
    import json

    from lewm.bench_peak import physical_cores
    from lewm.errors import ConfigError

    counts = {dest: getattr(args, dest) for _, dest, _ in _COUNTS}
    if counts["repeats"] is None:
        counts["repeats"] = 5 if args.json else 3
    if counts["threads"] is None:
        counts["threads"] = physical_cores()
    if min(counts.values()) <= 0 or args.image_size <= 0 or args.action_dim <= 0:
        flags = ", ".join(flag for flag, _, _ in _COUNTS)
        raise ConfigError(f"{flags}, --image-size and --action-dim must be positive")
    if args.model == "dinowm":
        from lewm.bench_dinowm import bench_dinowm

        out = bench_dinowm(
            args.solver,
            image_size=args.image_size,
            action_dim=args.action_dim,
            max_solve_seconds=args.max_solve_seconds,
            peak=args.json,
            **counts,
        )
    else:
        from lewm.bench import bench_plan

        out = bench_plan(
            args.preset,
            args.solver,
            baseline=args.baseline or args.json,
            peak=args.json,
            compile=args.compile,
            **counts,
        )
    print(json.dumps(out, indent=2))
    return 0
