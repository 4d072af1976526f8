"""The CEM budget an environment plans with by default, and where that choice comes from.

The paper plans with CEM at 300 samples x 30 iterations. The compute study
(``benchmarks/compute_study.py``, issue 14) finds the cheapest setting whose pooled success
is inside the Wilson 95 % interval of 300x30, and keeps it as the study's ``budget`` when
300x30 is clearly above the random floor (``lewm.eval.study.chosen_budget``). An environment
with a committed study plans with that budget by default, in ``lewm eval`` and in its
``lewm demo --env`` recipe. Every other environment plans at 300x30 until a study picks a
cheaper budget. ``--paper-budget`` plans at 300x30 on any environment.

:data:`STUDIED` is checked against each study's ``study.json`` by the tests, both ways, so
a re-run study that picks another setting fails them until this table follows.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PAPER", "STUDIED", "Budget", "default_budget", "describe"]


@dataclass(frozen=True)
class Budget:
    """A CEM budget and why it was chosen."""

    samples: int
    iterations: int
    why: str
    study: str | None = None
    """The committed study folder the budget comes from (None: the paper's)."""

    @property
    def name(self) -> str:
        """The compute study's name for this setting, e.g. ``cem_50x10``."""
        return f"cem_{self.samples}x{self.iterations}"

    def label(self) -> str:
        return f"CEM {self.samples}x{self.iterations} ({self.why})"

    def solver_settings(self) -> dict[str, int]:
        """samples, iterations and the one top-k rule (the study's settings exactly)."""
        from lewm.planning.solvers import default_topk

        return {
            "samples": self.samples,
            "iterations": self.iterations,
            "topk": default_topk(self.samples),
        }


PAPER = Budget(300, 30, "the paper's budget")

STUDIED: dict[str, Budget] = {
    "tworoom": Budget(
        50,
        10,
        "cheapest inside CEM 300x30's 95 % interval: 92.7 % against 96.4 % [91.7, 98.4], pooled "
        "over seeds 42-44, excluding starts already solved",
        study="benchmarks/results/compute_study_tworoom",
    ),
    "pusht": Budget(
        50,
        10,
        "cheapest inside CEM 300x30's 95 % interval: 22.1 % against 25.5 % [19.1, 33.2], pooled "
        "over seeds 42-44, excluding starts already solved, on the GPU-trained model (the CPU "
        "recipe's model plans at the random floor's level with every budget)",
        study="benchmarks/results/compute_study_pusht_gpu",
    ),
    "reacher": Budget(
        100,
        10,
        "cheapest inside CEM 300x30's 95 % interval: 66.0 % against 69.3 % [61.5, 76.2], pooled "
        "over seeds 42-44 (no start already solved)",
        study="benchmarks/results/compute_study_reacher",
    ),
}


def default_budget(env: str, paper: bool = False) -> Budget:
    """``env``'s study-backed budget; the paper's 300x30 with ``paper`` or without a study."""
    return PAPER if paper else STUDIED.get(env, PAPER)


def describe(env: str, samples: int, iterations: int) -> str:
    """``cem SxI``, and why when it is the paper's or ``env``'s studied budget."""
    for budget in (STUDIED.get(env), PAPER):
        if budget is not None and (budget.samples, budget.iterations) == (samples, iterations):
            return budget.label()
    return f"CEM {samples}x{iterations}"
