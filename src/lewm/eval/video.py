"""Evaluation GIFs: agent view | dataset continuation | goal (spec §7.1).

Each frame of the GIF holds three panels side by side, upscaled (nearest) to at
least ``min_panel`` pixels: what the agent saw at that step (the dataset frame at
step 0, renders afterwards; frozen after success), the dataset's own continuation
from the start row (held on its last frame, the goal, after ``goal_offset`` steps),
and the goal image. The agent panel gets a green border from the step the success
test fired, red on the last frame of a failed episode.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

GAP = 4  # px between panels
HEADER = 14  # px of caption strip above the panels
BORDER = 3
LABELS = ("agent", "dataset", "goal")
GREEN, RED = (40, 180, 60), (210, 40, 40)


def compose_frames(
    agent: Sequence[np.ndarray],
    continuation: Sequence[np.ndarray] | np.ndarray,
    goal: np.ndarray,
    *,
    success_step: int | None = None,
    min_panel: int = 128,
) -> np.ndarray:
    """Three-panel frames.

    Args:
        agent: T_a frames (S, S, 3) uint8; agent[t] is the observation after t steps.
        continuation: T_d dataset frames from the start row (S, S, 3).
        goal: the goal frame (S, S, 3).
        success_step: the step after which the success test fired (None = never).
        min_panel: panels are upscaled by an integer factor to at least this size.
    Returns:
        uint8 (T, H, W, 3) with T = max(T_a, T_d); shorter sequences hold their last frame.
    """
    agent = [np.asarray(a, dtype=np.uint8) for a in agent]
    cont = [np.asarray(c, dtype=np.uint8) for c in continuation]
    goal = np.asarray(goal, dtype=np.uint8)
    if not agent or not cont:
        raise ValueError("compose_frames needs at least one agent and one dataset frame")
    size = goal.shape[0]
    for name, frames in (("agent", agent), ("dataset", cont), ("goal", [goal])):
        for f in frames:
            if f.shape != (size, size, 3):
                raise ValueError(f"{name} frame has shape {f.shape}, expected {(size, size, 3)}")
    scale = max(1, -(-min_panel // size))  # ceil
    s = size * scale
    length = max(len(agent), len(cont))
    width = 3 * s + 2 * GAP
    header = _captions(width, s)
    out = np.full((length, HEADER + s, width, 3), 255, dtype=np.uint8)
    out[:, :HEADER] = header
    goal_up = _upscale(goal, scale)
    for t in range(length):
        a = _upscale(agent[min(t, len(agent) - 1)], scale)
        if success_step is not None and t >= success_step:
            _border(a, GREEN)
        elif success_step is None and t == length - 1:
            _border(a, RED)
        d = _upscale(cont[min(t, len(cont) - 1)], scale)
        for k, panel in enumerate((a, d, goal_up)):
            x = k * (s + GAP)
            out[t, HEADER:, x : x + s] = panel
    return out


def write_episode_gif(
    path: str | os.PathLike,
    agent: Sequence[np.ndarray],
    continuation: Sequence[np.ndarray] | np.ndarray,
    goal: np.ndarray,
    *,
    success_step: int | None = None,
    fps: int = 10,
    min_panel: int = 128,
) -> Path:
    """Write the three-panel GIF of one episode (looping); creates the parent folder.

    Written atomically (temp file + rename): a killed evaluation leaves whole GIFs only.
    """
    import imageio.v3 as iio

    from lewm.checkpoint.atomic import atomic_write_bytes

    frames = compose_frames(
        agent, continuation, goal, success_step=success_step, min_panel=min_panel
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = iio.imwrite("<bytes>", frames, extension=".gif", duration=1000.0 / fps, loop=0)
    atomic_write_bytes(path, data)
    return path


def _upscale(frame: np.ndarray, scale: int) -> np.ndarray:
    if scale == 1:
        return frame.copy()
    return np.repeat(np.repeat(frame, scale, axis=0), scale, axis=1)


def _border(panel: np.ndarray, color: tuple[int, int, int]) -> None:
    panel[:BORDER], panel[-BORDER:] = color, color
    panel[:, :BORDER], panel[:, -BORDER:] = color, color


def _captions(width: int, panel: int) -> np.ndarray:
    """(HEADER, width, 3) white strip with the panel names (PIL's default bitmap font)."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (width, HEADER), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    for k, label in enumerate(LABELS):
        draw.text((k * (panel + GAP) + 2, 1), label, fill=(0, 0, 0))
    return np.asarray(img)


def write_seed_videos(
    folder: str | os.PathLike,
    seed: int,
    pairs: Sequence,
    mpc,
    pair_data: Sequence,
    keep: int,
) -> list[Path]:
    """GIFs of the seed's first ``keep`` pairs: ``seed{S}_pair{i}_ep{E}_{success|fail}.gif``.

    Args:
        pairs, pair_data: the seed's ``EvalPair`` and ``PairData`` (with continuations).
        mpc: the seed's MPC ``RunOutcome`` (agent frames kept for the first ``keep`` pairs).
    """
    paths = []
    for i in range(min(keep, len(pairs))):
        p = pairs[i]
        tag = "success" if mpc.success[i] else "fail"
        paths.append(
            write_episode_gif(
                Path(folder) / f"seed{seed}_pair{i:03d}_ep{p.episode}_{tag}.gif",
                mpc.frames[i],
                pair_data[i].continuation,
                pair_data[i].goal_frame,
                success_step=mpc.steps_to_success[i],
            )
        )
    return paths
