"""``lewm results``: ship a trained run as a small checkpoint folder; write ``RESULTS.md``."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "results",
        help="ship a run as checkpoints/ENV; write the success table RESULTS.md",
        description="ship: copy a finished run's config and weights (half precision by default) "
        "into a checkpoint folder that lewm.load and lewm eval read. table: build RESULTS.md "
        "from every checkpoints/*/results.json (each written by the lewm eval call it records).",
    )
    sub = p.add_subparsers(dest="results_command", metavar="SUBCOMMAND")
    ship = sub.add_parser("ship", help="write a shipped checkpoint folder from a run directory")
    ship.add_argument("--run", required=True, help="finished run directory (lewm train --out)")
    ship.add_argument("--out", required=True, help="folder to write, e.g. checkpoints/tworoom")
    ship.add_argument("--full", action="store_true", help="keep float32 weights (default: float16)")
    ship.set_defaults(func=run_ship)
    table = sub.add_parser("table", help="write RESULTS.md from checkpoints/*/results.json")
    table.add_argument("--checkpoints", default="checkpoints", help="folder of shipped checkpoints")
    table.add_argument("--out", default="RESULTS.md", help="Markdown file to write")
    table.set_defaults(func=run_table)
    p.set_defaults(func=lambda args: _missing(p))


def _missing(parser: argparse.ArgumentParser) -> int:
    parser.print_usage()
    print("error: choose a subcommand: ship or table")
    return 2


def run_ship(args: argparse.Namespace) -> int:
    from lewm.ship import ship_run

    out = ship_run(args.run, args.out, half=not args.full)
    size = (out / "model.safetensors").stat().st_size / 1e6
    print(f"wrote {out}/ (model.safetensors {size:.1f} MB, config.json, training.json)")
    return 0


def run_table(args: argparse.Namespace) -> int:
    from pathlib import Path

    from lewm.checkpoint import atomic_write_bytes
    from lewm.results_table import write_results_md

    text = write_results_md(args.checkpoints)
    atomic_write_bytes(Path(args.out), text.encode())
    print(text)
    return 0
