"""Typed configuration: dataclasses, named presets, the value rules, ``--set`` overrides.

One word picks a whole consistent configuration:

- ``tiny``:  a few-thousand-parameter model on 32x32 frames; trains a step in milliseconds (tests).
- ``small``: the CPU preset, 64x64 frames, patch 16 (see ``benchmarks/train_step.py --candidates``).
- ``paper``: the authors' exact recipe (spec §2, §4): 224x224, ViT-tiny/14, 18,034,478 parameters.

Derived values (the action encoder input width = frameskip x action_dim, the
schedule length in steps) are computed from the data, never filled by hand.

Every value's range is one row of :data:`VALUE_RULES`; :meth:`Config.validate` checks
all of them (and each value's type, and that floats are finite). Parsing ``--set``
strings and ``config.json`` objects lives in :mod:`lewm.config_parse`.
"""

from __future__ import annotations

import dataclasses
import numbers
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from lewm.config_parse import apply_overrides, check_type, from_dict, set_path
from lewm.errors import ConfigError

__all__ = [
    "PRESETS",
    "PROFILES",
    "SEED_MAX",
    "VALUE_RULES",
    "ActionEncoderConfig",
    "Config",
    "EncoderConfig",
    "LossConfig",
    "ModelConfig",
    "OptimConfig",
    "PredictorConfig",
    "TrainConfig",
    "apply_overrides",
    "check_seed",
    "check_values",
    "preset",
    "set_path",
]

PROFILES = ("clean", "reference")
PRESETS = ("tiny", "small", "paper")


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

    @property
    def action_input_dim(self) -> int:
        """Width of one action block, f x A (derived)."""
        return self.frameskip * self.action_dim


@dataclass
class LossConfig:
    """L = pred_loss + sigreg_weight * SIGReg (spec §1, §3)."""

    sigreg_weight: float = 0.09
    sigreg_projections: int = 1024
    sigreg_knots: int = 17
    sigreg_t_max: float = 3.0


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


# --------------------------------------------------------------------------- value rules

SEED_MAX = 2**63 - 1
"""Seeds are integers in [0, SEED_MAX]: numpy, torch and JSON all hold them exactly."""

Rule = tuple[Callable[[Any], bool], str]  # (test on the value, what the value must be)


def _at_least(low: float) -> Rule:
    return (lambda v: v >= low, f"must be >= {low}")


def _above(low: float) -> Rule:
    return (lambda v: v > low, f"must be > {low}")


_FRACTION: Rule = (lambda v: 0.0 <= v < 1.0, "must be in [0, 1)")
_SEED: Rule = (lambda v: 0 <= v <= SEED_MAX, "must be a seed in [0, 2**63 - 1]")
_POSITIVE = _at_least(1)


def _size(high: int) -> Rule:
    # An upper bound far above any real model: absurd sizes fail here with their key, not as
    # an allocation overflow deep in torch.
    return (lambda v: 1 <= v <= high, f"must be in [1, {high}]")


_WIDTH, _DEPTH = _size(2**16), _size(2**10)

VALUE_RULES: dict[str, Rule] = {
    # One row per numeric key: Config.validate() walks every field through this table (and
    # checks every value's type and that floats are finite), so each range lives here once.
    "model.embed_dim": _WIDTH,
    "model.projector_hidden": _WIDTH,
    "model.frameskip": _DEPTH,
    "model.action_dim": (lambda v: 0 <= v <= 2**16, "must be in [0, 65536]"),
    "model.encoder.image_size": _WIDTH,
    "model.encoder.patch_size": _WIDTH,
    "model.encoder.hidden_dim": _WIDTH,
    "model.encoder.depth": _DEPTH,
    "model.encoder.heads": _DEPTH,
    "model.encoder.mlp_dim": _WIDTH,
    "model.encoder.layer_norm_eps": _above(0),
    "model.predictor.num_frames": _DEPTH,
    "model.predictor.depth": _DEPTH,
    "model.predictor.heads": _DEPTH,
    "model.predictor.dim_head": _WIDTH,
    "model.predictor.mlp_dim": _WIDTH,
    "model.predictor.dropout": _FRACTION,
    "model.predictor.emb_dropout": _FRACTION,
    "model.action_encoder.smoothed_dim": _WIDTH,
    "model.action_encoder.mlp_scale": _DEPTH,
    "loss.sigreg_weight": _at_least(0),
    "loss.sigreg_projections": _WIDTH,
    "loss.sigreg_knots": (lambda v: 2 <= v <= 2**16, "must be in [2, 65536]"),
    "loss.sigreg_t_max": _above(0),
    "optim.lr": _above(0),
    "optim.beta1": _FRACTION,
    "optim.beta2": _FRACTION,
    "optim.eps": _above(0),
    "optim.weight_decay": _at_least(0),
    "optim.grad_clip": (lambda v: v > 0, "must be > 0 (the largest gradient norm kept)"),
    "optim.warmup_fraction": _FRACTION,
    "train.batch_size": (lambda v: v >= 2, "must be >= 2 (BatchNorm, SIGReg)"),
    "train.steps": _at_least(0),
    "train.epochs": (lambda v: v > 0, "must be > 0 (used when train.steps is 0)"),
    "train.schedule_steps": _at_least(0),
    "train.schedule_epochs": _at_least(0),
    "train.seed": _SEED,
    "train.split_seed": _SEED,
    "train.val_fraction": (lambda v: 0.0 < v < 1.0, "must be in (0, 1)"),
    "train.log_every": _POSITIVE,
    "train.val_every": _POSITIVE,
    "train.val_batches": _POSITIVE,
    "train.save_every": _POSITIVE,
}


def check_values(obj: Any, prefix: str = "") -> None:
    """Check the type of every field of a config dataclass (recursively), that floats are
    finite, and each value against its :data:`VALUE_RULES` row.

    ``prefix`` is the dotted path of ``obj`` (``"model."`` for a :class:`ModelConfig`).

    Raises:
        ConfigError: ``key: <rule>, got <value>``.
    """
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        key, value = f"{prefix}{f.name}", getattr(obj, f.name)
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            if not isinstance(value, tp):
                raise ConfigError(f"{key}: expected a section, got {value!r}")
            check_values(value, key + ".")
            continue
        check_type(value, tp, key)
        rule = VALUE_RULES.get(key)
        if rule is not None and not rule[0](value):
            raise ConfigError(f"{key}: {rule[1]}, got {value!r}")


def check_seed(value: Any, what: str = "seed") -> int:
    """``value`` as a seed (an integer in [0, 2**63 - 1]), or a ConfigError naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigError(f"{what} must be an integer, got {value!r}")
    if not _SEED[0](int(value)):
        raise ConfigError(f"{what} {_SEED[1]}, got {value!r}")
    return int(value)


# --------------------------------------------------------------------------- presets


def preset(name: str, profile: str = "clean") -> Config:
    """Return the named size preset under the given behaviour profile."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {PRESETS}")
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}; choose one of {PROFILES}")
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
    return cfg
