"""A training run's directory: checking it, resuming from it, saving and logging into it.

    config.json        resolved config, action statistics, data description, step (rewritten at every save)
    model.safetensors  weights only
    train_state.pt     model, optimiser, scheduler, step, RNG state: all ``--resume`` needs, one atomic file
    split.json         the train/validation split that was used
    metrics.jsonl      one JSON record per step that logged training means or validated
    tensorboard/       the same scalars, with ``--tensorboard``

Nothing is written until :meth:`RunDir.open`, so every input can be checked first.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from lewm.checkpoint import (
    CONFIG_FILE,
    TRAIN_STATE_FILE,
    atomic_torch_save,
    atomic_write_bytes,
    config_from_metadata,
    save_model,
)
from lewm.config import Config
from lewm.data.normalize import ActionNormalizer
from lewm.errors import LewmError

METRICS_FILE = "metrics.jsonl"
SPLIT_FILE = "split.json"


@dataclass
class SavedRun:
    """What a run directory holds for ``--resume``."""

    config: Config
    normalizer: ActionNormalizer
    state: dict  # the content of train_state.pt

    @property
    def step(self) -> int:
        """Optimiser steps the checkpoint has taken."""
        return int(self.state["step"])


class RunDir:
    """One run directory. The constructor only checks; :meth:`open` creates and writes.

    Args:
        path: the directory (``--out``).
        resume: continue the run in ``path`` (it must hold ``train_state.pt``); otherwise
            ``path`` must not hold a run yet.
    """

    def __init__(self, path: str | Path, *, resume: bool):
        self.path = Path(path)
        self.resume = resume
        self._writer = None
        self._saved: SavedRun | None = None
        if resume and not (self.path / TRAIN_STATE_FILE).is_file():
            raise LewmError(
                f"--resume: {self.path / TRAIN_STATE_FILE} not found; nothing to resume"
            )
        if not resume and (
            (self.path / CONFIG_FILE).exists() or (self.path / TRAIN_STATE_FILE).exists()
        ):
            raise LewmError(
                f"{self.path} already holds a run; pass --resume to continue it or choose a new --out"
            )

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS_FILE

    # -- resume --------------------------------------------------------------
    def load(self) -> SavedRun:
        """The saved config, action statistics and training state (resume only; read once)."""
        if self._saved is None:
            meta = json.loads((self.path / CONFIG_FILE).read_text())
            self._saved = SavedRun(
                config_from_metadata(meta),
                ActionNormalizer.from_dict(meta["action_normalizer"]),
                torch.load(self.path / TRAIN_STATE_FILE, map_location="cpu", weights_only=True),
            )
        return self._saved

    def restore(self, model, optimizer, scheduler, device: torch.device) -> int:
        """Load the saved model, optimiser, scheduler and RNG state; returns the step to start at."""
        state = self.load().state
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])  # the dropout stream continues where it stopped
        if device.type == "cuda" and "cuda_rng" in state:
            torch.cuda.set_rng_state(state["cuda_rng"])
        return int(state["step"])

    # -- writing -------------------------------------------------------------
    def open(self, *, meta: Mapping, split: Mapping, start: int, tensorboard: bool) -> None:
        """Create the directory. A new run writes ``split.json`` and ``config.json``; a resumed
        one drops the metric records written after the checkpoint it resumes from."""
        writer_class = _summary_writer_class() if tensorboard else None  # fail before writing
        self.path.mkdir(parents=True, exist_ok=True)
        if self.resume:
            self._truncate_metrics(start)
        else:
            atomic_write_bytes(self.path / SPLIT_FILE, json.dumps(dict(split)).encode())
            atomic_write_bytes(
                self.path / CONFIG_FILE, (json.dumps(dict(meta), indent=2) + "\n").encode()
            )
        if writer_class is not None:
            self._writer = writer_class(log_dir=str(self.path / "tensorboard"))

    def save(self, step: int, model, optimizer, scheduler, meta: Mapping, device) -> None:
        """Weights + ``config.json``, then the full training state (each file atomically)."""
        save_model(self.path, model, meta)
        state = {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "step": step,
            "torch_rng": torch.get_rng_state(),
        }
        if device.type == "cuda":
            state["cuda_rng"] = torch.cuda.get_rng_state()
        atomic_torch_save(state, self.path / TRAIN_STATE_FILE)

    def log(self, record: Mapping) -> None:
        """Append one record (it has a ``step``) to metrics.jsonl and TensorBoard."""
        with self.metrics_path.open("a") as f:
            f.write(json.dumps(dict(record)) + "\n")
        if self._writer is not None:
            for k, v in record.items():
                if k != "step":
                    self._writer.add_scalar(k, v, record["step"])
            self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _truncate_metrics(self, step: int) -> None:
        """Keep only the records up to ``step``, so a resumed run's log has no duplicate steps."""
        path = self.metrics_path
        if not path.exists():
            return
        lines = [line for line in path.read_text().splitlines() if line]
        keep = [line for line in lines if json.loads(line)["step"] <= step]
        atomic_write_bytes(path, ("\n".join(keep) + "\n" if keep else "").encode())


def _summary_writer_class():
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:
        raise LewmError(
            "--tensorboard needs the optional extra: pip install 'lewm[tensorboard]'"
        ) from exc
    return SummaryWriter
