"""Rebuilding a DINO-WM run's model from its ``config.json`` (``lewm.load``, ``--resume``).

A DINO-WM run directory is an ordinary lewm run: ``config.json`` (``loss.objective: dinowm``)
and ``model.safetensors``, which holds every weight, the frozen DINOv2's included, so loading
needs neither the original ``--encoder-weights`` folder nor a download. The DINOv2
architecture is ``config.json``'s ``dinov2`` block, the ``transformers`` config of that
folder, recorded when the run started.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lewm.config import Config
from lewm.data.normalize import ActionNormalizer
from lewm.errors import CheckpointError

DINOV2_KEY = "dinov2"


def dinov2_block(meta: Mapping[str, Any], path: Path) -> dict[str, Any]:
    """The recorded DINOv2 config of a DINO-WM run's ``config.json`` content."""
    block = meta.get(DINOV2_KEY)
    if not isinstance(block, dict) or block.get("model_type") != "dinov2":
        raise CheckpointError(
            f"{path}: a DINO-WM run (loss.objective=dinowm) records its encoder's architecture "
            f"in a '{DINOV2_KEY}' block with model_type 'dinov2'; this one has none (edited or "
            "damaged?)"
        )
    return block


def dinowm_from_metadata(
    meta: Mapping[str, Any], cfg: Config, normalizer: ActionNormalizer | None, path: Path
):
    """A :class:`~lewm.baselines.dinowm.model.DinoWM` of the run's architecture, random
    weights (the caller loads ``model.safetensors`` or a training state)."""
    from lewm.baselines.dinowm.encoder import dinov2_from_config
    from lewm.baselines.dinowm.model import DinoWM

    block = dinov2_block(meta, path)
    try:
        encoder = dinov2_from_config(block)
    except (TypeError, ValueError, KeyError) as exc:
        raise CheckpointError(
            f"{path}: its '{DINOV2_KEY}' block is not a DINOv2 config ({exc})"
        ) from None
    return DinoWM(cfg.model, encoder, normalizer)


# transformers 4.x and 5.x name DINOv2's attention weights differently; a checkpoint written
# under one loads under the other (the tensors are the same).
_V4_TO_V5 = (
    ("attention.attention.query.", "attention.q_proj."),
    ("attention.attention.key.", "attention.k_proj."),
    ("attention.attention.value.", "attention.v_proj."),
    ("attention.output.dense.", "attention.o_proj."),
)


def _renamed(key: str, pairs) -> str:
    if not key.startswith("encoder."):
        return key
    for old, new in pairs:
        key = key.replace(old, new)
    return key


def match_dinov2_keys(state: Mapping[str, Any], expected: set[str]) -> dict[str, Any]:
    """``state`` with its DINOv2 keys in the naming of the installed ``transformers`` (4.x or
    5.x), when they are in the other one; otherwise unchanged (a strict load says what
    differs)."""
    state = dict(state)
    if set(state) == expected:
        return state
    for pairs in (_V4_TO_V5, tuple((b, a) for a, b in _V4_TO_V5)):
        renamed = {_renamed(k, pairs): v for k, v in state.items()}
        if set(renamed) == expected:
            return renamed
    return state
