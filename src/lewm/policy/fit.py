"""Fitting the goal-conditioned policy to hindsight pairs: plain supervised regression.

Loss: mean squared error between the predicted and the taken (normalised) action blocks.
AdamW, constant learning rate, minibatches of pairs drawn with the config's seeded
generator, so a fit is repeatable.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import Tensor

from lewm.errors import ConfigError
from lewm.policy.network import GoalPolicy, PolicyNetConfig


@dataclass(frozen=True)
class PolicyTrainConfig:
    """Settings of ``lewm policy train``; the defaults take seconds to minutes on a CPU."""

    blocks: int = 5
    """Action blocks predicted per decision (the planning horizon Hp)."""
    max_ahead: int = 5
    """Goals are 1..max_ahead blocks ahead of the anchor (5 blocks = the protocol's 25 steps)."""
    hidden: int = 256
    depth: int = 2
    steps: int = 2000
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-4
    max_frames: int = 20000
    """Anchor frames encoded at most (encoding is the slow part)."""
    val_fraction: float = 0.1
    """Share of the episodes whose pairs are held out for the validation loss."""
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("blocks", "max_ahead", "hidden", "depth", "steps", "batch_size", "max_frames"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"policy {name} must be an integer >= 1, got {value!r}")
        if not (self.lr > 0 and math.isfinite(self.lr)) or self.weight_decay < 0:
            raise ConfigError(f"policy lr must be > 0 and weight_decay >= 0, got {self}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ConfigError(f"policy val_fraction must be in [0, 1), got {self.val_fraction}")

    def to_dict(self) -> dict:
        return asdict(self)


@contextmanager
def _one_cpu_thread(device: torch.device):
    """On the CPU the policy's matrices are small: synchronising threads costs more than
    it saves (15x more on a loaded 2-core machine), so the fit runs on one thread."""
    old = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _loss(policy: GoalPolicy, z: Tensor, target: Tensor, pairs: np.ndarray) -> Tensor:
    """Mean squared error over the pairs (P, 2) = (anchor, goal anchor)."""
    i, j = torch.from_numpy(pairs[:, 0]), torch.from_numpy(pairs[:, 1])
    pred = policy(z[i], z[j])  # (P, blocks, fA)
    return (pred - target[i].to(pred)).pow(2).mean()


def fit(
    z: Tensor,
    target: Tensor,
    train_pairs: np.ndarray,
    val_pairs: np.ndarray,
    cfg: PolicyTrainConfig,
) -> tuple[GoalPolicy, dict]:
    """Train a policy on hindsight pairs.

    Args:
        z: (N, *emb) anchor embeddings.
        target: (N, blocks, fA) normalised action blocks taken from each anchor.
        train_pairs, val_pairs: (P, 2) int64 (anchor, goal anchor) indices into ``z``.
    Returns:
        (the policy in eval mode on ``z``'s device, metrics: losses and pair counts).
    """
    if len(train_pairs) == 0:
        raise ConfigError(
            "no training pairs: every episode is shorter than one action block plus a goal; "
            "use longer episodes or lower --blocks / --max-ahead"
        )
    net = PolicyNetConfig(
        embed_dim=int(np.prod(z.shape[1:])),
        block_width=int(target.shape[-1]),
        blocks=int(target.shape[1]),
        hidden=cfg.hidden,
        depth=cfg.depth,
    )
    g = torch.Generator().manual_seed(cfg.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)  # the initial weights
        policy = GoalPolicy(net).to(z.device)
    with torch.no_grad():
        sample = train_pairs[: min(len(train_pairs), 20000)]
        policy.set_input_stats(GoalPolicy.features(z[sample[:, 0]], z[sample[:, 1]]))
    opt = torch.optim.AdamW(policy.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    policy.train()
    with _one_cpu_thread(z.device):
        for _ in range(cfg.steps):
            rows = torch.randint(len(train_pairs), (cfg.batch_size,), generator=g).numpy()
            loss = _loss(policy, z, target, train_pairs[rows])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    policy.eval()
    with torch.no_grad():
        train_loss = float(_loss(policy, z, target, train_pairs[:50000]))
        val_loss = float(_loss(policy, z, target, val_pairs)) if len(val_pairs) else None
    metrics = {
        "train_loss": train_loss,
        "val_loss": val_loss,
        "train_pairs": int(len(train_pairs)),
        "val_pairs": int(len(val_pairs)),
        "loss": "mean squared error of normalised actions",
    }
    return policy, metrics
