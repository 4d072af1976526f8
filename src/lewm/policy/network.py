"""The goal-conditioned policy: pi(z_t, z_goal) -> the next action blocks (normalised).

A small MLP on the frozen world model's embeddings. Its input is (z, g, g - z),
standardised with the training set's statistics (kept as buffers, so any embedding
scale works, DINO-WM's patch features included); its output is ``blocks`` action
blocks of f*A z-scored raw actions each, the planner's units.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from lewm.errors import ConfigError


@dataclass(frozen=True)
class PolicyNetConfig:
    """The network's shape."""

    embed_dim: int
    """Elements of one embedding (flattened)."""
    block_width: int
    """f*A, the width of one action block."""
    blocks: int = 5
    """Action blocks predicted per decision (5 = the paper's planning horizon)."""
    hidden: int = 256
    depth: int = 2
    """Hidden layers."""

    def __post_init__(self) -> None:
        for name in ("embed_dim", "block_width", "blocks", "hidden", "depth"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"policy {name} must be an integer >= 1, got {value!r}")

    def to_dict(self) -> dict:
        return asdict(self)


class GoalPolicy(nn.Module):
    """(z (n, *emb), goal (n, *emb)) -> action blocks (n, blocks, f*A)."""

    def __init__(self, cfg: PolicyNetConfig):
        super().__init__()
        self.cfg = cfg
        width = 3 * cfg.embed_dim
        self.register_buffer("in_mean", torch.zeros(width))
        self.register_buffer("in_std", torch.ones(width))
        layers: list[nn.Module] = []
        for i in range(cfg.depth):
            layers += [nn.Linear(width if i == 0 else cfg.hidden, cfg.hidden), nn.GELU()]
        layers.append(nn.Linear(cfg.hidden, cfg.blocks * cfg.block_width))
        self.net = nn.Sequential(*layers)

    @staticmethod
    def features(z: Tensor, goal: Tensor) -> Tensor:
        """(n, *emb) x2 -> (n, 3E): the embedding, the goal and their difference."""
        z, goal = z.flatten(1), goal.flatten(1)
        return torch.cat([z, goal, goal - z], dim=1)

    def set_input_stats(self, features: Tensor) -> None:
        """Standardise inputs with the statistics of training features (N, 3E)."""
        self.in_mean.copy_(features.mean(0))
        self.in_std.copy_(features.std(0).clamp(min=1e-6))

    def forward(self, z: Tensor, goal: Tensor) -> Tensor:
        x = (self.features(z, goal).to(self.in_mean) - self.in_mean) / self.in_std  # (n, 3E)
        return self.net(x).view(-1, self.cfg.blocks, self.cfg.block_width)
