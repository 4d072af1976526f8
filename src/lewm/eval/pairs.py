"""How the start/goal pairs of an evaluation seed are drawn (spec §7.1).

Valid starts are the rows with ``step_idx <= L_e - goal_offset - 1`` (the state
``goal_offset`` steps later exists in the same episode), over the allowed episodes.
``n`` of them are drawn uniformly without replacement with
``np.random.default_rng(seed)`` and sorted: the reference's draw. The goal row is
``start + goal_offset``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lewm.errors import ConfigError
from lewm.eval.config import EvaluationError


@dataclass(frozen=True)
class EvalPair:
    """One (start, goal) pair of an evaluation seed."""

    index: int  # position in the seed's draw (0..n-1); the clean streams' episode id
    start_row: int  # global dataset row of the start
    goal_row: int  # start_row + goal_offset
    episode: int  # dataset episode
    start_step: int  # step_idx of the start


def valid_start_rows(
    ep_len: np.ndarray,
    ep_offset: np.ndarray,
    goal_offset: int,
    episodes: Sequence[int] | np.ndarray | None = None,
) -> np.ndarray:
    """Global rows whose state ``goal_offset`` steps later is in the same episode.

    Row ``ep_offset[e] + s`` is valid iff ``s <= ep_len[e] - goal_offset - 1``.

    Args:
        ep_len, ep_offset: (E,) episode lengths and first rows.
        goal_offset: raw steps between start and goal (>= 1).
        episodes: the episodes to draw from (default: all).
    Returns:
        int64 (K,) ascending global row indices.
    """
    if goal_offset < 1:
        raise ConfigError(f"goal_offset must be >= 1 step, got {goal_offset}")
    eps = np.arange(len(ep_len)) if episodes is None else np.unique(np.asarray(episodes))
    parts = [
        int(ep_offset[e]) + np.arange(max(0, int(ep_len[e]) - goal_offset), dtype=np.int64)
        for e in eps
    ]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def sample_starts(valid_rows: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` rows drawn uniformly without replacement with ``default_rng(seed)``, sorted (spec §7.1)."""
    if n > len(valid_rows):
        raise EvaluationError(
            f"cannot draw {n} start states from {len(valid_rows)} valid rows; lower --episodes"
        )
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(np.asarray(valid_rows, dtype=np.int64), size=n, replace=False))


def draw_pairs(
    ep_len: np.ndarray,
    ep_offset: np.ndarray,
    goal_offset: int,
    n: int,
    seed: int,
    episodes: Sequence[int] | np.ndarray | None = None,
) -> list[EvalPair]:
    """The seed's (start, goal) pairs: :func:`valid_start_rows` then :func:`sample_starts`."""
    valid = valid_start_rows(ep_len, ep_offset, goal_offset, episodes)
    if len(valid) == 0:
        longest = int(np.max(ep_len[list(episodes)] if episodes is not None else ep_len))
        raise EvaluationError(
            f"no valid start states: every evaluation episode is at most {longest} rows long, "
            f"so none has a state {goal_offset} steps after its start; lower --goal-offset or "
            "use longer episodes"
        )
    starts = sample_starts(valid, n, seed)
    ep_of = np.searchsorted(ep_offset, starts, side="right") - 1
    return [
        EvalPair(i, int(r), int(r) + goal_offset, int(e), int(r - ep_offset[e]))
        for i, (r, e) in enumerate(zip(starts, ep_of, strict=True))
    ]
