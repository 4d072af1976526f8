"""Solvers in normalised action space, behind one interface (see :mod:`.base`).

``SOLVERS`` maps a name to a solver class; ``make_solver(name, **settings)``
builds one with the reference defaults for every setting it is not given.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from lewm.errors import ConfigError
from lewm.planning.solvers.base import (
    CostFn,
    Solver,
    SolveResult,
    derive_seed,
    make_generator,
)
from lewm.planning.solvers.cem import CEM
from lewm.planning.solvers.gradient import GradientSolver
from lewm.planning.solvers.icem import ICEM
from lewm.planning.solvers.mppi import MPPI

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
    "SolveResult",
    "Solver",
    "derive_seed",
    "make_generator",
    "make_solver",
]
