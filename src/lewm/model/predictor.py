"""Action-conditioned causal transformer with per-token AdaLN-zero (spec §2.5).

Token i carries frame embedding z_i and the embedding c_i of the action block
that leaves frame i; output i predicts frame i+1. Key names follow the
reference (``transformer.layers.{i}.attn.to_qkv`` ...).

Besides the plain causal forward used in training, blocks accept a key/value
cache so that planning rollouts extend a growing window by one token without
recomputing the earlier ones (exact under the causal mask).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lewm.config import PredictorConfig

KV = tuple[torch.Tensor, torch.Tensor]  # (B, heads, T, dim_head) each


class Attention(nn.Module):
    """Affine LayerNorm, bias-free qkv, causal SDPA, output Linear + Dropout."""

    def __init__(self, dim: int, heads: int, dim_head: int, dropout: float):
        super().__init__()
        inner = heads * dim_head
        self.heads, self.dim_head, self.dropout = heads, dim_head, dropout
        self.norm = nn.LayerNorm(dim)  # the second ("double") normalisation, kept on purpose
        self.to_qkv = nn.Linear(dim, 3 * inner, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner, dim), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor, past: KV | None = None) -> tuple[torch.Tensor, KV]:
        b, t, _ = x.shape
        q, k, v = self.to_qkv(self.norm(x)).chunk(3, dim=-1)
        q, k, v = (y.view(b, t, self.heads, self.dim_head).transpose(1, 2) for y in (q, k, v))
        if past is not None:
            k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
        p = self.dropout if self.training else 0.0
        if past is None:
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
        elif t == 1:  # one new token sees every cached one
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=p)
        else:
            n_past = past[0].shape[2]
            allowed = torch.ones(t, n_past + t, dtype=torch.bool, device=x.device).tril(n_past)
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, dropout_p=p)
        out = out.transpose(1, 2).reshape(b, t, self.heads * self.dim_head)
        return self.to_out(out), (k, v)


class FeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int, dropout: float):
        super().__init__()
        self.net = nn.Sequential(
            nn.LayerNorm(dim),
            nn.Linear(dim, hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, dim),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ConditionalBlock(nn.Module):
    """AdaLN-zero block: the modulation Linear starts at zero, so the block starts as the identity."""

    def __init__(self, dim: int, cfg: PredictorConfig):
        super().__init__()
        self.attn = Attention(dim, cfg.heads, cfg.dim_head, cfg.dropout)
        self.mlp = FeedForward(dim, cfg.mlp_dim, cfg.dropout)
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))
        nn.init.zeros_(self.adaLN_modulation[1].weight)
        nn.init.zeros_(self.adaLN_modulation[1].bias)

    def modulation(self, c: torch.Tensor) -> torch.Tensor:
        """Action embeddings (B, T, D) -> (B, T, 6D): shift, scale, gate for both sub-layers."""
        return self.adaLN_modulation(c)

    def forward(
        self, x: torch.Tensor, mod: torch.Tensor, past: KV | None = None
    ) -> tuple[torch.Tensor, KV]:
        sh1, sc1, g1, sh2, sc2, g2 = mod.chunk(6, dim=-1)  # each (B, T, D)
        a, kv = self.attn(self.norm1(x) * (1 + sc1) + sh1, past)
        x = x + g1 * a
        x = x + g2 * self.mlp(self.norm2(x) * (1 + sc2) + sh2)
        return x, kv


class Transformer(nn.Module):
    def __init__(self, dim: int, cfg: PredictorConfig):
        super().__init__()
        self.norm = nn.LayerNorm(dim)  # registered first: the reference's key order
        self.layers = nn.ModuleList(ConditionalBlock(dim, cfg) for _ in range(cfg.depth))


class Predictor(nn.Module):
    """(z (B, T, D), c (B, T, D)) -> (B, T, D) before pred_proj; T <= num_frames."""

    def __init__(self, dim: int, cfg: PredictorConfig):
        super().__init__()
        self.num_frames = cfg.num_frames
        self.pos_embedding = nn.Parameter(
            torch.randn(1, cfg.num_frames, dim)
        )  # std 1, as the reference
        self.dropout = nn.Dropout(cfg.emb_dropout)
        self.transformer = Transformer(dim, cfg)

    def modulations(self, c: torch.Tensor) -> list[torch.Tensor]:
        """Per-layer modulations of action embeddings (B, T, D) -> depth x (B, T, 6D)."""
        return [layer.modulation(c) for layer in self.transformer.layers]

    def forward(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.forward_cached(z, self.modulations(c))[0]

    def forward_cached(
        self,
        z: torch.Tensor,
        mods: list[torch.Tensor],
        past: list[KV] | None = None,
    ) -> tuple[torch.Tensor, list[KV]]:
        """Run new tokens z (B, m, D) at positions n_past..n_past+m-1 given cached keys/values.

        Args:
            z: frame embeddings of the new tokens, (B, m, D).
            mods: per-layer modulations of the new tokens, depth x (B, m, 6D).
            past: per-layer (k, v) of the n_past earlier tokens, or None.
        Returns:
            outputs of the new tokens (B, m, D) after the final LayerNorm, and the updated cache.
        """
        n_past = 0 if past is None else past[0][0].shape[2]
        n = n_past + z.shape[1]
        if n > self.num_frames:
            raise ValueError(
                f"predictor window is {self.num_frames} frames, got {n}; slide the window (spec §6.2)"
            )
        x = self.dropout(z + self.pos_embedding[:, n_past:n])
        cache = []
        for i, layer in enumerate(self.transformer.layers):
            x, kv = layer(x, mods[i], None if past is None else past[i])
            cache.append(kv)
        return self.transformer.norm(x), cache
