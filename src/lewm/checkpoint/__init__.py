"""Checkpoints: our run directories and the authors' released format (spec §2.9-2.10).

- ours (:mod:`.ours`): a folder with ``config.json`` + ``model.safetensors``;
- the authors' (:mod:`.reference`): ``config.json`` (Hydra-style blocks) + ``weights.pt``;
- :mod:`.atomic`: crash-safe writes used by both and by training.

Loading is strict (every tensor, every shape) and never unpickles objects:
safetensors, or ``torch.load(weights_only=True)``. :func:`load` fills the model's
typed ``provenance`` field (:class:`lewm.model.provenance.Provenance`).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from lewm.checkpoint.atomic import atomic_torch_save, atomic_write_bytes
from lewm.checkpoint.common import (
    CONFIG_FILE,
    FORMAT_VERSION,
    TRAIN_STATE_FILE,
    WEIGHTS_FILE,
    load_state_dict_strict,
)
from lewm.checkpoint.ours import config_from_metadata, load_ours, run_metadata, save_model
from lewm.checkpoint.reference import (
    VIT_SIZES,
    export_reference,
    load_reference,
    model_config_from_reference,
    reference_config_dict,
    remap_vit_keys,
    to_v5_keys,
)
from lewm.errors import CheckpointError
from lewm.model.world_model import LeWM

__all__ = [
    "CONFIG_FILE",
    "FORMAT_VERSION",
    "TRAIN_STATE_FILE",
    "VIT_SIZES",
    "WEIGHTS_FILE",
    "atomic_torch_save",
    "atomic_write_bytes",
    "config_from_metadata",
    "export_reference",
    "load",
    "load_state_dict_strict",
    "model_config_from_reference",
    "reference_config_dict",
    "remap_vit_keys",
    "run_metadata",
    "save_model",
    "to_v5_keys",
]


def load(
    path: str | os.PathLike,
    *,
    device: str | torch.device = "cpu",
    frameskip: int = 5,
    stats_from: str | os.PathLike | None = None,
    identity_normalizer: bool = False,
    profile: str = "clean",
) -> LeWM:
    """Load a model in eval mode from a run directory or the authors' release folder.

    A run of ours loads as the world model of its ``loss.objective``: a :class:`LeWM` for
    ``lewm`` and ``pldm``, a :class:`lewm.baselines.dinowm.DinoWM` (the same verbs) for
    ``dinowm``.

    Args:
        path: a run directory of ours (``config.json`` + ``model.safetensors``), or a folder
            (or ``.pt`` file) of the authors' release (``config.json`` + ``weights.pt``, ViT keys in
            the transformers 4.x or 5.x naming).
        frameskip: for the authors' checkpoints, which do not record it (5 in every release).
        stats_from: for the authors' checkpoints, an HDF5 file whose action column gives the
            normalisation statistics (spec §4.2: ddof 0 under ``reference``, 1 under ``clean``).
            One of ``stats_from`` / ``identity_normalizer`` is required for those checkpoints.
        identity_normalizer: for the authors' checkpoints, plan in raw action units (no
            statistics); only right for a model trained on unnormalised actions.
    Returns:
        the model in eval mode; ``model.provenance`` records where it came from.
    """
    ref = dict(stats_from=stats_from, profile=profile, identity_normalizer=identity_normalizer)
    p = Path(path)
    if p.is_file():
        if p.suffix == ".safetensors":
            p = p.parent
        elif p.suffix == ".pt":
            return load_reference(p.parent, p, device, frameskip, **ref)
        else:
            raise CheckpointError(f"{p}: expected a run directory, a .safetensors or a .pt file")
    if not p.is_dir():
        raise CheckpointError(f"{p}: no such checkpoint directory")
    if (p / WEIGHTS_FILE).is_file():
        return load_ours(p, device)
    pts = sorted(p.glob("*.pt"))
    pts = [q for q in pts if q.name != TRAIN_STATE_FILE]
    if (p / "weights.pt").is_file():
        return load_reference(p, p / "weights.pt", device, frameskip, **ref)
    if len(pts) == 1:
        return load_reference(p, pts[0], device, frameskip, **ref)
    raise CheckpointError(
        f"{p}: no checkpoint found (expected {WEIGHTS_FILE} + {CONFIG_FILE}, or the authors' weights.pt + config.json)"
    )
