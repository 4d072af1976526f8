"""Settings of the MPC loop (spec §6.5): :class:`MPCConfig`, checked at construction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from lewm.errors import ConfigError
from lewm.planning.objective import check_cost_step

__all__ = ["PROFILES", "MPCConfig"]

PROFILES = ("clean", "reference")


@dataclass
class MPCConfig:
    """Settings of the MPC loop; the defaults are the paper's (spec §6.5)."""

    horizon: int = 5
    """Hp: blocks per plan (5 blocks = 25 raw steps at frameskip 5)."""
    receding_horizon: int | None = None
    """R: blocks executed before replanning; None = horizon (the paper: the whole plan)."""
    context_frames: int = 1
    """H: frames given as context (current + H-1 past frames at block boundaries)."""
    warm_start: bool = True
    """Start the next solve from the unexecuted tail of the plan (a no-op when R = Hp)."""
    profile: Literal["clean", "reference"] = "clean"
    """Random-stream layout: per-(episode, solve) generators, or the reference's single stream."""
    seed: int = 42
    """Evaluation seed of the random streams."""
    budget: int | None = None
    """Environment steps per episode; when given, Hp*f <= budget is enforced."""
    clamp_to_bounds: bool | None = None
    """Clamp candidates to the action bounds mapped into normalised space. None: on in
    ``clean`` (when bounds are given), off in ``reference`` (where iCEM keeps the
    reference's clamp to the raw bounds)."""
    cost_steps: Literal["last", "all"] = "last"
    """Score the last predicted embedding (reference) or every predicted step."""
    cost_step: int | None = None
    """Rank candidates on the embedding predicted after this many blocks (1..horizon);
    None = the last (the reference)."""

    def __post_init__(self) -> None:
        if self.horizon < 1:
            raise ConfigError(f"mpc horizon must be >= 1 block, got {self.horizon}")
        if self.receding_horizon is None:
            self.receding_horizon = self.horizon
        if not 1 <= self.receding_horizon <= self.horizon:
            raise ConfigError(
                f"mpc receding_horizon must be in [1, horizon={self.horizon}], got "
                f"{self.receding_horizon}"
            )
        if self.context_frames < 1:
            raise ConfigError(f"mpc context_frames must be >= 1, got {self.context_frames}")
        if self.profile not in PROFILES:
            raise ConfigError(f"unknown profile {self.profile!r}; choose one of {PROFILES}")
        if self.budget is not None and self.budget < 1:
            raise ConfigError(f"mpc budget must be >= 1 step, got {self.budget}")
        check_cost_step(self.cost_step, self.horizon)
