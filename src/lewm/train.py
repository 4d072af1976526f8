"""Train LeWM end-to-end from pixels (spec §4). Read it top to bottom.

    loss = MSE(predict(z[:, :-1], a[:, :-1]), z[:, 1:]) + lambda * SIGReg(z)    (target not detached)

:func:`train` is the loop; :func:`train_step` is one optimiser step (forward -> backward ->
clip -> AdamW -> schedule), shared with ``benchmarks/train_step.py``. What happens before the
first step (config resolution, data, model, optimiser) is in :mod:`lewm.train_setup`; the run
directory (``config.json``, ``model.safetensors``, ``train_state.pt``, ``split.json``,
``metrics.jsonl``) in :mod:`lewm.run_dir`.

Logging (``train.log_every``), validation (``train.val_every``) and checkpointing
(``train.save_every``) have independent cadences; the last step does all three.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lewm.checkpoint import run_metadata
from lewm.config import Config
from lewm.data.clips import ClipBatch, ClipDataset
from lewm.data.transforms import frames_to_pixels
from lewm.errors import LewmError
from lewm.losses import lewm_loss, step_generator
from lewm.model.world_model import LeWM
from lewm.run_dir import RunDir
from lewm.train_setup import (
    autocast_for,
    build_optimizer,
    build_scheduler,
    build_training,
    lr_factor,
    prepare,
    require_single_process,
    resolve_device,
)

__all__ = [
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

# (batch, SIGReg generator) -> (named loss terms incl. "loss", embeddings z (B, T, D)). The seam
# for multi-process training: a loss with an all-reduced SIGReg plugs in here.
LossFn = Callable[[ClipBatch, torch.Generator], tuple[dict[str, torch.Tensor], torch.Tensor]]


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    metrics: dict  # the last metrics.jsonl record


def train(
    cfg: Config,
    data: str | Path,
    out: str | Path,
    *,
    resume: bool = False,
    device: str = "auto",
    tensorboard: bool = False,
    progress: bool = True,
) -> TrainResult:
    """Train (or resume) a run. Every input is checked before ``out`` is created.

    On ``resume`` the run's saved config is used; ``cfg.train.steps``, when non-zero, moves the
    stop step (up to the saved ``train.schedule_steps``; beyond it is refused), and 0 keeps the
    saved budget. The rest of ``cfg`` is not read.
    """
    require_single_process()
    dev = resolve_device(device)
    run = RunDir(out, resume=resume)
    setup = prepare(cfg, data, run.load() if resume else None)
    cfg, t = setup.cfg, setup.cfg.train
    model, opt, sched = build_training(cfg, setup.dataset.normalizer, dev)
    start = run.restore(model, opt, sched, dev) if resume else 0

    def meta(step: int) -> dict:
        return run_metadata(cfg, setup.dataset.normalizer, setup.data_meta, step)

    run.open(meta=meta(0), split=setup.split, start=start, tensorboard=tensorboard)
    loss_fn = batch_loss(model, cfg, dev, autocast_for(cfg, dev))
    means, last = RunningMeans(), {}
    bar = _progress_bar(t.steps, start, progress)
    batches = setup.loader.batches(start_batch=start)
    try:
        for step in range(start, t.steps):
            t0 = time.perf_counter()
            batch = next(batches)
            result = train_step(
                model, opt, sched, loss_fn, batch, step_generator(t.seed, step), cfg.optim.grad_clip
            )
            means.add(result, time.perf_counter() - t0)
            bar.update(1)
            done = step + 1
            final = done == t.steps
            record = {}
            if final or done % t.log_every == 0:
                record.update(means.pop(), lr=sched.get_last_lr()[0], **collapse_monitor(result.z))
                bar.set_postfix(loss=f"{record['loss']:.4f}", sigreg=f"{record['sigreg_loss']:.2f}")
            if final or done % t.val_every == 0:
                record.update(
                    validate(model, loss_fn, setup.dataset, setup.val_batches, t.seed, done)
                )
            if record:
                last = {"step": done, **record}
                run.log(last)
            if final or done % t.save_every == 0:
                run.save(done, model, opt, sched, meta(done), dev)
    except NonFiniteLoss as exc:
        raise LewmError(
            f"{exc} at step {step}; the last good checkpoint is in {run.path}"
        ) from None
    finally:
        bar.close()
        batches.close()
        run.close()
    return TrainResult(run.path, t.steps, last)


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


def forward_losses(model: LeWM, cfg: Config, pixels_u8, actions, device, autocast, generator):
    """One batch through the model; returns the loss dict and the embeddings."""
    pixels = frames_to_pixels(pixels_u8.to(device, non_blocking=True))  # (B, T, 3, H, W)
    actions = actions.to(device, non_blocking=True)  # (B, T, f*A)
    with autocast():
        z = model.encode(pixels)  # (B, T, D)
        z_pred = model.predict(z[:, :-1], actions[:, :-1])  # (B, T-1, D): frame i predicts i+1
    losses = lewm_loss(
        z,
        z_pred,
        sigreg_weight=cfg.loss.sigreg_weight,
        generator=generator,
        num_projections=cfg.loss.sigreg_projections,
        num_knots=cfg.loss.sigreg_knots,
        t_max=cfg.loss.sigreg_t_max,
    )
    return losses, z


def batch_loss(model: LeWM, cfg: Config, device: torch.device, autocast) -> LossFn:
    """The single-process LeWM loss of a :class:`ClipBatch`."""

    def loss_fn(batch: ClipBatch, generator: torch.Generator):
        return forward_losses(model, cfg, batch.pixels, batch.actions, device, autocast, generator)

    return loss_fn


# --------------------------------------------------------------------------- monitoring


class RunningMeans:
    """Means of the step losses and gradient norms since the last :meth:`pop`, and steps/s."""

    def __init__(self):
        self._reset()

    def _reset(self) -> None:
        self.sums: dict[str, float] = {}
        self.count, self.seconds = 0, 0.0

    def add(self, result: StepResult, seconds: float) -> None:
        for k, v in result.losses.items():
            self.sums[k] = self.sums.get(k, 0.0) + v.item()
        self.sums["grad_norm"] = self.sums.get("grad_norm", 0.0) + float(result.grad_norm)
        self.count += 1
        self.seconds += seconds

    def pop(self) -> dict[str, float]:
        """The means, plus ``steps_per_s`` (data, forward, backward, update; no validation or
        saving); then start a new interval."""
        out = {k: v / self.count for k, v in self.sums.items()}
        out["steps_per_s"] = self.count / max(self.seconds, 1e-9)
        self._reset()
        return out


def collapse_monitor(z: torch.Tensor) -> dict[str, float]:
    """Mean per-dimension std of embeddings and their effective rank (exp of singular-value entropy)."""
    z = z.detach().float().flatten(0, -2)  # (N, D)
    std = z.std(dim=0).mean().item()
    s = torch.linalg.svdvals(z - z.mean(dim=0))
    p = s / s.sum().clamp_min(1e-12)
    rank = torch.exp(-(p * torch.log(p.clamp_min(1e-12))).sum()).item()
    return {"z_std": std, "z_eff_rank": rank}


@torch.no_grad()
def validate(
    model: LeWM,
    loss_fn: LossFn,
    dataset: ClipDataset,
    val_batches: list[np.ndarray],
    seed: int,
    step: int,
) -> dict[str, float]:
    """Mean losses on the held-out clips in eval mode (BatchNorm running stats, no dropout)."""
    model.eval()
    sums: dict[str, float] = {}
    for i, clips in enumerate(val_batches):
        gen = step_generator(seed + VAL_SEED_OFFSET, step * len(val_batches) + i)
        losses, _ = loss_fn(dataset.get(clips), gen)
        for k, v in losses.items():
            sums[k] = sums.get(k, 0.0) + float(v)
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
