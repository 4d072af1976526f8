"""File names, strict loading and the safe readers shared by both checkpoint formats.

Every checkpoint file is read through one of :func:`read_json`, :func:`read_safetensors`
or :func:`read_torch_tensors`: a missing, empty, truncated, mistyped or hostile file
becomes one :class:`~lewm.errors.CheckpointError` naming the file. Nothing is ever
unpickled: ``.pt`` files are read with ``torch.load(weights_only=True)`` and a payload
that needs more is refused, saying why, without relaying torch's advice to load it
unsafely.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

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
    """A JSON file that must hold an object (a dict)."""
    if not path.is_file():
        raise CheckpointError(f"{path}: not found")
    try:
        value = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}: cannot be read ({exc})") from exc
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: invalid JSON ({exc})") from exc
    if not isinstance(value, dict):
        raise CheckpointError(f"{path}: expected a JSON object, got {_json_kind(value)}")
    return value


def _json_kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


SAFETENSORS_MAX_HEADER = 100 << 20  # the safetensors format's own limit on the JSON header


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """All tensors of a ``.safetensors`` file, after checking its 8-byte header length."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not path.is_file():
        raise CheckpointError(f"{path}: not found")
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(8)
    if size < 8:
        raise CheckpointError(f"{path}: {size} bytes, too short for a safetensors file (damaged?)")
    n = int.from_bytes(head, "little")
    if n > min(size - 8, SAFETENSORS_MAX_HEADER):
        raise CheckpointError(
            f"{path}: not a safetensors file (its header claims {n:,} bytes, the file has "
            f"{size:,}); the file is truncated, damaged or of another kind"
        )
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from exc


def read_torch_tensors(path: Path, what: str = "weights") -> Any:
    """``torch.load(weights_only=True)`` with every failure as one CheckpointError.

    A file that needs more than tensors and plain containers (a pickled object) is
    refused: loading it could run arbitrary code.
    """
    if not path.is_file():
        raise CheckpointError(f"{path}: not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(
            f"{path}: lewm refused it because its {what} hold pickled Python objects, not only "
            "tensors, and loading those could run arbitrary code"
        ) from None
    except Exception as exc:  # zip/EOF/runtime errors of a damaged file come in many types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "weights_only" in first:  # never relay advice to load unsafely
            first = "not a plain tensor file"
        raise CheckpointError(
            f"{path}: cannot be read, damaged or not a torch file ({first})"
        ) from None
