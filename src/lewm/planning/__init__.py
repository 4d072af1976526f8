"""Planning toward goal images: model interface, goal-conditioned cost, solvers, MPC.

The planner depends on a world model only through :class:`PlanningModel`
(``history_size``, ``encode``, ``rollout``); the solvers depend on nothing but a
cost function of candidate plans. See ``docs/planning.md``.
"""

from lewm.planning.interface import (
    ActionNormalizer,
    PlanningError,
    PlanningModel,
    check_planning_model,
)
from lewm.planning.mpc import MPCConfig, MPCPolicy, SolveRecord
from lewm.planning.objective import GoalCost, PlanningContext
from lewm.planning.solvers import (
    SOLVERS,
    Solver,
    SolveResult,
    default_topk,
    make_generator,
    make_solver,
)

__all__ = [
    "SOLVERS",
    "ActionNormalizer",
    "GoalCost",
    "MPCConfig",
    "MPCPolicy",
    "PlanningContext",
    "PlanningError",
    "PlanningModel",
    "SolveRecord",
    "SolveResult",
    "Solver",
    "check_planning_model",
    "default_topk",
    "make_generator",
    "make_solver",
]
