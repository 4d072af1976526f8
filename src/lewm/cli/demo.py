"""``lewm demo``: collect TwoRoom, train the small preset, plan toward goal images, report."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="the one-command demo: TwoRoom data -> train small -> CEM planning evaluation",
        description="Collect TwoRoom data at 64x64, train the small preset, evaluate with the paper's "
        "protocol on held-out episodes (with the random floor) and write everything under --out.",
    )
    p.add_argument("--out", default="demo_out", help="output directory (default: demo_out)")
    p.add_argument(
        "--train-episodes", type=int, default=None, help="training episodes (default 2000)"
    )
    p.add_argument("--steps", type=int, default=None, help="training steps (default: the preset's)")
    p.add_argument("--preset", default="small", help="size preset to train (default: small)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--seeds", default="42,43,44", help="evaluation seeds (default 42,43,44)")
    p.add_argument("--pairs", type=int, default=None, help="start/goal pairs per seed (default 50)")
    p.add_argument("--samples", type=int, default=None, help="CEM samples (default 300)")
    p.add_argument("--iters", type=int, default=None, help="CEM iterations (default 10)")
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--quick",
        action="store_true",
        help="a smoke-test sized demo (tiny data, tiny model, 2 pairs): minutes become seconds",
    )
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lewm.demo import DemoConfig, run_demo
    from lewm.errors import ConfigError

    cfg = DemoConfig()
    if args.quick:
        cfg = DemoConfig(
            train_episodes=12,
            eval_episodes=6,
            image_size=32,
            preset="tiny",
            train_steps=10,
            seeds=(42,),
            pairs=2,
            samples=16,
            iterations=2,
            videos=1,
            workers=1,
        )
    try:
        seeds = tuple(int(s) for s in args.seeds.split(",") if s.strip())
    except ValueError:
        raise ConfigError(f"--seeds must be comma-separated integers, got {args.seeds!r}") from None
    if not args.quick:
        cfg.seeds = seeds
    for name, attr in (
        ("train_episodes", "train_episodes"),
        ("steps", "train_steps"),
        ("pairs", "pairs"),
        ("samples", "samples"),
        ("iters", "iterations"),
    ):
        value = getattr(args, name)
        if value is not None:
            if value <= 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be positive")
            setattr(cfg, attr, value)
    if not args.quick:
        cfg.preset = args.preset
    cfg.overrides = list(args.overrides)
    cfg.device = args.device
    run_demo(args.out, cfg, progress=not args.no_progress)
    return 0
