"""File names and strict loading shared by both checkpoint formats."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import torch

from lewm.errors import CheckpointError

FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
TRAIN_STATE_FILE = "train_state.pt"


def load_state_dict_strict(
    model: torch.nn.Module, state: Mapping[str, torch.Tensor], source
) -> None:
    """Load every tensor with matching shapes, or raise naming what differs."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} key(s): {_short(missing)}")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} key(s): {_short(unexpected)}")
        if wrong:
            parts.append(f"shape mismatch: {_short(wrong)}")
        raise CheckpointError(
            f"{source}: weights do not match the model config; " + "; ".join(parts)
        )
    model.load_state_dict(state, strict=True)


def _short(items: list[str], n: int = 6) -> str:
    return ", ".join(items[:n]) + (f", ... (+{len(items) - n})" if len(items) > n else "")


def read_json(path: Path) -> dict:
    if not path.is_file():
        raise CheckpointError(f"{path}: not found")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: invalid JSON ({exc})") from exc
