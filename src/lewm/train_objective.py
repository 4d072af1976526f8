"""What a run trains, by ``loss.objective`` (docs/baselines.md): its world model and its loss.

    lewm    LeWM         pred + lambda * SIGReg                     lewm.losses.lewm_loss
    pldm    LeWM         pred + PLDM's six VICReg-style terms       lewm.losses_pldm.pldm_loss
                         (+ an inverse-dynamics head when mu > 0: lewm.baselines.pldm)
    dinowm  DINO-WM      pred against a detached target             lewm.baselines.dinowm

The training loop (:mod:`lewm.train`) is the same for all three: this module is the seam it
calls where the objective matters (the config, the model, the loss, the extra
``config.json`` blocks). DINO-WM's frozen DINOv2 comes from the local folder
``model.dinowm.encoder_weights`` for a new run, and from the run's own ``config.json`` and
training state on ``--resume``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from lewm.config import Config, EncoderConfig
from lewm.data.normalize import ActionNormalizer
from lewm.errors import CheckpointError, ConfigError
from lewm.losses import Reduce, lewm_loss
from lewm.model.world_model import LeWM

__all__ = [
    "build_world_model",
    "heads_state",
    "load_encoder",
    "objective_losses",
    "objective_metadata",
    "resolve_objective",
    "restore_heads",
]


def resolve_objective(cfg: Config) -> Config:
    """A new run's ``cfg`` completed for its objective, as a new Config (``cfg`` unchanged).

    ``dinowm``: ``model.encoder`` takes the sizes of the DINOv2 in ``model.dinowm.encoder_weights``
    (its ``config.json``, checked), keeping ``image_size`` (the frame size).

    Raises:
        ConfigError: ``dinowm`` without an encoder folder, or a folder that is not DINOv2's.
    """
    if cfg.loss.objective != "dinowm":
        return cfg
    folder = cfg.model.dinowm.encoder_weights
    if not folder:
        raise ConfigError(
            "--objective dinowm needs its frozen encoder: pass --encoder-weights PATH, a local "
            "Hugging Face DINOv2 folder (e.g. a download of facebook/dinov2-small); nothing is "
            "downloaded"
        )
    from lewm.baselines.dinowm.encoder import encoder_sizes, read_dinov2_config

    sizes = encoder_sizes(read_dinov2_config(folder))
    out = copy.deepcopy(cfg)
    out.model.encoder = EncoderConfig(image_size=cfg.model.encoder.image_size, **sizes)
    return out


def load_encoder(cfg: Config, resume_dir: Path | None = None) -> nn.Module | None:
    """DINO-WM's frozen DINOv2 (None for the other objectives): a new run loads the weights of
    ``model.dinowm.encoder_weights``; a resumed one builds the architecture recorded in its
    ``config.json`` (the training state then restores the weights)."""
    if cfg.loss.objective != "dinowm":
        return None
    from lewm.baselines.dinowm.encoder import dinov2_from_config, load_dinov2

    if resume_dir is None:
        return load_dinov2(cfg.model.dinowm.encoder_weights)
    from lewm.baselines.dinowm.checkpoint import dinov2_block
    from lewm.checkpoint.common import CONFIG_FILE, read_json

    path = resume_dir / CONFIG_FILE
    return dinov2_from_config(dinov2_block(read_json(path), path))


def build_world_model(
    cfg: Config, normalizer: ActionNormalizer | None, encoder: nn.Module | None = None
) -> nn.Module:
    """The objective's world model with fresh trainable weights (seed the caller's RNG first):
    LeWM for ``lewm`` and ``pldm``, DINO-WM around ``encoder`` for ``dinowm``."""
    if cfg.loss.objective == "dinowm":
        from lewm.baselines.dinowm.model import DinoWM

        return DinoWM(cfg.model, encoder, normalizer)
    return LeWM(cfg.model, normalizer)


def objective_metadata(cfg: Config, model: nn.Module) -> dict:
    """Blocks of ``config.json`` beyond the config that rebuild the model: DINO-WM's
    ``dinov2`` (the encoder's ``transformers`` config)."""
    if cfg.loss.objective != "dinowm":
        return {}
    from lewm.baselines.dinowm.checkpoint import DINOV2_KEY

    return {DINOV2_KEY: model.encoder.config.to_dict()}


def objective_losses(
    cfg: Config,
    z: torch.Tensor,
    z_pred: torch.Tensor,
    actions: torch.Tensor,
    a_pred: torch.Tensor | None,
    generator: torch.Generator,
    reduce: Reduce | None = None,
) -> dict[str, torch.Tensor]:
    """The named loss terms (``loss`` = the total) of one batch under ``cfg.loss.objective``.

    Args:
        z: (B, T, D) embeddings of every frame; z_pred: (B, T-1, D) predictions of frames 1..;
        actions: (B, T, f*A) normalised blocks; a_pred: the inverse-dynamics head's
            (B, T-1, f*A) or None; generator: SIGReg's directions (LeWM only);
        reduce: the sum over processes (then every term is the global batch's).
    """
    objective = cfg.loss.objective
    if objective == "pldm":
        from lewm.losses_pldm import pldm_loss

        target = None if a_pred is None else actions[:, :-1]
        return pldm_loss(z, z_pred, cfg.loss.pldm, a_pred=a_pred, a_target=target, reduce=reduce)
    if objective == "dinowm":
        from lewm.baselines.dinowm.loss import dinowm_loss

        return dinowm_loss(z, z_pred, reduce)
    return lewm_loss(
        z,
        z_pred,
        sigreg_weight=cfg.loss.sigreg_weight,
        generator=generator,
        num_projections=cfg.loss.sigreg_projections,
        num_knots=cfg.loss.sigreg_knots,
        t_max=cfg.loss.sigreg_t_max,
        reduce=reduce,
    )


def heads_state(head: nn.Module | None) -> Mapping[str, dict]:
    """The objective's own modules in a training state (``idm_head``), or nothing."""
    return {} if head is None else {"idm_head": head.state_dict()}


def restore_heads(state: Mapping, head: nn.Module | None, run: Path) -> None:
    """The objective's own modules (PLDM's inverse-dynamics head) from a training state."""
    if head is None:
        return
    if "idm_head" not in state:
        raise CheckpointError(
            f"{run}/train_state.pt: no idm_head state, but the run trains one "
            "(loss.pldm.mu > 0); the file was written by another run or edited"
        )
    head.load_state_dict(state["idm_head"])
