"""The ``lewm`` console script: thin subcommands over the library.

Each subcommand lives in its own module of this package and exposes
``register(subparsers)``. Modules import only ``argparse`` at top level, so
``lewm --help`` is instant; heavy imports happen inside the handlers.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Order is the order shown in ``lewm --help``. A module missing from the tree
# (a subsystem not installed yet) is skipped.
_COMMAND_MODULES = (
    "lewm.cli.info",
    "lewm.cli.train",
    "lewm.cli.collect",
    "lewm.cli.data",
    "lewm.cli.eval",
    "lewm.cli.bench",
    "lewm.cli.demo",
    "lewm.cli.report",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lewm",
        description="LeWorldModel: train a JEPA world model from pixels, plan with it, evaluate it.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from lewm.errors import LewmError

    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        result = args.func(args)
    except LewmError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
