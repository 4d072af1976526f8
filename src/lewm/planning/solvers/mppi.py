"""Model predictive path integral (MPPI) with the reference's settings (spec §6.6)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from lewm.errors import ConfigError
from lewm.planning.solvers.base import SampleSolver, SampleState, SolveResult


@dataclass
class MPPI(SampleSolver):
    """MPPI: the mean becomes the softmax(-(c - min c) / temperature)-weighted mean of the
    ``topk`` best candidates (all candidates when ``topk`` is None). The std stays at
    ``init_std``: it is never updated. Candidate 0 is the mean. ``cost`` is the
    (unweighted) mean cost of the top-k of the last iteration.
    """

    name = "mppi"
    min_samples = 1  # no elite std to estimate
    min_topk = 1

    samples: int = 300
    iterations: int = 30
    topk: int | None = 30  # None = every candidate
    temperature: float = 0.5
    init_std: float = 1.0

    def validate(self) -> None:
        super().validate()
        if self.temperature <= 0:
            raise ConfigError(f"mppi: temperature must be > 0, got {self.temperature}")

    def update(self, state: SampleState, elites: Tensor, elite_cost: Tensor) -> SampleState:
        shifted = elite_cost - elite_cost.min(dim=1, keepdim=True).values  # (n, k), >= 0
        weights = torch.softmax(-shifted / self.temperature, dim=1)  # (n, k)
        mean = (weights[:, :, None, None] * elites).sum(dim=1)  # (n, Hp, fA)
        return SampleState(mean, state.std, elites)

    def result(self, state: SampleState, cost_history: Tensor) -> SolveResult:
        # the std is the constant init_std: not worth reporting
        return SolveResult(
            plan=state.mean, cost=cost_history[:, -1], stats={"cost_history": cost_history}
        )
