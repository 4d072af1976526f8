"""The policy as the planner's proposer: a solve's plan (or CEM's initial mean) from its context.

:class:`~lewm.planning.MPCPolicy` encodes the current frame and the goal once per solve
(:class:`~lewm.planning.PlanningContext`); the proposer maps (z_current, z_goal) to the
next blocks. A policy predicting fewer blocks than the horizon is padded with zero
blocks (the mean action); one predicting more is cut.
"""

from __future__ import annotations

import torch
from torch import Tensor

from lewm.planning import PlanningContext
from lewm.policy.network import GoalPolicy


class PolicyProposer:
    """``(context, Hp) -> (n, Hp, fA)`` normalised plans from a :class:`GoalPolicy`."""

    def __init__(self, policy: GoalPolicy) -> None:
        self.policy = policy.eval()

    def __call__(self, context: PlanningContext, horizon: int) -> Tensor:
        z = context.context_emb[:, -1]  # (n, *emb): the current frame
        device = z.device
        self.policy.to(device)
        with torch.no_grad():
            blocks = self.policy(z, context.goal_emb.to(device))  # (n, b, fA)
        n, b, fa = blocks.shape
        if b >= horizon:
            return blocks[:, :horizon]
        pad = torch.zeros(n, horizon - b, fa, dtype=blocks.dtype, device=device)
        return torch.cat([blocks, pad], dim=1)
