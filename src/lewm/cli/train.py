"""``lewm train``: train LeWM from pixels on a reference-layout HDF5 file."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train LeWM end-to-end from pixels",
        description="Train LeWM on a dataset in the reference HDF5 layout and write a run directory.",
    )
    p.add_argument("--data", required=True, help="training file (.h5, reference layout)")
    p.add_argument("--out", required=True, help="run directory to create (or resume with --resume)")
    p.add_argument("--preset", default="small", help="tiny | small | paper (default: small)")
    p.add_argument("--profile", default="clean", help="clean (default) | reference")
    p.add_argument(
        "--steps",
        type=int,
        help="stop after this many optimiser steps (overrides train.steps); with --resume, the "
        "new stop step, up to the run's train.schedule_steps (default: the run's own budget)",
    )
    p.add_argument("--seed", type=int, help="run seed (overrides train.seed)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set optim.lr=1e-4 (repeatable)",
    )
    p.add_argument(
        "--resume", action="store_true", help="continue the run in --out from its last checkpoint"
    )
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | mps (default: auto)")
    p.add_argument("--tensorboard", action="store_true", help="also write TensorBoard event files")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from lewm.config import apply_overrides, preset
    from lewm.errors import ConfigError
    from lewm.train import train

    if args.steps is not None and args.steps <= 0:
        raise ConfigError("--steps must be positive")
    cfg = preset(args.preset, args.profile)
    if args.resume:
        # The run's saved config is used; only the stop step can move, and only when --steps is
        # given (the preset's default would silently change the run's budget).
        if args.overrides or args.seed is not None:
            raise ConfigError(
                "--resume continues a run with its saved config.json; --set and --seed cannot "
                "change it (only --steps moves the stop step)"
            )
        cfg.train.steps = args.steps or 0
    else:
        cfg = apply_overrides(cfg, args.overrides)
        if args.steps is not None:
            cfg.train.steps = args.steps
        if args.seed is not None:
            cfg.train.seed = args.seed
    result = train(
        cfg,
        args.data,
        args.out,
        resume=args.resume,
        device=args.device,
        tensorboard=args.tensorboard,
        progress=not args.no_progress,
    )
    print(json.dumps({"run_dir": str(result.run_dir), "step": result.step, **result.metrics}))
    return 0
