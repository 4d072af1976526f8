"""Cross-entropy method with the reference semantics (spec §6.4), LeWM's solver."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from lewm.planning.solvers.base import SampleSolver, SampleState
from lewm.planning.solvers.topk import default_topk


@dataclass
class CEM(SampleSolver):
    """Gaussian CEM over plans; returns the final mean, not the best sample.

    Per iteration: candidates = N(0, 1) * std + mean (S, Hp, fA) per environment,
    candidate 0 overwritten by the mean, the ``topk`` lowest costs are the elites,
    mean <- elite mean, std <- elite std (unbiased, N-1). No smoothing, no minimum
    std, no elite carry-over. ``cost`` is the mean elite cost of the last iteration.
    ``topk`` not given = :func:`default_topk` (30 of the default 300 samples).
    """

    name = "cem"

    samples: int = 300
    iterations: int = 30
    topk: int | None = None  # None -> default_topk(samples)
    init_std: float = 1.0  # the reference's `var_scale`: a standard deviation

    def derive(self) -> None:
        if self.topk is None and self.samples >= 1:  # else validate() explains
            self.topk = default_topk(self.samples)

    def update(self, state: SampleState, elites: Tensor, elite_cost: Tensor) -> SampleState:
        # elites (n, k, Hp, fA) -> mean, std (n, Hp, fA)
        return SampleState(elites.mean(dim=1), elites.std(dim=1, correction=1), elites)
