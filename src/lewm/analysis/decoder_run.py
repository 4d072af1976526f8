"""``lewm decoder train`` / ``show``: fit the diagnostic decoder, draw real vs decoded rollouts.

Training pre-encodes the chosen frames once with the frozen world model (no autograd),
then fits the decoder on (embedding, frame) pairs of the training episodes and reports
the MSE on held-out episodes. The strip shows, per episode: the real frames, the
decoded embeddings of those frames, and the decoded open-loop rollout from 3 context
frames under the executed actions (spec §9.4).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from lewm.analysis.decoder import Decoder, DecoderConfig, decoder_loss
from lewm.analysis.features import (
    check_image_size,
    encode_pixels,
    episode_of_rows,
    model_device,
    read_frames,
    select_rows,
)
from lewm.data.transforms import frames_to_pixels, pixels_to_frames
from lewm.errors import ConfigError, DatasetError


@dataclass(frozen=True)
class DecoderTraining:
    steps: int = 2000
    batch_size: int = 64
    lr: float = 3e-4
    weight_decay: float = 0.01
    warmup: int = 100
    max_frames: int = 10_000
    every: int = 1
    val_fraction: float = 0.1
    seed: int = 0
    eval_every: int = 250

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "max_frames", "every", "eval_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"decoder --{name.replace('_', '-')} must be positive")
        if not 0 < self.lr < 1:
            raise ConfigError(f"decoder --lr must be in (0, 1), got {self.lr}")


def _split(info, rows: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row masks (train, val) with whole episodes in each part."""
    from lewm.data.clips import episode_split

    eps = episode_of_rows(info, rows)
    unique = np.unique(eps)
    if len(unique) < 2:
        raise DatasetError(
            f"{info.path}: the decoder needs at least 2 episodes (train and held out)"
        )
    tr, va = episode_split(len(unique), fraction, seed)
    return np.isin(eps, unique[tr]), np.isin(eps, unique[va])


def train_decoder(model: Any, info, cfg: DecoderConfig, t: DecoderTraining,
                  log: Callable[[str], None] = print) -> tuple[Decoder, dict[str, Any]]:  # fmt: skip
    """Fit a decoder to ``model``'s detached embeddings of ``info``'s frames."""
    device = model_device(model)
    rows = select_rows(info, t.every, t.max_frames, t.seed)
    train, val = _split(info, rows, t.val_fraction, t.seed)
    frames = read_frames(info, rows)  # (N, H, W, 3) uint8
    t0 = time.perf_counter()
    _, z = encode_pixels(model, frames)  # (N, D), computed without autograd
    log(f"encoded {len(rows)} frames in {time.perf_counter() - t0:.1f} s")
    with torch.random.fork_rng(devices=[]):  # the decoder's init from its own seed
        torch.manual_seed(t.seed)
        decoder = Decoder(cfg).to(device)
    opt = torch.optim.AdamW(decoder.parameters(), lr=t.lr, weight_decay=t.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _lr_factor(s, t.warmup, t.steps))
    gen = torch.Generator().manual_seed(t.seed)
    idx_train = np.flatnonzero(train)
    history = []
    for step in range(1, t.steps + 1):
        pick = idx_train[torch.randint(len(idx_train), (t.batch_size,), generator=gen).numpy()]
        loss = decoder_loss(decoder, z[pick].to(device), _pixels(frames[pick], cfg, device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % t.eval_every == 0 or step == t.steps:
            val_mse = evaluate(decoder, z[val], frames[val], cfg)
            history.append({"step": step, "train_mse": float(loss.detach()), "val_mse": val_mse})
            log(
                f"decoder step {step}/{t.steps}: train MSE {float(loss.detach()):.4f}, held-out MSE {val_mse:.4f}"
            )
    val_eps = np.unique(episode_of_rows(info, rows[val])).tolist()
    record = {"frames": int(len(rows)), "train_frames": int(train.sum()), "val_episodes": val_eps,
              "val_frames": int(val.sum()), "history": history,
              "val_mse": history[-1]["val_mse"], "training": dict(t.__dict__)}  # fmt: skip
    return decoder.eval(), record


def _lr_factor(step: int, warmup: int, total: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))


def _pixels(frames: np.ndarray, cfg: DecoderConfig, device) -> torch.Tensor:
    return frames_to_pixels(frames, cfg.image_size, device=device)  # (b, 3, S, S)


@torch.no_grad()
def evaluate(decoder: Decoder, z: torch.Tensor, frames: np.ndarray, cfg: DecoderConfig) -> float:
    """Mean MSE in normalised pixel space over (z, frames), in batches."""
    device = next(decoder.parameters()).device
    total, n = 0.0, 0
    for lo in range(0, len(z), 256):
        px = _pixels(frames[lo : lo + 256], cfg, device)
        total += float(((decoder(z[lo : lo + 256].to(device)) - px) ** 2).mean()) * len(px)
        n += len(px)
    return total / max(n, 1)


def pick_episodes(info, n: int, span: int, seed: int, among=None) -> np.ndarray:
    """``n`` episodes long enough for ``span`` rows, a seeded choice (sorted); from ``among``
    when enough of those are long enough."""
    ok = np.flatnonzero(info.ep_len >= span)
    if among is not None and np.isin(ok, among).sum() >= n:
        ok = ok[np.isin(ok, among)]
    if not len(ok):
        raise DatasetError(f"{info.path}: no episode has the {span} rows a rollout strip needs; use a shorter --horizon")  # fmt: skip
    pick = np.random.default_rng(seed).choice(ok, min(n, len(ok)), replace=False)
    return np.sort(pick)


@torch.no_grad()
def rollout_rows(model: Any, decoder: Decoder, info, episode: int, context: int, horizon: int):
    """One episode from its first row: (real, decoded real, decoded rollout) uint8 frames."""
    f = int(model.frameskip)
    n = context + horizon
    start = int(info.ep_offset[episode])
    rows = start + f * np.arange(n)
    frames = read_frames(info, rows)  # (n, H, W, 3)
    _, z = encode_pixels(model, frames)
    dev = model_device(model)
    z = z.to(dev)[None]  # (1, n, D)
    from lewm.data.hdf5 import open_h5

    with open_h5(info.path) as fh:
        raw = np.asarray(fh["action"][start : start + (n - 1) * f], dtype=np.float32)
    blocks = model.action_normalizer.normalize(torch.as_tensor(raw, device=dev)).reshape(
        1, n - 1, -1
    )
    hist = blocks[:, : context - 1] if context > 1 else None
    traj = model.rollout(z[:, :context], blocks[:, context - 1 :], hist)  # (1, n, D)
    shown = frames if frames.shape[1] == decoder.cfg.image_size else None
    real = shown if shown is not None else pixels_to_frames(_pixels(frames, decoder.cfg, dev))
    return real, pixels_to_frames(decoder(z[0])), pixels_to_frames(decoder(traj[0]))


def strip_png(
    model: Any, decoder: Decoder, info, episodes: np.ndarray, context: int, horizon: int
) -> bytes:
    from lewm.analysis.plots import image_strip

    rows = []
    for ep in episodes:
        real, recon, roll = rollout_rows(model, decoder, info, int(ep), context, horizon)
        rows += [(f"ep {ep}: real", real), ("decoded z", recon), (f"rollout ({context} ctx)", roll)]
    return image_strip(rows)


def check_pair(model: Any, decoder: Decoder, info, resize: bool, ckpt) -> None:
    """The decoder fits the model (embedding width, image size) and the file's frames."""
    from lewm.errors import CheckpointError

    check_image_size(model, info, resize, ckpt)
    if decoder.cfg.embed_dim != model.embed_dim or decoder.cfg.image_size != model.image_size:
        raise CheckpointError(
            f"the decoder was trained for {decoder.cfg.embed_dim}-d embeddings of "
            f"{decoder.cfg.image_size}px frames, {ckpt} has {model.embed_dim}-d, {model.image_size}px"
        )
