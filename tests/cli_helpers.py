"""Shared helpers of the command-line tests: run a command in-process or as the console
script, check its one error line, and the smallest ``lewm eval`` of a checkpoint.
The good file and checkpoint the fault tests break are fixtures (``conftest.py``)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from lewm.cli import main

LEWM = shutil.which("lewm", path=str(Path(sys.executable).parent)) or "lewm"
"""The real console script (for faults the in-process call cannot show, e.g. pipes)."""


def run_console(*args, check: bool = True) -> subprocess.CompletedProcess:
    """``lewm ARGS`` as the real console script; ``check``: fail with its output if rc != 0."""
    proc = subprocess.run([LEWM, *map(str, args)], capture_output=True, text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"lewm {' '.join(map(str, args))} failed:\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def run_cli(capsys, *args) -> tuple[int, str, str]:
    """``lewm ARGS`` through :func:`lewm.cli.main` (the console script's error boundary)."""
    capsys.readouterr()
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def assert_one_error(rc: int, err: str, *, contains: str | None = None) -> str:
    """Exit 2, exactly one ``error:`` line, no traceback; returns the line."""
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert rc == 2, err
    assert len(lines) == 1, err
    assert "Traceback" not in err, err
    if contains is not None:
        assert contains in lines[0], lines[0]
    return lines[0]


def eval_args(ckpt, data, out) -> tuple:
    """The smallest ``lewm eval`` of ``ckpt`` on ``data`` (one episode, one iteration)."""
    return (
        "eval", "--ckpt", ckpt, "--env", "tworoom", "--data", data, "--out", out,
        "--episodes", "1", "--seeds", "0", "--budget", "5", "--goal-offset", "5",
        "--horizon", "1", "--samples", "4", "--iters", "1", "--device", "cpu",
        "--identity-normalizer",
    )  # fmt: skip


def no_eval_output(out: Path) -> None:
    assert not (out / "results.json").exists()
