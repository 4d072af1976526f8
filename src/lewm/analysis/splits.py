"""Episode-level train / validation / test splits for the probes (spec §9.1).

Frames of one episode are strongly correlated, so a probe evaluated on frames of
episodes it was fitted on overstates what the embedding knows. Every split here
assigns whole episodes to one part.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lewm.errors import DatasetError

FRACTIONS = (0.8, 0.1, 0.1)  # train, validation, test (spec §9.1)


@dataclass(frozen=True)
class EpisodeSplit:
    """Sorted episode ids of each part; disjoint, together every episode given."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    seed: int

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}


def split_episodes(
    episodes: np.ndarray | int, seed: int, fractions: tuple[float, float, float] = FRACTIONS
) -> EpisodeSplit:
    """Shuffle episodes with ``default_rng(seed)`` and cut them 80/10/10.

    Validation and test get ``round(n * fraction)`` episodes each, at least one; train
    gets the rest, at least one. ``episodes``: the ids to split, or a count n (ids 0..n-1).

    Raises:
        DatasetError: fewer than 3 episodes (no part may be empty).
    """
    ids = np.arange(episodes) if np.isscalar(episodes) else np.asarray(episodes, dtype=np.int64)
    n = len(ids)
    if n < 3:
        raise DatasetError(
            f"an 80/10/10 split by episode needs at least 3 episodes, the file has {n}; "
            "collect more episodes"
        )
    n_val = max(1, int(round(n * fractions[1])))
    n_test = max(1, int(round(n * fractions[2])))
    n_val = min(n_val, n - 2)  # leave one episode for test and one for train
    n_test = min(n_test, n - n_val - 1)
    perm = ids[np.random.default_rng(seed).permutation(n)]
    val, test, train = perm[:n_val], perm[n_val : n_val + n_test], perm[n_val + n_test :]
    return EpisodeSplit(np.sort(train), np.sort(val), np.sort(test), int(seed))


def masks(split: EpisodeSplit, episode_of_row: np.ndarray) -> tuple[np.ndarray, ...]:
    """Boolean row masks (train, val, test) for rows whose episode ids are ``episode_of_row`` (N,)."""
    return tuple(np.isin(episode_of_row, part) for part in (split.train, split.val, split.test))
