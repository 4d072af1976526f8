"""Our run directories: ``config.json`` (resolved config, action statistics, data
description, step) + ``model.safetensors`` (weights only, transformers-4.x key layout).

``loss.objective`` in ``config.json`` says which world model the weights are: LeWM's for
``lewm`` and ``pldm`` (PLDM trains the same model), DINO-WM's for ``dinowm``
(:mod:`lewm.baselines.dinowm.checkpoint`, whose DINOv2 architecture is the ``dinov2`` block).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from torch import nn

from lewm.checkpoint.atomic import atomic_write_bytes
from lewm.checkpoint.common import (
    CONFIG_FILE,
    FORMAT_VERSION,
    WEIGHTS_FILE,
    load_state_dict_strict,
    read_json,
    read_safetensors,
)
from lewm.config import Config
from lewm.data.normalize import ActionNormalizer
from lewm.errors import CheckpointError, ConfigError
from lewm.model.provenance import Provenance
from lewm.model.world_model import LeWM


def save_model(run_dir: Path, model: nn.Module, meta: Mapping) -> None:
    """Write ``model.safetensors`` then ``config.json`` (both atomically)."""
    from safetensors.torch import save

    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    atomic_write_bytes(
        run_dir / WEIGHTS_FILE,
        save(tensors, metadata={"format": "lewm", "version": str(FORMAT_VERSION)}),
    )
    atomic_write_bytes(run_dir / CONFIG_FILE, (json.dumps(dict(meta), indent=2) + "\n").encode())


def run_metadata(
    cfg: Config,
    normalizer: ActionNormalizer,
    data: Mapping,
    step: int,
    extra: Mapping | None = None,
) -> dict:
    """The content of a run's ``config.json``: the resolved config plus what loading needs.

    ``git_commit`` is the revision of the code that wrote this checkpoint (None outside a git
    checkout; ``+dirty`` with local changes), for provenance and ``lewm report``. ``extra``:
    more blocks the objective's model needs to be rebuilt (DINO-WM's ``dinov2``).
    """
    from lewm import __version__
    from lewm.gitinfo import git_commit

    meta = cfg.to_dict()
    meta.update(
        format_version=FORMAT_VERSION,
        lewm_version=__version__,
        git_commit=git_commit(),
        action_normalizer=normalizer.to_dict(),
        data=dict(data),
        step=int(step),
    )
    meta.update(extra or {})
    return meta


def config_from_metadata(meta: Mapping) -> Config:
    """The validated :class:`Config` of a run's ``config.json`` content."""
    if not isinstance(meta, Mapping):
        raise CheckpointError(f"invalid config.json: expected a JSON object, got {meta!r:.40}")
    keys = {"preset", "profile", "model", "loss", "optim", "train"}
    try:
        return Config.from_dict({k: meta[k] for k in keys if k in meta}).validate()
    except ConfigError as exc:
        raise CheckpointError(f"invalid config.json: {exc}") from exc


def check_format_version(meta: Mapping, path: Path) -> int:
    """The run's ``format_version``: an integer this code understands (1..FORMAT_VERSION)."""
    if "format_version" not in meta:
        raise CheckpointError(f"{path}: not a lewm run config (no format_version)")
    version = meta["format_version"]
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise CheckpointError(f"{path}: format_version must be a positive integer, got {version!r}")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: written in checkpoint format version {version}, this lewm reads up to "
            f"{FORMAT_VERSION}; upgrade lewm to load it"
        )
    return version


def normalizer_from_metadata(meta: Mapping, cfg: Config, path: Path) -> ActionNormalizer:
    """The run's saved action statistics, checked against the model's action dimension."""
    if meta.get("action_normalizer") is None:
        raise CheckpointError(
            f"{path}: no action statistics (action_normalizer); every lewm run saves them, so "
            "the file was edited or damaged"
        )
    try:
        return ActionNormalizer.from_dict(meta["action_normalizer"], cfg.model.action_dim)
    except ValueError as exc:
        raise CheckpointError(f"{path}: action_normalizer: {exc}") from None


def model_from_metadata(
    meta: Mapping, cfg: Config, normalizer: ActionNormalizer | None, path: Path
) -> nn.Module:
    """The world model of a run's objective, with fresh weights: LeWM (``lewm``, ``pldm``) or
    DINO-WM (``dinowm``)."""
    if cfg.loss.objective == "dinowm":
        from lewm.baselines.dinowm.checkpoint import dinowm_from_metadata

        return dinowm_from_metadata(meta, cfg, normalizer, path)
    return LeWM(cfg.model, normalizer)


def load_ours(folder: Path, device) -> nn.Module:
    meta = read_json(folder / CONFIG_FILE)
    check_format_version(meta, folder / CONFIG_FILE)
    cfg = config_from_metadata(meta)
    normalizer = normalizer_from_metadata(meta, cfg, folder / CONFIG_FILE)
    model = model_from_metadata(meta, cfg, normalizer, folder / CONFIG_FILE)
    state = read_safetensors(folder / WEIGHTS_FILE)
    if cfg.loss.objective == "dinowm":
        from lewm.baselines.dinowm.checkpoint import match_dinov2_keys

        state = match_dinov2_keys(state, set(model.state_dict()))
    load_state_dict_strict(model, state, folder / WEIGHTS_FILE)
    model.provenance = Provenance(
        source="lewm",
        path=str(folder),
        meta=meta,
        config=cfg,
        action_stats="run" if normalizer is not None else None,
    )
    return model.to(device).eval()
