"""Analytic FLOP counts of LeWM's planning work (``lewm bench plan``, docs/planning.md).

Convention: a multiply-add is 2 FLOPs; counted are the matrix products, i.e. every
Linear / Conv (2 * rows * in * out, biases not counted) and attention's products
(q.k scores and the weighted sum of values: 4 * dh per (query, key) pair and head,
causal pairs only). Elementwise work (norms, GELU, softmax, modulation) is not
counted: it is what makes a solve slower than its GEMMs alone (docs: gap to peak).

The ``linear`` part equals what ``torch.utils.flop_counter.FlopCounterMode`` counts
for the same calls (tested); attention is counted by hand because the fast rollout
computes it with elementwise products the counter does not see.
"""

from __future__ import annotations

from dataclasses import dataclass

from lewm.config import ModelConfig
from lewm.model.fast_rollout import rollout_schedule


@dataclass(frozen=True)
class FlopCount:
    """FLOPs split into Linear/Conv GEMMs and attention products."""

    linear: int = 0
    attention: int = 0

    @property
    def total(self) -> int:
        return self.linear + self.attention

    def __add__(self, other: FlopCount) -> FlopCount:
        return FlopCount(self.linear + other.linear, self.attention + other.attention)

    def __mul__(self, k: int) -> FlopCount:
        return FlopCount(self.linear * k, self.attention * k)

    def to_dict(self) -> dict[str, int]:
        return {"linear": self.linear, "attention": self.attention, "total": self.total}


def encode_flops(cfg: ModelConfig) -> FlopCount:
    """One image through the ViT (all tokens attend to all) and the projector."""
    e = cfg.encoder
    patches = (e.image_size // e.patch_size) ** 2
    t, c = patches + 1, e.hidden_dim
    patch = 2 * patches * c * 3 * e.patch_size**2
    per_layer = 2 * t * c * c * 4 + 2 * t * c * e.mlp_dim * 2  # q, k, v, out; MLP
    projector = 2 * c * cfg.projector_hidden + 2 * cfg.projector_hidden * cfg.embed_dim
    return FlopCount(patch + e.depth * per_layer + projector, e.depth * 4 * t * t * c)


def _action_encoder(cfg: ModelConfig, tokens: int) -> int:
    a = cfg.action_encoder
    hidden = a.mlp_scale * cfg.embed_dim
    return (
        2
        * tokens
        * (cfg.action_input_dim * a.smoothed_dim + a.smoothed_dim * hidden + hidden * cfg.embed_dim)
    )


def _modulation(cfg: ModelConfig, tokens: int) -> int:
    d = cfg.embed_dim
    return 2 * tokens * d * 6 * d * cfg.predictor.depth


def _pred_proj(cfg: ModelConfig, tokens: int) -> int:
    return 2 * tokens * 2 * cfg.embed_dim * cfg.projector_hidden


def _layer(cfg: ModelConfig, m: int, n_past: int, last_only: bool, fast: bool) -> FlopCount:
    """One block on m new tokens after n_past cached ones (per batch row)."""
    p, d = cfg.predictor, cfg.embed_dim
    inner = p.heads * p.dim_head
    first_out = m - 1 if last_only else 0
    keys = [n_past + i + 1 for i in range(first_out, m)]  # keys seen by each output row
    if fast:  # a single-key query is not computed (its output is its value)
        queries = sum(1 for k in keys if k > 1)
        attention = sum(4 * inner * k for k in keys if k > 1)
    else:
        queries, attention = m, sum(4 * inner * (n_past + i + 1) for i in range(m))
    qkv = 2 * d * inner * (2 * m + queries)
    rows = len(keys)
    rest = 2 * rows * inner * d + 2 * rows * 2 * d * p.mlp_dim  # out projection, MLP
    return FlopCount(qkv + rest, attention)


def rollout_flops(cfg: ModelConfig, h: int, hp: int, fast: bool = True) -> FlopCount:
    """FLOPs of one candidate's rollout (per batch row) from ``h`` context frames, ``hp`` blocks.

    ``fast``: :func:`lewm.model.fast_rollout.fast_rollout`; else
    :func:`lewm.bench.reference_rollout` (every call: the whole window through ``predict``).
    """
    w, depth = cfg.predictor.num_frames, cfg.predictor.depth
    tokens = h - 1 + hp
    total = FlopCount()
    if fast:
        total += FlopCount(_action_encoder(cfg, tokens) + _modulation(cfg, tokens))
    for first, n, lo in rollout_schedule(h, hp, w):
        if fast:
            m, n_past = n - first, first - lo
            for i in range(depth):
                total += _layer(cfg, m, n_past, i == depth - 1, True)
            total += FlopCount(_pred_proj(cfg, 1))
        else:
            m = n - lo
            total += FlopCount(_action_encoder(cfg, m) + _modulation(cfg, m) + _pred_proj(cfg, m))
            for _ in range(depth):
                total += _layer(cfg, m, 0, False, False)
    return total


def token_passes(h: int, hp: int, w: int, fast: bool = True) -> int:
    """Tokens entering the predictor in one candidate's rollout (9 for the paper's 1, 5, 3)."""
    return sum(n - (first if fast else lo) for first, n, lo in rollout_schedule(h, hp, w))


def solve_flops(
    cfg: ModelConfig, samples: int, iterations: int, horizon: int, h: int = 1, fast: bool = True
) -> FlopCount:
    """One sampling solve: encode the context frames and the goal once, then ``iterations``
    rollouts of ``samples`` candidates."""
    return encode_flops(cfg) * (h + 1) + rollout_flops(cfg, h, horizon, fast) * (
        samples * iterations
    )
