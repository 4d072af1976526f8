"""DINO-WM's frozen encoder: a ``transformers.Dinov2Model`` from a LOCAL folder (spec §10.2).

The folder is the Hugging Face format (``config.json`` with ``model_type: dinov2`` and
``model.safetensors`` or ``pytorch_model.bin``), e.g. a copy of ``facebook/dinov2-small``
(ViT-S/14, the paper's). Nothing is downloaded: ``local_files_only``, no remote code. A
missing folder, another architecture, or weights that do not fill the DINOv2 of its
``config.json`` is one :class:`~lewm.errors.ConfigError` naming the folder.

The latent is the patch tokens after DINOv2's final LayerNorm (``last_hidden_state[:, 1:]``,
the "normalised patch tokens"); the CLS token is dropped.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lewm.errors import ConfigError, LewmError

__all__ = [
    "dinov2_from_config",
    "encoder_sizes",
    "import_transformers",
    "load_dinov2",
    "read_dinov2_config",
]

EXTRA = "pip install 'lewm[dinowm]' (transformers)"
OPTIONAL_KEYS = {"embeddings.mask_token"}  # masked-image training only; unused here


def import_transformers():
    """The ``transformers`` module, or a LewmError saying how to install it."""
    try:
        import transformers
    except ImportError:
        raise LewmError(f"DINO-WM needs the optional extra: {EXTRA}") from None
    return transformers


@contextlib.contextmanager
def _quiet(transformers):
    """No load reports or progress bars from transformers: our own checks say what is wrong."""
    log = transformers.utils.logging
    level = log.get_verbosity()
    log.set_verbosity_error()
    log.disable_progress_bar()
    try:
        yield
    finally:
        log.set_verbosity(level)
        log.enable_progress_bar()


def read_dinov2_config(folder: str | Path) -> dict[str, Any]:
    """The ``config.json`` of a local DINOv2 folder, checked to be DINOv2's.

    Raises:
        ConfigError: no such folder, no readable ``config.json``, or another ``model_type``.
    """
    folder = Path(folder)
    what = f"--encoder-weights {folder}"
    if not folder.is_dir():
        raise ConfigError(
            f"{what}: no such folder; pass a local Hugging Face DINOv2 folder (config.json + "
            "model.safetensors, e.g. a download of facebook/dinov2-small); nothing is downloaded"
        )
    path = folder / "config.json"
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{what}: {path} cannot be read as JSON ({exc})") from None
    kind = config.get("model_type") if isinstance(config, dict) else None
    if kind != "dinov2":
        raise ConfigError(
            f"{what}: its config.json describes model_type {kind!r}, not 'dinov2'; DINO-WM needs "
            "a DINOv2 ViT (transformers.Dinov2Model; the paper's is facebook/dinov2-small)"
        )
    return config


def load_dinov2(folder: str | Path) -> nn.Module:
    """The frozen ``Dinov2Model`` of a local folder, every weight loaded (eval mode).

    Raises:
        ConfigError: :func:`read_dinov2_config`'s checks, no weights, or weights that do not
            match the architecture of the folder's ``config.json``.
    """
    folder = Path(folder)
    read_dinov2_config(folder)
    transformers = import_transformers()
    what = f"--encoder-weights {folder}"
    try:
        with _quiet(transformers), torch.random.fork_rng(devices=[]):
            model, info = transformers.Dinov2Model.from_pretrained(
                str(folder), local_files_only=True, output_loading_info=True
            )
    except (OSError, ValueError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"{what}: the DINOv2 weights cannot be loaded ({first})") from None
    missing = sorted(set(info.get("missing_keys", ())) - OPTIONAL_KEYS)
    bad = (
        missing
        + sorted(info.get("unexpected_keys", ()))
        + sorted(str(k) for k in info.get("mismatched_keys", ()))
    )
    if bad:
        raise ConfigError(
            f"{what}: the weights do not match the DINOv2 of its config.json ({len(missing)} "
            f"missing, {len(bad) - len(missing)} unexpected or mis-shaped, e.g. {bad[0]}); "
            "is it a DINOv2 checkpoint?"
        )
    return freeze(model)


def dinov2_from_config(config: Mapping[str, Any]) -> nn.Module:
    """A frozen ``Dinov2Model`` built from a config dict (random weights, to be loaded)."""
    transformers = import_transformers()
    with _quiet(transformers):
        cfg = transformers.Dinov2Config.from_dict(dict(config))
        return freeze(transformers.Dinov2Model(cfg))


def freeze(model: nn.Module) -> nn.Module:
    """No gradients, eval mode (DINO-WM never trains its encoder)."""
    model.requires_grad_(False)
    return model.eval()


def encoder_sizes(config: Mapping[str, Any]) -> dict[str, Any]:
    """The ``model.encoder`` fields (lewm's EncoderConfig) that describe a DINOv2 config."""
    hidden = int(config.get("hidden_size", 768))
    return {
        "patch_size": int(config.get("patch_size", 14)),
        "hidden_dim": hidden,
        "depth": int(config.get("num_hidden_layers", 12)),
        "heads": int(config.get("num_attention_heads", 12)),
        "mlp_dim": int(hidden * float(config.get("mlp_ratio", 4))),
        "layer_norm_eps": float(config.get("layer_norm_eps", 1e-6)),
    }
