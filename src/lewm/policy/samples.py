"""Training samples of the goal-conditioned policy, from offline data and a frozen world model.

Anchors are the frames at block boundaries of each episode (rows 0, f, 2f, ... of it),
encoded once by the frozen world model. A sample is an anchor z_t, a goal z_{t+k*f}
from the same episode ``k`` blocks ahead (hindsight relabelling, k in 1..max_ahead),
and the target: the next ``blocks`` action blocks actually taken from t, normalised
with the checkpoint's statistics (the planner's units). An anchor whose next blocks
run past the episode's last action has no target and is only used as a goal.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor


@dataclass(frozen=True)
class Anchors:
    """Encoded anchor frames of the chosen episodes.

    Attributes:
        z: (N, *emb) embeddings.
        episode: (N,) the dataset episode of each anchor.
        step: (N,) the anchor's block index in its episode (row = offset + step * f).
        target: (N, blocks, fA) normalised next blocks; NaN rows have no target.
    """

    z: Tensor
    episode: np.ndarray
    step: np.ndarray
    target: Tensor

    def __len__(self) -> int:
        return len(self.episode)


def hindsight_pairs(anchors: Anchors, max_ahead: int) -> np.ndarray:
    """(P, 2) int64 (anchor, goal anchor) pairs: same episode, goal 1..max_ahead blocks ahead,
    anchor with a finite target. Anchors are stored episode by episode, steps ascending."""
    ok = torch.isfinite(anchors.target).flatten(1).all(dim=1).cpu().numpy()
    pairs = []
    for k in range(1, max_ahead + 1):
        i = np.arange(len(anchors) - k)
        j = i + k
        same = (anchors.episode[i] == anchors.episode[j]) & (anchors.step[j] == anchors.step[i] + k)
        keep = same & ok[i]
        pairs.append(np.stack([i[keep], j[keep]], axis=1))
    return np.concatenate(pairs) if pairs else np.zeros((0, 2), np.int64)


def encode_anchors(
    data,
    episodes: Sequence[int],
    encode: Callable[[np.ndarray], Tensor],
    normalize: Callable[[np.ndarray], np.ndarray],
    frameskip: int,
    blocks: int,
    max_frames: int,
    batch: int = 128,
) -> Anchors:
    """Read and encode the anchors of ``episodes`` (in order) from an open HDF5 file.

    Args:
        data: the open file (``pixels``, ``action``, ``ep_len``, ``ep_offset``).
        encode: uint8 frames (b, h, w, 3) -> embeddings (b, *emb), no gradient.
        normalize: raw actions (..., A) -> normalised.
        max_frames: stop adding episodes once this many anchors are taken.
    """
    ep_len, ep_offset = np.asarray(data["ep_len"]), np.asarray(data["ep_offset"])
    f = frameskip
    zs, eps, steps, targets = [], [], [], []
    total = 0
    for e in episodes:
        off, length = int(ep_offset[e]), int(ep_len[e])
        frames = np.asarray(data["pixels"][off : off + length : f])  # (n_e, h, w, 3)
        n_e = min(len(frames), max_frames - total)
        if n_e <= 0:
            break
        actions = normalize(np.asarray(data["action"][off : off + length], np.float64))
        target = np.full((n_e, blocks * f, actions.shape[1]), np.nan, np.float32)
        for s in range(n_e):  # raw rows s*f .. s*f + blocks*f - 1
            chunk = actions[s * f : s * f + blocks * f]
            target[s, : len(chunk)] = chunk
        for lo in range(0, n_e, batch):
            zs.append(encode(frames[lo : min(n_e, lo + batch)]))
        eps.append(np.full(n_e, e, np.int64))
        steps.append(np.arange(n_e, dtype=np.int64))
        targets.append(target.reshape(n_e, blocks, f * actions.shape[1]))
        total += n_e
    if not zs:
        return Anchors(torch.zeros(0), np.zeros(0, np.int64), np.zeros(0, np.int64), torch.zeros(0))
    return Anchors(
        torch.cat(zs),
        np.concatenate(eps),
        np.concatenate(steps),
        torch.from_numpy(np.concatenate(targets)),
    )
