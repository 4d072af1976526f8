"""Model-predictive control over a batch of environments (spec §6.5).

:class:`MPCPolicy` is called once per environment step with the current frames
and the goal images of all environments. Each environment owns a buffer of raw
actions; when it is empty the policy replans: it encodes the context and goal
once, runs the solver on the goal-conditioned cost, keeps the first
``receding_horizon`` blocks of the plan, reshapes them (R, f*A) -> (R*f, A)
step-major (raw step j of block k is ``block[k, j*A:(j+1)*A]``) and
de-normalises every raw step, a = a' * sigma + mu.

Randomness (spec §6.4): in ``clean`` every (episode, solve) pair gets its own
generator seeded from (seed, episode id, solve index) and the environments that
need a plan are solved together; in ``reference`` one generator seeded with
``seed`` is created at :meth:`MPCPolicy.reset` and the environments are solved
one at a time in index order, its stream continuing across environments and solves.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from lewm.errors import ConfigError
from lewm.planning.bounds import clamp_mode, solver_bounds
from lewm.planning.interface import (
    ActionNormalizer,
    PlanningError,
    PlanningModel,
    check_planning_model,
    model_device,
)
from lewm.planning.mpc_config import MPCConfig
from lewm.planning.objective import GoalCost, PlanningContext
from lewm.planning.solvers.base import Solver
from lewm.planning.solvers.rng import make_generator

Preprocess = Callable[[np.ndarray], Any]  # uint8 (..., h, w, 3) -> float (..., 3, h, w)
# a solve's initial plan from its context: (context, horizon Hp) -> (n, Hp, fA) normalised
Proposer = Callable[[PlanningContext, int], Tensor]


@dataclass(frozen=True)
class SolveRecord:
    """One call of the solver (clean: all environments replanned together; reference: one).

    ``seconds`` covers preprocessing, encoding and the solve; ``plan`` is (k, Hp, fA)
    in normalised action space, ``cost`` the solver's final cost per environment.
    """

    env_ids: tuple[int, ...]  # rows of the batch
    episode_ids: tuple[int, ...]
    solve_indices: tuple[int, ...]  # per-env solve counter (0 = first solve of the episode)
    step: int  # environment steps already taken by these environments
    seconds: float
    cost: tuple[float, ...]
    plan: np.ndarray


class MPCPolicy:
    """Receding-horizon planning toward goal images for a batch of environments.

    Args:
        model: the world model (:class:`PlanningModel`); ``frameskip``, ``action_dim``
            and ``action_normalizer`` are read from it unless given here.
        solver: any :class:`Solver`.
        preprocess: frames uint8 (..., h, w, 3) -> float pixels (..., 3, h, w), the
            training transform (``lewm.data.transforms.frames_to_pixels`` for LeWM).
        config: :class:`MPCConfig`.
        objective: the cost; default ``GoalCost(model, config.cost_steps)``.
        frameskip: f, raw steps per action block.
        action_dim: A, the raw action dimension.
        action_normalizer: ``normalize`` / ``denormalize`` on (..., A); None = identity.
        action_bounds: raw (low, high), each broadcastable to (A,), e.g. the env's Box.
        device: where the cost runs (default: the model's parameters' device).
        proposer: ``(context, Hp) -> (n, Hp, fA)``: the initial plan of every solve (an
            amortised policy's proposal, :mod:`lewm.policy`), replacing the warm start.
            With :class:`~lewm.planning.solvers.InitialPlan` as the solver, the proposal
            is the plan.
    """

    def __init__(
        self,
        model: PlanningModel,
        solver: Solver,
        preprocess: Preprocess,
        config: MPCConfig | None = None,
        *,
        objective: GoalCost | None = None,
        frameskip: int | None = None,
        action_dim: int | None = None,
        action_normalizer: ActionNormalizer | None = None,
        action_bounds: tuple[Any, Any] | None = None,
        device: torch.device | str | None = None,
        proposer: Proposer | None = None,
    ) -> None:
        check_planning_model(model)
        self.config = config = config if config is not None else MPCConfig()
        self.model = model
        self.solver = solver
        self.preprocess = preprocess
        self.frameskip = int(_from_model(model, "frameskip", frameskip))
        self.action_dim = int(_from_model(model, "action_dim", action_dim))
        if action_normalizer is None:
            action_normalizer = getattr(model, "action_normalizer", None)
        self.normalizer = action_normalizer
        if self.frameskip < 1 or self.action_dim < 1:
            raise ConfigError(
                f"frameskip and action_dim must be >= 1, got {self.frameskip}, {self.action_dim}"
            )
        if config.budget is not None and config.horizon * self.frameskip > config.budget:
            raise ConfigError(
                f"planning horizon {config.horizon} blocks x frameskip {self.frameskip} = "
                f"{config.horizon * self.frameskip} raw steps exceeds the episode budget of "
                f"{config.budget} steps: lower the horizon"
            )
        if config.context_frames > model.history_size:
            raise ConfigError(
                f"context_frames={config.context_frames} exceeds the model's predictor window "
                f"history_size={model.history_size}; frames beyond the window are never seen"
            )
        if objective is None:
            objective = GoalCost(model, config.cost_steps, config.cost_step)
        self.objective = objective
        self.proposer = proposer
        self.device = torch.device(device) if device is not None else model_device(model)
        self.clamp_mode = "none"
        if action_bounds is not None:
            self.clamp_mode = clamp_mode(config.profile, config.clamp_to_bounds, solver)
        self.bounds = solver_bounds(
            action_bounds, self.clamp_mode, self.action_dim, self.frameskip, self._normalize
        )
        self.records: list[SolveRecord] = []
        self.reset(0)

    # -- public API --------------------------------------------------------------------

    @property
    def block_width(self) -> int:
        """f*A, the width of one action block."""
        return self.frameskip * self.action_dim

    def reset(self, n_envs: int, episode_ids: Sequence[int] | None = None) -> None:
        """Start new episodes in ``n_envs`` environments; clears buffers, history and records.

        ``episode_ids`` (default 0..n-1) seed the clean-profile generators, so an
        episode gets the same random numbers whatever it is batched with. In the
        reference profile the single generator is re-seeded here.
        """
        ids = list(range(n_envs)) if episode_ids is None else [int(e) for e in episode_ids]
        if len(ids) != n_envs:
            raise ValueError(f"{len(ids)} episode ids for {n_envs} environments")
        cfg, f, a = self.config, self.frameskip, self.action_dim
        self.n_envs = n_envs
        self.episode_ids = ids
        self.steps = np.zeros(n_envs, dtype=np.int64)  # raw steps executed per env
        self.solve_counts = np.zeros(n_envs, dtype=np.int64)
        self._frames = [deque(maxlen=cfg.context_frames) for _ in range(n_envs)]
        self._executed = [deque(maxlen=(cfg.context_frames - 1) * f) for _ in range(n_envs)]
        self._raw = [np.zeros((0, a), np.float32) for _ in range(n_envs)]  # buffered raw actions
        self._norm = [np.zeros((0, a), np.float32) for _ in range(n_envs)]  # same, normalised
        self._ptr = np.zeros(n_envs, dtype=np.int64)
        self._tail: list[np.ndarray | None] = [None] * n_envs  # (Hp-R, fA) warm start
        self._reference_gen = torch.Generator().manual_seed(cfg.seed)
        self.records = []

    def prime(self, i: int, frames: np.ndarray, actions: np.ndarray) -> None:
        """Give environment ``i`` the past it did not live through here, before its first step.

        Without it the first solve pads the context with the current frame and zero
        actions, which is a world at rest. With the ``k`` block-boundary frames that
        preceded the start and the ``k*f`` raw actions taken from the first of them,
        the first solve sees the motion the restored state carries (e.g. Reacher's joint
        velocity, spec §7.3).

        Args:
            i: the environment's row.
            frames: (k, h, w, 3) uint8, oldest first, ``1 <= k <= context_frames - 1``.
            actions: (k*f, A) raw actions, the ``f`` of block j leaving ``frames[j]``.
        """
        f, a = self.frameskip, self.action_dim
        k, width = len(frames), self.config.context_frames - 1
        if self.steps[i] != 0 or self._frames[i]:
            raise PlanningError(f"prime environment {i} right after reset, before its first step")
        if not 1 <= k <= width:
            raise PlanningError(f"prime takes 1..{width} past frames (context - 1), got {k}")
        actions = np.asarray(actions, dtype=np.float32)
        if actions.shape != (k * f, a):
            raise PlanningError(
                f"prime: {k} frames need actions of shape {(k * f, a)}, got {actions.shape}"
            )
        for frame in frames:
            self._frames[i].append(np.array(frame, copy=True))
        self._executed[i].extend(self._normalize(actions))

    def act(
        self, frames: np.ndarray, goals: np.ndarray, active: np.ndarray | None = None
    ) -> np.ndarray:
        """Raw actions (n, A) for the current frames; replans environments whose buffer is empty.

        Args:
            frames: (n, h, w, 3) uint8 current observations (at step 0 the dataset frame).
            goals: (n, h, w, 3) uint8 goal images (re-supplied every step).
            active: (n,) bool; inactive environments (e.g. already successful) are not
                planned, do not advance, and get a row of zeros that must be ignored.
        """
        n = self.n_envs
        if len(frames) != n or len(goals) != n:
            raise ValueError(
                f"policy was reset for {n} environments, got {len(frames)} frames and "
                f"{len(goals)} goals (call reset(n_envs) first)"
            )
        rows = np.arange(n) if active is None else np.flatnonzero(np.asarray(active, bool))
        f = self.frameskip
        for i in rows:
            if self.steps[i] % f == 0:  # a block boundary: a context frame
                self._frames[i].append(np.array(frames[i], copy=True))
        empty = [int(i) for i in rows if self._ptr[i] >= len(self._raw[i])]
        if empty:
            self._replan(empty, goals)
        out = np.zeros((n, self.action_dim), dtype=np.float32)
        for i in rows:
            p = self._ptr[i]
            out[i] = self._raw[i][p]
            if self._executed[i].maxlen:
                self._executed[i].append(self._norm[i][p])
            self._ptr[i] = p + 1
            self.steps[i] += 1
        return out

    @property
    def plan_seconds(self) -> list[float]:
        """Seconds of every solver call so far (see :class:`SolveRecord`)."""
        return [r.seconds for r in self.records]

    # -- internals ---------------------------------------------------------------------

    def _replan(self, rows: list[int], goals: np.ndarray) -> None:
        cfg = self.config
        for i in rows:  # buffers hold whole blocks, so replanning is at block boundaries
            assert self.steps[i] % self.frameskip == 0, "replanning off a block boundary"
        if cfg.profile == "clean":
            gens = [
                make_generator(cfg.seed, self.episode_ids[i], int(self.solve_counts[i]))
                for i in rows
            ]
            self._solve(rows, goals, gens)
        else:
            for i in rows:  # one at a time, in index order, one continuing stream
                self._solve([i], goals, self._reference_gen)

    def _solve(self, rows: list[int], goals: np.ndarray, generators: Any) -> None:
        cfg, f, a = self.config, self.frameskip, self.action_dim
        hp, r, fa = cfg.horizon, cfg.receding_horizon, self.block_width
        k = len(rows)
        start = time.perf_counter()
        frames = np.stack([self._context_frames(i) for i in rows])  # (k, H, h, w, 3)
        goal_frames = np.stack([np.asarray(goals[i]) for i in rows])  # (k, h, w, 3)
        pixels = self._to_device(self.preprocess(frames))  # (k, H, 3, h, w)
        goal_pixels = self._to_device(self.preprocess(goal_frames))  # (k, 3, h, w)
        history = None
        if cfg.context_frames > 1:
            history = torch.from_numpy(np.stack([self._history_blocks(i) for i in rows]))
            history = history.to(self.device)  # (k, H-1, fA)
        context = self.objective.prepare(pixels, goal_pixels, history)
        result = self.solver.solve(
            self.objective.cost_fn(context, differentiable=self.solver.needs_grad),
            k,
            hp,
            fa,
            init=self._initial_plan(rows, context),
            generators=generators,
            bounds=self.bounds,
            device=self.device,
        )
        plan = result.plan.detach().to("cpu", torch.float32).numpy()  # (k, Hp, fA)
        if plan.shape != (k, hp, fa):
            raise PlanningError(
                f"solver returned a plan of shape {plan.shape}, expected {(k, hp, fa)}"
            )
        # (k, R, f*A) -> (k, R*f, A): raw step j of block b is block[b, j*A:(j+1)*A]
        norm_steps = plan[:, :r].reshape(k, r * f, a)
        raw_steps = self._denormalize(norm_steps)
        seconds = time.perf_counter() - start
        for j, i in enumerate(rows):
            self._norm[i] = norm_steps[j]
            self._raw[i] = raw_steps[j]
            self._ptr[i] = 0
            self._tail[i] = plan[j, r:].copy() if cfg.warm_start and r < hp else None
        self.records.append(
            SolveRecord(
                env_ids=tuple(rows),
                episode_ids=tuple(self.episode_ids[i] for i in rows),
                solve_indices=tuple(int(self.solve_counts[i]) for i in rows),
                step=int(self.steps[rows[0]]),
                seconds=seconds,
                cost=tuple(float(c) for c in result.cost.detach().cpu()),
                plan=plan,
            )
        )
        for i in rows:
            self.solve_counts[i] += 1

    def _initial_plan(self, rows: list[int], context: PlanningContext) -> Tensor:
        """(k, Hp, fA): the proposer's plan, else the warm-start tails padded with zeros."""
        hp, fa = self.config.horizon, self.block_width
        if self.proposer is not None:
            with torch.no_grad():
                plan = self.proposer(context, hp)
            if tuple(plan.shape) != (len(rows), hp, fa):
                raise PlanningError(
                    f"proposer returned {tuple(plan.shape)}, expected {(len(rows), hp, fa)}"
                )
            return plan.detach().to(self.device, torch.float32)
        init = np.zeros((len(rows), hp, fa), np.float32)
        for j, i in enumerate(rows):
            if self._tail[i] is not None:
                init[j, : len(self._tail[i])] = self._tail[i]
        return torch.from_numpy(init).to(self.device)

    def _context_frames(self, i: int) -> np.ndarray:
        """(H, h, w, 3): the last H boundary frames, front-padded with the first frame."""
        frames = list(self._frames[i])
        missing = self.config.context_frames - len(frames)
        return np.stack([frames[0]] * missing + frames)

    def _history_blocks(self, i: int) -> np.ndarray:
        """(H-1, fA): the executed blocks leaving each context frame, front-padded with zeros."""
        width = (self.config.context_frames - 1) * self.frameskip
        out = np.zeros((width, self.action_dim), np.float32)
        done = list(self._executed[i])
        if done:
            out[width - len(done) :] = np.stack(done)
        return out.reshape(self.config.context_frames - 1, self.block_width)

    def _to_device(self, x: Any) -> Tensor:
        return torch.as_tensor(x).to(device=self.device, dtype=torch.float32)

    def _denormalize(self, norm: np.ndarray) -> np.ndarray:
        if self.normalizer is None:
            return norm.astype(np.float32, copy=True)
        return np.asarray(self.normalizer.denormalize(norm), dtype=np.float32)

    def _normalize(self, raw: np.ndarray) -> np.ndarray:
        if self.normalizer is None:
            return raw.astype(np.float32, copy=True)
        return np.asarray(self.normalizer.normalize(raw), dtype=np.float32)


def _from_model(model: Any, name: str, value: Any) -> Any:
    if value is not None:
        return value
    if not hasattr(model, name):
        raise ConfigError(
            f"{type(model).__name__} has no attribute {name!r}: pass {name}= to MPCPolicy"
        )
    return getattr(model, name)
