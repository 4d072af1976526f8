"""Collection policies shared by all environments."""

from __future__ import annotations

import numpy as np


class RandomPolicy:
    """Uniform actions over the environment's (bounded) Box action space.

    Args:
        env: the environment instance (only its ``action_space`` is read).
        seed: seed of the policy's own generator.
    """

    def __init__(self, env, seed: int):
        space = env.action_space
        low = np.asarray(space.low, dtype=np.float64)
        high = np.asarray(space.high, dtype=np.float64)
        if not (np.isfinite(low).all() and np.isfinite(high).all()):
            raise ValueError(f"RandomPolicy needs a bounded Box action space, got {space}")
        self.low, self.high = low, high
        self.dtype = space.dtype
        self.rng = np.random.default_rng(seed)

    def reset(self) -> None:
        """Nothing to reset: actions are i.i.d."""

    def __call__(self, obs=None, info=None) -> np.ndarray:
        return self.rng.uniform(self.low, self.high).astype(self.dtype)
