"""The authors' release format: ``config.json`` (Hydra-style blocks) + ``weights.pt``
(a plain state dict, transformers 4.x or 5.x ViT key names; OFFICIAL_FORMAT §2-4)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from lewm.checkpoint.atomic import atomic_torch_save, atomic_write_bytes
from lewm.checkpoint.common import (
    CONFIG_FILE,
    load_state_dict_strict,
    read_json,
    read_torch_tensors,
)
from lewm.config import ActionEncoderConfig, Config, EncoderConfig, ModelConfig, PredictorConfig
from lewm.data.normalize import ActionNormalizer
from lewm.errors import CheckpointError, ConfigError
from lewm.model.provenance import Provenance
from lewm.model.world_model import LeWM

# transformers 5.x -> 4.x names inside one encoder layer (OFFICIAL_FORMAT §4, reversed)
_V5_TO_V4 = (
    ("attention.q_proj", "attention.attention.query"),
    ("attention.k_proj", "attention.attention.key"),
    ("attention.v_proj", "attention.attention.value"),
    ("attention.o_proj", "attention.output.dense"),
    ("mlp.fc1", "intermediate.dense"),
    ("mlp.fc2", "output.dense"),
)
VIT_SIZES = {  # name -> (hidden, depth, heads, mlp)
    "tiny": (192, 12, 3, 768),
    "small": (384, 12, 6, 1536),
    "base": (768, 12, 12, 3072),
}


def remap_vit_keys(state: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], str]:
    """Return the state dict in the 4.x layout and which layout it came in ("4.x" or "5.x")."""
    if any(k.startswith("encoder.layers.") for k in state):
        out = {}
        for key, value in state.items():
            if key.startswith("encoder.layers."):
                key = "encoder.encoder.layer." + key[len("encoder.layers.") :]
                for new, old in _V5_TO_V4:
                    key = key.replace(new, old)
            out[key] = value
        return out, "5.x"
    return dict(state), "4.x"


def to_v5_keys(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """4.x -> 5.x encoder key names (the order of replacements matters: see OFFICIAL_FORMAT §4)."""
    out = {}
    for key, value in state.items():
        if key.startswith("encoder.encoder.layer."):
            key = "encoder.layers." + key[len("encoder.encoder.layer.") :]
            for new, old in _V5_TO_V4:
                key = key.replace(old, new)
        out[key] = value
    return out


def model_config_from_reference(rc: Mapping, frameskip: int = 5) -> ModelConfig:
    """Build a ModelConfig from the authors' ``config.json`` blocks (``_target_`` keys ignored).

    Every value is checked (an integer where one is meant, then the config value rules),
    so a damaged or edited file is one CheckpointError naming the block and key.
    """
    enc, pred, act, proj = (
        _block(rc, k) for k in ("encoder", "predictor", "action_encoder", "projector")
    )
    size = enc.get("size", "tiny")
    if size in VIT_SIZES:
        hidden, depth, heads, mlp = VIT_SIZES[size]
    elif all(k in enc for k in ("hidden_dim", "depth", "heads", "mlp_dim")):
        hidden, depth, heads, mlp = (
            _int(enc, "encoder", k) for k in ("hidden_dim", "depth", "heads", "mlp_dim")
        )
    else:
        raise CheckpointError(f"unknown encoder size {size!r}; known: {sorted(VIT_SIZES)}")
    embed = _int(pred, "predictor", "input_dim", _int(proj, "projector", "output_dim"))
    for key in ("hidden_dim", "output_dim"):
        if _int(pred, "predictor", key, embed) != embed:
            raise CheckpointError(
                f"predictor.{key} != input_dim: projected predictors are not supported"
            )
    input_dim = _int(act, "action_encoder", "input_dim")
    if input_dim % frameskip:
        raise CheckpointError(
            f"action_encoder.input_dim {input_dim} is not a multiple of frameskip {frameskip}"
        )
    cfg = ModelConfig(
        embed_dim=embed,
        projector_hidden=_int(proj, "projector", "hidden_dim"),
        frameskip=frameskip,
        action_dim=input_dim // frameskip,
        encoder=EncoderConfig(
            image_size=_int(enc, "encoder", "image_size", 224),
            patch_size=_int(enc, "encoder", "patch_size", 14),
            hidden_dim=hidden,
            depth=depth,
            heads=heads,
            mlp_dim=mlp,
        ),
        predictor=PredictorConfig(
            **{
                k: _int(pred, "predictor", k)
                for k in ("num_frames", "depth", "heads", "dim_head", "mlp_dim")
            },
            dropout=_float(pred, "predictor", "dropout", 0.1),
            emb_dropout=_float(pred, "predictor", "emb_dropout", 0.0),
        ),
        action_encoder=ActionEncoderConfig(
            smoothed_dim=_int(act, "action_encoder", "smoothed_dim", 10),
            mlp_scale=_int(act, "action_encoder", "mlp_scale", 4),
        ),
    )
    try:
        Config(model=cfg).validate()  # the same value rules as our own configs
    except ConfigError as exc:
        raise CheckpointError(f"authors' config.json: {exc}") from None
    return cfg


def _block(rc: Mapping, key: str) -> Mapping:
    if key not in rc:
        raise CheckpointError(f"authors' config.json is missing '{key}'")
    if not isinstance(rc[key], Mapping):
        raise CheckpointError(
            f"authors' config.json: '{key}' must be an object, got {rc[key]!r:.40}"
        )
    return rc[key]


_REQUIRED = object()


def _int(block: Mapping, where: str, key: str, default: Any = _REQUIRED) -> int:
    """``block[key]`` as an int; a fractional number, a string or a bool is refused."""
    if key not in block:
        if default is _REQUIRED:
            raise CheckpointError(f"authors' config.json is missing '{where}.{key}'")
        return default
    value = block[key]
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise CheckpointError(
            f"authors' config.json: {where}.{key} must be an integer, got {value!r}"
        )
    return value


def _float(block: Mapping, where: str, key: str, default: float) -> float:
    value = block.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CheckpointError(
            f"authors' config.json: {where}.{key} must be a number, got {value!r}"
        )
    return float(value)


def reference_config_dict(cfg: ModelConfig) -> dict:
    """The authors' ``config.json`` content for a model config (OFFICIAL_FORMAT §2.1 key order)."""
    size = next(
        (
            k
            for k, v in VIT_SIZES.items()
            if v
            == (cfg.encoder.hidden_dim, cfg.encoder.depth, cfg.encoder.heads, cfg.encoder.mlp_dim)
        ),
        None,
    )
    mlp = {
        "_target_": "stable_worldmodel.wm.lewm.module.MLP",
        "input_dim": cfg.embed_dim,
        "output_dim": cfg.embed_dim,
        "hidden_dim": cfg.projector_hidden,
        "norm_fn": {"_target_": "torch.nn.BatchNorm1d", "_partial_": True},
    }
    encoder = {
        "_target_": "stable_pretraining.backbone.utils.vit_hf",
        "size": size or "custom",
        "patch_size": cfg.encoder.patch_size,
        "image_size": cfg.encoder.image_size,
        "pretrained": False,
        "use_mask_token": False,
    }
    if size is None:  # an extension of the format for non-standard widths (tests, small presets)
        e = cfg.encoder
        encoder.update(hidden_dim=e.hidden_dim, depth=e.depth, heads=e.heads, mlp_dim=e.mlp_dim)
    action = {
        "_target_": "stable_worldmodel.wm.lewm.module.Embedder",
        "input_dim": cfg.action_input_dim,
        "emb_dim": cfg.embed_dim,
    }
    if (
        cfg.action_encoder != ActionEncoderConfig()
    ):  # constructor defaults are not written by the authors
        action.update(
            smoothed_dim=cfg.action_encoder.smoothed_dim, mlp_scale=cfg.action_encoder.mlp_scale
        )
    p = cfg.predictor
    return {
        "_target_": "stable_worldmodel.wm.lewm.LeWM",
        "encoder": encoder,
        "predictor": {
            "_target_": "stable_worldmodel.wm.lewm.module.Predictor",
            "num_frames": p.num_frames,
            "input_dim": cfg.embed_dim,
            "hidden_dim": cfg.embed_dim,
            "output_dim": cfg.embed_dim,
            "depth": p.depth,
            "heads": p.heads,
            "mlp_dim": p.mlp_dim,
            "dim_head": p.dim_head,
            "dropout": p.dropout,
            "emb_dropout": p.emb_dropout,
        },
        "action_encoder": action,
        "projector": dict(mlp, input_dim=cfg.encoder.hidden_dim),
        "pred_proj": dict(mlp),
    }


def export_reference(model: LeWM, folder: str | os.PathLike, naming: str = "4.x") -> Path:
    """Write ``config.json`` + ``weights.pt`` in the authors' release format (4.x or 5.x ViT names)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    if naming == "5.x":
        state = to_v5_keys(state)
    elif naming != "4.x":
        raise ValueError(f"naming must be '4.x' or '5.x', got {naming!r}")
    atomic_torch_save(state, folder / "weights.pt")
    text = json.dumps(reference_config_dict(model.cfg), indent=4) + "\n"
    atomic_write_bytes(folder / CONFIG_FILE, text.encode())
    return folder


def _reference_normalizer(
    weights: Path, stats_from, identity_normalizer: bool, profile: str
) -> tuple[ActionNormalizer | None, str]:
    """The authors' checkpoints carry no action statistics: fit them on a file, or say none."""
    if stats_from is not None and identity_normalizer:
        raise CheckpointError(
            "give either stats_from (a training file) or identity_normalizer, not both"
        )
    if identity_normalizer:
        return None, "identity"
    if stats_from is None:
        raise CheckpointError(
            f"{weights}: the authors' checkpoints carry no action statistics, so planning would "
            "run in raw action units; pass the training file (lewm.load(..., stats_from=FILE.h5), "
            "`--stats-from FILE.h5`) or ask for raw units explicitly (identity_normalizer=True, "
            "`--identity-normalizer`)"
        )
    from lewm.data.hdf5 import inspect_dataset, open_h5

    inspect_dataset(stats_from)  # a layout the statistics can be read from
    with open_h5(stats_from) as f:
        actions = f["action"][()]
    # spec §4.2: reference = the planner's biased scaler; clean = the training's unbiased std
    normalizer = ActionNormalizer.fit(actions, ddof=0 if profile == "reference" else 1)
    return normalizer, f"file:{stats_from}"


def load_reference(
    folder: Path,
    weights: Path,
    device,
    frameskip: int,
    stats_from,
    profile: str,
    identity_normalizer: bool = False,
) -> LeWM:
    rc = read_json(folder / CONFIG_FILE)
    cfg = model_config_from_reference(rc, frameskip)
    normalizer, stats = _reference_normalizer(weights, stats_from, identity_normalizer, profile)
    model = LeWM(cfg, normalizer)
    state = read_torch_tensors(weights)
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{weights}: expected a state dict, got {type(state).__name__}")
    state, layout = remap_vit_keys(state)
    load_state_dict_strict(model, state, weights)
    model.provenance = Provenance(
        source="reference", path=str(weights), layout=layout, action_stats=stats
    )
    return model.to(device).eval()
