"""Action encoder (spec §2.4): per-block Conv1d(k=1) to ``smoothed_dim``, then Linear-SiLU-Linear."""

from __future__ import annotations

import torch
from torch import nn


class ActionEncoder(nn.Module):
    """Normalised action blocks (B, T, f*A) -> action embeddings (B, T, D). No mixing across time."""

    def __init__(self, input_dim: int, emb_dim: int, smoothed_dim: int = 10, mlp_scale: int = 4):
        super().__init__()
        self.patch_embed = nn.Conv1d(input_dim, smoothed_dim, kernel_size=1)
        self.embed = nn.Sequential(
            nn.Linear(smoothed_dim, mlp_scale * emb_dim),
            nn.SiLU(),
            nn.Linear(mlp_scale * emb_dim, emb_dim),
        )

    def forward(self, actions: torch.Tensor) -> torch.Tensor:
        actions = actions.to(self.patch_embed.weight.dtype)
        x = self.patch_embed(actions.transpose(1, 2)).transpose(1, 2)  # (B, T, smoothed)
        return self.embed(x)  # (B, T, D)
