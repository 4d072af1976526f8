"""ViT encoder, written to match the transformers-4.x ``ViTModel`` exactly (spec §2.2).

The module tree reproduces the 4.x state-dict names of the authors' released
checkpoints (``embeddings.patch_embeddings.projection``,
``encoder.layer.{i}.attention.attention.query``, ...), so their weights load
without renaming; the 5.x names are mapped in :mod:`lewm.checkpoint`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lewm.config import EncoderConfig


class PatchEmbeddings(nn.Module):
    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.projection = nn.Conv2d(
            3, cfg.hidden_dim, kernel_size=cfg.patch_size, stride=cfg.patch_size
        )

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = self.projection(pixels)  # (N, C, h, w)
        return x.flatten(2).transpose(1, 2)  # (N, h*w, C)


class Embeddings(nn.Module):
    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.patch_size = cfg.patch_size
        self.grid = cfg.image_size // cfg.patch_size
        self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.hidden_dim))
        self.position_embeddings = nn.Parameter(
            torch.zeros(1, self.grid * self.grid + 1, cfg.hidden_dim)
        )
        self.patch_embeddings = PatchEmbeddings(cfg)

    def _positions(self, h: int, w: int) -> torch.Tensor:
        """Position embeddings for an h x w patch grid; bicubic interpolation off the trained grid."""
        if h == self.grid and w == self.grid:
            return self.position_embeddings
        cls_pos, patch_pos = self.position_embeddings[:, :1], self.position_embeddings[:, 1:]
        dim = patch_pos.shape[-1]
        patch_pos = patch_pos.reshape(1, self.grid, self.grid, dim).permute(0, 3, 1, 2)
        patch_pos = F.interpolate(patch_pos, size=(h, w), mode="bicubic", align_corners=False)
        return torch.cat([cls_pos, patch_pos.permute(0, 2, 3, 1).reshape(1, h * w, dim)], dim=1)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        n, _, height, width = pixels.shape
        x = self.patch_embeddings(pixels)  # (N, P, C)
        cls = self.cls_token.expand(n, -1, -1)
        x = torch.cat([cls, x], dim=1)  # (N, P+1, C)
        return x + self._positions(height // self.patch_size, width // self.patch_size)


class SelfAttention(nn.Module):
    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.heads = cfg.heads
        self.query = nn.Linear(cfg.hidden_dim, cfg.hidden_dim)
        self.key = nn.Linear(cfg.hidden_dim, cfg.hidden_dim)
        self.value = nn.Linear(cfg.hidden_dim, cfg.hidden_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, c = x.shape

        def split(y: torch.Tensor) -> torch.Tensor:
            return y.view(n, t, self.heads, c // self.heads).transpose(1, 2)  # (N, h, T, c/h)

        out = F.scaled_dot_product_attention(
            split(self.query(x)), split(self.key(x)), split(self.value(x))
        )
        return out.transpose(1, 2).reshape(n, t, c)


class SelfOutput(nn.Module):
    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_dim, cfg.hidden_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dense(x)


class Attention(nn.Module):
    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.attention = SelfAttention(cfg)
        self.output = SelfOutput(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(self.attention(x))


class Intermediate(nn.Module):
    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_dim, cfg.mlp_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.dense(x))  # exact (erf) GELU


class Output(nn.Module):
    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.dense = nn.Linear(cfg.mlp_dim, cfg.hidden_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dense(x)


class Layer(nn.Module):
    """Pre-norm transformer layer: x + Attn(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.attention = Attention(cfg)
        self.intermediate = Intermediate(cfg)
        self.output = Output(cfg)
        self.layernorm_before = nn.LayerNorm(cfg.hidden_dim, eps=cfg.layer_norm_eps)
        self.layernorm_after = nn.LayerNorm(cfg.hidden_dim, eps=cfg.layer_norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.layernorm_before(x))
        return x + self.output(self.intermediate(self.layernorm_after(x)))


class LayerStack(nn.Module):
    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.layer = nn.ModuleList(Layer(cfg) for _ in range(cfg.depth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layer:
            x = layer(x)
        return x


class ViTEncoder(nn.Module):
    """pixels (N, 3, H, W), ImageNet-normalised -> CLS token after the final LayerNorm (N, C)."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.cfg = cfg
        self.embeddings = Embeddings(cfg)
        self.encoder = LayerStack(cfg)
        self.layernorm = nn.LayerNorm(cfg.hidden_dim, eps=cfg.layer_norm_eps)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Truncated normal(0, 0.02) for weights, CLS and positions; zero biases (transformers 4.x)."""
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Conv2d)):
                nn.init.trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        nn.init.trunc_normal_(self.embeddings.cls_token, std=0.02)
        nn.init.trunc_normal_(self.embeddings.position_embeddings, std=0.02)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = self.embeddings(pixels)  # (N, P+1, C)
        x = self.layernorm(self.encoder(x))
        return x[:, 0]  # (N, C)
