"""The solver interface, the checked problem of one solve, and the sampling loop.

A solver minimises a cost over plans of shape (n_envs, Hp, fA) in normalised
action space. It knows nothing of world models: it only calls

    cost_fn(candidates (n, S, Hp, fA)) -> costs (n, S)

once per iteration with every candidate of every environment, so the cost can
run one flattened model call per iteration.

Layout. :meth:`Solver.solve` checks the arguments once and builds a
:class:`Problem` (start plan, one CPU generator per environment, bounds,
device), then calls the solver's :meth:`Solver.search`. :class:`SampleSolver`
implements ``search`` as the sample -> evaluate -> select loop shared by CEM,
iCEM and MPPI; each of them only states its update rule (and iCEM its noise and
kept elites). The gradient solver overrides ``search`` with its own loop.
Where the noise comes from is :mod:`.rng`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import torch
from torch import Tensor

from lewm.errors import ConfigError
from lewm.planning.interface import PlanningError
from lewm.planning.solvers.rng import (  # noqa: F401 - derive_seed: the old import path
    Generators,
    as_generator_list,
    derive_seed,
    make_generator,
    sample_normal,
)

CostFn = Callable[[Tensor], Tensor]  # (n, S, Hp, fA) -> (n, S)
Bounds = tuple[Tensor, Tensor] | None


@dataclass
class SolveResult:
    """What a solve returns.

    Attributes:
        plan: (n, Hp, fA) the plan in normalised action space, on the solve device.
        cost: (n,) the solver's final cost (CEM: mean elite cost of the last iteration).
        stats: extra tensors, e.g. ``cost_history`` (n, iterations).
    """

    plan: Tensor
    cost: Tensor
    stats: dict[str, Tensor] = field(default_factory=dict)


@dataclass(frozen=True)
class Problem:
    """One solve, checked: where it starts, its noise, its bounds and its device.

    Attributes:
        start: (n, Hp, fA) the initial plan: the warm start padded with zeros (the
            normalised mean action).
        generators: one CPU generator per environment.
        bounds: (lo, hi) on ``device``, each broadcastable to (Hp, fA), or None.
        device: where candidates are built and the cost is called.
    """

    start: Tensor
    generators: list[torch.Generator]
    bounds: Bounds
    device: torch.device

    @classmethod
    def build(
        cls,
        n_envs: int,
        horizon: int,
        action_width: int,
        init: Tensor | None,
        generators: Generators,
        bounds: Bounds,
        device: torch.device | str | None,
    ) -> Problem:
        """Check the arguments of :meth:`Solver.solve` and build the problem."""
        if n_envs < 1 or horizon < 1 or action_width < 1:
            raise ValueError(
                f"n_envs, horizon and action_width must be >= 1, got {(n_envs, horizon, action_width)}"
            )
        if device is None:
            device = init.device if init is not None else torch.device("cpu")
        device = torch.device(device)
        start = torch.zeros(n_envs, horizon, action_width, dtype=torch.float32, device=device)
        if init is not None:
            if init.ndim != 3 or init.shape[0] != n_envs or init.shape[2] != action_width:
                raise ValueError(
                    f"init must have shape (n_envs={n_envs}, Hp0<={horizon}, fA={action_width}), "
                    f"got {tuple(init.shape)}"
                )
            if init.shape[1] > horizon:
                raise ValueError(
                    f"init has {init.shape[1]} blocks, more than the horizon {horizon}"
                )
            start[:, : init.shape[1]] = init.detach().to(device=device, dtype=torch.float32)
        if bounds is not None:
            lo, hi = (torch.as_tensor(b, dtype=torch.float32, device=device) for b in bounds)
            bounds = (lo, hi)
        return cls(start, as_generator_list(generators, n_envs), bounds, device)

    def normal(self, shape: tuple[int, ...]) -> Tensor:
        """Standard normal noise (n, *shape), row i from generator i, on the device."""
        return sample_normal(self.generators, shape, self.device)

    def clamp(self, x: Tensor) -> Tensor:
        """``x`` clamped to the bounds (unchanged without bounds)."""
        return x if self.bounds is None else torch.clamp(x, self.bounds[0], self.bounds[1])


def evaluate(cost_fn: CostFn, candidates: Tensor) -> Tensor:
    """Call the cost on (n, S, Hp, fA) candidates and check it returns finite (n, S)."""
    n, s = candidates.shape[:2]
    costs = cost_fn(candidates)
    if not isinstance(costs, Tensor) or costs.shape != (n, s):
        got = tuple(costs.shape) if isinstance(costs, Tensor) else type(costs).__name__
        raise PlanningError(f"cost_fn must return a tensor of shape (n, S)=({n}, {s}), got {got}")
    finite = torch.isfinite(costs)
    if not bool(finite.all()):
        bad_rows = (~finite).any(dim=1).nonzero().flatten().tolist()
        raise PlanningError(
            f"non-finite planning cost in {int((~finite).sum())} of {n * s} candidates "
            f"(solve rows {bad_rows}); the model produced NaN/Inf predictions: check the "
            "checkpoint (did training diverge?) and that the inputs are normalised"
        )
    return costs


def take_rows(x: Tensor, idx: Tensor) -> Tensor:
    """Gather samples per env: x (n, S, Hp, fA), idx (n, k) -> (n, k, Hp, fA)."""
    n, k = idx.shape
    return torch.gather(x, 1, idx[:, :, None, None].expand(n, k, *x.shape[2:]))


@dataclass
class Solver:
    """Minimises ``cost_fn`` over plans (n, Hp, fA); subclasses are dataclasses of settings.

    Class attributes:
        name: registry name.
        needs_grad: the cost must be differentiable w.r.t. the candidates.
        reference_clamps_raw_bounds: the reference clamps this solver's (normalised)
            samples to the raw action Box, a unit error kept only in the
            ``reference`` profile (spec §12 P4).
    """

    name: ClassVar[str] = "solver"
    needs_grad: ClassVar[bool] = False
    reference_clamps_raw_bounds: ClassVar[bool] = False

    def __post_init__(self) -> None:
        self.derive()
        self.validate()

    def derive(self) -> None:  # noqa: B027 - optional hook, not abstract
        """Fill settings left to a rule (e.g. CEM's default top-k) before validation."""

    def validate(self) -> None:  # noqa: B027 - optional hook, not abstract
        """Raise :class:`ConfigError` on invalid settings (override in subclasses)."""

    def settings(self) -> dict[str, Any]:
        """The solver's configuration as a JSON-friendly dict (for results files)."""
        return {"solver": self.name, **{f.name: getattr(self, f.name) for f in fields(self)}}

    def solve(
        self,
        cost_fn: CostFn,
        n_envs: int,
        horizon: int,
        action_width: int,
        *,
        init: Tensor | None = None,
        generators: Generators = None,
        bounds: Bounds = None,
        device: torch.device | str | None = None,
    ) -> SolveResult:
        """Minimise ``cost_fn`` over plans.

        Args:
            cost_fn: (n, S, Hp, fA) -> (n, S); must be differentiable iff ``needs_grad``.
            n_envs: n, the number of independent problems (environments).
            horizon: Hp, blocks per plan.
            action_width: fA, the width of one action block.
            init: (n, Hp0, fA) with Hp0 <= Hp: warm-start prefix, padded with zeros (the
                normalised mean action). None = zeros.
            generators: one CPU generator per environment (or one generator when n=1).
            bounds: (lo, hi), each broadcastable to (Hp, fA), in the units of the plan;
                candidates are clamped to them. None = no clamping (the reference).
            device: where candidates are built and the cost is called (default: the
                device of ``init``, else CPU).
        Returns:
            :class:`SolveResult` with plan (n, Hp, fA) and cost (n,).
        """
        problem = Problem.build(n_envs, horizon, action_width, init, generators, bounds, device)
        return self.search(cost_fn, problem)

    def search(self, cost_fn: CostFn, problem: Problem) -> SolveResult:
        """Minimise ``cost_fn`` over plans of ``problem.start``'s shape (n, Hp, fA).

        Not abstract so that a solver written before :class:`Problem` existed, which
        overrides :meth:`solve` itself, still works.
        """
        raise NotImplementedError(
            f"{type(self).__name__} must implement search(cost_fn, problem) (or override solve)"
        )


@dataclass
class SampleState:
    """What a sampling solver carries from one iteration to the next.

    Attributes:
        mean: (n, Hp, fA) the sampling mean; the plan once the loop ends.
        std: (n, Hp, fA) the sampling standard deviation.
        elites: (n, k, Hp, fA) the last iteration's elites, best first (None before).
    """

    mean: Tensor
    std: Tensor
    elites: Tensor | None = None


@dataclass
class SampleSolver(Solver, ABC):
    """Sample -> evaluate -> select, ``iterations`` times; subclasses give :meth:`update`.

    Per iteration and environment: ``samples`` candidates from :meth:`sample`
    (default: mean + std * :meth:`noise`, candidate 0 = the mean), clamped to the
    bounds, scored by the cost; the ``topk`` lowest costs are the elites
    (``topk`` None = every candidate) and :meth:`update` makes the next state.
    The plan is the final mean; ``cost`` is the mean elite cost of the last iteration.
    Subclasses declare ``init_std`` (the initial standard deviation).
    """

    samples: int = 300
    iterations: int = 30
    topk: int | None = None

    min_samples: ClassVar[int] = 2  # CEM/iCEM: an unbiased elite std needs two elites
    min_topk: ClassVar[int] = 2

    def validate(self) -> None:
        if self.samples < self.min_samples or self.iterations < 1:
            raise ConfigError(
                f"{self.name}: samples must be >= {self.min_samples} and iterations >= 1, "
                f"got {self}"
            )
        if self.topk is not None and not self.min_topk <= self.topk <= self.samples:
            why = " (the elite std is unbiased)" if self.min_topk == 2 else ""
            raise ConfigError(
                f"{self.name}: topk must be in [{self.min_topk}, samples={self.samples}]{why}, "
                f"got {self.topk}"
            )

    @property
    def n_elites(self) -> int:
        return self.samples if self.topk is None else self.topk

    def init_state(self, start: Tensor) -> SampleState:
        """The first state: mean = the start plan (n, Hp, fA), std = ``init_std``."""
        return SampleState(mean=start, std=torch.full_like(start, self.init_std))

    def noise(self, problem: Problem) -> Tensor:
        """Unit noise (n, S, Hp, fA) for one iteration (white by default)."""
        return problem.normal((self.samples, *problem.start.shape[1:]))

    def sample(self, state: SampleState, problem: Problem) -> Tensor:
        """Candidates (n, S, Hp, fA) around the state; candidate 0 is the mean."""
        cand = self.noise(problem) * state.std[:, None] + state.mean[:, None]
        cand[:, 0] = state.mean
        return cand

    @abstractmethod
    def update(self, state: SampleState, elites: Tensor, elite_cost: Tensor) -> SampleState:
        """The next state from elites (n, k, Hp, fA) and their costs (n, k), best first."""

    def result(self, state: SampleState, cost_history: Tensor) -> SolveResult:
        """The plan from the final state; ``cost_history`` is (n, iterations)."""
        stats = {"cost_history": cost_history, "std": state.std}
        return SolveResult(plan=state.mean, cost=cost_history[:, -1], stats=stats)

    def search(self, cost_fn: CostFn, problem: Problem) -> SolveResult:
        state = self.init_state(problem.start)
        history = []  # per iteration: (n,) mean elite cost
        with torch.no_grad():
            for _ in range(self.iterations):
                cand = problem.clamp(self.sample(state, problem))  # (n, S, Hp, fA)
                costs = evaluate(cost_fn, cand)  # (n, S)
                # sorted ascending: elites[:, 0] is the best candidate
                elite_cost, idx = torch.topk(costs, self.n_elites, dim=1, largest=False)
                state = self.update(state, take_rows(cand, idx), elite_cost)
                history.append(elite_cost.mean(dim=1))
        return self.result(state, torch.stack(history, dim=1))
