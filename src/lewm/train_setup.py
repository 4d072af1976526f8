"""Everything training needs before its first step, all checked before the run directory is touched.

- :func:`resolve_config` resolves a config against the data (action width, step budget and
  schedule length from epochs). It is pure: it returns a new :class:`~lewm.config.Config` and
  leaves its input as it is. What a resume may change is :mod:`lewm.train_resume`.
- :func:`prepare` builds the split, the clips, the loader (this process's shard of every
  global batch) and the validation batches.
- :func:`build_training` builds the seeded model of the run's objective (BatchNorm over the
  global batch under several processes), AdamW and the warm-up + cosine schedule.
- :func:`resolve_device`, :func:`autocast_for`.
"""

from __future__ import annotations

import copy
import math
import sys
from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lewm.config import Config, TrainConfig
from lewm.data.clips import ClipDataset, ClipLoader, clip_index, clip_split, episode_split
from lewm.data.hdf5 import DatasetInfo, inspect_dataset
from lewm.distributed import World, check_batch_split, sync_batchnorm
from lewm.errors import ConfigError, DatasetError, LewmError
from lewm.losses import SEED_STRIDE
from lewm.run_dir import SavedRun
from lewm.train_objective import build_world_model, load_encoder, resolve_objective
from lewm.train_resume import check_hand_edits, check_same_data, resume_budget, resume_config

__all__ = [
    "Split",
    "TrainSetup",
    "autocast_for",
    "build_optimizer",
    "build_scheduler",
    "build_training",
    "lr_factor",
    "make_split",
    "prepare",
    "resolve_config",
    "resolve_device",
    "resume_budget",
    "trained_on",
    "validation_batches",
]

CLIP_SPLIT_RULE = (
    "clips = every (episode, start) with 0 <= start <= ep_len - span, episodes and starts in "
    "order; perm = numpy.random.default_rng(seed).permutation(n_clips); validation = "
    "clips[sort(perm[:int(n_clips * val_fraction)])], training = the rest in order"
)


# --------------------------------------------------------------------------- devices


def resolve_device(name: str, local_rank: int | None = None) -> torch.device:
    """'auto' -> cuda, mps, cpu; explicit names are checked.

    ``local_rank`` (multi-process training) picks this process's GPU, ``cuda:LOCAL_RANK``.
    """
    if name == "auto":
        if torch.cuda.is_available():
            return _cuda(local_rank)
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
    return _cuda(local_rank) if name == "cuda" else torch.device(name)


def _cuda(local_rank: int | None) -> torch.device:
    if local_rank is None:
        return torch.device("cuda")
    count = torch.cuda.device_count()
    if local_rank >= count:
        raise LewmError(
            f"LOCAL_RANK={local_rank} but this machine has {count} CUDA device(s): run at most "
            f"{count} processes per machine (torchrun --nproc-per-node {count})"
        )
    return torch.device("cuda", local_rank)


def trained_on(cfg: Config, device: torch.device, processes: int) -> dict:
    """Where a run trains, for its ``config.json`` and the shipped ``training.json``: the device
    type and name, the precision its autocast uses, and the number of processes (of the session
    that wrote the checkpoint: a run resumed elsewhere records where it resumed)."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
    precision = _precision(cfg, device)
    return {"device": device.type, "name": name, "precision": precision, "processes": processes}


def _precision(cfg: Config, device: torch.device) -> str:
    """``train.precision`` resolved: 'auto' is bf16 on CUDA, fp32 elsewhere."""
    if cfg.train.precision == "auto":
        return "bf16" if device.type == "cuda" else "fp32"
    return cfg.train.precision


def autocast_for(cfg: Config, device: torch.device):
    """bf16 autocast on CUDA by default; fp32 on CPU (bf16 is ~24x slower without hardware support)."""
    if _precision(cfg, device) == "bf16":
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


def validation_batches(
    val_clips: np.ndarray, t: TrainConfig, min_clips: int = 2
) -> list[np.ndarray]:
    """A fixed, seeded subset of held-out clips, so validation losses are comparable across steps.

    ``min_clips``: the smallest batch kept (BatchNorm and SIGReg need 2; several processes
    need one clip each).
    """
    order = np.random.default_rng(t.split_seed).permutation(len(val_clips))
    b = t.batch_size
    n = max(1, min(t.val_batches, len(val_clips) // b))
    chunks = [order[i * b : (i + 1) * b] for i in range(n)]
    return [val_clips[c] for c in chunks if len(c) >= max(2, min_clips)]


@dataclass
class TrainSetup:
    """The resolved config and the data of a run, ready for the loop."""

    cfg: Config
    dataset: ClipDataset
    loader: ClipLoader
    val_batches: list[np.ndarray]  # clip indices (n, 2) per (global) validation batch
    split: dict  # split.json
    data_meta: dict  # the "data" block of config.json


def prepare(
    cfg: Config,
    data: str | Path,
    saved: SavedRun | None = None,
    *,
    overrides: Mapping[str, str] | None = None,
    world: World | None = None,
) -> TrainSetup:
    """Check ``cfg`` against ``data`` and build the clips; writes nothing.

    A new run resolves ``cfg``. A resume (``saved``) uses the saved config and action
    statistics, changed only by ``overrides`` (dotted key -> value, the settings the user
    asked for; :func:`lewm.train_resume.resume_config` says which may change) and by its stop
    step, moved to ``cfg.train.steps`` when that is non-zero; the data must be the run's.
    ``world``: the processes; the loader yields this process's shard of every global batch.
    """
    world = world or World()
    data = Path(data)
    base = _base_config(cfg, saved, overrides or {})
    check_batch_split(base.train.batch_size, world.size)
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
    shard = world.shard(cfg.train.batch_size)
    loader = ClipLoader(dataset, split.train, cfg.train.batch_size, cfg.train.seed, shard=shard)
    if len(split.val) == 0:
        raise DatasetError(
            f"{data}: the validation episodes hold no complete clip; collect longer or more episodes"
        )
    data_meta = _data_meta(cfg, data, info, split, loader, dataset.fingerprint())
    if saved:
        check_same_data(saved.data, data_meta, saved.path)
    val = validation_batches(split.val, cfg.train, min_clips=world.size)
    return TrainSetup(cfg, dataset, loader, val, split.record, data_meta)


def _base_config(cfg: Config, saved: SavedRun | None, overrides: Mapping[str, str]) -> Config:
    """A new run's ``cfg``, completed for its objective and validated; or the saved run's
    config with the allowed changes."""
    if saved is None:
        return resolve_objective(cfg).validate()
    check_hand_edits(saved)
    return resume_budget(resume_config(saved.config, overrides), cfg.train.steps, saved.step)


def _data_meta(cfg: Config, data: Path, info: DatasetInfo, split, loader, fingerprint) -> dict:
    """The "data" block of config.json; ``fingerprint`` identifies the file on resume."""
    return {
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
        "fingerprint": fingerprint,
    }


def note_batch_size(cfg: Config) -> None:
    """SIGReg's strength grows with N (spec §3.1): say so when the batch is not the tuned 128."""
    lewm = cfg.loss.objective == "lewm"
    if lewm and cfg.loss.sigreg_weight > 0 and cfg.train.batch_size != 128:
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


def build_optimizer(
    model: nn.Module, cfg: Config, dev: torch.device, head: nn.Module | None = None
) -> torch.optim.Optimizer:
    """AdamW on all trainable parameters (the reference decays norms and biases too; optional
    exclusion): the model's (DINO-WM's frozen encoder has none), then ``head``'s (PLDM's
    inverse-dynamics head)."""
    o = cfg.optim
    params = [p for m in (model, head) if m is not None for p in m.parameters() if p.requires_grad]
    if o.decay_norms_and_biases:
        groups = [{"params": params, "weight_decay": o.weight_decay}]
    else:
        decay = [p for p in params if p.ndim >= 2]
        no_decay = [p for p in params if p.ndim < 2]
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


def build_training(
    cfg: Config,
    normalizer,
    dev: torch.device,
    world: World | None = None,
    *,
    head: nn.Module | None = None,
    resume_dir: Path | None = None,
):
    """Model (initialised from ``train.seed``), AdamW and the schedule; seeds the dropout stream.

    The model is the objective's (:mod:`lewm.train_objective`); ``head`` (PLDM's
    inverse-dynamics head) is trained with it; ``resume_dir``: the run a DINO-WM resume
    rebuilds its encoder from.

    Under several processes (``world``), the model's BatchNorms use the global batch's
    statistics unless ``train.sync_batchnorm`` is false, and each rank has its own dropout
    stream (rank 0's is the single-process one). ``train.compile`` compiles the encoder and
    the predictor in place (the state-dict keys stay the reference's).

    Returns:
        (model in train mode on ``dev``, optimiser, scheduler).
    """
    world = world or World()
    encoder = load_encoder(cfg, resume_dir)  # DINO-WM only; before the seeded initialisation
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.train.seed)
        model = build_world_model(cfg, normalizer, encoder)
    if world.distributed and cfg.train.sync_batchnorm:
        sync_batchnorm(model, world.sum)
    model.to(dev).train()
    if head is not None:
        head.to(dev).train()
    if cfg.train.compile:
        model.encoder.compile()
        model.predictor.compile()
    opt = build_optimizer(model, cfg, dev, head)
    sched = build_scheduler(opt, cfg)
    # Dropout draws from the global stream; resume restores it.
    torch.manual_seed(dropout_seed(cfg.train.seed, world.rank))
    return model, opt, sched


def dropout_seed(seed: int, rank: int) -> int:
    """Rank r's dropout stream: seed + 1 on rank 0 (as one process), distinct on the others."""
    return seed + 1 + rank * SEED_STRIDE
