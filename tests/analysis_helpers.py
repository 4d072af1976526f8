"""Shared tiny inputs of the analysis tests (probe, surprise, straightness, decoder, sweep).

Built once per test session into a temporary directory (removed at exit): a 6-episode
TwoRoom expert file at 32x32 and a tiny model trained 3 steps on it.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path


@functools.cache
def tworoom_run() -> tuple[Path, Path]:
    """(run directory, data file): tiny preset, 3 steps on 6 TwoRoom expert episodes at 32x32."""
    from lewm.config import preset
    from lewm.envs.collect import collect
    from lewm.train import train

    root = Path(tempfile.mkdtemp(prefix="lewm-analysis-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    data = collect("tworoom", "expert", 6, 32, 0, root / "tr.h5", progress=False)
    cfg = preset("tiny")
    cfg.train.steps = 3
    cfg.train.val_every = 3
    cfg.train.save_every = 3
    train(cfg, data, root / "run", device="cpu", progress=False)
    return root / "run", data


def cli(*args) -> tuple[int, str, str]:
    """Run the console script in-process: (exit code, stdout, stderr)."""
    import contextlib
    import io

    from lewm.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()
