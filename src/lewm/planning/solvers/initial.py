"""The plan is the initial plan: a proposer's plan executed without search.

With an amortised policy as the MPC policy's ``proposer`` (``lewm eval --policy DIR``),
the solve is the proposal. Its cost is evaluated once (one rollout per environment) so
that solve records carry the predicted cost like any other solver's. Not in
``SOLVERS``: without a proposer it would plan the mean action.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from lewm.planning.solvers.base import CostFn, Problem, Solver, SolveResult, evaluate


@dataclass
class InitialPlan(Solver):
    """Returns ``problem.start`` (the init) as the plan, clamped to the bounds when given."""

    name = "initial"

    def search(self, cost_fn: CostFn, problem: Problem) -> SolveResult:
        plan = problem.clamp(problem.start)  # (n, Hp, fA), within the bounds like any plan
        with torch.no_grad():
            cost = evaluate(cost_fn, plan[:, None])[:, 0]  # (n,)
        return SolveResult(plan=plan, cost=cost)
