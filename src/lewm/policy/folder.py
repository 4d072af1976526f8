"""A trained policy on disk: ``policy.json`` (what it is, what it was trained on) +
``policy.safetensors`` (weights). Loading checks that the world model is the one the
policy was trained on: the weights' sha256 and the action statistics."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from lewm.errors import LewmError
from lewm.policy.network import GoalPolicy, PolicyNetConfig

FORMAT = "lewm-policy"
VERSION = 1
META_FILE = "policy.json"
WEIGHTS_FILE = "policy.safetensors"


class PolicyError(LewmError, ValueError):
    """A policy folder that cannot be used (missing, damaged, or for another world model)."""


def world_model_fingerprint(ckpt: str | os.PathLike, model: Any) -> dict:
    """What identifies the world model a policy depends on: the sha256 of its weight
    file(s) and the action statistics the planner de-normalises with."""
    from lewm.eval.files import checkpoint_files, sha256_file

    weights = [p for p in checkpoint_files(ckpt) if p.suffix in (".safetensors", ".pt")]
    if not weights:
        raise PolicyError(f"{ckpt}: no checkpoint weights found")
    norm = getattr(model, "action_normalizer", None)
    return {
        "weights_sha256": {p.name: sha256_file(p) for p in weights},
        "action_normalizer": None if norm is None else norm.to_dict(),
    }


def save_policy(out: Path, policy: GoalPolicy, meta: dict) -> None:
    """Write the weights then ``policy.json`` (both atomically; json last = complete)."""
    from safetensors.torch import save

    from lewm.checkpoint import atomic_write_bytes

    out.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in policy.state_dict().items()}
    atomic_write_bytes(out / WEIGHTS_FILE, save(tensors))
    body = {"format": FORMAT, "version": VERSION, "net": policy.cfg.to_dict(), **meta}
    atomic_write_bytes(out / META_FILE, (json.dumps(body, indent=2) + "\n").encode())


def read_meta(folder: str | os.PathLike) -> dict:
    """``policy.json`` of a policy folder, checked for its format."""
    path = Path(folder) / META_FILE
    if not path.is_file():
        raise PolicyError(
            f"{folder}: not a policy folder (no {META_FILE}); train one with lewm policy train"
        )
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise PolicyError(f"{path}: unreadable ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise PolicyError(f"{path}: not a {FORMAT} file")
    if meta.get("version") != VERSION:
        raise PolicyError(
            f"{path}: format version {meta.get('version')!r}, this lewm reads {VERSION}"
        )
    return meta


def load_policy(
    folder: str | os.PathLike, ckpt: str | os.PathLike, model: Any
) -> tuple[GoalPolicy, dict]:
    """The policy of ``folder`` for the world model ``model`` loaded from ``ckpt``.

    Raises:
        PolicyError: the folder is not a policy, or it was trained on another world model
            (other weights or other action statistics).
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    meta = read_meta(folder)
    want = meta.get("world_model", {})
    have = world_model_fingerprint(ckpt, model)
    if want.get("weights_sha256") != have["weights_sha256"]:
        raise PolicyError(
            f"{folder} was trained on another world model (weights sha256 "
            f"{_short(want.get('weights_sha256'))}) than {ckpt} ({_short(have['weights_sha256'])}); "
            f"train a policy for it: lewm policy train --ckpt {ckpt} --data FILE.h5 --out DIR"
        )
    if want.get("action_normalizer") != have["action_normalizer"]:
        raise PolicyError(
            f"{folder} was trained with other action statistics than {ckpt} has now "
            f"({want.get('action_normalizer')} vs {have['action_normalizer']}); pass the same "
            "--stats-from / --identity-normalizer as for lewm policy train"
        )
    try:
        net = PolicyNetConfig(**meta["net"])
        policy = GoalPolicy(net)
        policy.load_state_dict(load_file(str(Path(folder) / WEIGHTS_FILE)), strict=True)
    except (KeyError, TypeError, ValueError, RuntimeError, OSError, SafetensorError) as exc:
        raise PolicyError(f"{folder}: damaged policy ({type(exc).__name__}: {exc})") from exc
    return policy.eval(), meta


def _short(hashes: Any) -> str:
    if not isinstance(hashes, dict) or not hashes:
        return "unknown"
    return ", ".join(f"{k} {str(v)[:12]}" for k, v in hashes.items())
