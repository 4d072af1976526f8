"""Typed configuration: dataclasses, named presets, the value rules, ``--set`` overrides.

One word picks a whole consistent configuration:

- ``tiny``:  a few-thousand-parameter model on 32x32 frames; trains a step in milliseconds (tests).
- ``small``: the CPU preset, 64x64 frames, patch 16 (see ``benchmarks/train_step.py --candidates``).
- ``paper``: the authors' exact recipe (spec §2, §4): 224x224, ViT-tiny/14, 18,034,478 parameters.

Derived values (the action encoder input width = frameskip x action_dim, the
schedule length in steps) are computed from the data, never filled by hand.

Every value's range is one row of :data:`VALUE_RULES` (:mod:`lewm.config_rules`);
:meth:`Config.validate` checks all of them (and each value's type, and that floats are
finite). Parsing ``--set`` strings and ``config.json`` objects lives in :mod:`lewm.config_parse`.

``loss.objective`` picks what a run trains (docs/baselines.md): ``lewm`` (the default),
``pldm`` (the same model under PLDM's VICReg-style regularisers, ``loss.pldm``) or ``dinowm``
(a frozen DINOv2 encoder and a patch-token predictor, ``model.dinowm``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from lewm.config_parse import apply_overrides, from_dict, set_path
from lewm.config_rules import SEED_MAX, VALUE_RULES, check_seed, check_values
from lewm.errors import ConfigError

__all__ = [
    "OBJECTIVES",
    "PRESETS",
    "PROFILES",
    "SEED_MAX",
    "VALUE_RULES",
    "ActionEncoderConfig",
    "Config",
    "DinoWMConfig",
    "EncoderConfig",
    "LossConfig",
    "ModelConfig",
    "OptimConfig",
    "PLDMConfig",
    "PredictorConfig",
    "TrainConfig",
    "apply_overrides",
    "check_seed",
    "objective_recipe",
    "check_values",
    "preset",
    "set_path",
]

PROFILES = ("clean", "reference")
PRESETS = ("tiny", "small", "paper")
OBJECTIVES = ("lewm", "pldm", "dinowm")


@dataclass
class EncoderConfig:
    """ViT encoder (spec §2.2). Paper: ViT-tiny/14 at 224."""

    image_size: int = 224
    """Square input size in pixels; must be a multiple of patch_size."""
    patch_size: int = 14
    hidden_dim: int = 192
    depth: int = 12
    heads: int = 3
    mlp_dim: int = 768
    layer_norm_eps: float = 1e-12


@dataclass
class PredictorConfig:
    """Action-conditioned causal transformer with AdaLN-zero (spec §2.5)."""

    num_frames: int = 3
    """Predictor window (history) W; also the training clip history."""
    depth: int = 6
    heads: int = 16
    dim_head: int = 64
    mlp_dim: int = 2048
    dropout: float = 0.1
    emb_dropout: float = 0.0


@dataclass
class ActionEncoderConfig:
    """Conv1d(k=1) to ``smoothed_dim`` then an MLP (spec §2.4)."""

    smoothed_dim: int = 10
    mlp_scale: int = 4
    """Hidden width of the MLP = mlp_scale x embed_dim (768 in the paper)."""


@dataclass
class DinoWMConfig:
    """The DINO-WM baseline's own parts (spec §10.2); used when ``loss.objective=dinowm``.

    Its encoder is a frozen DINOv2 read from a local Hugging Face folder; ``model.encoder``
    then records that ViT's sizes and ``model.predictor`` sizes the patch-token predictor.
    """

    encoder_weights: str = ""
    """The local DINOv2 folder (``config.json`` + weights) the run started from; the
    checkpoint holds the weights, so loading it does not need the folder."""
    action_emb_dim: int = 10
    """Width of the action encoding concatenated to every patch token (spec §10.2: 10)."""


@dataclass
class ModelConfig:
    embed_dim: int = 192
    """Width of the embeddings z (projector output) and of the predictor."""
    projector_hidden: int = 2048
    """Hidden width of the projector and pred_proj BatchNorm MLPs."""
    frameskip: int = 5
    """Raw environment steps per model step (one action block = frameskip raw actions)."""
    action_dim: int = 0
    """Raw action dimension A. Derived from the dataset; 0 means 'not known yet'."""
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    predictor: PredictorConfig = field(default_factory=PredictorConfig)
    action_encoder: ActionEncoderConfig = field(default_factory=ActionEncoderConfig)
    dinowm: DinoWMConfig = field(default_factory=DinoWMConfig)

    @property
    def action_input_dim(self) -> int:
        """Width of one action block, f x A (derived)."""
        return self.frameskip * self.action_dim


@dataclass
class PLDMConfig:
    """PLDM's loss weights (spec §10.1, the paper's values), used when ``loss.objective=pldm``:

    L = pred + alpha*var + beta*cov + gamma*time_sim + zeta*time_var + nu*time_cov + mu*idm

    (term definitions: :mod:`lewm.losses_pldm`, docs/baselines.md).
    """

    alpha: float = 18.0
    """Variance hinge over the batch."""
    beta: float = 12.0
    """Covariance (squared off-diagonal) over the batch."""
    gamma: float = 0.2
    """Temporal similarity: consecutive embeddings close."""
    zeta: float = 0.7
    """Temporal variance hinge within each clip."""
    nu: float = 0.0
    """Temporal covariance within each clip."""
    mu: float = 0.0
    """Inverse dynamics: > 0 trains a head predicting each action block from (z_t, z_t+1)."""
    var_eps: float = 1e-4
    """Inside the square root of the variance hinges."""
    idm_hidden: int = 512
    """Hidden width of the inverse-dynamics MLP (the authors' PLDM: 512)."""


@dataclass
class LossConfig:
    """What a run minimises. ``lewm``: L = pred_loss + sigreg_weight * SIGReg (spec §1, §3)."""

    objective: Literal["lewm", "pldm", "dinowm"] = "lewm"
    """lewm | pldm (LeWM's model, PLDM's regularisers) | dinowm (frozen DINOv2 + patch predictor)."""
    sigreg_weight: float = 0.09
    sigreg_projections: int = 1024
    sigreg_knots: int = 17
    sigreg_t_max: float = 3.0
    pldm: PLDMConfig = field(default_factory=PLDMConfig)


@dataclass
class OptimConfig:
    """AdamW + linear warm-up + cosine, stepped once per optimiser step (spec §4.4)."""

    lr: float = 5e-5
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 1e-3
    grad_clip: float = 1.0
    warmup_fraction: float = 0.01
    decay_norms_and_biases: bool = True
    """Apply weight decay to norms, biases and embeddings too (the reference does; spec T11)."""


@dataclass
class TrainConfig:
    batch_size: int = 128
    steps: int = 0
    """Stop after this many optimiser steps. 0: derive from ``epochs``. A resume may move it up to
    ``schedule_steps`` (``lewm train --resume --steps N``)."""
    epochs: float = 10.0
    """Used only when ``steps`` is 0: stop after this many passes over the training clips."""
    schedule_steps: int = 0
    """Length S_tot of the lr schedule. 0: derive from ``schedule_epochs`` (at least ``steps``).
    Fixed when a run starts; no resume trains past it (the lr there is 0)."""
    schedule_epochs: float = 100.0
    """Used only when ``schedule_steps`` is 0. The paper sizes the schedule for 100 epochs and stops at 10."""
    seed: int = 0
    """Seeds model init, data order, dropout and SIGReg directions."""
    val_fraction: float = 0.1
    split_seed: int = 3072
    log_every: int = 50
    """Log the mean training losses every this many steps (and at the last step)."""
    val_every: int = 500
    """Validate on held-out clips every this many steps (and at the last step); independent of
    ``log_every``."""
    val_batches: int = 8
    save_every: int = 1000
    """Checkpoint every this many steps (and at the last step)."""
    in_memory: Literal["auto", "yes", "no"] = "auto"
    """Load pixels into RAM ('auto': when they fit in a quarter of the available memory)."""
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    """'auto': bf16 autocast on CUDA, fp32 elsewhere. SIGReg is always fp32."""
    compile: bool = False
    """torch.compile the encoder and predictor (CUDA only worth it; a 30 s cold start on CPU for
    0-10%). A resume may switch it: it changes how fast a step runs, not what it computes."""
    sync_batchnorm: bool = True
    """Under multi-process training (torchrun), compute the BatchNorm statistics of the projector
    and pred_proj over the global batch, as one process would (docs/distributed.md). False keeps
    per-process statistics, as the reference does. No effect on a single process."""
    split: Literal["episode", "clip"] = "episode"
    """'episode' (default, no leakage) or 'clip' (the reference's leaky split; reference profile only)."""


@dataclass
class Config:
    preset: str = "paper"
    profile: Literal["clean", "reference"] = "clean"
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Config:
        return from_dict(cls, d)

    def validate(self) -> Config:
        """Check every value against :data:`VALUE_RULES` and the cross-field rules; raise
        ConfigError naming the key, the rule and the value found."""
        check_values(self)
        e = self.model.encoder
        _check(
            e.image_size % e.patch_size == 0,
            "model.encoder.image_size",
            f"{e.image_size} is not a multiple of patch_size {e.patch_size}",
        )
        _check(
            e.hidden_dim % e.heads == 0, "model.encoder.hidden_dim", "must be divisible by heads"
        )
        _check(
            self.train.split == "episode" or self.profile == "reference",
            "train.split",
            "'clip' (leaky) is only allowed with profile=reference",
        )
        return self


def _check(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"{key}: {message}")


# --------------------------------------------------------------------------- presets


def preset(name: str, profile: str = "clean", objective: str = "lewm") -> Config:
    """Return the named size preset under the given behaviour profile, for ``objective``
    (lewm, pldm or dinowm; see :func:`objective_recipe`)."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {PRESETS}")
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}; choose one of {PROFILES}")
    if objective not in OBJECTIVES:
        raise ConfigError(f"unknown objective {objective!r}; choose one of {', '.join(OBJECTIVES)}")
    cfg = Config(preset=name, profile=profile)  # defaults are the paper recipe
    if name == "tiny":
        cfg.model = ModelConfig(
            embed_dim=32,
            projector_hidden=64,
            encoder=EncoderConfig(
                image_size=32, patch_size=8, hidden_dim=32, depth=2, heads=2, mlp_dim=64
            ),
            predictor=PredictorConfig(depth=2, heads=2, dim_head=16, mlp_dim=64),
            action_encoder=ActionEncoderConfig(smoothed_dim=10, mlp_scale=2),
        )
        cfg.loss.sigreg_projections = 64
        cfg.optim.lr = 1e-3
        cfg.train = TrainConfig(
            batch_size=8,
            steps=20,
            schedule_steps=0,
            schedule_epochs=0,
            log_every=5,
            val_every=10,
            val_batches=2,
            save_every=10,
        )
    elif name == "small":
        # The CPU preset: ViT 192-wide, 6 layers, patch 16 on 64x64 frames (17 tokens), a 3-block
        # predictor: about 4x cheaper per step than patch 8 on 2 cores, so 2,000 steps take ~11 min
        # (figures: `python benchmarks/train_step.py --candidates`, README "Training step").
        cfg.model = ModelConfig(
            embed_dim=192,
            projector_hidden=1024,
            encoder=EncoderConfig(
                image_size=64, patch_size=16, hidden_dim=192, depth=6, heads=3, mlp_dim=768
            ),
            predictor=PredictorConfig(depth=3, heads=8, dim_head=32, mlp_dim=768),
        )
        cfg.optim.lr = 5e-4
        cfg.train = TrainConfig(
            batch_size=32,
            steps=2000,
            schedule_steps=0,
            schedule_epochs=0,
            log_every=25,
            val_every=250,
            val_batches=4,
            save_every=500,
        )
    return objective_recipe(cfg, objective)


# The paper's DINOv2 (facebook/dinov2-small): ViT-S/14. A run reads the real sizes from its
# --encoder-weights folder; these describe the paper's model before that (``lewm info``).
VIT_S14 = dict(patch_size=14, hidden_dim=384, depth=12, heads=6, mlp_dim=1536, layer_norm_eps=1e-6)


def objective_recipe(cfg: Config, objective: str) -> Config:
    """``cfg`` (a fresh preset) set up for ``objective``.

    - ``lewm`` and ``pldm``: the same recipe (PLDM differs only by its loss, spec §10.1).
    - ``dinowm``: DINO-WM's recipe (spec §10.2): no weight decay; at the paper size also lr
      5e-4 and 32 clips per batch; the encoder a DINOv2 ViT-S/14.
    """
    cfg.loss.objective = objective
    if objective == "dinowm":
        cfg.model.encoder = EncoderConfig(image_size=cfg.model.encoder.image_size, **VIT_S14)
        cfg.optim.weight_decay = 0.0
        if cfg.preset == "paper":
            cfg.optim.lr, cfg.train.batch_size = 5e-4, 32
    return cfg
