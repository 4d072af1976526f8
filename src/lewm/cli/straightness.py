"""``lewm straightness``: temporal straightness of a checkpoint's latent trajectories (spec §9.3)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "straightness",
        help="mean cosine of consecutive latent velocities on a file's episodes",
        description="Temporal straightness (spec §9.3): the mean over trajectories and steps of "
        "cos(v_t, v_t+1), v_t = z_t+1 - z_t, at the model frame rate, over 4-frame clips (2 "
        "cosines each) and over whole episodes. Prints JSON; --out also writes it. Example: "
        "lewm straightness --ckpt runs/tworoom --data tworoom.h5",
    )
    p.add_argument("--ckpt", required=True, help="run directory (or the authors' checkpoint)")
    p.add_argument("--data", required=True, help="HDF5 file (reference layout)")
    p.add_argument(
        "--episodes",
        default="held-out",
        choices=("held-out", "all"),
        help="held-out (default: the run's validation episodes of its training file, every "
        "episode of another file) or all",
    )
    p.add_argument("--max-episodes", type=int, help="a seeded subset of at most N episodes")
    p.add_argument("--seed", type=int, default=0, help="seed of that subset (0)")
    p.add_argument("--out", help="also write OUT/straightness.json")
    p.add_argument("--resize-frames", action="store_true", help="resize frames of another size")
    p.add_argument("--stats-from", metavar="FILE.h5", help="authors' checkpoints (unused here)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | mps (default: auto)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json
    import sys

    from lewm.analysis.outputs import json_bytes, write_outputs
    from lewm.analysis.straightness import file_straightness
    from lewm.errors import ConfigError
    from lewm.paths import check_output_dir
    from lewm.train import resolve_device

    out = None
    if args.out is not None:
        out = check_output_dir(args.out, inputs=(args.ckpt, args.data), what="--out")
    if args.max_episodes is not None and args.max_episodes < 1:
        raise ConfigError("--max-episodes must be positive")
    result = file_straightness(
        args.ckpt,
        args.data,
        episodes=args.episodes,
        max_episodes=args.max_episodes,
        seed=args.seed,
        device=resolve_device(args.device),
        stats_from=args.stats_from,
        resize_frames=args.resize_frames,
        log=lambda m: print(m, file=sys.stderr, flush=True),
    )
    if out is not None:
        write_outputs(out, {"straightness.json": json_bytes(result)})
    print(json.dumps(result))
    return 0
