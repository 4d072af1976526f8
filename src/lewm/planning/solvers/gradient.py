"""Gradient-based planning: Adam(W) over action sequences through the rollout (spec §6.6)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from lewm.errors import ConfigError
from lewm.planning.interface import PlanningError
from lewm.planning.solvers.base import CostFn, Problem, Solver, SolveResult, evaluate

_OPTIMIZERS = {
    "adamw": torch.optim.AdamW,
    "adam": torch.optim.Adam,
    "sgd": torch.optim.SGD,
    "rmsprop": torch.optim.RMSprop,
}


@dataclass
class GradientSolver(Solver):
    """Optimise ``samples`` plans per environment with a torch optimiser.

    Sample 0 starts at the initial plan (zeros, or the warm start), the others at
    that plan + N(0, init_std^2). Each step minimises the sum of all sample costs;
    the gradient may be clipped to ``grad_clip`` (L2 norm per environment, so rows
    stay independent) and ``action_noise`` * N(0, 1) may be added after the step.
    At the end the costs are re-evaluated and the argmin sample is returned.
    Every update is elementwise or per environment, so batched == one at a time.
    """

    name = "gradient"
    needs_grad = True

    samples: int = 100
    steps: int = 30
    lr: float = 0.1
    optimizer: str = "adamw"  # adamw | adam | sgd | rmsprop (the paper's ablation)
    weight_decay: float | None = None  # None = the optimiser's default (AdamW: 0.01)
    init_std: float = 1.0
    grad_clip: float | None = None
    action_noise: float = 0.0

    def validate(self) -> None:
        if self.samples < 1 or self.steps < 1:
            raise ConfigError(f"gradient: samples and steps must be >= 1, got {self}")
        if self.optimizer not in _OPTIMIZERS:
            raise ConfigError(
                f"gradient: unknown optimizer {self.optimizer!r}; choose one of {sorted(_OPTIMIZERS)}"
            )
        if self.lr <= 0:
            raise ConfigError(f"gradient: lr must be > 0, got {self.lr}")

    def _make_optimizer(self, x: Tensor) -> torch.optim.Optimizer:
        kwargs: dict = {"lr": self.lr}
        if self.weight_decay is not None:
            kwargs["weight_decay"] = self.weight_decay
        return _OPTIMIZERS[self.optimizer]([x], **kwargs)

    def _clip(self, grad: Tensor) -> Tensor:
        """Clip the gradient (n, S, Hp, fA) to L2 norm ``grad_clip`` per environment."""
        if self.grad_clip is None:
            return grad
        norm = grad.flatten(1).norm(dim=1)  # (n,)
        factor = (self.grad_clip / (norm + 1e-6)).clamp(max=1.0)
        return grad * factor[:, None, None, None]

    def search(self, cost_fn: CostFn, problem: Problem) -> SolveResult:
        n, horizon, width = problem.start.shape
        x = problem.start[:, None].repeat(1, self.samples, 1, 1)  # (n, S, Hp, fA)
        if self.samples > 1:
            x[:, 1:] += problem.normal((self.samples - 1, horizon, width)) * self.init_std
        x = problem.clamp(x).requires_grad_(True)
        opt = self._make_optimizer(x)
        history = []  # per step: (n,) mean cost over the samples
        for _ in range(self.steps):
            with torch.enable_grad():
                costs = evaluate(cost_fn, x)  # (n, S)
                if not costs.requires_grad:
                    raise PlanningError(
                        "the gradient solver needs a differentiable cost: build it with "
                        "GoalCost.cost_fn(context, differentiable=True)"
                    )
                # autograd.grad, not backward: no gradient accumulates in the model's parameters
                (grad,) = torch.autograd.grad(costs.sum(), x)
            x.grad = self._clip(grad)
            opt.step()
            opt.zero_grad(set_to_none=True)
            with torch.no_grad():
                if self.action_noise > 0:
                    x += problem.normal(tuple(x.shape[1:])) * self.action_noise
                if problem.bounds is not None:
                    x.copy_(problem.clamp(x))
            history.append(costs.detach().mean(dim=1))
        with torch.no_grad():
            final = evaluate(cost_fn, x.detach())  # (n, S)
            best_cost, best = final.min(dim=1)  # (n,)
            plan = x.detach()[torch.arange(n, device=problem.device), best]  # (n, Hp, fA)
        return SolveResult(
            plan=plan,
            cost=best_cost,
            stats={"cost_history": torch.stack(history, dim=1), "best_index": best},
        )
