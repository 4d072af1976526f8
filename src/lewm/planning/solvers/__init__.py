"""Solvers in normalised action space, behind one interface (see :mod:`.base`).

:class:`SampleSolver` owns the sample -> evaluate -> select loop; ``cem``, ``icem``
and ``mppi`` give its update rule; ``gradient`` runs its own loop. When ``topk``
is not given, CEM and iCEM keep :func:`default_topk` elites (30 of 300).

``SOLVERS`` maps a name to a solver class; ``make_solver(name, **settings)``
builds one with the reference defaults for every setting it is not given.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from lewm.errors import ConfigError
from lewm.planning.solvers.base import CostFn, Problem, SampleSolver, Solver, SolveResult
from lewm.planning.solvers.cem import CEM
from lewm.planning.solvers.gradient import GradientSolver
from lewm.planning.solvers.icem import ICEM
from lewm.planning.solvers.initial import InitialPlan
from lewm.planning.solvers.mppi import MPPI
from lewm.planning.solvers.rng import derive_seed, make_generator
from lewm.planning.solvers.topk import default_topk

SOLVERS: dict[str, type[Solver]] = {cls.name: cls for cls in (CEM, ICEM, MPPI, GradientSolver)}


def make_solver(name: str, **settings: Any) -> Solver:
    """Build the solver ``name`` (cem, icem, mppi, gradient) with ``settings`` overriding defaults."""
    try:
        cls = SOLVERS[name]
    except KeyError:
        raise ConfigError(f"unknown solver {name!r}; choose one of {sorted(SOLVERS)}") from None
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ConfigError(
            f"solver {name!r} has no setting(s) {unknown}; its settings are {sorted(known)}"
        )
    return cls(**settings)


__all__ = [
    "CEM",
    "ICEM",
    "MPPI",
    "SOLVERS",
    "CostFn",
    "GradientSolver",
    "InitialPlan",
    "Problem",
    "SampleSolver",
    "SolveResult",
    "Solver",
    "default_topk",
    "derive_seed",
    "make_generator",
    "make_solver",
]
