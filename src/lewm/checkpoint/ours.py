"""Our run directories: ``config.json`` (resolved config, action statistics, data
description, step) + ``model.safetensors`` (weights only, transformers-4.x key layout)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from lewm.checkpoint.atomic import atomic_write_bytes
from lewm.checkpoint.common import (
    CONFIG_FILE,
    FORMAT_VERSION,
    WEIGHTS_FILE,
    load_state_dict_strict,
    read_json,
)
from lewm.config import Config
from lewm.data.normalize import ActionNormalizer
from lewm.errors import CheckpointError, ConfigError
from lewm.model.provenance import Provenance
from lewm.model.world_model import LeWM


def save_model(run_dir: Path, model: LeWM, meta: Mapping) -> None:
    """Write ``model.safetensors`` then ``config.json`` (both atomically)."""
    from safetensors.torch import save

    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    atomic_write_bytes(
        run_dir / WEIGHTS_FILE,
        save(tensors, metadata={"format": "lewm", "version": str(FORMAT_VERSION)}),
    )
    atomic_write_bytes(run_dir / CONFIG_FILE, (json.dumps(dict(meta), indent=2) + "\n").encode())


def run_metadata(cfg: Config, normalizer: ActionNormalizer, data: Mapping, step: int) -> dict:
    """The content of a run's ``config.json``: the resolved config plus what loading needs."""
    from lewm import __version__

    meta = cfg.to_dict()
    meta.update(
        format_version=FORMAT_VERSION,
        lewm_version=__version__,
        action_normalizer=normalizer.to_dict(),
        data=dict(data),
        step=int(step),
    )
    return meta


def config_from_metadata(meta: Mapping) -> Config:
    keys = {"preset", "profile", "model", "loss", "optim", "train"}
    try:
        return Config.from_dict({k: meta[k] for k in keys if k in meta}).validate()
    except ConfigError as exc:
        raise CheckpointError(f"invalid config.json: {exc}") from exc


def load_ours(folder: Path, device) -> LeWM:
    from safetensors.torch import load_file

    meta = read_json(folder / CONFIG_FILE)
    if "format_version" not in meta:
        raise CheckpointError(f"{folder / CONFIG_FILE}: not a lewm run config (no format_version)")
    cfg = config_from_metadata(meta)
    normalizer = (
        ActionNormalizer.from_dict(meta["action_normalizer"])
        if meta.get("action_normalizer")
        else None
    )
    model = LeWM(cfg.model, normalizer)
    state = load_file(str(folder / WEIGHTS_FILE))
    load_state_dict_strict(model, state, folder / WEIGHTS_FILE)
    model.provenance = Provenance(
        source="lewm",
        path=str(folder),
        meta=meta,
        config=cfg,
        action_stats="run" if normalizer is not None else None,
    )
    return model.to(device).eval()
