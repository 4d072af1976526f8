"""The goal-conditioned planning cost (spec §6.1-6.3).

Per solve, :meth:`GoalCost.prepare` encodes the current frame (with optional
history) and the goal image once and returns an explicit, immutable cache
(:class:`PlanningContext`). Per solver iteration, :meth:`GoalCost.__call__`
rolls out all n*S candidates in one flattened ``rollout`` call and scores them:

    cost = sum_d (z_hat[H+K-1, d] - z_goal[d])**2          (default, ``steps="last"``)
    cost = sum_{t=H..H+K-1} sum_d (z_hat[t, d] - z_goal[d])**2   (``steps="all"``)

K is the horizon Hp by default (the reference: the last predicted embedding); with
``cost_step=K < Hp`` candidates are ranked on the embedding predicted after K blocks,
and the rollout stops there (later blocks cannot change the cost). An embedding may
have any trailing shape (LeWM: (D,); DINO-WM: (N, 384) patch tokens): ``d`` runs over
all of it. A model may declare ``cost_reduction = "mean"`` to average over ``d``
instead of summing (default ``"sum"``, the reference's).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from lewm.errors import ConfigError
from lewm.planning.interface import PlanningError, PlanningModel, check_planning_model
from lewm.planning.solvers.base import CostFn

REDUCTIONS = ("sum", "mean")


def check_cost_step(cost_step: int | None, horizon: int | None = None) -> None:
    """``cost_step`` is None or an int in 1..horizon (the horizon when known)."""
    if cost_step is None:
        return
    top = "Hp" if horizon is None else horizon
    if (
        isinstance(cost_step, bool)
        or not isinstance(cost_step, int)
        or cost_step < 1
        or (horizon is not None and cost_step > horizon)
    ):
        raise ConfigError(
            f"cost_step must be an integer in 1..{top} (the predicted block whose embedding "
            f"is compared with the goal; default: the last), got {cost_step!r}"
        )


@dataclass(frozen=True)
class PlanningContext:
    """The per-solve cache: everything the cost needs that does not depend on the candidates.

    Attributes:
        context_emb: (n, H, D) detached embeddings of the context frames (last = current);
            (n, H, *emb) for models with multi-dimensional embeddings.
        goal_emb: (n, D) detached goal embeddings (any trailing shape: (n, *emb)).
        action_history: (n, H-1, fA) executed normalised blocks, or None (H == 1).
    """

    context_emb: Tensor
    goal_emb: Tensor
    action_history: Tensor | None = None

    @property
    def n_envs(self) -> int:
        return self.context_emb.shape[0]

    def select(self, rows: Sequence[int] | slice) -> PlanningContext:
        """The cache of a subset of environments (for one-at-a-time solving)."""
        idx = rows if isinstance(rows, slice) else list(rows)
        hist = None if self.action_history is None else self.action_history[idx]
        return PlanningContext(self.context_emb[idx], self.goal_emb[idx], hist)


class GoalCost:
    """Goal-conditioned cost of candidate plans under a :class:`PlanningModel`.

    Args:
        model: anything with ``history_size``, ``encode`` and ``rollout``. An
            ``nn.Module`` is put in eval mode (planning never uses train mode). An
            optional attribute ``cost_reduction`` ("sum" or "mean") says how the
            squared error is reduced over the embedding's elements (default "sum").
        steps: ``"last"`` scores only the last scored embedding (the reference,
            default); ``"all"`` sums the squared errors of every predicted step up to it.
        cost_step: K, rank candidates on the embedding predicted after K blocks
            (1 <= K <= Hp); None = Hp, the last (the reference).
    """

    def __init__(
        self,
        model: PlanningModel,
        steps: Literal["last", "all"] = "last",
        cost_step: int | None = None,
    ) -> None:
        check_planning_model(model)
        if steps not in ("last", "all"):
            raise ConfigError(f"cost steps must be 'last' or 'all', got {steps!r}")
        check_cost_step(cost_step)
        reduction = getattr(model, "cost_reduction", "sum")
        if reduction not in REDUCTIONS:
            raise ConfigError(
                f"{type(model).__name__}.cost_reduction must be one of {REDUCTIONS}, got "
                f"{reduction!r}"
            )
        if isinstance(model, torch.nn.Module):
            model.eval()
        self.model = model
        self.steps = steps
        self.cost_step = cost_step
        self.reduction = reduction

    def prepare(
        self, pixels: Tensor, goal_pixels: Tensor, action_history: Tensor | None = None
    ) -> PlanningContext:
        """Encode the context and the goal once for a solve.

        Args:
            pixels: (n, H, 3, h, w) context frames, oldest first, last = current
                frame; or (n, 3, h, w) for H = 1. Already preprocessed (normalised).
            goal_pixels: (n, 3, h, w) or (n, 1, 3, h, w) goal images.
            action_history: (n, H-1, fA) normalised executed blocks (block k leaves
                context frame k); None for H = 1.
        Returns:
            The :class:`PlanningContext` to pass to every cost call of this solve.
        """
        if pixels.ndim == 4:
            pixels = pixels[:, None]
        if goal_pixels.ndim == 4:
            goal_pixels = goal_pixels[:, None]
        if pixels.ndim != 5 or goal_pixels.ndim != 5 or goal_pixels.shape[1] != 1:
            raise PlanningError(
                f"expected context pixels (n, H, 3, h, w) and goal pixels (n, 3, h, w), got "
                f"{tuple(pixels.shape)} and {tuple(goal_pixels.shape)}"
            )
        n, h = pixels.shape[:2]
        if goal_pixels.shape[0] != n:
            raise PlanningError(f"{n} context rows but {goal_pixels.shape[0]} goal images")
        if action_history is not None and tuple(action_history.shape[:2]) != (n, h - 1):
            raise PlanningError(
                f"action_history must have shape (n={n}, H-1={h - 1}, fA), got "
                f"{tuple(action_history.shape)}"
            )
        with torch.no_grad():
            context_emb = self.model.encode(pixels).detach()  # (n, H, D)
            goal_emb = self.model.encode(goal_pixels).detach()[:, 0]  # (n, D)
        if (
            context_emb.shape[:2] != (n, h)
            or goal_emb.shape[0] != n
            or goal_emb.shape[1:] != context_emb.shape[2:]
        ):
            raise PlanningError(
                f"model.encode returned {tuple(context_emb.shape)} for pixels "
                f"{tuple(pixels.shape)}; expected (n, T, D)"
            )
        _check_finite(context_emb, "context embedding")
        _check_finite(goal_emb, "goal embedding")
        hist = None if action_history is None else action_history.detach().to(torch.float32)
        return PlanningContext(context_emb, goal_emb, hist)

    def __call__(self, context: PlanningContext, candidates: Tensor) -> Tensor:
        """Costs (n, S) of candidates (n, S, Hp, fA); differentiable under grad mode."""
        n, s, hp, fa = candidates.shape
        if n != context.n_envs:
            raise PlanningError(f"{n} candidate rows for a context of {context.n_envs} envs")
        check_cost_step(self.cost_step, hp)
        k = hp if self.cost_step is None else self.cost_step  # blocks rolled out and scored
        h, emb = context.context_emb.shape[1], tuple(context.context_emb.shape[2:])
        # One flattened rollout for every candidate of every environment.
        ctx = context.context_emb[:, None].expand(n, s, h, *emb).reshape(n * s, h, *emb)
        hist = context.action_history
        if hist is not None:
            if hist.shape[-1] != fa:
                raise PlanningError(
                    f"action_history blocks are {hist.shape[-1]} wide, candidates {fa}"
                )
            hist = hist.to(candidates.device)[:, None].expand(n, s, h - 1, fa)
            hist = hist.reshape(n * s, h - 1, fa)
        traj = self.model.rollout(ctx, candidates[:, :, :k].reshape(n * s, k, fa), hist)
        if traj.shape != (n * s, h + k, *emb):
            raise PlanningError(
                f"model.rollout returned {tuple(traj.shape)}, expected (n*S, H+Hp, *emb)="
                f"{(n * s, h + k, *emb)}"
            )
        goal = context.goal_emb.reshape(n, 1, 1, -1)  # (n, 1, 1, E)
        scored = traj[:, -1:] if self.steps == "last" else traj[:, h:]  # (n*S, k', *emb)
        err = (scored.reshape(n, s, scored.shape[1], -1) - goal).pow(2)  # (n, S, k', E)
        per_step = err.sum(dim=-1) if self.reduction == "sum" else err.mean(dim=-1)
        cost = per_step.sum(dim=-1)  # (n, S)
        _check_finite(cost, "planning cost")
        return cost

    def cost_fn(self, context: PlanningContext, differentiable: bool = False) -> CostFn:
        """Bind a context: the ``cost_fn`` a solver calls. Runs under ``no_grad`` unless
        ``differentiable`` (the gradient solver); the encodings stay detached either way."""

        def cost(candidates: Tensor) -> Tensor:
            if differentiable:
                return self(context, candidates)
            with torch.no_grad():
                return self(context, candidates)

        return cost


def _check_finite(x: Tensor, what: str) -> None:
    finite = torch.isfinite(x)
    if bool(finite.all()):
        return
    bad = finite.reshape(x.shape[0], -1).all(dim=1).logical_not().nonzero().flatten().tolist()
    raise PlanningError(
        f"non-finite {what} for environment rows {bad}: the model produced NaN/Inf. Check the "
        "checkpoint (did training diverge?), that frames are preprocessed like the training "
        "data, and that actions are normalised with the checkpoint's statistics"
    )
