"""The solver interface, per-environment random generators, and shared helpers.

A solver minimises a cost over plans of shape (n_envs, Hp, fA) in normalised
action space. It knows nothing of world models: it only calls

    cost_fn(candidates (n, S, Hp, fA)) -> costs (n, S)

once per iteration with every candidate of every environment, so the cost can
run one flattened model call per iteration.

Randomness (spec §6.4). Every environment row ``i`` draws its noise from its own
CPU ``torch.Generator`` ``generators[i]``, row by row, then the noise is moved to
the solve device. Hence

- a row's plan does not depend on which other rows were solved with it
  (batched == one at a time, to float tolerance), and
- plans do not depend on the device the cost runs on.

The ``clean`` profile gives each (episode, solve) its own generator
(:func:`make_generator`); the ``reference`` profile solves one environment at a
time with a single generator seeded 42 whose stream continues across
environments and solves (the MPC policy arranges both).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from lewm.errors import ConfigError
from lewm.planning.interface import PlanningError

CostFn = Callable[[Tensor], Tensor]  # (n, S, Hp, fA) -> (n, S)
Generators = torch.Generator | Sequence[torch.Generator] | None
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


def derive_seed(seed: int, episode: int, solve: int) -> int:
    """A well-mixed 63-bit seed for one (seed, episode index, solve index) triple."""
    if min(seed, episode, solve) < 0:
        raise ConfigError(
            f"seed, episode and solve indices must be >= 0, got {(seed, episode, solve)}"
        )
    words = np.random.SeedSequence([seed, episode, solve]).generate_state(2, dtype=np.uint32)
    return ((int(words[0]) << 32) | int(words[1])) & ((1 << 63) - 1)


def make_generator(seed: int, episode: int = 0, solve: int = 0) -> torch.Generator:
    """The CPU generator of one (episode, solve) pair (``clean`` profile)."""
    return torch.Generator().manual_seed(derive_seed(seed, episode, solve))


def _as_generator_list(generators: Generators, n_envs: int) -> list[torch.Generator]:
    if generators is None:
        # A fixed default so an unseeded call is still reproducible.
        return [make_generator(0, i, 0) for i in range(n_envs)]
    if isinstance(generators, torch.Generator):
        if n_envs != 1:
            raise ValueError(
                "a single torch.Generator can only drive a solve of n_envs=1 (the reference "
                f"ordering solves environments one at a time); got n_envs={n_envs}: pass "
                "one generator per environment"
            )
        generators = [generators]
    gens = list(generators)
    if len(gens) != n_envs:
        raise ValueError(f"expected {n_envs} generators (one per environment), got {len(gens)}")
    for g in gens:
        if g.device.type != "cpu":
            raise ValueError(
                f"solver generators must live on the CPU so plans do not depend on the "
                f"device, got a generator on {g.device}"
            )
    return gens


def sample_normal(gens: Sequence[torch.Generator], shape: tuple[int, ...], device: Any) -> Tensor:
    """Standard normal noise (n, *shape): row i from ``gens[i]`` on the CPU, then moved."""
    rows = [torch.randn(shape, generator=g, dtype=torch.float32) for g in gens]
    return torch.stack(rows).to(device)


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
class Solver(ABC):
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
        self.validate()

    def validate(self) -> None:  # noqa: B027 - optional hook, not abstract
        """Raise :class:`ConfigError` on invalid settings (override in subclasses)."""

    def settings(self) -> dict[str, Any]:
        """The solver's configuration as a JSON-friendly dict (for results files)."""
        return {"solver": self.name, **{f.name: getattr(self, f.name) for f in fields(self)}}

    @abstractmethod
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

    # -- helpers shared by the solvers -------------------------------------------------

    @staticmethod
    def _setup(
        n_envs: int,
        horizon: int,
        action_width: int,
        init: Tensor | None,
        generators: Generators,
        bounds: Bounds,
        device: torch.device | str | None,
    ) -> tuple[Tensor, list[torch.Generator], Bounds, torch.device]:
        """Initial mean (n, Hp, fA), generator list, bounds on the device, device."""
        if n_envs < 1 or horizon < 1 or action_width < 1:
            raise ValueError(
                f"n_envs, horizon and action_width must be >= 1, got {(n_envs, horizon, action_width)}"
            )
        if device is None:
            device = init.device if init is not None else torch.device("cpu")
        device = torch.device(device)
        mean = torch.zeros(n_envs, horizon, action_width, dtype=torch.float32, device=device)
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
            mean[:, : init.shape[1]] = init.detach().to(device=device, dtype=torch.float32)
        gens = _as_generator_list(generators, n_envs)
        if bounds is not None:
            lo, hi = (torch.as_tensor(b, dtype=torch.float32, device=device) for b in bounds)
            bounds = (lo, hi)
        return mean, gens, bounds, device

    @staticmethod
    def _clamp(x: Tensor, bounds: Bounds) -> Tensor:
        return x if bounds is None else torch.clamp(x, bounds[0], bounds[1])
