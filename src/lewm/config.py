"""Typed configuration: dataclasses, named presets, validation, ``--set`` overrides.

One word picks a whole consistent configuration:

- ``tiny``:  a few-thousand-parameter model on 32x32 frames; trains a step in milliseconds (tests).
- ``small``: the CPU preset, 64x64 frames, patch 16 (see ``benchmarks/train_step.py --candidates``).
- ``paper``: the authors' exact recipe (spec §2, §4): 224x224, ViT-tiny/14, 18,034,478 parameters.

Derived values (the action encoder input width = frameskip x action_dim, the
schedule length in steps) are computed from the data, never filled by hand.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

from lewm.errors import ConfigError

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
    """torch.compile the model (CUDA only worth it; a 30 s cold start on CPU for 0-10%)."""
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
        return _from_dict(cls, d, "")

    def validate(self) -> Config:
        """Check value ranges; raise ConfigError naming the key."""
        m, e, p = self.model, self.model.encoder, self.model.predictor
        _check(self.profile in PROFILES, "profile", f"must be one of {PROFILES}")
        _check(
            e.image_size > 0 and e.patch_size > 0, "model.encoder.image_size", "must be positive"
        )
        _check(
            e.image_size % e.patch_size == 0,
            "model.encoder.image_size",
            f"{e.image_size} is not a multiple of patch_size {e.patch_size}",
        )
        _check(
            e.hidden_dim % e.heads == 0, "model.encoder.hidden_dim", "must be divisible by heads"
        )
        _check(p.num_frames >= 1, "model.predictor.num_frames", "must be >= 1")
        _check(m.frameskip >= 1, "model.frameskip", "must be >= 1")
        _check(m.action_dim >= 0, "model.action_dim", "must be >= 0")
        for key, value in (
            ("model.predictor.dropout", p.dropout),
            ("model.predictor.emb_dropout", p.emb_dropout),
        ):
            _check(0.0 <= value < 1.0, key, "must be in [0, 1)")
        _check(self.train.batch_size >= 2, "train.batch_size", "must be >= 2 (BatchNorm, SIGReg)")
        _check(
            self.train.steps >= 0 and self.train.schedule_steps >= 0, "train.steps", "must be >= 0"
        )
        _check(0.0 < self.train.val_fraction < 1.0, "train.val_fraction", "must be in (0, 1)")
        for key in ("log_every", "val_every", "save_every"):
            _check(getattr(self.train, key) >= 1, f"train.{key}", "must be >= 1")
        _check(self.optim.lr > 0, "optim.lr", "must be > 0")
        _check(
            0.0 <= self.optim.warmup_fraction < 1.0, "optim.warmup_fraction", "must be in [0, 1)"
        )
        _check(self.loss.sigreg_weight >= 0, "loss.sigreg_weight", "must be >= 0")
        _check(self.loss.sigreg_knots >= 2, "loss.sigreg_knots", "must be >= 2")
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
        # predictor. Measured with benchmarks/train_step.py --candidates (docs/training.md): 0.31 s
        # per step at batch 32 on 2 cores, against 1.08 s for patch 8, so 2,000 steps take ~11 min.
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


# --------------------------------------------------------------------------- overrides


def apply_overrides(cfg: Config, items: list[str]) -> Config:
    """Apply ``key=value`` strings (dotted keys, JSON or bare values) with type checks."""
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        key, raw = item.split("=", 1)
        set_path(cfg, key.strip(), raw.strip())
    return cfg


def set_path(cfg: Any, key: str, raw: str) -> None:
    parts = key.split(".")
    obj = cfg
    for i, part in enumerate(parts):
        fields = {f.name: f for f in dataclasses.fields(obj)}
        if part not in fields:
            where = ".".join(parts[:i]) or "config"
            raise ConfigError(
                f"unknown key {key!r}: {where} has no field {part!r} (fields: {sorted(fields)})"
            )
        if i < len(parts) - 1:
            obj = getattr(obj, part)
            if not dataclasses.is_dataclass(obj):
                raise ConfigError(
                    f"unknown key {key!r}: {'.'.join(parts[: i + 1])} is not a section"
                )
        else:
            hints = typing.get_type_hints(type(obj))
            setattr(obj, part, _coerce(raw, hints[part], key))


def _coerce(raw: Any, tp: Any, key: str) -> Any:
    """Convert a string (or JSON value) to ``tp``; raise ConfigError on a mismatch."""
    if dataclasses.is_dataclass(tp):
        raise ConfigError(f"{key} is a section; set its fields, e.g. {key}.<field>=...")
    if typing.get_origin(tp) is Literal:
        allowed = typing.get_args(tp)
        if raw not in allowed:
            raise ConfigError(f"{key}: {raw!r} is not one of {list(allowed)}")
        return raw
    convert = _SCALARS.get(tp)
    if convert is None:
        raise ConfigError(f"{key}: unsupported type {tp}")
    try:
        return convert(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}: expected {_SCALAR_NAMES[tp]}, got {raw!r}") from None


def _to_bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if str(raw).lower() in ("true", "1", "yes"):
        return True
    if str(raw).lower() in ("false", "0", "no"):
        return False
    raise ValueError(raw)


def _to_int(raw: Any) -> int:
    if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
        raise ValueError(raw)
    return int(raw, 10) if isinstance(raw, str) else int(raw)


def _to_float(raw: Any) -> float:
    if isinstance(raw, bool):
        raise ValueError(raw)
    return float(raw)


_SCALARS = {bool: _to_bool, int: _to_int, float: _to_float, str: str}
_SCALAR_NAMES = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}


def _from_dict(cls: type, d: dict[str, Any], prefix: str) -> Any:
    if not isinstance(d, dict):
        raise ConfigError(f"{prefix or 'config'}: expected an object, got {type(d).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = set(d) - fields
    if unknown:
        raise ConfigError(f"{prefix or 'config'}: unknown key(s) {sorted(unknown)}")
    kwargs = {}
    for name, value in d.items():
        key = f"{prefix}.{name}" if prefix else name
        tp = hints[name]
        kwargs[name] = (
            _from_dict(tp, value, key) if dataclasses.is_dataclass(tp) else _coerce(value, tp, key)
        )
    return cls(**kwargs)
