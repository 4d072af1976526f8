"""Cross-entropy method with the reference semantics (spec §6.4), LeWM's solver."""

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
class CEM(Solver):
    """Gaussian CEM over plans; returns the final mean, not the best sample.

    Per iteration: candidates = N(0, 1) * std + mean (S, Hp, fA) per environment,
    candidate 0 overwritten by the mean, the ``topk`` lowest costs are the elites,
    mean <- elite mean, std <- elite std (unbiased, N-1). No smoothing, no minimum
    std, no elite carry-over. ``cost`` is the mean elite cost of the last iteration.
    """

    name = "cem"

    samples: int = 300
    iterations: int = 30
    topk: int = 30
    init_std: float = 1.0  # the reference's `var_scale`: a standard deviation

    def validate(self) -> None:
        if self.samples < 2 or self.iterations < 1:
            raise ConfigError(f"cem: samples must be >= 2 and iterations >= 1, got {self}")
        if not 2 <= self.topk <= self.samples:
            raise ConfigError(
                f"cem: topk must be in [2, samples={self.samples}] (the elite std is unbiased), "
                f"got {self.topk}"
            )

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
        std = torch.full_like(mean, self.init_std)  # (n, Hp, fA)
        history = []
        with torch.no_grad():
            for _ in range(self.iterations):
                noise = sample_normal(gens, (self.samples, horizon, action_width), device)
                cand = noise * std[:, None] + mean[:, None]  # (n, S, Hp, fA)
                cand[:, 0] = mean
                cand = self._clamp(cand, bounds)
                costs = evaluate(cost_fn, cand)  # (n, S)
                elite_cost, idx = torch.topk(costs, self.topk, dim=1, largest=False)  # (n, k)
                elites = take_rows(cand, idx)  # (n, k, Hp, fA)
                mean = elites.mean(dim=1)
                std = elites.std(dim=1, correction=1)
                history.append(elite_cost.mean(dim=1))
        cost_history = torch.stack(history, dim=1)  # (n, iterations)
        return SolveResult(
            plan=mean, cost=cost_history[:, -1], stats={"cost_history": cost_history, "std": std}
        )
