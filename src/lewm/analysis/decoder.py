"""A diagnostic pixel decoder on frozen embeddings (spec §9.4).

Learnable query tokens, one per image patch (a 14 x 14 grid of 16-pixel patches at 224;
at other sizes the grid the image size implies, e.g. 4 x 4 at 64), attend to the
embedding through ``depth`` cross-attention layers with residual MLPs; a linear head
gives each query its patch's pixels (patch x patch x 3, ImageNet-normalised). The
embedding z (D,) is expanded into ``memory_tokens`` tokens by one linear map, so the
attention has more than one key to choose from (with a single key every query would
receive the same value). It only ever sees detached embeddings: no gradient can reach
the world model (``decoder_loss``).

Files: ``decoder.safetensors`` (weights) and ``decoder.json`` (its config and training
record), made by :func:`decoder_files`, read by :func:`load_decoder`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lewm.errors import CheckpointError, ConfigError

WEIGHTS, CONFIG = "decoder.safetensors", "decoder.json"


@dataclass(frozen=True)
class DecoderConfig:
    embed_dim: int
    image_size: int
    patch: int = 16
    width: int = 256
    depth: int = 4
    heads: int = 8
    memory_tokens: int = 4
    mlp_ratio: int = 4

    def __post_init__(self) -> None:
        if self.image_size % self.patch:
            raise ConfigError(
                f"decoder patch {self.patch} does not divide the image size {self.image_size}; "
                "pass --patch with a divisor (e.g. the encoder's patch size)"
            )
        if self.width % self.heads:
            raise ConfigError(f"decoder width {self.width} is not divisible by {self.heads} heads")
        for name in ("embed_dim", "patch", "width", "depth", "heads", "memory_tokens", "mlp_ratio"):
            if getattr(self, name) < 1:
                raise ConfigError(f"decoder {name} must be positive")

    @property
    def grid(self) -> int:
        return self.image_size // self.patch


class CrossBlock(nn.Module):
    """q + CrossAttn(LN(q), LN(memory)), then + MLP(LN(q))."""

    def __init__(self, width: int, heads: int, mlp_ratio: int):
        super().__init__()
        self.norm_q, self.norm_m, self.norm_mlp = (nn.LayerNorm(width) for _ in range(3))
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.mlp = nn.Sequential(
            nn.Linear(width, mlp_ratio * width), nn.GELU(), nn.Linear(mlp_ratio * width, width)
        )

    def forward(self, q: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        m = self.norm_m(memory)  # (N, M, W)
        q = q + self.attn(self.norm_q(q), m, m, need_weights=False)[0]  # (N, P, W)
        return q + self.mlp(self.norm_mlp(q))


class Decoder(nn.Module):
    """z (N, D) -> ImageNet-normalised pixels (N, 3, S, S)."""

    def __init__(self, cfg: DecoderConfig):
        super().__init__()
        self.cfg = cfg
        p, w = cfg.grid * cfg.grid, cfg.width
        self.queries = nn.Parameter(torch.randn(1, p, w) * 0.02)  # (1, P, W)
        self.memory = nn.Linear(cfg.embed_dim, cfg.memory_tokens * w)
        self.memory_pos = nn.Parameter(torch.randn(1, cfg.memory_tokens, w) * 0.02)
        self.blocks = nn.ModuleList(
            CrossBlock(w, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.depth)
        )
        self.norm = nn.LayerNorm(w)
        self.head = nn.Linear(w, cfg.patch * cfg.patch * 3)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        n, c = len(z), self.cfg
        mem = self.memory(z).view(n, c.memory_tokens, c.width) + self.memory_pos  # (N, M, W)
        q = self.queries.expand(n, -1, -1)  # (N, P, W)
        for block in self.blocks:
            q = block(q, mem)
        patches = self.head(self.norm(q))  # (N, P, p*p*3)
        g, p = c.grid, c.patch
        x = patches.view(n, g, g, p, p, 3).permute(0, 5, 1, 3, 2, 4)  # (N, 3, g, p, g, p)
        return x.reshape(n, 3, g * p, g * p)


def decoder_loss(decoder: Decoder, z: torch.Tensor, pixels: torch.Tensor) -> torch.Tensor:
    """MSE in normalised pixel space; ``z`` is detached here, whatever the caller passes."""
    return torch.mean((decoder(z.detach()) - pixels) ** 2)


def decoder_files(decoder: Decoder, record: dict[str, Any]) -> dict[str, bytes]:
    """The decoder's files as bytes (written by the caller with the other outputs)."""
    from safetensors.torch import save

    from lewm.analysis.outputs import json_bytes

    tensors = {k: v.detach().contiguous().cpu() for k, v in decoder.state_dict().items()}
    return {
        WEIGHTS: save(tensors, metadata={"format": "lewm-decoder"}),
        CONFIG: json_bytes({"decoder": asdict(decoder.cfg), **record}),
    }


def load_decoder(path: str | Path, device: Any = "cpu") -> tuple[Decoder, dict[str, Any]]:
    """A decoder directory (``decoder.json`` + ``decoder.safetensors``) -> (decoder, record)."""
    from lewm.checkpoint.common import load_state_dict_strict, read_json, read_safetensors

    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"{path}: not a decoder directory (lewm decoder train --out)")
    record = read_json(path / CONFIG)
    try:
        cfg = DecoderConfig(**record["decoder"])
    except (KeyError, TypeError) as exc:
        raise CheckpointError(f"{path / CONFIG}: no valid 'decoder' config ({exc})") from None
    decoder = Decoder(cfg)
    load_state_dict_strict(decoder, read_safetensors(path / WEIGHTS), path / WEIGHTS)
    return decoder.to(device).eval(), record
