"""A tiny TwoRoom run for end-to-end tests: 6 expert episodes at 32x32, 3 training steps."""

from __future__ import annotations

from pathlib import Path


def make_tiny_run(root: Path) -> tuple[Path, Path]:
    """(run directory, data file) under ``root``."""
    from lewm.config import preset
    from lewm.envs.collect import collect
    from lewm.train import train

    data = collect("tworoom", "expert", 6, 32, 0, root / "tr.h5", progress=False)
    cfg = preset("tiny")
    cfg.train.steps = 3
    cfg.train.val_every = 3
    cfg.train.save_every = 3
    train(cfg, data, root / "run", device="cpu", progress=False)
    return root / "run", Path(data)
