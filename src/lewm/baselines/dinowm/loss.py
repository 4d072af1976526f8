"""DINO-WM's training loss (spec §10.2): next-latent MSE against a detached target.

    pred_loss = mean_{b, i, token, c} (z_hat[b, i] - sg(z[b, i+1]))^2

over every patch token and channel of frames 1..T-1. The encoder is frozen, so the target
carries no gradient anyway; ``detach`` states it. No regulariser: a frozen encoder cannot
collapse.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lewm.losses import Reduce


def dinowm_loss(
    z: torch.Tensor, z_pred: torch.Tensor, reduce: Reduce | None = None
) -> dict[str, torch.Tensor]:
    """Args: latents z (B, T, N*d) of every frame, predictions z_pred (B, T-1, N*d);
    ``reduce``: the sum over processes (then the global batch's mean). Returns ``loss`` and
    ``pred_loss`` (equal)."""
    pred_loss = F.mse_loss(z_pred.float(), z[:, 1:].detach().float())
    if reduce is not None:  # the global batch's mean: shards weighted by their clips
        n = float(z.shape[0])
        total = reduce(torch.stack([pred_loss * n, pred_loss.new_tensor(n)]))
        pred_loss = total[0] / total[1].detach()
    return {"loss": pred_loss, "pred_loss": pred_loss}
