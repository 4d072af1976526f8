"""The LeWM objective: next-embedding MSE + lambda * SIGReg (spec §1, §3).

SIGReg, the sliced Epps-Pulley normality statistic of the reference code:

    knots    s_k = k * t_max / (K - 1),  k = 0..K-1          (K = 17 on [0, 3])
    weights  w_k = c_k * ds * exp(-s_k^2 / 2),  c = 1 at the ends, 2 inside (trapezoid, doubled by symmetry)
    project  y_{t,n,m} = <z_{t,n}, a_m>,  a_m uniform on the sphere (fresh every call)
    ECF      C_{t,m,k} = mean_n cos(s_k y),  S_{t,m,k} = mean_n sin(s_k y)
    EP_{t,m} = N * sum_k w_k [(C - exp(-s_k^2/2))^2 + S^2]
    SIGReg   = mean_{t,m} EP_{t,m}

Its floor under exact Gaussian data is ~1.053 (not 0), and deviations are
multiplied by N: lambda = 0.09 is tuned for N = 128 samples per frame.

It is split in two so that several processes compute the statistic of their
global batch: :func:`sigreg_partial_sums` (per process: sums of cos/sin and the
local N) and :func:`sigreg_combine` (the statistic from the summed sums, with the
global N). Both run in float32 with autocast disabled. ``reduce`` (in
:func:`sigreg` and :func:`lewm_loss`) is that sum over processes, differentiable
(:meth:`lewm.distributed.World.sum`); ``None`` is one process, computed exactly as
without it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

SEED_STRIDE = 1_000_003  # mixes (base seed, step) into one generator seed

# Sum of a tensor over all processes whose backward sums the gradients (None: one process).
Reduce = Callable[[torch.Tensor], torch.Tensor]


def sigreg_knots(num_knots: int = 17, t_max: float = 3.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Quadrature knots s (K,) on [0, t_max] and weights w (K,) including the Gaussian window."""
    s = torch.linspace(0.0, t_max, num_knots, dtype=torch.float64)
    ds = t_max / (num_knots - 1)
    c = torch.full((num_knots,), 2.0, dtype=torch.float64)
    c[0] = c[-1] = 1.0
    w = c * ds * torch.exp(-(s**2) / 2)
    return s.float(), w.float()


def sigreg_directions(
    dim: int, num_projections: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Uniform unit directions on S^{dim-1}, (dim, M), drawn on the CPU (device-independent)."""
    g = torch.randn(dim, num_projections, generator=generator, dtype=torch.float32)
    return g / g.norm(dim=0, keepdim=True)


def step_generator(seed: int, step: int) -> torch.Generator:
    """A CPU generator seeded from (base seed, global step): identical on every rank."""
    return torch.Generator().manual_seed((seed * SEED_STRIDE + step) % (2**63 - 1))


@dataclass
class SigregSums:
    """Sufficient statistics of one device's batch: sums over its N samples."""

    cos_sum: torch.Tensor  # (T, M, K)
    sin_sum: torch.Tensor  # (T, M, K)
    n: int | torch.Tensor  # samples summed over; a () tensor once summed over processes


def all_reduce_sums(sums: SigregSums, reduce: Reduce) -> SigregSums:
    """The sums of every process's batch, in one differentiable all-reduce (cos, sin, N)."""
    shape, size = sums.cos_sum.shape, sums.cos_sum.numel()
    flat = torch.cat(
        [sums.cos_sum.flatten(), sums.sin_sum.flatten(), sums.cos_sum.new_tensor([sums.n])]
    )  # (2 * T * M * K + 1,)
    total = reduce(flat)
    return SigregSums(
        total[:size].view(shape), total[size : 2 * size].view(shape), total[-1].detach()
    )


def sigreg_partial_sums(
    z: torch.Tensor, directions: torch.Tensor, knots: torch.Tensor
) -> SigregSums:
    """z (T, N, D) -> sums over N of cos(s_k <z, a_m>) and sin(...), in float32."""
    with torch.autocast(device_type=z.device.type, enabled=False):
        z = z.float()
        y = z @ directions.to(z.device)  # (T, N, M)
        arg = y.unsqueeze(-1) * knots.to(z.device)  # (T, N, M, K)
        return SigregSums(torch.cos(arg).sum(dim=1), torch.sin(arg).sum(dim=1), z.shape[1])


def sigreg_combine(sums: SigregSums, knots: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Statistic from (globally reduced) sums: mean over frames and directions of EP_{t,m}."""
    with torch.autocast(device_type=sums.cos_sum.device.type, enabled=False):
        dev = sums.cos_sum.device
        c = sums.cos_sum.float() / sums.n  # (T, M, K)
        s = sums.sin_sum.float() / sums.n
        target = torch.exp(-(knots.to(dev) ** 2) / 2)  # characteristic function of N(0, 1)
        err = (c - target) ** 2 + s**2  # (T, M, K)
        ep = sums.n * (err * weights.to(dev)).sum(-1)  # (T, M)
        return ep.mean()


def sigreg(
    z: torch.Tensor,
    *,
    num_projections: int = 1024,
    num_knots: int = 17,
    t_max: float = 3.0,
    generator: torch.Generator | None = None,
    directions: torch.Tensor | None = None,
    reduce: Reduce | None = None,
) -> torch.Tensor:
    """SIGReg of embeddings z (T, N, D). Draws fresh directions unless given.

    With ``reduce``, z is this process's shard (T, N_local, D) and the result is the statistic
    of the global batch (all shards, N = sum of N_local), the same value on every process.
    """
    if z.ndim != 3:
        raise ValueError(f"sigreg expects z of shape (T, N, D), got {tuple(z.shape)}")
    knots, weights = sigreg_knots(num_knots, t_max)
    if directions is None:
        directions = sigreg_directions(z.shape[-1], num_projections, generator)
    sums = sigreg_partial_sums(z, directions, knots)
    if reduce is not None:
        sums = all_reduce_sums(sums, reduce)
    return sigreg_combine(sums, knots, weights)


def sigreg_null_expectation(t_max: float = 3.0) -> float:
    """E[SIGReg] under exact N(0, I) data: integral_{-t}^{t} (1 - e^{-s^2}) e^{-s^2/2} ds (~1.053)."""
    # erf-based closed form of the two Gaussian integrals
    a = math.sqrt(2 * math.pi) * math.erf(t_max / math.sqrt(2))
    b = math.sqrt(2 * math.pi / 3) * math.erf(t_max * math.sqrt(1.5))
    return a - b


def lewm_loss(
    z: torch.Tensor,
    z_pred: torch.Tensor,
    *,
    sigreg_weight: float,
    generator: torch.Generator | None,
    num_projections: int = 1024,
    num_knots: int = 17,
    t_max: float = 3.0,
    reduce: Reduce | None = None,
) -> dict[str, torch.Tensor]:
    """The LeWM objective on one clip batch.

    Args:
        z: embeddings of all frames (B, T, D) (the target z[:, 1:] is NOT detached).
        z_pred: predictions for frames 1..T-1, (B, T-1, D).
        reduce: sum over processes; then z and z_pred are this process's shard and every
            term is the global batch's (the same scalars on every process).
    Returns:
        dict with ``loss``, ``pred_loss`` and ``sigreg_loss``.
    """
    pred_loss = F.mse_loss(z_pred.float(), z[:, 1:].float())
    if reduce is not None:  # the mean over the global batch: shards weighted by their clips
        n = float(z.shape[0])
        total = reduce(torch.stack([pred_loss * n, pred_loss.new_tensor(n)]))
        pred_loss = total[0] / total[1].detach()
    sig = sigreg(
        z.transpose(0, 1),  # (T, B, D): all frames, per-frame statistics
        num_projections=num_projections,
        num_knots=num_knots,
        t_max=t_max,
        generator=generator,
        reduce=reduce,
    )
    return {"loss": pred_loss + sigreg_weight * sig, "pred_loss": pred_loss, "sigreg_loss": sig}
