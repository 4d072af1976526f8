"""A training run's directory: checking it, resuming from it, saving and logging into it.

    config.json        resolved config, action statistics, data description, step (rewritten at every save)
    model.safetensors  weights only
    train_state.pt     model, optimiser, scheduler, step, RNG state, config: all ``--resume`` needs, one atomic file
    split.json         the train/validation split that was used
    metrics.jsonl      one JSON record per step that logged training means or validated
    tensorboard/       the same scalars, with ``--tensorboard``

Nothing is written until :meth:`RunDir.open`, so every input can be checked first. ``config.json``
is the last file :meth:`RunDir.open` writes: a directory without it holds no run and may be
reused; one with it but without ``train_state.pt`` (stopped before its first save) resumes
from step 0 with its saved config. Every file is replaced atomically; a process killed at any
moment leaves the previous checkpoint intact (plus, at worst, a hidden temporary file, removed
by the next :meth:`RunDir.open`). Under several processes only rank 0 has a RunDir.
"""

from __future__ import annotations

import json
import shlex
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from lewm.checkpoint import CONFIG_FILE, TRAIN_STATE_FILE, config_from_metadata, save_model
from lewm.checkpoint.atomic import atomic_torch_save, atomic_write_bytes
from lewm.checkpoint.common import read_json, read_torch_tensors
from lewm.checkpoint.ours import normalizer_from_metadata
from lewm.config import Config
from lewm.data.normalize import ActionNormalizer
from lewm.errors import CheckpointError, LewmError
from lewm.paths import check_output_dir

METRICS_FILE = "metrics.jsonl"
SPLIT_FILE = "split.json"
RUN_FILES = (CONFIG_FILE, TRAIN_STATE_FILE, SPLIT_FILE, METRICS_FILE, "model.safetensors")
STATE_KEYS = ("model", "optimizer", "scheduler", "step", "torch_rng")
FULL_BELOW = 64 << 20  # a failed write with less room than this (or 2 checkpoints): disk full


@dataclass
class SavedRun:
    """What a run directory holds for ``--resume``."""

    config: Config  # from config.json
    normalizer: ActionNormalizer
    state: dict | None  # the content of train_state.pt; None: stopped before its first save
    data: dict  # the "data" block of config.json
    path: Path

    @property
    def step(self) -> int:
        """Optimiser steps the checkpoint has taken."""
        return 0 if self.state is None else int(self.state["step"])


class RunDir:
    """One run directory. The constructor only checks; :meth:`open` creates and writes.

    Args:
        path: the directory (``--out``).
        resume: continue the run in ``path`` (it must hold ``config.json``); otherwise
            ``path`` must not hold a run yet.
        data: the training file, named in the commands the errors suggest (and never the
            output).
    """

    def __init__(self, path: str | Path, *, resume: bool, data: str | Path | None = None):
        self.path = check_output_dir(path, inputs=[data] if data else ())
        self.resume = resume
        self._writer = None
        self._saved: SavedRun | None = None
        self._command = " ".join(
            ["lewm train", f"--data {shlex.quote(str(data or 'FILE.h5'))}"]
            + [f"--out {shlex.quote(str(self.path))}", "--resume"]
        )
        has_config = (self.path / CONFIG_FILE).is_file()
        has_state = (self.path / TRAIN_STATE_FILE).is_file()
        if resume and not has_config:
            raise LewmError(
                f"--resume: {self.path / CONFIG_FILE} not found; nothing to resume: start the "
                "run with the same command without --resume"
            )
        if not resume and has_state:
            raise LewmError(
                f"{self.path} already holds a run; continue it with `{self._command}` or choose "
                "a new --out"
            )
        if not resume and has_config:
            raise LewmError(
                f"{self.path} holds a run stopped before its first checkpoint; continue it from "
                f"step 0 with its saved config: `{self._command}`, or choose a new --out"
            )

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS_FILE

    # -- resume --------------------------------------------------------------
    def load(self) -> SavedRun:
        """The saved config, action statistics and training state (resume only; read once)."""
        if self._saved is None:
            meta = read_json(self.path / CONFIG_FILE)
            cfg = config_from_metadata(meta)
            normalizer = normalizer_from_metadata(meta, cfg, self.path / CONFIG_FILE)
            data = meta.get("data") if isinstance(meta.get("data"), dict) else {}
            self._saved = SavedRun(cfg, normalizer, self._load_state(), data, self.path)
        return self._saved

    def _load_state(self) -> dict | None:
        path = self.path / TRAIN_STATE_FILE
        if not path.is_file():
            return None  # stopped before its first save: resume from step 0
        try:
            state = read_torch_tensors(path, what="training state")
        except CheckpointError as exc:
            raise CheckpointError(f"{exc}; {self._restart_hint(path)}") from None
        missing = [k for k in STATE_KEYS if not isinstance(state, dict) or k not in state]
        if missing:
            raise CheckpointError(
                f"{path}: not a lewm training state (no {', '.join(missing)}); "
                f"{self._restart_hint(path)}"
            )
        return state

    def _restart_hint(self, path: Path) -> str:
        return (
            f"to restart the run from step 0 with its saved config: rm {shlex.quote(str(path))} "
            f"&& {self._command}"
        )

    # -- writing -------------------------------------------------------------
    def open(self, *, meta: Mapping, split: Mapping, start: int, tensorboard: bool) -> None:
        """Create the directory. A new run writes ``split.json`` and then ``config.json``; a
        resumed one drops the metric records written after the checkpoint it resumes from.
        Temporary files of a killed writer are removed."""
        writer_class = _summary_writer_class() if tensorboard else None  # fail before writing
        again = f"`{self._command}`" if self.resume else "the same command again"
        with self._io("create the run directory", f"nothing was trained yet; run {again}"):
            self.path.mkdir(parents=True, exist_ok=True)
            self._remove_temporaries()
            if self.resume:
                self._truncate_metrics(start)
            else:
                self.metrics_path.unlink(missing_ok=True)  # a dead run's, before config.json
                atomic_write_bytes(self.path / SPLIT_FILE, json.dumps(dict(split)).encode())
                atomic_write_bytes(
                    self.path / CONFIG_FILE, (json.dumps(dict(meta), indent=2) + "\n").encode()
                )
        if writer_class is not None:
            self._writer = writer_class(log_dir=str(self.path / "tensorboard"))

    def save(
        self,
        step: int,
        model,
        optimizer,
        scheduler,
        meta: Mapping,
        device,
        rng_states: Sequence[Mapping] = (),
        extra: Mapping | None = None,
    ) -> None:
        """Weights + ``config.json``, then the full training state (each file atomically).

        ``rng_states``: every rank's dropout streams (:func:`rng_state`, several processes), so
        that a resume on as many processes continues each one. ``extra``: more plain entries of the state
        (the loop's running log means).
        """
        state = {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "step": step,
            "torch_rng": torch.get_rng_state(),
            "config": {
                k: meta[k] for k in ("preset", "profile", "model", "loss", "optim", "train")
            },
        }
        state.update(extra or {})
        if len(rng_states) > 1:
            state["rng_ranks"] = [dict(r) for r in rng_states]
        if device.type == "cuda":
            state["cuda_rng"] = torch.cuda.get_rng_state()
        with self._io(f"save the step-{step} checkpoint"):
            save_model(self.path, model, meta)
            atomic_torch_save(state, self.path / TRAIN_STATE_FILE)

    def log(self, record: Mapping) -> None:
        """Append one record (it has a ``step``) to metrics.jsonl and TensorBoard."""
        with self._io("append to metrics.jsonl"), self.metrics_path.open("a") as f:
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

    def _io(self, what: str, advice: str | None = None):
        advice = advice or (f"what was saved before is intact: continue with `{self._command}`")
        return _WriteErrors(what, self.path, advice)

    def _remove_temporaries(self) -> None:
        """Hidden ``.NAME.*.tmp`` files of an atomic write that was killed (see checkpoint.atomic)."""
        for name in RUN_FILES:
            for tmp in self.path.glob(f".{name}.*.tmp"):
                tmp.unlink(missing_ok=True)

    def _truncate_metrics(self, step: int) -> None:
        """Keep only the records up to ``step``, so a resumed run's log has no duplicate steps
        (a line cut short by a kill is dropped too)."""
        path = self.metrics_path
        if not path.exists():
            return
        keep = []
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and record.get("step", step + 1) <= step:
                keep.append(line)
        atomic_write_bytes(path, ("\n".join(keep) + "\n" if keep else "").encode())


def rng_state(device) -> dict:
    """This process's random streams (dropout draws from them): CPU, and CUDA on a GPU."""
    out = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        out["cuda"] = torch.cuda.get_rng_state()
    return out


def restore_state(state: Mapping, model, optimizer, scheduler, device, rank: int, world_size: int):
    """Load a saved training state into this process; returns the step to start at.

    Every rank loads the same weights, optimiser and schedule. The dropout streams: each rank's
    own when the run was saved by as many processes, else rank 0 takes the saved ones (rank 0's)
    and the others keep their freshly seeded streams.
    """
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    ranks = state.get("rng_ranks") or []
    if len(ranks) == world_size > 1:
        mine = ranks[rank]
    elif rank == 0:  # the dropout stream continues where it stopped
        mine = {"torch": state["torch_rng"], "cuda": state.get("cuda_rng")}
    else:
        return int(state["step"])
    torch.set_rng_state(mine["torch"])
    if device.type == "cuda" and mine.get("cuda") is not None:
        torch.cuda.set_rng_state(mine["cuda"])
    return int(state["step"])


class _WriteErrors:
    """An OSError (full disk, permissions) while writing the run as one LewmError line."""

    def __init__(self, what: str, path: Path, advice: str):
        self.what, self.path, self.advice = what, path, advice

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if exc is None or not isinstance(exc, (OSError, RuntimeError)):
            return False
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        reason = reason.strip().splitlines()[0] if reason.strip() else type(exc).__name__
        free = _free_bytes(self.path)
        state = self.path / TRAIN_STATE_FILE
        full_below = max(FULL_BELOW, 2 * state.stat().st_size if state.is_file() else 0)
        if isinstance(exc, RuntimeError) and free is not None and free < full_below:
            # torch's zip writer reports a full disk as "[enforce fail ...] unexpected pos"
            reason = f"No space left on device: {free // 1024} KiB free"
        raise LewmError(
            f"cannot {self.what} in {self.path} ({reason}); make room or fix it, then: "
            f"{self.advice}"
        ) from None


def _free_bytes(path: Path) -> int | None:
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


def _summary_writer_class():
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:
        raise LewmError(
            "--tensorboard needs the optional extra: pip install 'lewm[tensorboard]'"
        ) from exc
    return SummaryWriter
