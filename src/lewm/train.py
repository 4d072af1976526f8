"""Train LeWM end-to-end from pixels (spec §4). Read it top to bottom.

    loss = MSE(predict(z[:, :-1], a[:, :-1]), z[:, 1:]) + lambda * SIGReg(z)    (target not detached)

The baselines train through the same loop (``loss.objective``, spec §10): PLDM swaps the
regulariser, DINO-WM the model; :mod:`lewm.train_objective` is where the objective matters.

:func:`train` is the run; :func:`train_step` is one optimiser step (forward -> backward ->
clip -> AdamW -> schedule), shared with ``benchmarks/train_step.py``. What happens before the
first step (config resolution, data, model, optimiser) is in :mod:`lewm.train_setup`; the run
directory (``config.json``, ``model.safetensors``, ``train_state.pt``, ``split.json``,
``metrics.jsonl``) in :mod:`lewm.run_dir`; what a resume may change in :mod:`lewm.train_resume`.

Logging (``train.log_every``), validation (``train.val_every``, the held-out losses and the
temporal straightness of their embeddings, spec §9.3) and checkpointing (``train.save_every``)
have independent cadences; the last step does all three.

Launched by ``torchrun`` (``WORLD_SIZE`` > 1), every process trains on its shard of each
global batch and computes the global batch's loss (:mod:`lewm.distributed`, docs/distributed.md);
rank 0 alone writes the run directory, logs and shows progress.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lewm.baselines.pldm import build_idm_head, save_idm_head
from lewm.checkpoint import run_metadata
from lewm.config import Config
from lewm.data.clips import ClipBatch, ClipDataset
from lewm.data.transforms import frames_to_pixels
from lewm.distributed import PeerError, World, check_batch_split, launch_from_env, start
from lewm.errors import LewmError
from lewm.losses import Reduce, step_generator
from lewm.run_dir import RunDir, restore_state, rng_state
from lewm.train_metrics import RunningMeans, collapse_monitor, straightness
from lewm.train_objective import (
    heads_state,
    objective_losses,
    objective_metadata,
    restore_heads,
)
from lewm.train_setup import (
    TrainSetup,
    autocast_for,
    build_optimizer,
    build_scheduler,
    build_training,
    lr_factor,
    note_batch_size,
    prepare,
    resolve_device,
    trained_on,
)

__all__ = [
    "EncodePredict",
    "LossFn",
    "StepResult",
    "TrainResult",
    "autocast_for",
    "batch_loss",
    "build_optimizer",
    "build_scheduler",
    "collapse_monitor",
    "forward_losses",
    "lr_factor",
    "resolve_device",
    "train",
    "train_step",
    "validate",
]

VAL_SEED_OFFSET = 7919  # SIGReg directions at validation come from their own stream

# (batch, SIGReg generator) -> (named loss terms incl. "loss", embeddings z (B, T, D)). Under
# several processes the batch is this process's shard and the terms are the global batch's.
LossFn = Callable[[ClipBatch, torch.Generator], tuple[dict[str, torch.Tensor], torch.Tensor]]


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    metrics: dict  # the last metrics.jsonl record
    rank: int = 0  # this process's rank (only rank 0 wrote anything)


def train(
    cfg: Config,
    data: str | Path,
    out: str | Path,
    *,
    resume: bool = False,
    device: str = "auto",
    tensorboard: bool = False,
    progress: bool = True,
    overrides: Mapping[str, str] | None = None,
) -> TrainResult:
    """Train (or resume) a run. Every input is checked before ``out`` is created.

    On ``resume`` the run's saved config is used; ``cfg.train.steps``, when non-zero, moves the
    stop step (up to the saved ``train.schedule_steps``; beyond it is refused), and 0 keeps the
    saved budget. The rest of ``cfg`` is not read: ``overrides`` (dotted key -> value) are the
    settings asked for, refused unless a resume may change them (:mod:`lewm.train_resume`).

    Under ``torchrun`` each process calls this; the process group is joined here and left on
    return, on success and on error.
    """
    launch = launch_from_env()
    if not resume:  # known before the rendezvous (a resume's batch is in rank 0's run)
        check_batch_split(cfg.train.batch_size, launch.world_size)
    dev = resolve_device(device, launch.local_rank if launch.world_size > 1 else None)
    world = start(launch, dev)
    try:
        session = _start(world, cfg, data, out, resume, dict(overrides or {}), dev, tensorboard)
        return _loop(world, session, progress)
    finally:
        world.close()


@dataclass
class _Session:
    """Everything the loop needs, built by :func:`_start`."""

    cfg: Config
    setup: TrainSetup
    run: RunDir | None  # rank 0 only
    out: Path
    model: nn.Module  # the objective's world model: LeWM (lewm, pldm) or DINO-WM
    head: nn.Module | None  # PLDM's inverse-dynamics head (loss.pldm.mu > 0), trained with it
    net: nn.Module  # EncodePredict(model, head), under DDP with several processes
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler
    loss_fn: LossFn
    start: int
    dev: torch.device
    log_means: dict | None  # RunningMeans state of the checkpoint resumed from
    processes: int  # the world size (config.json's trained_on)

    @property
    def trained(self) -> nn.Module:
        """Every module the optimiser steps (the gradient norm and its clipping cover them)."""
        return self.model if self.head is None else nn.ModuleList([self.model, self.head])

    def meta(self, step: int) -> dict:
        s, extra = self.setup, objective_metadata(self.cfg, self.model)
        extra = {**extra, "trained_on": trained_on(self.cfg, self.dev, self.processes)}
        return run_metadata(self.cfg, s.dataset.normalizer, s.data_meta, step, extra)


def _start(world: World, cfg, data, out, resume, overrides, dev, tensorboard) -> _Session:
    """Check every input (rank 0 the run directory, every rank the data), then build."""
    run = None

    def check_run_dir():
        nonlocal run
        run = RunDir(out, resume=resume, data=data)
        return run.load() if resume else None

    saved = world.main_only(check_run_dir)  # broadcast: rank 0's checkpoint for everyone
    setup = world.everyone(lambda: prepare(cfg, data, saved, overrides=overrides, world=world))
    cfg = setup.cfg
    if world.is_main:
        note_batch_size(cfg)
    head = build_idm_head(cfg)
    resume_dir = saved.path if saved is not None else None
    model, opt, sched = build_training(
        cfg, setup.dataset.normalizer, dev, world, head=head, resume_dir=resume_dir
    )
    start_step = 0
    if saved is not None and saved.state is not None:
        start_step = restore_state(saved.state, model, opt, sched, dev, world.rank, world.size)
        restore_heads(saved.state, head, saved.path)
    net = world.wrap(EncodePredict(model, head), broadcast_buffers=not cfg.train.sync_batchnorm)
    reduce = world.sum if world.distributed else None
    loss_fn = batch_loss(net, cfg, dev, autocast_for(cfg, dev), reduce=reduce)
    means = saved.state.get("log_means") if saved is not None and saved.state else None
    s = _Session(
        cfg, setup, run, Path(out), model, head, net, opt, sched, loss_fn, start_step, dev, means, world.size
    )  # fmt: skip
    world.main_only(
        lambda: run.open(
            meta=s.meta(0), split=setup.split, start=start_step, tensorboard=tensorboard
        )
    )
    return s


def _loop(world: World, s: _Session, progress: bool) -> TrainResult:
    """The steps from ``s.start`` to the stop step, with their logging, validation and saves."""
    t = s.cfg.train
    means, last = RunningMeans(), {}
    means.load_state_dict(s.log_means)  # the interval a checkpoint cut (resume)
    bar = _progress_bar(t.steps, s.start, progress and world.is_main)
    batches = s.setup.loader.batches(start_batch=s.start)
    try:
        for step in range(s.start, t.steps):
            t0 = time.perf_counter()
            batch = next(batches)
            gen = step_generator(t.seed, step)  # the same directions on every process
            result = train_step(
                s.trained, s.opt, s.sched, s.loss_fn, batch, gen, s.cfg.optim.grad_clip
            )
            means.add(result, time.perf_counter() - t0)
            bar.update(1)
            done = step + 1
            final = done == t.steps
            record = {}
            if final or done % t.log_every == 0:
                monitor = collapse_monitor(world.gather(result.z))  # the global batch's z
                record.update(means.pop(), lr=s.sched.get_last_lr()[0], **monitor)
                shown = (
                    ("loss", "sigreg_loss") if "sigreg_loss" in record else ("loss", "pred_loss")
                )
                bar.set_postfix({k.removesuffix("_loss"): f"{record[k]:.4g}" for k in shown})
            if final or done % t.val_every == 0:
                v = s.setup
                record.update(
                    validate(s.net, s.loss_fn, v.dataset, v.val_batches, t.seed, done, world)
                )
            if record:
                last = {"step": done, **record, "elapsed_seconds": means.elapsed()}
                if world.is_main:
                    s.run.log(last)
            if final or done % t.save_every == 0:
                _save(world, s, done, means.state_dict())
    except NonFiniteLoss as exc:  # the same global loss on every process: all stop here
        text = f"{exc} at step {step}; the last good checkpoint is in {s.out}"
        raise (LewmError(text) if world.is_main else PeerError(text)) from None
    finally:
        bar.close()
        batches.close()
        if s.run is not None:
            s.run.close()
    world.barrier()  # every process returns once the run is complete on disk
    return TrainResult(s.out if s.run is None else s.run.path, t.steps, last, world.rank)


def _save(world: World, s: _Session, step: int, log_means: dict) -> None:
    """Rank 0 writes the checkpoint, with every rank's dropout stream; all ranks learn the outcome."""
    rngs = world.gather_objects(rng_state(s.dev)) if world.distributed else ()
    extra = {"log_means": log_means, **heads_state(s.head)}

    def write():
        s.run.save(step, s.model, s.opt, s.sched, s.meta(step), s.dev, rngs, extra)
        if s.head is not None:  # the objective's head, beside model.safetensors
            save_idm_head(s.run.path, s.head)

    world.main_only(write)


# --------------------------------------------------------------------------- one step


class NonFiniteLoss(LewmError):
    """The loss of a step is NaN or inf; the step was not applied."""


@dataclass
class StepResult:
    losses: dict[str, torch.Tensor]  # named scalar terms, "loss" is the total
    grad_norm: torch.Tensor  # global L2 norm before clipping
    z: torch.Tensor  # (B, T, D) embeddings of the batch


def train_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    loss_fn: LossFn,
    batch: ClipBatch,
    generator: torch.Generator,
    grad_clip: float,
) -> StepResult:
    """forward -> backward -> clip -> optimiser step -> scheduler step (spec §4.4).

    A non-finite loss raises :class:`NonFiniteLoss` before the optimiser step, so the
    weights stay those of the last good step.
    """
    losses, z = loss_fn(batch, generator)
    optimizer.zero_grad(set_to_none=True)
    losses["loss"].backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    if not torch.isfinite(losses["loss"]):
        raise NonFiniteLoss(
            f"loss became non-finite ({ {k: v.item() for k, v in losses.items()} })"
        )
    optimizer.step()
    scheduler.step()
    return StepResult(losses, grad_norm, z)


class EncodePredict(nn.Module):
    """The model's part of a training step as one ``forward``, the module DDP wraps.

    pixels (B, T, 3, H, W), action blocks (B, T, f*A) -> z (B, T, D), z_pred (B, T-1, D):
    frame i predicts frame i+1; and, with PLDM's inverse-dynamics ``head``, a_pred
    (B, T-1, f*A), the blocks predicted from (z_t, z_t+1) (else None).
    """

    def __init__(self, model: nn.Module, head: nn.Module | None = None):
        super().__init__()
        self.model = model
        self.head = head

    def forward(self, pixels: torch.Tensor, actions: torch.Tensor):
        z = self.model.encode(pixels)  # (B, T, D)
        z_pred = self.model.predict(z[:, :-1], actions[:, :-1])  # (B, T-1, D)
        a_pred = None if self.head is None else self.head(z)  # (B, T-1, f*A)
        return z, z_pred, a_pred


def _as_step_module(model: nn.Module) -> nn.Module:
    """``model`` as an :class:`EncodePredict` (it may be one already, maybe under DDP)."""
    if isinstance(model, EncodePredict) or isinstance(
        getattr(model, "module", None), EncodePredict
    ):
        return model
    return EncodePredict(model)


def forward_losses(
    model: nn.Module, cfg: Config, pixels_u8, actions, device, autocast, generator, reduce=None
):
    """One batch through the model (a world model or an :class:`EncodePredict`, maybe under
    DDP); returns the objective's loss dict and the embeddings. ``reduce``: see
    :func:`lewm.losses.lewm_loss`."""
    net = _as_step_module(model)
    pixels = frames_to_pixels(pixels_u8.to(device, non_blocking=True))  # (B, T, 3, H, W)
    actions = actions.to(device, non_blocking=True)  # (B, T, f*A)
    with autocast():
        z, z_pred, a_pred = net(pixels, actions)  # (B, T, D), (B, T-1, D), None | (B, T-1, fA)
    losses = objective_losses(cfg, z, z_pred, actions, a_pred, generator, reduce)
    return losses, z


def batch_loss(
    model: nn.Module, cfg: Config, device: torch.device, autocast, reduce: Reduce | None = None
) -> LossFn:
    """The objective's loss of a :class:`ClipBatch`: one process's, or with ``reduce`` (the
    sum over processes) the global batch's, computed from this process's shard."""
    net = _as_step_module(model)

    def loss_fn(batch: ClipBatch, generator: torch.Generator):
        return forward_losses(
            net, cfg, batch.pixels, batch.actions, device, autocast, generator, reduce
        )

    return loss_fn


@torch.no_grad()
def validate(
    model: nn.Module,
    loss_fn: LossFn,
    dataset: ClipDataset,
    val_batches: list[np.ndarray],
    seed: int,
    step: int,
    world: World | None = None,
) -> dict[str, float]:
    """Mean losses on the held-out clips in eval mode (BatchNorm running stats, no dropout),
    and ``val_straightness``, the temporal straightness of their embeddings (spec §9.3).

    Under several processes each one evaluates its shard of every validation batch and the
    loss terms are the whole batch's.
    """
    world = world or World()
    model.eval()
    sums: dict[str, float] = {}
    for i, clips in enumerate(val_batches):
        gen = step_generator(seed + VAL_SEED_OFFSET, step * len(val_batches) + i)
        losses, z = loss_fn(dataset.get(clips[world.shard(len(clips))]), gen)
        for k, v in losses.items():
            sums[k] = sums.get(k, 0.0) + float(v)
        if z.shape[1] >= 3:  # two velocities: a clip of 3 frames or more
            sums["straightness"] = sums.get("straightness", 0.0) + straightness(z, world)
    model.train()
    return {f"val_{k}": v / len(val_batches) for k, v in sums.items()}


def _progress_bar(total: int, start: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        initial=start,
        disable=not enabled,
        desc="train",
        unit="step",
        dynamic_ncols=True,
    )
