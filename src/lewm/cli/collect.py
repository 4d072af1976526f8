"""``lewm collect``: record episodes of an environment into the reference HDF5 layout."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "collect",
        help="collect episodes into an HDF5 dataset (reference layout)",
        description=(
            "Run a collection policy in an environment and write the episodes to an HDF5 "
            "file in the reference layout (spec §5). Deterministic for a given seed, "
            "whatever the number of workers. Example: lewm collect --env tworoom "
            "--policy expert --episodes 1000 --image-size 64 --seed 0 --out tworoom.h5 --workers 2"
        ),
    )
    p.add_argument("--env", required=True, help="environment: tworoom, pusht, reacher or cube")
    p.add_argument(
        "--policy",
        default=None,
        help="collection policy: expert or random (default: expert when the environment has one)",
    )
    p.add_argument("--episodes", type=int, required=True, help="number of episodes")
    p.add_argument(
        "--image-size",
        type=int,
        default=64,
        help="frame side in pixels (default 64; the paper used 224)",
    )
    p.add_argument("--seed", type=int, default=0, help="run seed (default 0)")
    p.add_argument("--out", required=True, help="output .h5 file (its directory must exist)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument(
        "--max-steps",
        type=int,
        default=None,
        help="episode step limit (default: the environment's)",
    )
    p.add_argument(
        "--compression",
        choices=("gzip", "blosc", "none"),
        default="gzip",
        help="image column compression (default gzip)",
    )
    p.add_argument(
        "--goal-pixels", action="store_true", help="also store the goal image as column 'goal'"
    )
    p.add_argument(
        "--env-set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="environment constructor keyword, e.g. --env-set render_size=64 (repeatable; "
        "evaluate with the same settings)",
    )
    p.add_argument(
        "--policy-set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="collection policy keyword, e.g. --policy-set max_speed=0.4 for a slower PushT "
        "expert (repeatable; recorded in the file's metadata)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lewm.cli.eval import _settings
    from lewm.envs import ENVS
    from lewm.envs.collect import collect
    from lewm.errors import ConfigError

    policy = args.policy
    if policy is None:
        if args.env not in ENVS:
            raise ConfigError(f"unknown environment {args.env!r}; choose one of {sorted(ENVS)}")
        policy = "expert" if "expert" in ENVS[args.env].policies else "random"
    path = collect(
        args.env,
        policy,
        args.episodes,
        args.image_size,
        args.seed,
        args.out,
        args.workers,
        max_steps=args.max_steps,
        env_kwargs=_settings(args.env_set, "--env-set"),
        policy_kwargs=_settings(args.policy_set, "--policy-set"),
        compression=args.compression,
        goal_pixels=args.goal_pixels,
        overwrite=args.overwrite,
        progress=not args.no_progress,
    )
    from lewm.data.hdf5 import inspect_dataset

    info = inspect_dataset(path)
    print(
        f"wrote {path}: {info.n_episodes} episodes, {info.n_rows} rows, {info.image_size[0]}x{info.image_size[1]} frames"
    )
    return 0
