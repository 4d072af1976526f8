"""What a planner needs of a world model: ``encode`` and ``rollout`` (spec §6.1-6.2).

The planner, the goal-conditioned cost and the MPC policy only talk to a model
through :class:`PlanningModel`, so any world model (LeWM, and later the PLDM and
DINO-WM baselines) plugs in unchanged. The solvers do not even see the model:
they only see a cost function of candidate plans.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from lewm.errors import ConfigError, LewmError


class PlanningError(LewmError, RuntimeError):
    """Planning cannot go on: non-finite costs, or a model/cost returning wrong shapes."""


@runtime_checkable
class PlanningModel(Protocol):
    """The small model interface the planner depends on.

    ``history_size`` is the predictor window W (3 for the paper), read from the
    checkpoint, never hard-coded.
    """

    history_size: int

    def encode(self, pixels: Tensor) -> Tensor:
        """(B, T, 3, H, W) float, ImageNet-normalised -> (B, T, D)."""
        ...

    def rollout(
        self, context_emb: Tensor, candidates: Tensor, action_history: Tensor | None = None
    ) -> Tensor:
        """Autoregressive rollout with window W (spec §6.2).

        Args:
            context_emb: (B, H, D) embeddings of the last H frames; the last is the current frame.
            candidates: (B, Hp, f*A) normalised candidate action blocks; block 0 leaves the current frame.
            action_history: (B, H-1, f*A) normalised executed blocks; block k leaves context frame k.
        Returns:
            (B, H+Hp, D): positions 0..H-1 are the context, the rest predictions.
        """
        ...


@runtime_checkable
class ActionNormalizer(Protocol):
    """Per-raw-step z-scoring of actions, a' = (a - mu) / sigma, on arrays of shape (..., A)."""

    def normalize(self, a: Any) -> Any: ...

    def denormalize(self, a: Any) -> Any: ...


def check_planning_model(model: Any) -> None:
    """Raise :class:`ConfigError` if ``model`` lacks what the planner needs."""
    missing = [name for name in ("history_size", "encode", "rollout") if not hasattr(model, name)]
    if missing:
        raise ConfigError(
            f"{type(model).__name__} cannot be planned with: missing {', '.join(missing)} "
            "(a planning model needs history_size, encode(pixels) and "
            "rollout(context_emb, candidates, action_history))"
        )
    window = model.history_size
    if not isinstance(window, int) or window < 1:
        raise ConfigError(
            f"{type(model).__name__}.history_size must be a positive int (the predictor "
            f"window W read from the checkpoint), got {window!r}"
        )


def model_device(model: Any) -> torch.device:
    """The device of the model's parameters (CPU for parameter-free toy models)."""
    params = getattr(model, "parameters", None)
    if callable(params):
        for p in params():
            return p.device
    return torch.device("cpu")
