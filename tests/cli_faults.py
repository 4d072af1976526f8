"""Shared helpers of the fault-injection tests: run a command in-process, check its one
error line, and build the small valid file and checkpoint that each fault then breaks."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import torch

from lewm.cli import main

LEWM = shutil.which("lewm", path=str(Path(sys.executable).parent)) or "lewm"
"""The real console script (for faults the in-process call cannot show, e.g. pipes)."""


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


def make_good_h5(root: Path) -> Path:
    """Four short TwoRoom expert episodes at 32x32."""
    from lewm.envs.collect import collect

    return collect("tworoom", "expert", 4, 32, 0, root / "good.h5", max_steps=30, progress=False)


def make_good_ckpt(root: Path) -> Path:
    """A tiny untrained world model saved as a run folder."""
    from lewm.checkpoint import run_metadata, save_model
    from lewm.config import preset
    from lewm.data.normalize import ActionNormalizer
    from lewm.model.world_model import LeWM

    cfg = preset("tiny")
    cfg.model.action_dim = 2
    torch.manual_seed(0)
    model = LeWM(cfg.model, ActionNormalizer((0.0, 0.0), (1.0, 1.0)))
    folder = root / "ckpt"
    folder.mkdir()
    meta = run_metadata(cfg, model.action_normalizer, {"path": "elsewhere.h5", "env": "tworoom"}, 0)
    save_model(folder, model, meta)
    return folder


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
