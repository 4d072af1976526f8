"""DINO-WM's predictor: a ViT over the patch tokens of up to ``num_frames`` frames (spec §10.2).

Tokens are frame-major, (frame 0: patches 0..N-1, frame 1: ..., ...), each the patch's DINOv2
feature with the frame's action encoding concatenated (width d + e). The attention mask is
causal per frame: a token of frame i sees every token of frames <= i, so output frame i
(the prediction of frame i+1) depends only on frames and actions <= i. Sizes are LeWM's
predictor's (``model.predictor``: depth 6, 16 heads of 64, MLP 2048, dropout 0.1), pre-norm
blocks, a learned position embedding per (frame, patch) (std 1, as DINO-WM's), a final
LayerNorm; the output has the input's width.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lewm.config import PredictorConfig


def frame_causal_mask(frames: int, patches: int, device=None) -> torch.Tensor:
    """(frames*patches, frames*patches) bool: query token q may attend key k iff
    frame(k) <= frame(q)."""
    frame = torch.arange(frames, device=device).repeat_interleave(patches)  # (L,)
    return frame[:, None] >= frame[None, :]


class Attention(nn.Module):
    """LayerNorm, bias-free qkv, masked SDPA, output Linear + Dropout."""

    def __init__(self, dim: int, heads: int, dim_head: int, dropout: float):
        super().__init__()
        inner = heads * dim_head
        self.heads, self.dim_head, self.dropout = heads, dim_head, dropout
        self.norm = nn.LayerNorm(dim)
        self.to_qkv = nn.Linear(dim, 3 * inner, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner, dim), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        q, k, v = self.to_qkv(self.norm(x)).chunk(3, dim=-1)
        q, k, v = (y.view(b, n, self.heads, self.dim_head).transpose(1, 2) for y in (q, k, v))
        p = self.dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)  # (B, h, n, dh)
        return self.to_out(out.transpose(1, 2).reshape(b, n, self.heads * self.dim_head))


class Block(nn.Module):
    def __init__(self, dim: int, cfg: PredictorConfig):
        super().__init__()
        self.attn = Attention(dim, cfg.heads, cfg.dim_head, cfg.dropout)
        self.mlp = nn.Sequential(
            nn.LayerNorm(dim),
            nn.Linear(dim, cfg.mlp_dim),
            nn.GELU(),
            nn.Dropout(cfg.dropout),
            nn.Linear(cfg.mlp_dim, dim),
            nn.Dropout(cfg.dropout),
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(x, mask)
        return x + self.mlp(x)


class PatchPredictor(nn.Module):
    """Tokens (B, T, N, d + e) -> (B, T, N, d + e), T <= num_frames; output frame i predicts i+1."""

    def __init__(self, dim: int, num_patches: int, cfg: PredictorConfig):
        super().__init__()
        self.num_frames, self.num_patches = cfg.num_frames, num_patches
        self.pos_embedding = nn.Parameter(torch.randn(1, cfg.num_frames * num_patches, dim))
        self.dropout = nn.Dropout(cfg.emb_dropout)
        self.layers = nn.ModuleList(Block(dim, cfg) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        b, t, n, dim = tokens.shape
        if t > self.num_frames or n != self.num_patches:
            raise ValueError(
                f"predictor takes up to {self.num_frames} frames of {self.num_patches} patches, "
                f"got {t} x {n}; slide the window (spec §6.2)"
            )
        x = tokens.reshape(b, t * n, dim)
        x = self.dropout(x + self.pos_embedding[:, : t * n])  # positions relabelled from 0
        mask = frame_causal_mask(t, n, x.device)
        for layer in self.layers:
            x = layer(x, mask)
        return self.norm(x).view(b, t, n, dim)
