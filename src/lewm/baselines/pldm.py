"""PLDM's inverse-dynamics head (spec §10.1, the mu term), kept outside the world model.

PLDM's world model is LeWM's, unchanged, so its checkpoints load, plan and evaluate as LeWM's.
With ``loss.pldm.mu > 0`` training also fits this head, which predicts the action block that
leaves frame t from (z_t, z_t+1). It belongs to the objective, not to the model: its weights
are saved beside the model, in ``idm_head.safetensors`` of the run directory (and in
``train_state.pt`` for ``--resume``); ``model.safetensors`` stays the LeWM state dict.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from lewm.checkpoint.atomic import atomic_write_bytes
from lewm.checkpoint.common import CONFIG_FILE, load_state_dict_strict, read_safetensors
from lewm.checkpoint.ours import config_from_metadata
from lewm.config import Config
from lewm.errors import CheckpointError, LewmError

IDM_FILE = "idm_head.safetensors"

__all__ = ["IDM_FILE", "InverseDynamicsHead", "build_idm_head", "load_idm_head", "save_idm_head"]


class InverseDynamicsHead(nn.Module):
    """MLP (z_t, z_t+1) -> a_t: Linear(2D -> hidden), GELU, Linear(hidden -> f*A)."""

    def __init__(self, embed_dim: int, action_input_dim: int, hidden: int = 512):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(2 * embed_dim, hidden), nn.GELU(), nn.Linear(hidden, action_input_dim)
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Embeddings z (B, T, D) -> predicted blocks (B, T-1, f*A); output t is block t."""
        return self.net(torch.cat([z[:, :-1], z[:, 1:]], dim=-1))


def build_idm_head(cfg: Config) -> InverseDynamicsHead | None:
    """The head a run trains: one for ``loss.objective=pldm`` with ``loss.pldm.mu > 0``, else None.

    Initialised from its own stream (``train.seed``-derived), so adding it leaves the world
    model's initialisation unchanged.
    """
    if cfg.loss.objective != "pldm" or cfg.loss.pldm.mu <= 0:
        return None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.train.seed + 104_729)
        return InverseDynamicsHead(
            cfg.model.embed_dim, cfg.model.action_input_dim, cfg.loss.pldm.idm_hidden
        )


def save_idm_head(run_dir: Path, head: nn.Module) -> None:
    """Write ``idm_head.safetensors`` atomically (an OSError becomes one LewmError line)."""
    from safetensors.torch import save

    tensors = {k: v.detach().contiguous().cpu() for k, v in head.state_dict().items()}
    try:
        atomic_write_bytes(run_dir / IDM_FILE, save(tensors, metadata={"format": "lewm-idm"}))
    except OSError as exc:
        raise LewmError(
            f"cannot write {run_dir / IDM_FILE} ({exc.strerror or exc}); make room or fix it, "
            "then resume the run"
        ) from None


def load_idm_head(run_dir: str | Path, device: str | torch.device = "cpu") -> InverseDynamicsHead:
    """The trained inverse-dynamics head of a PLDM run with ``mu > 0`` (eval mode)."""
    run_dir = Path(run_dir)
    path = run_dir / CONFIG_FILE
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: cannot be read ({exc})") from None
    cfg = config_from_metadata(meta)
    head = build_idm_head(cfg)
    if head is None:
        raise CheckpointError(
            f"{run_dir}: not a PLDM run with an inverse-dynamics head (loss.objective="
            f"{cfg.loss.objective!r}, loss.pldm.mu={cfg.loss.pldm.mu})"
        )
    load_state_dict_strict(head, read_safetensors(run_dir / IDM_FILE), run_dir / IDM_FILE)
    return head.to(device).eval()
