"""DINO-WM (spec §10.2): frozen DINOv2 patch tokens as the latent, a patch-token predictor.

The verbs are LeWM's (:class:`lewm.model.world_model.LeWM`), so the planner, the evaluation
protocol and ``lewm bench`` use it unchanged. A frame's latent is its N patch tokens of width
d (N = (image_size / patch)^2, d = 384 for ViT-S/14), handed to the planner flattened,
(B, T, N*d): the goal cost is then the squared error over every token and dimension, and
``cost_reduction = "mean"`` asks for its mean (DINO-WM's cost), where LeWM's is the sum.

Action blocks are encoded per step by a Conv1d(k=1) f*A -> e (e = 10) and the encoding is
concatenated to every patch token of its frame; the predictor returns tokens of width d + e
whose first d channels are the predicted features (the action channels are discarded, as
DINO-WM does). No KV cache: each rollout step reruns the window, as DINO-WM's own code does.
"""

from __future__ import annotations

import torch
from torch import nn

from lewm.baselines.dinowm.predictor import PatchPredictor
from lewm.config import ModelConfig
from lewm.data.normalize import ActionNormalizer
from lewm.model.provenance import Provenance


class DinoWM(nn.Module):
    """DINO-WM world model.

    Args:
        cfg: ``model.encoder`` describes the DINOv2 (its ``image_size`` is the frame size),
            ``model.predictor`` the predictor, ``model.dinowm.action_emb_dim`` e.
        encoder: a frozen ``transformers.Dinov2Model`` (:mod:`lewm.baselines.dinowm.encoder`).
        action_normalizer: the run's action statistics.
    """

    cost_reduction = "mean"  # GoalCost: mean over tokens and dims (LeWM: "sum")

    def __init__(
        self,
        cfg: ModelConfig,
        encoder: nn.Module,
        action_normalizer: ActionNormalizer | None = None,
    ):
        super().__init__()
        if cfg.action_dim <= 0:
            raise ValueError("ModelConfig.action_dim must be set (it is read from the dataset)")
        self.cfg = cfg
        self.token_dim = int(encoder.config.hidden_size)  # d
        self.num_patches = (cfg.encoder.image_size // int(encoder.config.patch_size)) ** 2  # N
        e = cfg.dinowm.action_emb_dim
        self.encoder = encoder
        self.action_encoder = nn.Conv1d(cfg.action_input_dim, e, kernel_size=1)
        self.predictor = PatchPredictor(self.token_dim + e, self.num_patches, cfg.predictor)
        self.action_normalizer = action_normalizer
        self.provenance = Provenance()

    # -- what the planner reads (as LeWM) -------------------------------------
    @property
    def history_size(self) -> int:
        return self.cfg.predictor.num_frames

    @property
    def frameskip(self) -> int:
        return self.cfg.frameskip

    @property
    def action_dim(self) -> int:
        return self.cfg.action_dim

    @property
    def image_size(self) -> int:
        return self.cfg.encoder.image_size

    @property
    def embed_dim(self) -> int:
        """Width of one frame's flattened latent, N*d."""
        return self.num_patches * self.token_dim

    def train(self, mode: bool = True) -> DinoWM:
        super().train(mode)
        self.encoder.eval()  # frozen: always inference mode
        return self

    # -- verbs -------------------------------------------------------------
    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """pixels (B, T, 3, H, W), ImageNet-normalised -> latents (B, T, N*d), no gradient."""
        if pixels.ndim != 5 or pixels.shape[2] != 3:
            raise ValueError(f"encode expects pixels (B, T, 3, H, W), got {tuple(pixels.shape)}")
        b, t = pixels.shape[:2]
        with torch.no_grad():
            out = self.encoder(pixel_values=pixels.flatten(0, 1)).last_hidden_state
        tokens = out[:, 1:]  # (B*T, N, d): the normalised patch tokens, CLS dropped
        if tokens.shape[1] != self.num_patches:
            raise ValueError(
                f"{tuple(pixels.shape)} frames give {tokens.shape[1]} patches, "
                f"the model has {self.num_patches}"
            )
        return tokens.reshape(b, t, self.embed_dim)

    def encode_actions(self, action_blocks: torch.Tensor) -> torch.Tensor:
        """Normalised action blocks (B, T, f*A) -> encodings (B, T, e)."""
        if action_blocks.ndim != 3 or action_blocks.shape[-1] != self.cfg.action_input_dim:
            raise ValueError(
                f"action blocks must be (B, T, {self.cfg.action_input_dim}), got "
                f"{tuple(action_blocks.shape)}"
            )
        return self.action_encoder(action_blocks.float().transpose(1, 2)).transpose(1, 2)

    def predict(self, emb: torch.Tensor, action_blocks: torch.Tensor) -> torch.Tensor:
        """Teacher-forced: latents (B, T, N*d), blocks (B, T, f*A) -> (B, T, N*d); output i
        predicts frame i+1."""
        return self.predict_embedded(emb, self.encode_actions(action_blocks))

    def predict_embedded(self, emb: torch.Tensor, act_emb: torch.Tensor) -> torch.Tensor:
        """Like :meth:`predict` with encoded actions (B, T, e)."""
        b, t = emb.shape[:2]
        n, d = self.num_patches, self.token_dim
        tokens = emb.reshape(b, t, n, d)
        acts = act_emb[:, :, None].expand(b, t, n, act_emb.shape[-1])  # (B, T, N, e)
        out = self.predictor(torch.cat([tokens, acts.to(tokens.dtype)], dim=-1))
        return out[..., :d].reshape(b, t, n * d)  # the feature channels: (B, T, N*d)

    def rollout(
        self,
        context_emb: torch.Tensor,
        candidates: torch.Tensor,
        action_history: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Autoregressive prediction, the semantics of :meth:`LeWM.rollout` (spec §6.2).

        Args:
            context_emb: latents of the last H frames, (B, H, N*d).
            candidates: normalised candidate blocks (B, Hp, f*A); block 0 leaves the current frame.
            action_history: the H-1 executed blocks between the context frames, (B, H-1, f*A).
        Returns:
            (B, H+Hp, N*d): the context followed by the Hp predicted latents.
        """
        h, hp, w = context_emb.shape[1], candidates.shape[1], self.history_size
        if context_emb.ndim != 3 or candidates.ndim != 3 or context_emb.shape[-1] != self.embed_dim:
            raise ValueError(
                f"rollout expects context (B, H, {self.embed_dim}) and candidates (B, Hp, f*A), "
                f"got {tuple(context_emb.shape)} and {tuple(candidates.shape)}"
            )
        if h > 1 and (action_history is None or action_history.shape[1] != h - 1):
            raise ValueError(f"with {h} context frames, action_history must be (B, {h - 1}, f*A)")
        blocks = candidates if h == 1 else torch.cat([action_history.to(candidates), candidates], 1)
        acts = self.encode_actions(blocks)  # (B, H-1+Hp, e), once for the whole sequence
        frames = list(context_emb.unbind(1))  # each (B, N*d)
        for t in range(hp):
            n = h + t
            lo = max(0, n - w)
            out = self.predict_embedded(torch.stack(frames[lo:n], 1), acts[:, lo:n])
            frames.append(out[:, -1])
        return torch.stack(frames, dim=1)

    # -- parameter counts (as LeWM) --------------------------------------------
    def num_parameters(self, trainable_only: bool = True) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def parameter_counts(self) -> dict[str, int]:
        """Parameters per top-level module (the frozen encoder included) and the total."""
        counts = {n: sum(p.numel() for p in m.parameters()) for n, m in self.named_children()}
        counts["total"] = sum(counts.values())
        return counts
