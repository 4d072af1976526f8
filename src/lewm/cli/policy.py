"""``lewm policy train``: an amortised goal-conditioned policy on a frozen world model."""

from __future__ import annotations

import argparse

# (flag, PolicyTrainConfig field, type, default, help); the defaults are PolicyTrainConfig's
# (tests/test_policy.py checks), written out so that `lewm --help` imports no torch
_OPTIONS = (
    ("--blocks", "blocks", int, 5, "action blocks predicted per decision"),
    ("--max-ahead", "max_ahead", int, 5, "goals are 1..N blocks ahead (hindsight)"),
    ("--hidden", "hidden", int, 256, "hidden width of the MLP"),
    ("--depth", "depth", int, 2, "hidden layers"),
    ("--steps", "steps", int, 2000, "optimiser steps"),
    ("--batch-size", "batch_size", int, 256, "pairs per step"),
    ("--lr", "lr", float, 1e-3, "AdamW learning rate"),
    ("--max-frames", "max_frames", int, 20000, "anchor frames encoded at most"),
    ("--val-fraction", "val_fraction", float, 0.1, "share of episodes held out for the val loss"),
    ("--seed", "seed", int, 0, "seeds the initial weights, episode order and minibatches"),
)


def train_flags(config: dict) -> str:
    """The ``lewm policy train`` flags that reproduce a recorded ``PolicyTrainConfig``."""
    return "".join(f" {flag} {config[dest]}" for flag, dest, *_ in _OPTIONS if dest in config)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "policy",
        help="amortised goal-conditioned policy on a frozen world model",
        description="Train a policy pi(z_t, z_goal) -> next action blocks on a checkpoint's frozen "
        "embeddings; evaluate it with `lewm eval --policy DIR` (docs/planning.md).",
    )
    psub = p.add_subparsers(dest="policy_command", metavar="COMMAND")
    t = psub.add_parser(
        "train",
        help="fit a policy on offline data with hindsight goals",
        description="Example: lewm policy train --ckpt runs/tworoom --data tworoom_train.h5 "
        "--out runs/tworoom/policy",
    )
    t.add_argument("--ckpt", required=True, help="run directory (or the authors' checkpoint)")
    t.add_argument("--data", required=True, help="offline HDF5 data (e.g. the training file)")
    t.add_argument("--out", required=True, help="output folder (policy.json + policy.safetensors)")
    for flag, dest, kind, default, what in _OPTIONS:
        t.add_argument(flag, dest=dest, type=kind, default=default, help=f"{what} ({default})")
    t.add_argument("--device", default="auto", help="auto | cpu | cuda | mps (default: auto)")
    t.add_argument(
        "--stats-from", dest="stats_from", metavar="FILE.h5", help="authors' checkpoints"
    )
    t.add_argument("--identity-normalizer", dest="identity_normalizer", action="store_true")
    t.set_defaults(func=run_train)
    p.set_defaults(func=lambda args: p.print_help() or 2)


def run_train(args: argparse.Namespace) -> int:
    import json
    import sys

    from lewm.policy import PolicyTrainConfig, train_policy

    cfg = PolicyTrainConfig(**{dest: getattr(args, dest) for _, dest, _, _, _ in _OPTIONS})
    meta = train_policy(
        args.ckpt,
        args.data,
        args.out,
        cfg,
        device=args.device,
        stats_from=args.stats_from,
        identity_normalizer=args.identity_normalizer,
        log=lambda msg: print(msg, file=sys.stderr, flush=True),
    )
    print(json.dumps({"out": args.out, **meta["metrics"]}))
    return 0
