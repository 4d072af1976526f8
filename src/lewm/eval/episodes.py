"""Which episodes of the evaluation file may be used, and whether they are held out.

Spec §4.6, §7.4, P6. What the checkpoint says about its training (the training
file, its split) comes from the model's declared ``provenance`` field; a model
without one (a test double, a baseline) is treated as ``Provenance()``: no record.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lewm.eval.config import EvaluationError
from lewm.model.provenance import Provenance


@dataclass(frozen=True)
class EpisodeSource:
    """Which episodes of the evaluation file may be used, and whether they are held out."""

    episodes: np.ndarray | None  # None = every episode of the file
    held_out: bool | None  # None = unknown (no training record, e.g. the authors' checkpoints)
    note: str


def provenance_of(model: Any) -> Provenance:
    """The model's provenance; ``Provenance()`` (nothing known) for models that have none."""
    prov = getattr(model, "provenance", None)
    return Provenance() if prov is None else prov


def choose_episodes(
    model: Any, ckpt: Path, data: Path, n_episodes: int, profile: str
) -> EpisodeSource:
    """Held-out selection.

    ``clean``: if ``data`` is the run's training file, only its ``val_episodes``
    (``split.json``); another file is used whole. ``reference``: the file as it is.
    """
    prov = provenance_of(model)
    train_file = prov.data.get("path")
    if train_file is None:
        return EpisodeSource(
            None,
            None,
            "the checkpoint has no training record, so whether these episodes were seen in "
            "training is unknown",
        )
    if not _same_file(data, Path(train_file), prov.data):
        return EpisodeSource(None, True, f"a file other than the training file ({train_file})")
    if profile == "reference":
        return EpisodeSource(None, False, "the training file, all episodes (reference profile)")
    run_dir = ckpt if ckpt.is_dir() else ckpt.parent
    split_path = run_dir / "split.json"
    if not split_path.is_file():
        raise EvaluationError(
            f"{data} is the run's training file but {split_path} is missing, so the held-out "
            "episodes are unknown; pass a separate evaluation file or --profile reference"
        )
    from lewm.checkpoint.common import read_json

    split = read_json(split_path)  # a damaged split.json is one CheckpointError
    trained_split = getattr(prov.config.train, "split", None) if prov.config else None
    if "clip" in (trained_split, split.get("split")):
        raise EvaluationError(
            f"{run_dir} was trained with the reference's clip split, so every episode of {data} "
            "was seen in training; pass a separate evaluation file or --profile reference"
        )
    try:
        val = np.asarray(split.get("val_episodes", []), dtype=np.int64).reshape(-1)
    except (TypeError, ValueError):
        val = np.zeros(0, dtype=np.int64)  # refused just below, naming the file
    if len(val) == 0 or val.max() >= n_episodes or val.min() < 0:
        raise EvaluationError(
            f"{split_path}: val_episodes {val.tolist()[:10]} do not fit {data} "
            f"({n_episodes} episodes); pass a separate evaluation file"
        )
    return EpisodeSource(
        val, True, f"the run's {len(val)} validation episodes of its training file"
    )


def _same_file(data: Path, train_file: Path, train_meta: Mapping[str, Any]) -> bool:
    """Whether ``data`` is the training file; if that path is gone (a moved run), the
    same file name with the same row and episode counts counts as the same file."""
    try:
        return os.path.samefile(data, train_file)
    except OSError:
        pass
    if train_file.exists() or data.name != train_file.name:
        return False
    from lewm.data.hdf5 import inspect_dataset

    info = inspect_dataset(data, check_actions=False)
    return (info.n_rows, info.n_episodes) == (
        train_meta.get("n_rows"),
        train_meta.get("n_episodes"),
    )
