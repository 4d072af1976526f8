"""Temporal straightness of latent trajectories (spec §9.3).

With velocities ``v_t = z_{t+1} - z_t``, straightness is the mean cosine similarity
of consecutive velocities, ``cos(v_t, v_{t+1})``: 1 for a trajectory moving along a
straight line at any speed, 0 for uncorrelated steps, -1 for back-and-forth.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

_EPS = 1e-8  # a velocity shorter than this counts as zero: its cosine is 0, not NaN


def step_cosines(z: Tensor) -> Tensor:
    """Cosine of consecutive latent velocities.

    z: (B, T, D) embeddings at the model frame rate, T >= 3 -> (B, T - 2).
    """
    if z.dim() != 3 or z.shape[1] < 3:
        raise ValueError(f"straightness needs (B, T>=3, D) embeddings, got {tuple(z.shape)}")
    with torch.no_grad():
        v = z[:, 1:] - z[:, :-1]  # (B, T-1, D)
        a, b = v[:, :-1].float(), v[:, 1:].float()  # (B, T-2, D) each
        dot = (a * b).sum(-1)
        norms = a.norm(dim=-1) * b.norm(dim=-1)
        return dot / norms.clamp_min(_EPS)  # zero velocity -> dot 0 -> cosine 0


def temporal_straightness(z: Tensor) -> Tensor:
    """Mean over batch and time of ``cos(v_{b,t}, v_{b,t+1})``.

    z: (B, T, D) -> scalar tensor (float32, on z's device); no gradient is recorded.
    """
    return step_cosines(z).mean()


def clip_and_trajectory_cosines(
    z: np.ndarray, ep_len: np.ndarray, frameskip: int, clip_frames: int = 4
) -> tuple[np.ndarray, np.ndarray]:
    """Velocity cosines of a file's episodes at the model frame rate.

    z: (N, D) features of every row of the episodes, episodes contiguous with lengths
    ``ep_len``. Frames are every ``frameskip``-th row, from each of the f phases.

    Returns:
        (clip cosines (n_clips, clip_frames - 2): every clip of ``clip_frames`` model frames,
        one per start row; trajectory cosines (n_pairs,): every consecutive pair along whole
        episodes, all phases).
    """
    clips, trajs = [], []
    lo = 0
    span = (clip_frames - 1) * frameskip
    for n in np.asarray(ep_len, dtype=np.int64):
        ep = torch.as_tensor(z[lo : lo + n])  # (L, D)
        lo += n
        if n > span:
            idx = torch.arange(n - span)[:, None] + frameskip * torch.arange(clip_frames)  # (S, F)
            clips.append(step_cosines(ep[idx]).numpy())  # (S, F-2)
        for phase in range(min(frameskip, n)):
            frames = ep[phase::frameskip]  # (T, D)
            if len(frames) >= 3:
                trajs.append(step_cosines(frames[None])[0].numpy())
    width = clip_frames - 2
    clip_cos = np.concatenate(clips) if clips else np.zeros((0, width), np.float32)
    traj_cos = np.concatenate(trajs) if trajs else np.zeros(0, np.float32)
    return clip_cos, traj_cos


def summary(cos: np.ndarray) -> dict[str, float | int | None]:
    """Mean and std (ddof 0) of cosines, and how many."""
    c = np.asarray(cos, dtype=np.float64).reshape(-1)
    if not len(c):
        return {"mean": None, "std": None, "pairs": 0}
    return {"mean": float(c.mean()), "std": float(c.std()), "pairs": int(len(c))}


def file_straightness(
    ckpt, data, *, episodes: str = "held-out", max_episodes: int | None = None, seed: int = 0,
    device="cpu", stats_from=None, resize_frames: bool = False, batch_size: int = 256, log=print,
) -> dict:  # fmt: skip
    """Straightness of a checkpoint's embeddings on a file's episodes (``lewm straightness``).

    ``episodes``: ``held-out`` (the run's validation episodes when ``data`` is its training
    file, every episode of another file) or ``all``. ``max_episodes``: a seeded subset.
    """
    import lewm
    from lewm.analysis.features import check_image_size, encode_rows
    from lewm.data.hdf5 import inspect_dataset
    from lewm.errors import ConfigError, DatasetError
    from lewm.eval.episodes import choose_episodes

    if episodes not in ("held-out", "all"):
        raise ConfigError(f"--episodes must be 'held-out' or 'all', got {episodes!r}")
    info = inspect_dataset(data)
    model = lewm.load(ckpt, device=device, stats_from=stats_from or data)
    check_image_size(model, info, resize_frames, ckpt)
    f = int(model.frameskip)
    eps, held_out, note = np.arange(info.n_episodes), None, "every episode of the file"
    if episodes == "held-out":
        src = choose_episodes(model, Path(ckpt), Path(data), info.n_episodes, "clean")
        held_out, note = src.held_out, src.note
        if src.episodes is not None:
            eps = np.asarray(src.episodes)
    if max_episodes is not None and len(eps) > max_episodes:
        eps = np.sort(np.random.default_rng(seed).choice(eps, max_episodes, replace=False))
    if int(info.ep_len[eps].max()) < 3 * f:
        raise DatasetError(f"{data}: no episode spans 3 model frames ({2 * f + 1} rows)")
    rows = np.concatenate([info.ep_offset[e] + np.arange(info.ep_len[e]) for e in eps])
    enc = encode_rows(model, info, rows, batch_size=batch_size, log=log)
    out = {"checkpoint": str(ckpt), "data": str(data), "frameskip": f, "episodes": len(eps),
           "held_out": held_out, "episodes_note": note}  # fmt: skip
    for kind in ("projector", "cls"):
        clip_cos, traj_cos = clip_and_trajectory_cosines(enc.kind(kind), info.ep_len[eps], f)
        out[kind] = {
            "clips": {**summary(clip_cos), "clips": len(clip_cos), "frames_per_clip": 4},
            "trajectories": summary(traj_cos),
        }
    out["val_straightness"] = out["projector"]["clips"]["mean"]  # what training logs
    return out
