"""BatchNorm MLP used twice: ``projector`` after the CLS token and ``pred_proj`` after the predictor (spec §2.3, §2.6)."""

from __future__ import annotations

import torch
from torch import nn


class MLP(nn.Module):
    """Linear -> BatchNorm1d -> GELU -> Linear, applied to flattened (N, in_dim) vectors.

    Keys ``net.0`` (Linear), ``net.1`` (BatchNorm), ``net.3`` (Linear) follow the reference.
    """

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden_dim),
            nn.BatchNorm1d(hidden_dim, eps=1e-5, momentum=0.1),
            nn.GELU(),
            nn.Linear(hidden_dim, out_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        return self.net(x.reshape(-1, x.shape[-1])).reshape(*lead, -1)
