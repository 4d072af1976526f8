"""Checkpoints: our run directories and the authors' released format (spec §2.9-2.10).

Ours: a folder with ``config.json`` (the full resolved config, action
statistics, data description, step) and ``model.safetensors`` (weights only,
transformers-4.x key layout). The authors': ``config.json`` (Hydra-style
blocks) + ``weights.pt`` (a plain state dict, 4.x or 5.x ViT key names).

Loading is strict (every tensor, every shape) and never unpickles objects:
safetensors, or ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import torch

from lewm.config import (
    ActionEncoderConfig,
    Config,
    EncoderConfig,
    ModelConfig,
    PredictorConfig,
)
from lewm.data.normalize import ActionNormalizer
from lewm.errors import CheckpointError, ConfigError
from lewm.model.world_model import LeWM

FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
TRAIN_STATE_FILE = "train_state.pt"

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


# --------------------------------------------------------------------------- atomic writes


def atomic_write_bytes(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_torch_save(obj, path: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------- our format


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


def _load_ours(folder: Path, device) -> LeWM:
    from safetensors.torch import load_file

    meta = _read_json(folder / CONFIG_FILE)
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
    model.run_config = cfg  # the training config, for evaluation defaults
    model.run_meta = meta
    return model.to(device).eval()


# --------------------------------------------------------------------------- the authors' format


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
    """Build a ModelConfig from the authors' ``config.json`` blocks (``_target_`` keys ignored)."""
    try:
        enc, pred, act = rc["encoder"], rc["predictor"], rc["action_encoder"]
        proj = rc["projector"]
        size = enc.get("size", "tiny")
        if size in VIT_SIZES:
            hidden, depth, heads, mlp = VIT_SIZES[size]
        elif all(k in enc for k in ("hidden_dim", "depth", "heads", "mlp_dim")):
            hidden, depth, heads, mlp = (
                int(enc[k]) for k in ("hidden_dim", "depth", "heads", "mlp_dim")
            )
        else:
            raise CheckpointError(f"unknown encoder size {size!r}; known: {sorted(VIT_SIZES)}")
        embed = int(pred.get("input_dim", proj["output_dim"]))
        for key in ("hidden_dim", "output_dim"):
            if int(pred.get(key, embed)) != embed:
                raise CheckpointError(
                    f"predictor.{key} != input_dim: projected predictors are not supported"
                )
        input_dim = int(act["input_dim"])
        if input_dim % frameskip:
            raise CheckpointError(
                f"action_encoder.input_dim {input_dim} is not a multiple of frameskip {frameskip}"
            )
        return ModelConfig(
            embed_dim=embed,
            projector_hidden=int(proj["hidden_dim"]),
            frameskip=frameskip,
            action_dim=input_dim // frameskip,
            encoder=EncoderConfig(
                image_size=int(enc.get("image_size", 224)),
                patch_size=int(enc.get("patch_size", 14)),
                hidden_dim=hidden,
                depth=depth,
                heads=heads,
                mlp_dim=mlp,
            ),
            predictor=PredictorConfig(
                num_frames=int(pred["num_frames"]),
                depth=int(pred["depth"]),
                heads=int(pred["heads"]),
                dim_head=int(pred["dim_head"]),
                mlp_dim=int(pred["mlp_dim"]),
                dropout=float(pred.get("dropout", 0.1)),
                emb_dropout=float(pred.get("emb_dropout", 0.0)),
            ),
            action_encoder=ActionEncoderConfig(
                smoothed_dim=int(act.get("smoothed_dim", 10)),
                mlp_scale=int(act.get("mlp_scale", 4)),
            ),
        )
    except KeyError as exc:
        raise CheckpointError(f"authors' config.json is missing {exc}") from exc


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


def _load_reference(
    folder: Path, weights: Path, device, frameskip: int, stats_from, profile: str
) -> LeWM:
    rc = _read_json(folder / CONFIG_FILE)
    cfg = model_config_from_reference(rc, frameskip)
    normalizer = None
    if stats_from is not None:
        from lewm.data.hdf5 import open_h5

        with open_h5(stats_from) as f:
            actions = f["action"][()]
        # spec §4.2: reference = the planner's biased scaler; clean = the training's unbiased std
        normalizer = ActionNormalizer.fit(actions, ddof=0 if profile == "reference" else 1)
    model = LeWM(cfg, normalizer)
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling errors come in many types
        raise CheckpointError(f"{weights}: cannot be read as a plain state dict ({exc})") from exc
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{weights}: expected a state dict, got {type(state).__name__}")
    state, layout = remap_vit_keys(state)
    load_state_dict_strict(model, state, weights)
    model.reference_layout = layout
    return model.to(device).eval()


# --------------------------------------------------------------------------- entry point


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


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise CheckpointError(f"{path}: not found")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: invalid JSON ({exc})") from exc


def load(
    path: str | os.PathLike,
    *,
    device: str | torch.device = "cpu",
    frameskip: int = 5,
    stats_from: str | os.PathLike | None = None,
    profile: str = "clean",
) -> LeWM:
    """Load a model in eval mode from a run directory or the authors' release folder.

    Args:
        path: a run directory of ours (``config.json`` + ``model.safetensors``), or a folder
            (or ``.pt`` file) of the authors' release (``config.json`` + ``weights.pt``, ViT keys in
            the transformers 4.x or 5.x naming).
        frameskip: for the authors' checkpoints, which do not record it (5 in every release).
        stats_from: for the authors' checkpoints, an HDF5 file whose action column gives the
            normalisation statistics (spec §4.2: ddof 0 under ``reference``, 1 under ``clean``).
    """
    p = Path(path)
    if p.is_file():
        if p.suffix == ".safetensors":
            p = p.parent
        elif p.suffix == ".pt":
            return _load_reference(p.parent, p, device, frameskip, stats_from, profile)
        else:
            raise CheckpointError(f"{p}: expected a run directory, a .safetensors or a .pt file")
    if not p.is_dir():
        raise CheckpointError(f"{p}: no such checkpoint directory")
    if (p / WEIGHTS_FILE).is_file():
        return _load_ours(p, device)
    pts = sorted(p.glob("*.pt"))
    pts = [q for q in pts if q.name != TRAIN_STATE_FILE]
    if (p / "weights.pt").is_file():
        return _load_reference(p, p / "weights.pt", device, frameskip, stats_from, profile)
    if len(pts) == 1:
        return _load_reference(p, pts[0], device, frameskip, stats_from, profile)
    raise CheckpointError(
        f"{p}: no checkpoint found (expected {WEIGHTS_FILE} + {CONFIG_FILE}, or the authors' weights.pt + config.json)"
    )
