"""``lewm surprise``: violation-of-expectation test of a world model (spec §9.2)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "surprise",
        help="surprise of a world model at colour changes and teleports (paired t-test)",
        description="Simulate pairs of trajectories (unperturbed; a colour change; a teleport, "
        "about midway, spec §9.2) with the same seeds and actions up to the event, compute the "
        "model's surprise per model step, and test the maximum surprise in the 3 steps after "
        "the event against the unperturbed twin (paired t-test, AUROC, pairwise accuracy). "
        "Writes OUT/surprise.json and OUT/surprise.png. Environments: tworoom, pusht, cube. "
        "Example: lewm surprise --ckpt runs/tworoom --env tworoom --out analysis/tworoom",
    )
    p.add_argument("--ckpt", required=True, help="run directory (or the authors' checkpoint)")
    p.add_argument("--env", required=True, help="tworoom, pusht or cube")
    p.add_argument("--out", required=True, help="output directory for surprise.json and .png")
    p.add_argument("--pairs", type=int, default=50, help="trajectory pairs per kind (50)")
    p.add_argument("--frames", type=int, default=16, help="model frames per trajectory (16)")
    p.add_argument(
        "--event", type=int, help="model frame that first shows the event (default: frames // 2)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the pairs (0)")
    p.add_argument(
        "--normalise", action="store_true", help="divide each dimension's error by its variance"
    )
    p.add_argument(
        "--env-set",
        dest="env_set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="environment constructor keyword, e.g. --env-set fast_render=true (repeatable)",
    )
    p.add_argument(
        "--stats-from",
        metavar="FILE.h5",
        help="authors' checkpoints: the training file whose actions give the statistics",
    )
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | mps (default: auto)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json
    import sys

    from lewm.analysis.outputs import write_outputs
    from lewm.analysis.surprise import SurpriseSettings
    from lewm.analysis.surprise_run import run_surprise, surprise_files, surprise_table
    from lewm.cli.eval import _settings
    from lewm.paths import check_output_dir
    from lewm.train import resolve_device

    out = check_output_dir(args.out, inputs=(args.ckpt, args.stats_from), what="--out")
    settings = SurpriseSettings(
        pairs=args.pairs,
        frames=args.frames,
        event=args.event,
        seed=args.seed,
        normalise=args.normalise,
        env_kwargs=_settings(args.env_set, "--env-set"),
    )
    result, _ = run_surprise(
        args.ckpt,
        args.env,
        settings,
        device=resolve_device(args.device),
        stats_from=args.stats_from,
        log=lambda m: print(m, file=sys.stderr, flush=True),
    )
    write_outputs(out, surprise_files(result))
    print(surprise_table(result), file=sys.stderr, flush=True)
    summary = {k: {m: v[m] for m in ("t", "p", "auroc")} for k, v in result["kinds"].items()}
    print(json.dumps({"surprise": str(out / "surprise.json"), **summary}))
    return 0
