"""Shipping a trained run as a small checkpoint folder (``checkpoints/ENV``).

``ship_run(run, out)`` writes what ``lewm.load`` needs and nothing else:

- ``config.json``: the run's (config, action statistics, data fingerprint), with the training
  file's path reduced to its name;
- ``model.safetensors``: the weights, in half precision with ``half=True`` (a 5.9 M-parameter
  ``small`` model is 11.9 MB instead of 23.7 MB). ``lewm.load`` casts them back to float32,
  so every figure computed from the folder is computed from exactly these numbers;
- ``training.json``: how the run was made (steps, training seconds, the training data's
  size, the demo recipe when the run came from ``lewm demo``), for ``RESULTS.md``.

The optimiser state (``train_state.pt``) and the metrics stay behind: a shipped folder is
for planning and analysis, not for resuming.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from lewm.errors import CheckpointError

__all__ = ["MAX_SHIPPED_MB", "ship_run"]

MAX_SHIPPED_MB = 15.0  # the repository's limit per shipped model file


def ship_run(run: str | os.PathLike, out: str | os.PathLike, *, half: bool = True) -> Path:
    """Write the shipped folder of ``run`` to ``out`` (created; existing files replaced)."""
    import torch
    from safetensors.torch import load_file, save_file

    from lewm.checkpoint import atomic_write_bytes

    run, out = Path(run), Path(out)
    for name in ("config.json", "model.safetensors", "metrics.jsonl"):
        if not (run / name).is_file():
            raise CheckpointError(f"{run}: no {name}; is this a finished run directory?")
    tensors = load_file(run / "model.safetensors")
    if half:
        tensors = {k: v.half() if v.is_floating_point() else v for k, v in tensors.items()}
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / ".model.safetensors.tmp"
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp),
              metadata={"format": "pt", "dtype": str(torch.float16 if half else torch.float32)})  # fmt: skip
    size_mb = tmp.stat().st_size / 1e6
    if size_mb > MAX_SHIPPED_MB:
        tmp.unlink()
        raise CheckpointError(
            f"{run}: the model file would be {size_mb:.1f} MB, over {MAX_SHIPPED_MB} MB"
        )
    tmp.chmod(0o644)  # a file to commit and share, not a private temporary
    os.replace(tmp, out / "model.safetensors")
    atomic_write_bytes(out / "config.json", _portable_config(run / "config.json"))
    info = training_info(run)
    atomic_write_bytes(out / "training.json", (json.dumps(info, indent=2) + "\n").encode())
    return out


def _portable_config(path: Path) -> bytes:
    """The run's ``config.json`` without this machine's absolute path of the training file.

    The data's fingerprint, size and episode count stay: they identify the file, the path
    only says where it once lay.
    """
    cfg = json.loads(path.read_text())
    data = cfg.get("data")
    if isinstance(data, dict) and data.get("path"):
        data["path"] = Path(data["path"]).name
    return (json.dumps(cfg, indent=2) + "\n").encode()


def training_info(run: Path) -> dict:
    """Steps, wall time and data of a run (and its demo recipe and stage times, if any)."""
    cfg = json.loads((run / "config.json").read_text())
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x]
    seconds = max((r["elapsed_seconds"] for r in records if "elapsed_seconds" in r), default=None)
    demo_results = run.parent / "results.json"
    if seconds is None and demo_results.is_file():  # runs older than elapsed_seconds: the demo's
        seconds = json.loads(demo_results.read_text()).get("demo", {}).get("train_seconds")
    data = cfg.get("data", {})
    info = {
        "steps": cfg.get("step"),
        "train_seconds": seconds,
        "preset": cfg.get("preset"),
        "objective": cfg.get("loss", {}).get("objective", "lewm"),
        "train_data": {k: data.get(k) for k in ("n_episodes", "n_rows", "image_size", "env")},
        "git_commit": cfg.get("git_commit"),
        # device, its name, precision, processes (runs before this record: absent)
        "trained_on": cfg.get("trained_on"),
    }
    demo = run.parent
    for name in ("demo.json", "stages.json"):
        if (demo / name).is_file():
            info[name.removesuffix(".json")] = json.loads((demo / name).read_text())
    return info
