"""The PLDM objective: LeWM's prediction loss plus VICReg-style regularisers (spec §10.1).

    L = pred + alpha*var + beta*cov + gamma*time_sim + zeta*time_var + nu*time_cov + mu*idm

With z (B, T, D) the embeddings of every frame of a clip batch (the same z that SIGReg sees):

    var       mean_t mean_d relu(1 - sqrt(Var_b z[b, t, d] + eps))            over the batch
    cov       mean_t sum_{i != j} C_t[i, j]^2 / (D (D - 1)),  C_t = Cov_b z[:, t]
    time_sim  mean_{b, t, d} (z[b, t+1, d] - z[b, t, d])^2
    time_var  mean_b mean_d relu(1 - sqrt(Var_t z[b, t, d] + eps))            within each clip
    time_cov  mean_b sum_{i != j} C_b[i, j]^2 / (D (D - 1)),  C_b = Cov_t z[b]
    idm       mean (head(z_t, z_t+1) - a_t)^2 over the action blocks 0..T-2

Variances and covariances are unbiased (n - 1). The spec marks the normalisation constants
uncertain; these are the ones of the authors' PLDM loss in stable-worldmodel, with which the
paper's coefficients were tuned (off-diagonal squares over D (D - 1), element means), except
that ``time_cov`` centres each clip over time (theirs centres over the batch). Each term is a
pure function of its inputs, so it can be tested on constructed embeddings.

``reduce`` (the differentiable sum over processes, :meth:`lewm.distributed.World.sum`) makes
every term the global batch's: batch statistics from globally summed moments, per-clip terms
as global means. ``None`` is one process.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lewm.config import PLDMConfig
from lewm.losses import Reduce

__all__ = [
    "covariance_penalty",
    "inverse_dynamics_loss",
    "pldm_loss",
    "temporal_covariance",
    "temporal_similarity",
    "temporal_variance",
    "variance_hinge",
]


def _offdiag_penalty(cov: torch.Tensor) -> torch.Tensor:
    """Sum of squared off-diagonal entries / (D (D - 1)) of covariances (..., D, D) -> (...)."""
    d = cov.shape[-1]
    off = cov.pow(2).sum(dim=(-1, -2)) - torch.diagonal(cov, dim1=-2, dim2=-1).pow(2).sum(-1)
    return off / max(1, d * (d - 1))


def _hinge(var: torch.Tensor, eps: float) -> torch.Tensor:
    """mean_d relu(1 - sqrt(var + eps)) of variances (..., D) -> (...)."""
    return F.relu(1.0 - torch.sqrt(var + eps)).mean(-1)


def batch_covariance(z: torch.Tensor, reduce: Reduce | None = None) -> torch.Tensor:
    """Unbiased covariance over the batch, per frame: z (B, T, D) -> (T, D, D).

    With ``reduce``, the covariance of the global batch (all processes' B summed).
    """
    z = z.float()
    n = z.new_tensor(float(z.shape[0]))
    total, count = z.sum(0), n  # (T, D), ()
    if reduce is not None:
        both = reduce(torch.cat([total.flatten(), count[None]]))
        total, count = both[:-1].view_as(total), both[-1].detach()
    x = (z - total / count).transpose(0, 1)  # (T, B, D), centred on the global mean
    moments = x.transpose(1, 2) @ x  # (T, D, D)
    if reduce is not None:
        moments = reduce(moments)
    return moments / (count - 1).clamp_min(1.0)


def variance_hinge(
    z: torch.Tensor, eps: float = 1e-4, reduce: Reduce | None = None
) -> torch.Tensor:
    """L_var: z (B, T, D) -> (); 0 when every dimension has std >= 1 over the batch."""
    return _hinge(torch.diagonal(batch_covariance(z, reduce), dim1=-2, dim2=-1), eps).mean()


def covariance_penalty(z: torch.Tensor, reduce: Reduce | None = None) -> torch.Tensor:
    """L_cov: z (B, T, D) -> (); 0 when the dimensions are uncorrelated over the batch."""
    return _offdiag_penalty(batch_covariance(z, reduce)).mean()


def _clip_covariance(z: torch.Tensor) -> torch.Tensor:
    """Unbiased covariance over time within each clip: z (B, T, D) -> (B, D, D)."""
    x = z.float() - z.float().mean(dim=1, keepdim=True)  # (B, T, D)
    return x.transpose(1, 2) @ x / max(1, z.shape[1] - 1)


def temporal_similarity(z: torch.Tensor) -> torch.Tensor:
    """L_time-sim, this process's clips: z (B, T, D) -> (); 0 for constant trajectories."""
    return (z[:, 1:].float() - z[:, :-1].float()).pow(2).mean()


def temporal_variance(z: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """L_time-var, this process's clips: z (B, T, D) -> (); 1 - sqrt(eps) for constant clips."""
    return _hinge(torch.diagonal(_clip_covariance(z), dim1=-2, dim2=-1), eps).mean()


def temporal_covariance(z: torch.Tensor) -> torch.Tensor:
    """L_time-cov, this process's clips: z (B, T, D) -> (); 0 for constant trajectories."""
    return _offdiag_penalty(_clip_covariance(z)).mean()


def inverse_dynamics_loss(a_pred: torch.Tensor, a_target: torch.Tensor) -> torch.Tensor:
    """L_IDM: predicted and executed action blocks, both (B, T-1, f*A) -> ()."""
    return F.mse_loss(a_pred.float(), a_target.float())


def _global_mean(value: torch.Tensor, n: int, reduce: Reduce | None) -> torch.Tensor:
    """A mean over this process's ``n`` clips -> the mean over every process's clips."""
    if reduce is None:
        return value
    total = reduce(torch.stack([value * n, value.new_tensor(float(n))]))
    return total[0] / total[1].detach()


def pldm_loss(
    z: torch.Tensor,
    z_pred: torch.Tensor,
    cfg: PLDMConfig,
    *,
    a_pred: torch.Tensor | None = None,
    a_target: torch.Tensor | None = None,
    reduce: Reduce | None = None,
) -> dict[str, torch.Tensor]:
    """The PLDM objective on one clip batch; every term is returned (and logged).

    Args:
        z: embeddings of all frames (B, T, D); the prediction target z[:, 1:] is not detached.
        z_pred: predictions of frames 1..T-1, (B, T-1, D).
        cfg: the coefficients (``loss.pldm``).
        a_pred, a_target: the inverse-dynamics head's predictions and the executed blocks,
            (B, T-1, f*A), when ``cfg.mu > 0``.
    Returns:
        ``loss``, ``pred_loss``, ``var_loss``, ``cov_loss``, ``time_sim_loss``,
        ``time_var_loss``, ``time_cov_loss`` and, with a head, ``idm_loss``.
    """
    b = z.shape[0]
    terms = {
        "pred_loss": _global_mean(F.mse_loss(z_pred.float(), z[:, 1:].float()), b, reduce),
        "var_loss": variance_hinge(z, cfg.var_eps, reduce),
        "cov_loss": covariance_penalty(z, reduce),
        "time_sim_loss": _global_mean(temporal_similarity(z), b, reduce),
        "time_var_loss": _global_mean(temporal_variance(z, cfg.var_eps), b, reduce),
        "time_cov_loss": _global_mean(temporal_covariance(z), b, reduce),
    }
    weights = {
        "var_loss": cfg.alpha,
        "cov_loss": cfg.beta,
        "time_sim_loss": cfg.gamma,
        "time_var_loss": cfg.zeta,
        "time_cov_loss": cfg.nu,
    }
    if a_pred is not None:
        terms["idm_loss"] = _global_mean(inverse_dynamics_loss(a_pred, a_target), b, reduce)
        weights["idm_loss"] = cfg.mu
    loss = terms["pred_loss"] + sum(w * terms[k] for k, w in weights.items())
    return {"loss": loss, **terms}
