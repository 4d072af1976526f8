"""``lewm train``: train LeWM (or a baseline: ``--objective pldm|dinowm``) from pixels on a
reference-layout HDF5 file (docs/training.md, docs/baselines.md).

One process, or one per device under ``torchrun --nproc-per-node N -m lewm train ...``
(docs/distributed.md): then rank 0 prints and writes, and the other ranks print nothing but
their own errors.
"""

from __future__ import annotations

import argparse
import contextlib

DEFAULT_PRESET, DEFAULT_PROFILE = "small", "clean"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train LeWM (or the PLDM / DINO-WM baseline) end-to-end from pixels",
        description="Train LeWM (or a baseline: --objective pldm|dinowm, docs/baselines.md) on "
        "a dataset in the reference HDF5 layout and write a run directory. Several processes: torchrun --nproc-per-node N -m lewm train ... "
        "(docs/distributed.md).",
    )
    p.add_argument("--data", required=True, help="training file (.h5, reference layout)")
    p.add_argument("--out", required=True, help="run directory to create (or resume with --resume)")
    p.add_argument(
        "--preset",
        help=f"tiny | small | paper (default: {DEFAULT_PRESET}; a resume keeps the run's)",
    )
    p.add_argument(
        "--profile",
        help=f"clean | reference (default: {DEFAULT_PROFILE}; a resume keeps the run's)",
    )
    p.add_argument(
        "--steps",
        type=int,
        help="stop after this many optimiser steps (overrides train.steps); with --resume, the "
        "new stop step, up to the run's train.schedule_steps (default: the run's own budget)",
    )
    p.add_argument("--seed", type=int, help="run seed (overrides train.seed)")
    p.add_argument(
        "--objective",
        help="lewm | pldm | dinowm (default: lewm; a resume keeps the run's): LeWM, PLDM's "
        "regularisers on the same model (loss.pldm.*), or DINO-WM (needs --encoder-weights); "
        "docs/baselines.md",
    )
    p.add_argument(
        "--encoder-weights",
        metavar="PATH",
        help="--objective dinowm: a local Hugging Face DINOv2 folder (config.json + weights, "
        "e.g. facebook/dinov2-small); nothing is downloaded",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set optim.lr=1e-4 (repeatable); with --resume only "
        "the cadences and speed settings may change (docs/training.md)",
    )
    p.add_argument(
        "--resume", action="store_true", help="continue the run in --out from its last checkpoint"
    )
    p.add_argument(
        "--device",
        default="auto",
        help="auto | cpu | cuda | mps (default: auto; under torchrun, cuda is cuda:LOCAL_RANK)",
    )
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
    objective = check_objective(args)
    cfg = preset(args.preset or DEFAULT_PRESET, args.profile or DEFAULT_PROFILE, objective)
    requested: dict[str, str] = {}
    if args.resume:
        # The run's saved config is used. Only what the user typed is compared with it: the
        # preset's defaults are not a request.
        requested = resume_requests(args)
        cfg.train.steps = args.steps or 0
    else:
        cfg = apply_overrides(cfg, args.overrides)
        if args.steps is not None:
            cfg.train.steps = args.steps
        if args.seed is not None:
            cfg.train.seed = args.seed
        if args.encoder_weights is not None:
            cfg.model.dinowm.encoder_weights = encoder_folder(args.encoder_weights)
    with _quiet_unless_rank_0():
        result = train(
            cfg,
            args.data,
            args.out,
            resume=args.resume,
            device=args.device,
            tensorboard=args.tensorboard,
            progress=not args.no_progress,
            overrides=requested,
        )
    if result.rank == 0:
        print(json.dumps({"run_dir": str(result.run_dir), "step": result.step, **result.metrics}))
    return 0


def resume_requests(args: argparse.Namespace) -> dict[str, str]:
    """The settings typed with ``--resume``, by dotted key (checked against the saved run)."""
    from lewm.errors import ConfigError

    out: dict[str, str] = {}
    for key, value in (("preset", args.preset), ("profile", args.profile)):
        if value is not None:
            out[key] = value
    if args.seed is not None:
        out["train.seed"] = str(args.seed)
    if args.objective is not None:
        out["loss.objective"] = args.objective
    if args.encoder_weights is not None:
        out["model.dinowm.encoder_weights"] = encoder_folder(args.encoder_weights)
    for item in args.overrides:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        key, raw = item.split("=", 1)
        out[key.strip()] = raw.strip()
    return out


def check_objective(args: argparse.Namespace) -> str:
    """``--objective`` (default lewm), checked with ``--encoder-weights``."""
    from lewm.config import OBJECTIVES
    from lewm.errors import ConfigError

    objective = args.objective or "lewm"
    if objective not in OBJECTIVES:
        raise ConfigError(
            f"unknown objective {objective!r}; choose one of {', '.join(OBJECTIVES)} "
            "(docs/baselines.md)"
        )
    if args.encoder_weights is not None and objective != "dinowm" and not args.resume:
        raise ConfigError("--encoder-weights is the DINOv2 of --objective dinowm only")
    return objective


def encoder_folder(path: str) -> str:
    """The ``--encoder-weights`` folder as recorded in the run: absolute."""
    from pathlib import Path

    return str(Path(path).expanduser().resolve())


@contextlib.contextmanager
def _quiet_unless_rank_0():
    """On ranks > 0, an error rank 0 already reported (PeerError), Ctrl-C and the SIGTERM that
    torchrun sends when another process failed end the process with its exit code and no
    output: rank 0 says what happened, once."""
    import os

    from lewm.distributed import PeerError

    try:
        yield
    except BaseException as exc:
        if os.environ.get("RANK", "0").strip() in ("", "0"):
            raise
        if isinstance(exc, PeerError):
            raise SystemExit(2) from None
        if isinstance(exc, KeyboardInterrupt):
            raise SystemExit(130) from None
        if type(exc).__name__ == "Terminated":  # lewm.cli's SIGTERM exception
            raise SystemExit(143) from None
        raise
