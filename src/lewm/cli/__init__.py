"""The ``lewm`` console script: thin subcommands over the library.

Each subcommand lives in its own module of this package and exposes
``register(subparsers)``. Modules import only ``argparse`` at top level, so
``lewm --help`` is instant; heavy imports happen inside the handlers.

:func:`main` is the one error boundary of every command (docs/reliability.md):

- a ``LewmError`` (bad input): ``error: <message>``, exit 2;
- an ``OSError`` (disk full, permissions): ``error: <file>: <reason>``, exit 2;
- running out of memory (a model or batch too large): one ``error:`` line, exit 2;
- a closed output pipe (``lewm info --json | head``): one ``error:`` line, exit 2;
- Ctrl-C: ``interrupted``, exit 130; SIGTERM: ``terminated``, exit 143.

SIGTERM is turned into an exception (:class:`Terminated`) so that ``finally`` blocks
run: worker pools are stopped and joined, partial files removed. Warnings raised by
lewm's own modules print as one ``warning: <message>`` line.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import re
import signal
import sys
import warnings
from pathlib import Path

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
    "lewm.cli.results",
    "lewm.cli.probe",
    "lewm.cli.surprise",
    "lewm.cli.straightness",
    "lewm.cli.decoder",
    "lewm.cli.sweep",
    "lewm.cli.policy",
)
_PACKAGE_DIR = str(Path(__file__).resolve().parents[1])  # .../lewm


class Terminated(BaseException):
    """Raised in the main thread on SIGTERM, so that cleanup code runs (not an ``Exception``:
    ``except Exception`` blocks must not swallow it)."""


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
    """Run one command; every failure a user can cause ends in one line and an exit code."""
    from lewm.errors import LewmError

    try:
        with _sigterm_raises(), _one_line_warnings():
            return _run(argv)
    except LewmError as exc:
        return _fail(str(exc))
    except BrokenPipeError:
        _silence_stdout()  # or Python's exit-time flush prints a second traceback
        return _fail("output closed early (broken pipe); nothing else went wrong")
    except OSError as exc:
        return _fail(_os_error_text(exc))
    except (MemoryError, RuntimeError) as exc:
        if not _out_of_memory(exc):
            raise  # a bug: keep its traceback
        return _fail(
            f"out of memory ({_single_line(str(exc))[:200]}); use a smaller model or batch"
        )
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print("terminated", file=sys.stderr)
        return 128 + signal.SIGTERM


def _run(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(argv) if argv is not None else sys.argv[1:]  # as typed (results.json)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    result = args.func(args)
    sys.stdout.flush()  # a closed pipe is reported here, inside the boundary
    return int(result or 0)


def _fail(message: str) -> int:
    print(f"error: {_single_line(message)}", file=sys.stderr)
    return 2


def _single_line(text: str) -> str:
    return re.sub(r"\s*\n\s*", " ", text.strip())


def _os_error_text(exc: OSError) -> str:
    """``file: reason`` for an OSError; h5py's long multi-line messages are cut to their reason."""
    reason = exc.strerror or str(exc)
    found = re.search(r"error message = '([^']+)'", str(exc))  # HDF5's "file write failed" text
    if found:
        reason = found.group(1)
    where = exc.filename or _hdf5_file_name(str(exc))
    return f"{where}: {reason}" if where else _single_line(reason)[:300]


def _hdf5_file_name(text: str) -> str | None:
    found = re.search(r"filename = '([^']+)'", text)
    return found.group(1) if found else None


def _out_of_memory(exc: BaseException) -> bool:
    # torch raises RuntimeError subclasses (OutOfMemoryError on CUDA, a plain RuntimeError
    # from the CPU allocator); matched without importing torch.
    return (
        isinstance(exc, MemoryError)
        or type(exc).__name__ == "OutOfMemoryError"
        or "can't allocate memory" in str(exc)
    )


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no real file descriptor (tests)
        pass


@contextlib.contextmanager
def _sigterm_raises():
    """While a command runs in the main thread, SIGTERM raises :class:`Terminated`."""

    def handler(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut the cleanup
        raise Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _one_line_warnings():
    """lewm's own warnings print as ``warning: <message>``; others keep Python's format."""
    default = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if str(filename).startswith(_PACKAGE_DIR):
            print(f"warning: {_single_line(str(message))}", file=file or sys.stderr)
        else:
            default(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = default


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
