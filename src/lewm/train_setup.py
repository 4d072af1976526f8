"""Everything training needs before its first step, all checked before the run directory is touched.

- :func:`resolve_config` resolves a config against the data (action width, step budget and
  schedule length from epochs); :func:`resume_budget` moves a resumed run's stop step. Both are
  pure: they return a new :class:`~lewm.config.Config` and leave their input as it is.
- :func:`prepare` builds the split, the clips, the loader and the validation batches.
- :func:`build_training` builds the seeded model, AdamW and the warm-up + cosine schedule.
- :func:`require_single_process`, :func:`resolve_device`, :func:`autocast_for`.
"""

from __future__ import annotations

import copy
import math
import os
import sys
from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from lewm.config import Config, TrainConfig
from lewm.data.clips import ClipDataset, ClipLoader, clip_index, clip_split, episode_split
from lewm.data.hdf5 import DatasetInfo, inspect_dataset
from lewm.errors import ConfigError, DatasetError, LewmError
from lewm.model.world_model import LeWM
from lewm.run_dir import SavedRun

CLIP_SPLIT_RULE = (
    "clips = every (episode, start) with 0 <= start <= ep_len - span, episodes and starts in "
    "order; perm = numpy.random.default_rng(seed).permutation(n_clips); validation = "
    "clips[sort(perm[:int(n_clips * val_fraction)])], training = the rest in order"
)


# --------------------------------------------------------------------------- processes, devices


def require_single_process(environ: Mapping[str, str] = os.environ) -> None:
    """Refuse a multi-process launch (``WORLD_SIZE`` > 1) until training supports one."""
    raw = environ.get("WORLD_SIZE", "").strip() or "1"
    try:
        world_size = int(raw)
    except ValueError:
        raise LewmError(f"WORLD_SIZE={raw!r} is not an integer") from None
    if world_size > 1:
        raise LewmError(
            f"WORLD_SIZE={world_size}: multi-process training is not available yet (each process "
            "would compute SIGReg on its own batch, not the global one; spec §3.4); run one process"
        )


def resolve_device(name: str) -> torch.device:
    """'auto' -> cuda, mps, cpu; explicit names are checked."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise LewmError("--device cuda: no CUDA device is available (this torch build or machine)")
    if name == "mps" and not (
        getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    ):
        raise LewmError("--device mps: MPS is not available")
    if name not in ("cpu", "cuda", "mps"):
        raise LewmError(f"unknown device {name!r}; use auto, cpu, cuda or mps")
    return torch.device(name)


def autocast_for(cfg: Config, device: torch.device):
    """bf16 autocast on CUDA by default; fp32 on CPU (bf16 is ~24x slower without hardware support)."""
    precision = cfg.train.precision
    if precision == "auto":
        precision = "bf16" if device.type == "cuda" else "fp32"
    if precision == "bf16":
        return lambda: torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return nullcontext


# --------------------------------------------------------------------------- the config, resolved


def resolve_config(cfg: Config, info: DatasetInfo, batches_per_epoch: int) -> Config:
    """``cfg`` resolved against the data, as a new Config (``cfg`` is not changed).

    Checks the frame size and the action width, takes ``model.action_dim`` from the file, and
    turns epoch budgets into steps: ``train.steps`` (0: ``epochs`` x batches per epoch) and
    ``train.schedule_steps`` (0: ``schedule_epochs`` x batches per epoch, at least the steps).
    """
    size, t = cfg.model.encoder.image_size, cfg.train
    if info.image_size != (size, size):
        raise DatasetError(
            f"{info.path}: frames are {info.image_size[0]}x{info.image_size[1]}, the model expects "
            f"{size}x{size}; collect at --image-size {size} or set model.encoder.image_size "
            "(a multiple of the patch size)"
        )
    if cfg.model.action_dim not in (0, info.action_dim):
        raise DatasetError(
            f"{info.path}: action_dim is {info.action_dim}, the run was configured for "
            f"{cfg.model.action_dim}"
        )
    if t.schedule_steps and t.steps and t.schedule_steps < t.steps:
        raise ConfigError(f"train.schedule_steps ({t.schedule_steps}) < train.steps ({t.steps})")
    steps = t.steps or max(1, math.ceil(t.epochs * batches_per_epoch))
    schedule = t.schedule_steps or max(steps, math.ceil(t.schedule_epochs * batches_per_epoch))
    out = copy.deepcopy(cfg)  # nothing shared with the caller's config
    return replace(
        out,
        model=replace(out.model, action_dim=info.action_dim),
        train=replace(out.train, steps=steps, schedule_steps=schedule),
    )


def resume_budget(saved: Config, steps: int, start: int) -> Config:
    """A resumed run's config: ``saved`` with its stop step moved to ``steps`` (0 keeps it).

    The schedule is fixed when a run starts, so a stop step past ``train.schedule_steps``
    (where the lr is 0) is refused, and so is one the run has already reached.
    """
    t = saved.train
    target = steps or t.steps
    if target > t.schedule_steps:
        raise ConfigError(
            f"--steps {target}: this run's learning-rate schedule ends at {t.schedule_steps} steps "
            f"(train.schedule_steps), past it the lr is 0; start a new run with --steps {target}, "
            "or start it with --set train.schedule_steps=N so that --resume can extend it up to N"
        )
    if target <= start:
        more = (
            f"pass --steps N with N up to {t.schedule_steps} to train further"
            if start < t.schedule_steps
            else "its schedule ends there; start a new run with a larger --steps to train longer"
        )
        raise LewmError(f"the run is already at step {start} (stop step {target}); {more}")
    out = copy.deepcopy(saved)
    return replace(out, train=replace(out.train, steps=target))


# --------------------------------------------------------------------------- data


@dataclass
class Split:
    """Training and validation clips, (n, 2) arrays of (episode, start), and ``split.json``."""

    train: np.ndarray
    val: np.ndarray
    record: dict


def make_split(cfg: Config, info: DatasetInfo, data: Path) -> Split:
    """The episode split (default), or the reference's leaky clip split (``train.split=clip``)."""
    t = cfg.train
    span = (cfg.model.predictor.num_frames + 1) * cfg.model.frameskip
    record = {
        "split": t.split,
        "seed": t.split_seed,
        "val_fraction": t.val_fraction,
        "data": str(data.resolve()),
    }
    if t.split == "clip":
        clips = clip_index(info, np.arange(info.n_episodes), span)
        train, val = clip_split(clips, t.val_fraction, t.split_seed)
        record.update(
            span=span,
            n_clips=len(clips),
            n_train_clips=len(train),
            n_val_clips=len(val),
            rule=CLIP_SPLIT_RULE,
            val_clips=val.tolist(),
        )
        return Split(train, val, record)
    train_eps, val_eps = episode_split(info.n_episodes, t.val_fraction, t.split_seed)
    record.update(train_episodes=train_eps.tolist(), val_episodes=val_eps.tolist())
    return Split(clip_index(info, train_eps, span), clip_index(info, val_eps, span), record)


def validation_batches(val_clips: np.ndarray, t: TrainConfig) -> list[np.ndarray]:
    """A fixed, seeded subset of held-out clips, so validation losses are comparable across steps."""
    order = np.random.default_rng(t.split_seed).permutation(len(val_clips))
    b = t.batch_size
    n = max(1, min(t.val_batches, len(val_clips) // b))
    chunks = [order[i * b : (i + 1) * b] for i in range(n)]
    return [val_clips[c] for c in chunks if len(c) >= 2]


@dataclass
class TrainSetup:
    """The resolved config and the data of a run, ready for the loop."""

    cfg: Config
    dataset: ClipDataset
    loader: ClipLoader
    val_batches: list[np.ndarray]  # clip indices (n, 2) per validation batch
    split: dict  # split.json
    data_meta: dict  # the "data" block of config.json


def prepare(cfg: Config, data: str | Path, saved: SavedRun | None = None) -> TrainSetup:
    """Check ``cfg`` against ``data`` and build the clips; writes nothing.

    A new run resolves ``cfg``. A resume (``saved``) uses the saved config and action
    statistics; only its stop step moves, to ``cfg.train.steps`` when that is non-zero.
    """
    data = Path(data)
    base = resume_budget(saved.config, cfg.train.steps, saved.step) if saved else cfg.validate()
    info = inspect_dataset(data)
    split = make_split(base, info, data)
    cfg = resolve_config(base, info, len(split.train) // base.train.batch_size)
    dataset = ClipDataset(
        data,
        cfg.model.predictor.num_frames + 1,  # history + one prediction
        cfg.model.frameskip,
        saved.normalizer if saved else None,
        in_memory=cfg.train.in_memory,
        profile=cfg.profile,
        info=info,
    )
    loader = ClipLoader(dataset, split.train, cfg.train.batch_size, seed=cfg.train.seed)
    if len(split.val) == 0:
        raise DatasetError(
            f"{data}: the validation episodes hold no complete clip; collect longer or more episodes"
        )
    _note_batch_size(cfg)
    data_meta = {
        "path": str(data.resolve()),
        "n_episodes": info.n_episodes,
        "n_rows": info.n_rows,
        "image_size": cfg.model.encoder.image_size,
        "action_dim": info.action_dim,
        "frameskip": cfg.model.frameskip,
        "train_clips": int(len(split.train)),
        "val_clips": int(len(split.val)),
        "batches_per_epoch": loader.batches_per_epoch,
        "env": info.attrs.get("env"),
    }
    val = validation_batches(split.val, cfg.train)
    return TrainSetup(cfg, dataset, loader, val, split.record, data_meta)


def _note_batch_size(cfg: Config) -> None:
    if cfg.loss.sigreg_weight > 0 and cfg.train.batch_size != 128:
        print(
            f"note: SIGReg scales with the batch size; lambda={cfg.loss.sigreg_weight} was tuned for "
            f"128 clips per batch, this run uses {cfg.train.batch_size} (spec §3.1, T4)",
            file=sys.stderr,
        )


# --------------------------------------------------------------------------- model, optimiser


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warm-up from 0 then cosine to 0 (spec §4.4); ``step`` = scheduler steps taken."""
    if step < warmup:
        return step / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def build_optimizer(model: LeWM, cfg: Config, dev: torch.device) -> torch.optim.Optimizer:
    """AdamW on all parameters (the reference decays norms and biases too; optional exclusion)."""
    o = cfg.optim
    if o.decay_norms_and_biases:
        groups = [{"params": list(model.parameters()), "weight_decay": o.weight_decay}]
    else:
        decay = [p for p in model.parameters() if p.ndim >= 2]
        no_decay = [p for p in model.parameters() if p.ndim < 2]
        groups = [
            {"params": decay, "weight_decay": o.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]
    fused = dev.type in ("cpu", "cuda")  # the fused kernel is ~3.5x faster on CPU (spec §4.4)
    return torch.optim.AdamW(groups, lr=o.lr, betas=(o.beta1, o.beta2), eps=o.eps, fused=fused)


def build_scheduler(opt: torch.optim.Optimizer, cfg: Config) -> torch.optim.lr_scheduler.LambdaLR:
    """Warm-up over ``warmup_fraction`` of ``train.schedule_steps``, then cosine to 0 at its end."""
    total = cfg.train.schedule_steps
    warmup = max(1, int(cfg.optim.warmup_fraction * total))
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, warmup, total))


def build_training(cfg: Config, normalizer, dev: torch.device):
    """Model (initialised from ``train.seed``), AdamW and the schedule; seeds the dropout stream.

    Returns:
        (model in train mode on ``dev``, optimiser, scheduler).
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.train.seed)
        model = LeWM(cfg.model, normalizer)
    model.to(dev).train()
    opt = build_optimizer(model, cfg, dev)
    sched = build_scheduler(opt, cfg)
    torch.manual_seed(
        cfg.train.seed + 1
    )  # dropout draws from the global stream; resume restores it
    return model, opt, sched
