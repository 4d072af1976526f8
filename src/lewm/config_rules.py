"""The value rules of the configuration: one row per numeric key, and the checks that walk them.

:meth:`lewm.config.Config.validate` calls :func:`check_values`, which checks every field's
type (and that floats are finite) and its :data:`VALUE_RULES` row. A new int/float field
of a config dataclass needs its row here (``tests/test_config.py`` checks that).
"""

from __future__ import annotations

import dataclasses
import numbers
import typing
from collections.abc import Callable
from typing import Any

from lewm.config_parse import check_type
from lewm.errors import ConfigError

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
_COEFFICIENT: Rule = (lambda v: v >= 0, "must be >= 0 (a loss weight; 0 turns its term off)")

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
    "model.dinowm.action_emb_dim": _WIDTH,
    "loss.sigreg_weight": _at_least(0),
    "loss.sigreg_projections": _WIDTH,
    "loss.sigreg_knots": (lambda v: 2 <= v <= 2**16, "must be in [2, 65536]"),
    "loss.sigreg_t_max": _above(0),
    "loss.pldm.alpha": _COEFFICIENT,
    "loss.pldm.beta": _COEFFICIENT,
    "loss.pldm.gamma": _COEFFICIENT,
    "loss.pldm.zeta": _COEFFICIENT,
    "loss.pldm.nu": _COEFFICIENT,
    "loss.pldm.mu": _COEFFICIENT,
    "loss.pldm.var_eps": _above(0),
    "loss.pldm.idm_hidden": _WIDTH,
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
