"""A tiny synthetic dataset in the reference layout (a dot moved by 2-D actions).

For tests and benchmarks of the training stack without an environment. The
dynamics are learnable (p <- clip(p + 0.06 a)) so a model's prediction loss
must fall on it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from lewm.data.hdf5 import DatasetWriter


def render_dot(pos: np.ndarray, size: int) -> np.ndarray:
    """White frame with a red Gaussian dot at ``pos`` in [0, 1]^2 -> uint8 (size, size, 3)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    r = max(1.5, size / 12)
    alpha = np.exp(-((xx - pos[0] * size) ** 2 + (yy - pos[1] * size) ** 2) / (2 * r * r))
    frame = np.full((size, size, 3), 255.0, dtype=np.float32)
    frame[..., 1] *= 1 - alpha
    frame[..., 2] *= 1 - alpha
    return frame.astype(np.uint8)


def write_synthetic(
    path: str | os.PathLike,
    *,
    episodes: int = 8,
    length: int = 40,
    image_size: int = 32,
    seed: int = 0,
    compression: str = "none",
) -> Path:
    """Write ``episodes`` episodes of ``length`` rows; the last action row of each is NaN."""
    rng = np.random.default_rng(seed)
    with DatasetWriter(path, compression=compression, meta={"env": "synthetic-dot"}) as w:
        for _ in range(episodes):
            p = rng.uniform(0.2, 0.8, size=2)
            frames, acts, props = [], [], []
            for t in range(length):
                frames.append(render_dot(p, image_size))
                props.append(p.copy())
                a = rng.uniform(-1, 1, size=2)
                acts.append(a if t < length - 1 else np.full(2, np.nan))
                p = np.clip(p + 0.06 * a, 0.05, 0.95)
            w.add_episode(
                {
                    "pixels": np.stack(frames),
                    "action": np.asarray(acts, dtype=np.float32),
                    "proprio": np.asarray(props, dtype=np.float32),
                }
            )
    return Path(path)
