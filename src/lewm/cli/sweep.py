"""``lewm sweep``: train and evaluate one run per value of a config key (spec §11.3)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep",
        help="train + evaluate one run per value of a config key (resumable)",
        description="Train one run per value of --param (lewm train), evaluate each on "
        "--eval-data with the paper's protocol (lewm eval), optionally probe it, and write "
        "OUT/sweep.json and OUT/sweep.png (success rate and probe r against the value, log x "
        "axis). Rerunning the same command skips finished runs and evaluations and resumes "
        "interrupted runs. Example: lewm sweep --param loss.sigreg_weight --values "
        "0.01,0.09,0.5 --data tworoom.h5 --eval-data tworoom_eval.h5 --env tworoom --out sweeps/lambda",
    )
    p.add_argument("--param", required=True, help="dotted config key, e.g. loss.sigreg_weight")
    p.add_argument("--values", required=True, help="comma-separated values, e.g. 0.01,0.09,0.5")
    p.add_argument("--data", required=True, help="training file (.h5)")
    p.add_argument("--eval-data", required=True, help="held-out evaluation file (.h5)")
    p.add_argument("--env", required=True, help="environment of both files")
    p.add_argument("--out", required=True, help="sweep directory (one run directory per value)")
    p.add_argument("--preset", default="small", help="tiny | small | paper (default: small)")
    p.add_argument("--steps", type=int, help="training steps per run (default: the preset's)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a config override for every run (repeatable)",
    )
    p.add_argument("--objective", choices=("lewm", "pldm"), help="training objective (lewm)")
    p.add_argument("--episodes", type=int, default=50, help="evaluation pairs per seed (50)")
    p.add_argument("--seeds", default="42,43,44", help="evaluation seeds (42,43,44)")
    p.add_argument("--samples", type=int, help="CEM samples per iteration (default 300)")
    p.add_argument("--iters", type=int, help="CEM iterations (default 30)")
    p.add_argument("--probe", action="store_true", help="also probe each run (linear, projector)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | mps (default: auto)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json
    import sys
    from pathlib import Path

    from lewm.analysis.outputs import parse_ints, parse_names
    from lewm.analysis.sweep import SweepSpec, run_sweep

    solver = {}
    if args.samples is not None:
        from lewm.planning.solvers import default_topk

        solver.update(samples=args.samples, topk=default_topk(args.samples))
    if args.iters is not None:
        solver["iterations"] = args.iters
    spec = SweepSpec(
        param=args.param,
        values=parse_names(args.values),
        data=Path(args.data),
        eval_data=Path(args.eval_data),
        env=args.env,
        out=Path(args.out),
        preset=args.preset,
        steps=args.steps,
        overrides=tuple(args.overrides),
        objective=None if args.objective in (None, "lewm") else args.objective,
        eval_settings={
            "episodes": args.episodes,
            "seeds": parse_ints(args.seeds, "--seeds"),
            "solver_settings": solver,
        },  # fmt: skip
        probe=args.probe,
        device=args.device,
    )
    result = run_sweep(spec, log=lambda m: print(m, file=sys.stderr, flush=True))
    for row in result["runs"]:
        print(f"{args.param}={row['value']}: success {row['success_rate']}"
              + (f", probe r {row['probe_r']:.3f}" if row["probe_r"] is not None else ""),
              file=sys.stderr)  # fmt: skip
    print(json.dumps({"sweep": str(Path(args.out) / "sweep.json"), "runs": len(result["runs"])}))
    return 0
