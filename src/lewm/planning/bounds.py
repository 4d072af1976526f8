"""Which action bounds the solver clamps candidates to (spec §12 P4).

The solvers clamp every candidate to the bounds they are given (``Solver.solve(bounds=)``);
the MPC policy decides which bounds those are from its profile and ``clamp_to_bounds``:

| mode          | when                                                    | bounds (per block, (fA,))        |
|---------------|---------------------------------------------------------|----------------------------------|
| ``normalised``| ``clean`` (default), or ``clamp_to_bounds=True``         | ((lo - mu)/sigma, (hi - mu)/sigma) |
| ``raw``       | ``reference`` with iCEM (the reference's unit error)     | (lo, hi) applied to normalised samples |
| ``none``      | ``reference`` with CEM/MPPI/gradient, ``clamp_to_bounds=False``, no Box | none |
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from lewm.errors import ConfigError

CLAMP_MODES = ("normalised", "raw", "none")


def clamp_mode(profile: str, clamp_to_bounds: bool | None, solver: Any) -> str:
    """How candidates are clamped: ``normalised``, ``raw`` or ``none`` (module table)."""
    if clamp_to_bounds is None and profile == "reference":
        return "raw" if getattr(solver, "reference_clamps_raw_bounds", False) else "none"
    return "none" if clamp_to_bounds is False else "normalised"


def solver_bounds(
    action_bounds: tuple[Any, Any] | None,
    mode: str,
    action_dim: int,
    frameskip: int,
    normalize: Callable[[np.ndarray], np.ndarray],
) -> tuple[Tensor, Tensor] | None:
    """Per-block bounds (fA,) for the solver from the raw Box (low, high), or None."""
    if action_bounds is None or mode == "none":
        return None
    lo = np.broadcast_to(np.asarray(action_bounds[0], np.float32), (action_dim,))
    hi = np.broadcast_to(np.asarray(action_bounds[1], np.float32), (action_dim,))
    if mode == "normalised":
        lo, hi = normalize(lo), normalize(hi)  # (lo - mu) / sigma
    if np.any(lo > hi):
        raise ConfigError(f"action bounds map to an empty box: low {lo} > high {hi}")
    tile = (frameskip,)
    return torch.from_numpy(np.tile(lo, tile)), torch.from_numpy(np.tile(hi, tile))
