"""Train LeWM end-to-end from pixels (spec §4). Read it top to bottom.

    loss = MSE(predict(z[:, :-1], a[:, :-1]), z[:, 1:]) + lambda * SIGReg(z)    (target not detached)

A run directory holds ``config.json`` (resolved config, action statistics,
data description), ``model.safetensors`` (weights), ``train_state.pt`` (model,
optimizer, scheduler, step, RNG state: everything ``--resume`` needs, in one
atomically written file), ``split.json`` (the episode split) and
``metrics.jsonl``.
"""

from __future__ import annotations

import json
import math
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lewm.checkpoint import (
    CONFIG_FILE,
    TRAIN_STATE_FILE,
    atomic_torch_save,
    atomic_write_bytes,
    config_from_metadata,
    run_metadata,
    save_model,
)
from lewm.config import Config
from lewm.data.clips import ClipDataset, ClipLoader, episode_split
from lewm.data.hdf5 import inspect_dataset
from lewm.data.normalize import ActionNormalizer
from lewm.data.transforms import frames_to_pixels
from lewm.errors import ConfigError, DatasetError, LewmError
from lewm.losses import lewm_loss, step_generator
from lewm.model.world_model import LeWM

VAL_SEED_OFFSET = 7919  # SIGReg directions at validation come from their own stream


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warm-up from 0 then cosine to 0 (spec §4.4); ``step`` = scheduler steps taken."""
    if step < warmup:
        return step / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.5 * (1.0 + math.cos(math.pi * progress))


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


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    metrics: dict


def collapse_monitor(z: torch.Tensor) -> dict[str, float]:
    """Mean per-dimension std of embeddings and their effective rank (exp of singular-value entropy)."""
    z = z.detach().float().flatten(0, -2)  # (N, D)
    std = z.std(dim=0).mean().item()
    s = torch.linalg.svdvals(z - z.mean(dim=0))
    p = s / s.sum().clamp_min(1e-12)
    rank = torch.exp(-(p * torch.log(p.clamp_min(1e-12))).sum()).item()
    return {"z_std": std, "z_eff_rank": rank}


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
    """Train (or resume) a run. Every input is checked before ``out`` is created."""
    data, run_dir = Path(data), Path(out)
    dev = resolve_device(device)

    # ---- 1. configuration and data, all checked before touching the run directory
    state = None
    if resume:
        state_path = run_dir / TRAIN_STATE_FILE
        if not state_path.is_file():
            raise LewmError(f"--resume: {state_path} not found; nothing to resume")
        meta = json.loads((run_dir / CONFIG_FILE).read_text())
        steps_wanted = cfg.train.steps if cfg.train.steps else None
        cfg = config_from_metadata(meta)
        if steps_wanted:
            cfg.train.steps = max(steps_wanted, cfg.train.steps)
        state = torch.load(state_path, map_location="cpu", weights_only=True)
    elif (run_dir / CONFIG_FILE).exists() or (run_dir / TRAIN_STATE_FILE).exists():
        raise LewmError(
            f"{run_dir} already holds a run; pass --resume to continue it or choose a new --out"
        )
    cfg.validate()

    info = inspect_dataset(data)
    size = cfg.model.encoder.image_size
    if info.image_size != (size, size):
        raise DatasetError(
            f"{data}: frames are {info.image_size[0]}x{info.image_size[1]}, the model expects {size}x{size}; "
            f"collect at --image-size {size} or set model.encoder.image_size (a multiple of the patch size)"
        )
    if cfg.model.action_dim not in (0, info.action_dim):
        raise DatasetError(
            f"{data}: action_dim is {info.action_dim}, the run was configured for {cfg.model.action_dim}"
        )
    cfg.model.action_dim = info.action_dim  # derived from the data
    num_steps = cfg.model.predictor.num_frames + 1  # history + one prediction
    normalizer = ActionNormalizer.from_dict(meta["action_normalizer"]) if resume else None
    dataset = ClipDataset(
        data,
        num_steps,
        cfg.model.frameskip,
        normalizer,
        in_memory=cfg.train.in_memory,
        profile=cfg.profile,
        info=info,
    )
    train_eps, val_eps = episode_split(
        info.n_episodes, cfg.train.val_fraction, cfg.train.split_seed
    )
    train_clips, val_clips = dataset.clip_index(train_eps), dataset.clip_index(val_eps)
    if (
        cfg.train.split == "clip"
    ):  # the reference's leaky split of clip indices (reference profile only)
        all_clips = dataset.clip_index(np.arange(info.n_episodes))
        perm = np.random.default_rng(cfg.train.split_seed).permutation(len(all_clips))
        n_val = int(len(all_clips) * cfg.train.val_fraction)
        train_clips, val_clips = all_clips[np.sort(perm[n_val:])], all_clips[np.sort(perm[:n_val])]
    loader = ClipLoader(dataset, train_clips, cfg.train.batch_size, seed=cfg.train.seed)
    if len(val_clips) == 0:
        raise DatasetError(
            f"{data}: the validation episodes hold no complete clip; collect longer or more episodes"
        )
    bpe = loader.batches_per_epoch
    if not resume:
        if (
            cfg.train.schedule_steps
            and cfg.train.steps
            and cfg.train.schedule_steps < cfg.train.steps
        ):
            raise ConfigError(
                f"train.schedule_steps ({cfg.train.schedule_steps}) < train.steps ({cfg.train.steps})"
            )
        cfg.train.steps = cfg.train.steps or max(1, math.ceil(cfg.train.epochs * bpe))
        cfg.train.schedule_steps = cfg.train.schedule_steps or max(
            cfg.train.steps, math.ceil(cfg.train.schedule_epochs * bpe)
        )
    data_meta = {
        "path": str(data.resolve()),
        "n_episodes": info.n_episodes,
        "n_rows": info.n_rows,
        "image_size": size,
        "action_dim": info.action_dim,
        "frameskip": cfg.model.frameskip,
        "train_clips": int(len(train_clips)),
        "val_clips": int(len(val_clips)),
        "batches_per_epoch": bpe,
        "env": info.attrs.get("env"),
    }
    if cfg.loss.sigreg_weight > 0 and cfg.train.batch_size != 128:
        print(
            f"note: SIGReg scales with the batch size; lambda={cfg.loss.sigreg_weight} was tuned for "
            f"128 clips per batch, this run uses {cfg.train.batch_size} (spec §3.1, T4)",
            file=sys.stderr,
        )

    # ---- 2. model, optimiser, schedule (seeded)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.train.seed)
        model = LeWM(cfg.model, dataset.normalizer)
    model.to(dev).train()
    opt = build_optimizer(model, cfg, dev)
    warmup = max(1, int(cfg.optim.warmup_fraction * cfg.train.schedule_steps))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: lr_factor(s, warmup, cfg.train.schedule_steps)
    )
    start = 0
    torch.manual_seed(cfg.train.seed + 1)  # dropout stream
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        start = int(state["step"])
        torch.set_rng_state(state["torch_rng"])
        if dev.type == "cuda" and "cuda_rng" in state:
            torch.cuda.set_rng_state(state["cuda_rng"])

    run_dir.mkdir(parents=True, exist_ok=True)
    metrics_path = run_dir / "metrics.jsonl"
    if resume:
        _truncate_metrics(metrics_path, start)
    else:
        split = {
            "train_episodes": train_eps.tolist(),
            "val_episodes": val_eps.tolist(),
            "seed": cfg.train.split_seed,
            "val_fraction": cfg.train.val_fraction,
            "data": str(data.resolve()),
        }
        atomic_write_bytes(run_dir / "split.json", json.dumps(split).encode())
        meta = run_metadata(cfg, dataset.normalizer, data_meta, 0)
        atomic_write_bytes(run_dir / CONFIG_FILE, (json.dumps(meta, indent=2) + "\n").encode())
    writer = _tensorboard(run_dir) if tensorboard else None
    autocast = autocast_for(cfg, dev)
    val_batches = _validation_batches(dataset, val_clips, cfg)

    # ---- 3. the loop: forward -> backward -> clip -> step -> schedule
    def save(step: int) -> None:
        save_model(run_dir, model, run_metadata(cfg, dataset.normalizer, data_meta, step))
        train_state = {
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
            "step": step,
            "torch_rng": torch.get_rng_state(),
        }
        if dev.type == "cuda":
            train_state["cuda_rng"] = torch.cuda.get_rng_state()
        atomic_torch_save(train_state, run_dir / TRAIN_STATE_FILE)

    from tqdm.auto import tqdm

    total = cfg.train.steps
    bar = tqdm(
        total=total,
        initial=start,
        disable=not progress,
        desc="train",
        unit="step",
        dynamic_ncols=True,
    )
    sums: dict[str, float] = {}
    count, t0, last = 0, time.perf_counter(), {}
    batches = loader.batches(start_batch=start)
    try:
        for step in range(start, total):
            batch = next(batches)
            losses, z = forward_losses(
                model,
                cfg,
                batch.pixels,
                batch.actions,
                dev,
                autocast,
                step_generator(cfg.train.seed, step),
            )
            opt.zero_grad(set_to_none=True)
            losses["loss"].backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
            if not torch.isfinite(losses["loss"]):
                raise LewmError(
                    f"loss became non-finite at step {step} ({ {k: float(v) for k, v in losses.items()} }); "
                    f"the last good checkpoint is in {run_dir}"
                )
            opt.step()
            sched.step()

            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + v.item()
            sums["grad_norm"] = sums.get("grad_norm", 0.0) + float(grad_norm)
            count += 1
            done = step + 1
            bar.update(1)
            if done % cfg.train.log_every == 0 or done == total:
                elapsed = time.perf_counter() - t0
                last = {"step": done, **{k: v / count for k, v in sums.items()}}
                last.update(
                    lr=sched.get_last_lr()[0], steps_per_s=count / elapsed, **collapse_monitor(z)
                )
                if done % cfg.train.val_every == 0 or done == total:
                    last.update(validate(model, cfg, dataset, val_batches, dev, autocast, done))
                _log(metrics_path, writer, last)
                bar.set_postfix(loss=f"{last['loss']:.4f}", sigreg=f"{last['sigreg_loss']:.2f}")
                sums, count, t0 = {}, 0, time.perf_counter()
            if done % cfg.train.save_every == 0 or done == total:
                save(done)
    finally:
        bar.close()
        batches.close()
        if writer is not None:
            writer.close()
    return TrainResult(run_dir, total, last)


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


def _validation_batches(dataset: ClipDataset, val_clips: np.ndarray, cfg: Config) -> list:
    """A fixed, seeded subset of held-out clips, so validation losses are comparable across steps."""
    order = np.random.default_rng(cfg.train.split_seed).permutation(len(val_clips))
    b = cfg.train.batch_size
    n = max(1, min(cfg.train.val_batches, len(val_clips) // b))
    return [
        val_clips[order[i * b : (i + 1) * b]]
        for i in range(n)
        if len(order[i * b : (i + 1) * b]) >= 2
    ]


@torch.no_grad()
def validate(
    model: LeWM, cfg: Config, dataset: ClipDataset, val_batches: list, dev, autocast, step: int
) -> dict:
    """Losses on held-out episodes in eval mode (BatchNorm running stats, no dropout)."""
    model.eval()
    sums: dict[str, float] = {}
    for i, clips in enumerate(val_batches):
        batch = dataset.get(clips)
        gen = step_generator(cfg.train.seed + VAL_SEED_OFFSET, step * len(val_batches) + i)
        losses, _ = forward_losses(model, cfg, batch.pixels, batch.actions, dev, autocast, gen)
        for k, v in losses.items():
            sums[k] = sums.get(k, 0.0) + float(v)
    model.train()
    return {f"val_{k}": v / len(val_batches) for k, v in sums.items()}


def _log(path: Path, writer, record: dict) -> None:
    with path.open("a") as f:
        f.write(json.dumps(record) + "\n")
    if writer is not None:
        for k, v in record.items():
            if k != "step":
                writer.add_scalar(k, v, record["step"])
        writer.flush()


def _truncate_metrics(path: Path, step: int) -> None:
    """On resume, drop records written after the checkpoint we resume from."""
    if not path.exists():
        return
    keep = [
        line for line in path.read_text().splitlines() if line and json.loads(line)["step"] <= step
    ]
    atomic_write_bytes(path, ("\n".join(keep) + "\n" if keep else "").encode())


def _tensorboard(run_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:
        raise LewmError(
            "--tensorboard needs the optional extra: pip install 'lewm[tensorboard]'"
        ) from exc
    return SummaryWriter(log_dir=str(run_dir / "tensorboard"))
