"""What an evaluation run is asked to do: :class:`EvalConfig`, checked once, at construction.

Every setting of :func:`lewm.eval.protocol.evaluate` except *what* is evaluated
(checkpoint, environment, data file, output folder) lives here, so a bad value
fails with a one-line :class:`~lewm.errors.ConfigError` before any file is opened.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from lewm.errors import ConfigError, LewmError

if TYPE_CHECKING:
    from lewm.planning import MPCConfig, Solver

PROFILES = ("clean", "reference")


class EvaluationError(LewmError, RuntimeError):
    """The evaluation cannot run or cannot be scored (bad data, missing hooks, no valid starts)."""


@dataclass(frozen=True)
class EvalConfig:
    """Settings of one evaluation (spec §7); the defaults are the paper's protocol."""

    episodes: int = 50
    """Start/goal pairs per seed."""
    seeds: tuple[int, ...] = (42, 43, 44)
    """Evaluation seeds; each draws its own pairs and seeds its solver streams (spec §7.4: >= 3)."""
    solver: str = "cem"
    """A solver of ``lewm.planning.SOLVERS``: cem, icem, mppi or gradient."""
    solver_settings: Mapping[str, Any] = field(default_factory=dict)
    """Settings overriding the solver's defaults (samples, iterations, topk, ...)."""
    horizon: int = 5
    """Hp: plan length in action blocks."""
    receding: int | None = None
    """Blocks executed per plan; None = horizon."""
    context: int = 1
    """H: context frames given to the predictor."""
    dataset_history: bool = False
    """The first solve's context holds the frames and actions that preceded the start in
    its episode (up to ``context - 1`` blocks), instead of the start frame repeated with
    zero actions (a world at rest). The pairs, goals, budget and success test are unchanged."""
    budget: int = 50
    """Environment steps per episode."""
    goal_offset: int = 25
    """Raw steps from the start row to the goal row."""
    profile: str = "clean"
    """``clean`` (held-out episodes, per-episode solver streams) or ``reference``."""
    videos: int = 0
    """GIFs of the first ``videos`` pairs of the first seed (needs an output folder)."""
    device: str = "auto"
    """auto, cpu, cuda or mps for the model (environments run on the CPU)."""
    env_kwargs: Mapping[str, Any] = field(default_factory=dict)
    """Extra environment constructor keywords."""
    resize_frames: bool = False
    """Resize dataset frames of another size (PIL bilinear) instead of refusing them."""
    stats_from: Path | None = None
    """Authors' checkpoints only: the HDF5 file whose actions give the normalisation statistics."""
    identity_normalizer: bool = False
    """Authors' checkpoints only: plan in raw action units (a model trained unnormalised)."""
    cost_step: int | None = None
    """Rank candidates on the embedding predicted after this many blocks (1..horizon);
    None = the last (the reference)."""
    policy: Path | None = None
    """A ``lewm policy train`` folder: its proposal is the plan (no search)."""
    policy_init: bool = False
    """With ``policy``: the proposal is the solver's initial plan (CEM's initial mean)."""
    compile: bool = False
    """Plan through ``LeWM.compile_rollout`` (torch.compile, inductor, weights frozen): the
    same rollouts to float rounding, faster once compiled (LeWM checkpoints only)."""

    def __post_init__(self) -> None:
        _set = lambda name, value: object.__setattr__(self, name, value)  # frozen
        if self.profile not in PROFILES:
            raise ConfigError(f"unknown profile {self.profile!r}; choose one of {PROFILES}")
        _set("seeds", _check_seeds(self.seeds))
        for name, low in (("episodes", 1), ("budget", 1), ("goal_offset", 1), ("videos", 0)):
            _check_int(name, getattr(self, name), low)
        for name in ("solver_settings", "env_kwargs"):
            value = getattr(self, name)
            if value is None:
                value = {}
            if not isinstance(value, Mapping):
                raise ConfigError(f"{name} must be a mapping, got {type(value).__name__}")
            _set(name, MappingProxyType(dict(value)))
        if self.stats_from is not None:
            _set("stats_from", Path(self.stats_from))
        if self.policy is not None:
            _set("policy", Path(self.policy))
        elif self.policy_init:
            raise ConfigError(
                "--policy-init needs --policy DIR (the policy whose proposal starts CEM)"
            )
        if self.stats_from is not None and self.identity_normalizer:
            raise ConfigError(
                "give either --stats-from (the training file) or --identity-normalizer, not both"
            )
        if self.dataset_history and self.context < 2:
            raise ConfigError(
                "--dataset-history fills the context window before the start: give --context "
                ">= 2 (the model's history, e.g. 3)"
            )
        self.make_solver()  # unknown solver or solver setting
        self.mpc_config(self.seeds[0])  # horizon, receding, context, budget

    def updated(self, **settings: Any) -> EvalConfig:
        """A copy with ``settings`` replaced; an unknown name is a ConfigError, not a TypeError."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise ConfigError(f"unknown evaluation setting(s) {unknown}; known: {sorted(known)}")
        return replace(self, **settings) if settings else self

    def make_solver(self) -> Solver:
        """A fresh solver with this config's settings."""
        from lewm.planning import make_solver

        return make_solver(self.solver, **dict(self.solver_settings))

    def make_planner(self) -> Solver:
        """What searches for plans: the solver, or nothing but the policy's proposal
        (``InitialPlan``) with ``policy`` and without ``policy_init``."""
        if self.policy is not None and not self.policy_init:
            from lewm.planning.solvers import InitialPlan

            return InitialPlan()
        return self.make_solver()

    def mpc_config(self, seed: int) -> MPCConfig:
        """The MPC loop's settings for one evaluation seed."""
        from lewm.planning import MPCConfig

        return MPCConfig(
            horizon=self.horizon,
            receding_horizon=self.receding,
            context_frames=self.context,
            profile=self.profile,
            seed=seed,
            budget=self.budget,
            cost_step=self.cost_step,
        )


def _check_int(name: str, value: Any, low: int) -> None:
    import numpy as np

    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")


def _check_seeds(seeds: Any) -> tuple[int, ...]:
    """One int or a sequence of distinct seeds (integers in [0, 2**63 - 1]) -> a tuple."""
    import numbers

    from lewm.config import SEED_MAX

    if isinstance(seeds, numbers.Integral) and not isinstance(seeds, bool):
        seeds = (seeds,)
    try:
        out = tuple(_as_int(s) for s in seeds)
    except (TypeError, ValueError):
        raise ConfigError(f"seeds must be integers, got {seeds!r}") from None
    if not out or any(not 0 <= s <= SEED_MAX for s in out) or len(set(out)) != len(out):
        raise ConfigError(
            f"seeds must be distinct integers in [0, 2**63 - 1], at least one, got {list(out)}"
        )
    return out


def _as_int(value: Any) -> int:
    """An integer or a string of one; a bool or a fractional number is refused, not truncated."""
    import numbers

    if isinstance(value, str):
        return int(value.strip(), 10)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(value)
    return int(value)
