"""LeWM: encoder + projector, action encoder, predictor + pred_proj (spec §2).

The model exposes a few verbs and no loss: :meth:`LeWM.encode`,
:meth:`LeWM.encode_actions`, :meth:`LeWM.predict` and :meth:`LeWM.rollout`.
Top-level module names (``encoder``, ``predictor``, ``action_encoder``,
``projector``, ``pred_proj``) and every parameter name match the authors'
released state dicts (303 tensors for the paper size).
"""

from __future__ import annotations

import torch
from torch import nn

from lewm.config import ModelConfig
from lewm.data.normalize import ActionNormalizer
from lewm.model.action_encoder import ActionEncoder
from lewm.model.encoder import ViTEncoder
from lewm.model.fast_rollout import (
    action_embeddings,
    fast_rollout,
    rollout_embedded,
    rollout_schedule,
)
from lewm.model.predictor import Predictor
from lewm.model.projector import MLP
from lewm.model.provenance import Provenance


class LeWM(nn.Module):
    def __init__(self, cfg: ModelConfig, action_normalizer: ActionNormalizer | None = None):
        super().__init__()
        if cfg.action_dim <= 0:
            raise ValueError("ModelConfig.action_dim must be set (it is read from the dataset)")
        self.cfg = cfg
        d = cfg.embed_dim
        self.encoder = ViTEncoder(cfg.encoder)
        self.predictor = Predictor(d, cfg.predictor)
        self.action_encoder = ActionEncoder(
            cfg.action_input_dim, d, cfg.action_encoder.smoothed_dim, cfg.action_encoder.mlp_scale
        )
        self.projector = MLP(cfg.encoder.hidden_dim, cfg.projector_hidden, d)
        self.pred_proj = MLP(d, cfg.projector_hidden, d)
        # Not a buffer: the state dict stays exactly the reference's 303 tensors.
        self.action_normalizer = action_normalizer
        # Where the weights came from; lewm.load replaces it (see model/provenance.py).
        self.provenance = Provenance()
        self._compiled_rollout = None  # compile_rollout(): the planner's opt-in compiled path

    # -- properties the planner reads ---------------------------------------
    @property
    def history_size(self) -> int:
        """Predictor window W (``num_frames``)."""
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
        return self.cfg.embed_dim

    # -- verbs -------------------------------------------------------------
    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """pixels (B, T, 3, H, W), ImageNet-normalised -> embeddings z (B, T, D)."""
        if pixels.ndim != 5 or pixels.shape[2] != 3:
            raise ValueError(f"encode expects pixels (B, T, 3, H, W), got {tuple(pixels.shape)}")
        b, t = pixels.shape[:2]
        cls = self.encoder(pixels.flatten(0, 1))  # (B*T, C)
        return self.projector(cls).view(b, t, -1)  # (B, T, D)

    def encode_actions(self, action_blocks: torch.Tensor) -> torch.Tensor:
        """Normalised action blocks (B, T, f*A) -> action embeddings c (B, T, D)."""
        if action_blocks.ndim != 3 or action_blocks.shape[-1] != self.cfg.action_input_dim:
            raise ValueError(
                f"action blocks must be (B, T, {self.cfg.action_input_dim}) "
                f"(frameskip {self.frameskip} x action_dim {self.action_dim}), got {tuple(action_blocks.shape)}"
            )
        return self.action_encoder(action_blocks)

    def predict(self, emb: torch.Tensor, action_blocks: torch.Tensor) -> torch.Tensor:
        """Teacher-forced prediction: z (B, T, D), blocks (B, T, f*A) -> (B, T, D); output i predicts frame i+1."""
        return self.predict_embedded(emb, self.encode_actions(action_blocks))

    def predict_embedded(self, emb: torch.Tensor, act_emb: torch.Tensor) -> torch.Tensor:
        """Like :meth:`predict` with already-encoded actions c (B, T, D)."""
        return self.pred_proj(self.predictor(emb, act_emb))

    @torch.no_grad()
    def _check_rollout(self, context_emb, candidates, action_history) -> None:
        if (
            context_emb.ndim != 3
            or candidates.ndim != 3
            or context_emb.shape[0] != candidates.shape[0]
        ):
            raise ValueError(
                f"rollout expects context (B, H, D) and candidates (B, Hp, f*A), "
                f"got {tuple(context_emb.shape)} and {tuple(candidates.shape)}"
            )
        h = context_emb.shape[1]
        if h > 1 and (
            action_history is None or action_history.shape[:2] != (context_emb.shape[0], h - 1)
        ):
            raise ValueError(
                f"with {h} context frames, action_history must be (B, {h - 1}, f*A): the blocks executed "
                "between the context frames"
            )

    def rollout(
        self,
        context_emb: torch.Tensor,
        candidates: torch.Tensor,
        action_history: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Autoregressive prediction from context frames under candidate action blocks (spec §6.2).

        Args:
            context_emb: embeddings of the last H frames, (B, H, D); the last one is the current frame.
            candidates: normalised candidate blocks (B, Hp, f*A); block 0 leaves the current frame.
            action_history: normalised blocks executed between the context frames, (B, H-1, f*A).
        Returns:
            (B, H+Hp, D): the context followed by the Hp predicted embeddings.

        In eval mode this is :func:`lewm.model.fast_rollout.fast_rollout` (the planner's
        path: the reference's plans, faster; see that module for what is saved and why
        it is exact). In train mode (dropout active) :meth:`rollout_cached` runs instead.
        """
        self._check_rollout(context_emb, candidates, action_history)
        if not self.training:
            if self._compiled_rollout is not None and not torch.is_grad_enabled():
                return self._compiled_rollout(context_emb, candidates, action_history)
            return fast_rollout(self, context_emb, candidates, action_history)
        return self.rollout_cached(context_emb, candidates, action_history)

    def compile_rollout(self) -> None:
        """Plan through ``torch.compile`` (inductor) of the eval-mode rollout (opt-in).

        The weights are frozen into the compiled graph as constants (inductor's
        ``freezing``), which lets it pre-pack them for the CPU's matrix kernels; the
        rollout equals :func:`fast_rollout` to float rounding. It applies to eval-mode
        calls without gradients (the sampling solvers); the gradient solver and train
        mode keep the eager paths. Call it once the weights are final: later changes to
        them are not seen. The first batch size compiles a graph for that size (about
        40 s on two cores at the paper's size); a second one compiles one graph for any
        batch size (dynamo's automatic dynamic shapes), which every later size reuses:
        an evaluation, whose batch shrinks as episodes finish, compiles twice.
        """
        import functools

        import torch._inductor.config as inductor_config

        # the action encoder (a Conv1d, whose shape rules would bound a dynamic batch) runs eagerly
        compiled = torch.compile(functools.partial(rollout_embedded, self), dynamic=None)

        def frozen(context_emb, candidates, action_history) -> torch.Tensor:
            actions = action_embeddings(self, context_emb, candidates, action_history)
            # Dynamo reads ``freezing`` while it traces (to make the weights graph
            # constants), so it must be on at call time, not only in inductor's options.
            with inductor_config.patch(freezing=True):
                return compiled(context_emb, actions)

        self._compiled_rollout = frozen

    def rollout_cached(
        self,
        context_emb: torch.Tensor,
        candidates: torch.Tensor,
        action_history: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """:meth:`rollout` through ``Predictor.forward_cached`` (any mode, dropout included).

        The action encoder and the per-layer modulations run once for the whole
        sequence; while the window is still growing, earlier tokens' keys and
        values are reused (exact under the causal mask). Once the window slides,
        positions are relabelled from 0 (as in the reference) and it is recomputed.
        """
        h, hp, w = context_emb.shape[1], candidates.shape[1], self.history_size
        blocks = (
            candidates if h == 1 else torch.cat([action_history.to(candidates), candidates], dim=1)
        )
        mods = self.predictor.modulations(self.encode_actions(blocks))  # depth x (B, H-1+Hp, 6D)
        tokens = list(context_emb.unbind(1))  # each (B, D)
        cache = None
        for first, n, lo in rollout_schedule(h, hp, w):
            if first == lo:
                cache = None
            z_new = torch.stack(tokens[first:n], dim=1)  # (B, m, D)
            new = slice(first, n)
            out, cache = self.predictor.forward_cached(z_new, [m[:, new] for m in mods], cache)
            tokens.append(self.pred_proj(out[:, -1]))  # (B, D)
        return torch.stack(tokens, dim=1)  # (B, H+Hp, D)

    def num_parameters(self, trainable_only: bool = True) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def parameter_counts(self) -> dict[str, int]:
        """Trainable parameters per top-level module (spec §2.8 table) and the total."""
        counts = {
            name: sum(p.numel() for p in module.parameters())
            for name, module in self.named_children()
        }
        counts["total"] = sum(counts.values())
        return counts
