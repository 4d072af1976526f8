"""Frozen-encoder features of dataset frames, batched (probing, straightness, decoder).

Two feature kinds per frame: ``cls``, the ViT's CLS token after its final LayerNorm
(before the projector), and ``projector``, the embedding z the predictor works on.
Frames are read from the file in blocks of consecutive rows (one decompression per
chunk), converted and encoded in batches in eval mode without autograd: no
per-frame Python.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from lewm.data.hdf5 import DatasetInfo, open_h5
from lewm.data.transforms import frames_to_pixels
from lewm.errors import CheckpointError

FEATURE_KINDS = ("projector", "cls")
READ_ROWS = 2048  # consecutive file rows read per HDF5 call


@dataclass(frozen=True)
class Encoded:
    """Features of some rows of a file."""

    rows: np.ndarray  # (N,) file rows, increasing
    cls: np.ndarray  # (N, C) float32
    projector: np.ndarray  # (N, D) float32
    encode_seconds: float  # model time only
    read_seconds: float  # HDF5 reads and decompression

    def kind(self, name: str) -> np.ndarray:
        return self.projector if name == "projector" else self.cls

    @property
    def frames_per_second(self) -> float:
        return len(self.rows) / max(self.encode_seconds, 1e-9)


def check_image_size(
    model: Any, info: DatasetInfo, resize: bool, ckpt: Any = "the checkpoint"
) -> None:
    """Refuse frames of another size than the model's unless ``resize`` asks to resize them."""
    size = int(model.image_size)
    if info.image_size != (size, size) and not resize:
        h, w = info.image_size
        raise CheckpointError(
            f"{info.path} holds {h}x{w} frames but {ckpt} expects {size}x{size}; use a "
            f"file collected with --image-size {size} or pass --resize-frames"
        )


def model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def encode_pixels(model: Any, frames: np.ndarray | torch.Tensor, batch_size: int = 256):
    """uint8 frames (N, H, W, 3) -> (cls (N, C), projector (N, D)) float32 tensors on the CPU.

    Frames of another size are resized to the model's (bilinear, antialiased).
    """
    device, size = model_device(model), int(model.image_size)
    was_training = model.training
    model.eval()
    cls_out, proj_out = [], []
    try:
        for lo in range(0, len(frames), batch_size):
            px = frames_to_pixels(frames[lo : lo + batch_size], size, device=device)  # (b, 3, S, S)
            cls = model.encoder(px)  # (b, C)
            cls_out.append(cls.float().cpu())
            proj_out.append(model.projector(cls).float().cpu())  # (b, D)
    finally:
        model.train(was_training)
    if not cls_out:
        return torch.zeros(0, model.cfg.encoder.hidden_dim), torch.zeros(0, model.embed_dim)
    return torch.cat(cls_out), torch.cat(proj_out)


def encode_rows(
    model: Any,
    info: DatasetInfo,
    rows: np.ndarray,
    *,
    batch_size: int = 256,
    log: Callable[[str], None] | None = None,
) -> Encoded:
    """Encode the frames of ``rows`` (increasing file rows) of the file ``info`` describes."""
    rows = np.asarray(rows, dtype=np.int64)
    if len(rows) and (np.diff(rows) <= 0).any():
        raise ValueError("encode_rows: rows must be strictly increasing")
    cls_parts, proj_parts = [], []
    read_s = enc_s = 0.0
    with open_h5(info.path) as f:
        pixels = f["pixels"]
        for block in _blocks(rows):
            t0 = time.perf_counter()
            frames = pixels[int(block[0]) : int(block[-1]) + 1][block - block[0]]  # (b, H, W, 3)
            t1 = time.perf_counter()
            cls, proj = encode_pixels(model, frames, batch_size)
            t2 = time.perf_counter()
            read_s, enc_s = read_s + t1 - t0, enc_s + t2 - t1
            cls_parts.append(cls.numpy())
            proj_parts.append(proj.numpy())
    enc = Encoded(
        rows,
        np.concatenate(cls_parts) if cls_parts else np.zeros((0, model.cfg.encoder.hidden_dim)),
        np.concatenate(proj_parts) if proj_parts else np.zeros((0, model.embed_dim)),
        enc_s,
        read_s,
    )
    if log is not None:
        log(
            f"encoded {len(rows)} frames in {enc_s:.1f} s ({enc.frames_per_second:.0f} frames/s; "
            f"reading the file {read_s:.1f} s)"
        )
    return enc


def _blocks(rows: np.ndarray):
    """Split increasing rows into groups that each lie within READ_ROWS consecutive rows."""
    start = 0
    while start < len(rows):
        end = int(np.searchsorted(rows, rows[start] + READ_ROWS, side="left"))
        yield rows[start:end]
        start = end


def episode_of_rows(info: DatasetInfo, rows: np.ndarray) -> np.ndarray:
    """Episode id of each file row (N,)."""
    return np.searchsorted(info.ep_offset, rows, side="right") - 1


def select_rows(info: DatasetInfo, every: int = 1, max_frames: int | None = None, seed: int = 0):
    """Every ``every``-th row of each episode; with ``max_frames``, only a seeded random subset
    of whole episodes holding at most that many of those rows (at least one episode), so
    splits by episode stay meaningful. Returns increasing file rows (N,)."""
    eps = np.arange(info.n_episodes)
    if max_frames is not None:
        per_ep = (info.ep_len + every - 1) // every
        order = np.random.default_rng(seed).permutation(info.n_episodes)
        n_keep = int(np.searchsorted(np.cumsum(per_ep[order]), max_frames, side="right"))
        eps = np.sort(order[: max(1, n_keep)])
    parts = [info.ep_offset[e] + np.arange(0, info.ep_len[e], every) for e in eps]
    return np.concatenate(parts).astype(np.int64)


def read_frames(info: DatasetInfo, rows: np.ndarray) -> np.ndarray:
    """uint8 frames (N, H, W, 3) of increasing file ``rows``, read in blocks."""
    parts = []
    with open_h5(info.path) as f:
        pixels = f["pixels"]
        for block in _blocks(np.asarray(rows, dtype=np.int64)):
            parts.append(pixels[int(block[0]) : int(block[-1]) + 1][block - block[0]])
    h, w = info.image_size
    return np.concatenate(parts) if parts else np.zeros((0, h, w, 3), np.uint8)
