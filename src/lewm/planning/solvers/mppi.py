"""Model predictive path integral (MPPI) with the reference's settings (spec §6.6)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from lewm.errors import ConfigError
from lewm.planning.solvers.base import (
    Bounds,
    CostFn,
    Generators,
    Solver,
    SolveResult,
    evaluate,
    sample_normal,
    take_rows,
)


@dataclass
class MPPI(Solver):
    """MPPI: the mean becomes the softmax(-(c - min c) / temperature)-weighted mean of the
    ``topk`` best candidates (all candidates when ``topk`` is None). The std stays at
    ``init_std``: it is never updated. Candidate 0 is the mean. ``cost`` is the
    (unweighted) mean cost of the top-k of the last iteration.
    """

    name = "mppi"

    samples: int = 300
    iterations: int = 30
    topk: int | None = 30
    temperature: float = 0.5
    init_std: float = 1.0

    def validate(self) -> None:
        if self.samples < 1 or self.iterations < 1:
            raise ConfigError(f"mppi: samples and iterations must be >= 1, got {self}")
        if self.topk is not None and not 1 <= self.topk <= self.samples:
            raise ConfigError(f"mppi: topk must be in [1, samples={self.samples}], got {self.topk}")
        if self.temperature <= 0:
            raise ConfigError(f"mppi: temperature must be > 0, got {self.temperature}")

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
        mean, gens, bounds, device = self._setup(
            n_envs, horizon, action_width, init, generators, bounds, device
        )
        std = torch.full_like(mean, self.init_std)  # (n, Hp, fA), constant
        k = self.samples if self.topk is None else self.topk
        history = []
        with torch.no_grad():
            for _ in range(self.iterations):
                noise = sample_normal(gens, (self.samples, horizon, action_width), device)
                cand = noise * std[:, None] + mean[:, None]  # (n, S, Hp, fA)
                cand[:, 0] = mean
                cand = self._clamp(cand, bounds)
                costs = evaluate(cost_fn, cand)  # (n, S)
                elite_cost, idx = torch.topk(costs, k, dim=1, largest=False)  # (n, k)
                elites = take_rows(cand, idx)  # (n, k, Hp, fA)
                shifted = elite_cost - elite_cost.min(dim=1, keepdim=True).values
                weights = torch.softmax(-shifted / self.temperature, dim=1)  # (n, k)
                mean = (weights[:, :, None, None] * elites).sum(dim=1)
                history.append(elite_cost.mean(dim=1))
        cost_history = torch.stack(history, dim=1)  # (n, iterations)
        return SolveResult(
            plan=mean, cost=cost_history[:, -1], stats={"cost_history": cost_history}
        )
