"""``lewm info``: resolved config and parameter counts of a preset or a checkpoint."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "info", help="print a preset's (or checkpoint's) resolved config and parameter count"
    )
    p.add_argument("--preset", default="paper", help="tiny | small | paper (default: paper)")
    p.add_argument("--profile", default="clean", help="clean | reference (default: clean)")
    p.add_argument(
        "--objective",
        default="lewm",
        help="lewm | pldm | dinowm (default: lewm; dinowm: the paper's DINOv2 ViT-S/14 encoder)",
    )
    p.add_argument(
        "--ckpt", help="describe a checkpoint (run dir or the authors' folder) instead of a preset"
    )
    p.add_argument(
        "--action-dim", type=int, default=2, help="raw action dimension A (default 2; Cube is 5)"
    )
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    import torch

    from lewm.config import apply_overrides, preset
    from lewm.errors import ConfigError

    if args.ckpt:
        from lewm.checkpoint import load

        # Parameter counts do not depend on action statistics: the authors' checkpoints carry none.
        model = load(args.ckpt, identity_normalizer=_is_reference(args.ckpt))
        prov = model.provenance
        cfg_dict = dict(prov.meta) or {"model": _asdict(model.cfg)}
        preset_name, profile = cfg_dict.get("preset"), cfg_dict.get("profile")
        loss = cfg_dict.get("loss") if isinstance(cfg_dict.get("loss"), dict) else {}
        objective = loss.get("objective", "lewm")
        provenance = prov.to_dict()
    else:
        if args.action_dim <= 0:
            raise ConfigError("--action-dim must be positive")
        cfg = apply_overrides(preset(args.preset, args.profile, args.objective), args.overrides)
        cfg.model.action_dim = args.action_dim
        cfg.validate()
        with torch.device("meta"):  # shapes only: instant even at the paper size
            model = _preset_model(cfg)
        cfg_dict, preset_name, profile = cfg.to_dict(), cfg.preset, cfg.profile
        objective = cfg.loss.objective
        provenance = model.provenance.to_dict()
    counts = model.parameter_counts()
    buffers = sum(b.numel() for b in model.buffers())
    out = {
        "preset": preset_name,
        "profile": profile,
        "objective": objective,
        "params": model.num_parameters(),
        "params_per_module": {k: v for k, v in counts.items() if k != "total"},
        "buffers": buffers,
        "state_dict_tensors": len(model.state_dict()),
        "config": cfg_dict,
        "provenance": provenance,
    }
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(
            f"preset {preset_name} / profile {profile} / objective {objective}: "
            f"{out['params']:,} trainable parameters"
        )
        for k, v in out["params_per_module"].items():
            print(f"  {k:15s} {v:>12,}")
        print(f"  buffers         {buffers:>12,}")
        if provenance["source"] != "new":
            known = {k: v for k, v in provenance.items() if v is not None}
            print("  provenance      " + ", ".join(f"{k}={v}" for k, v in known.items()))
    return 0


def _preset_model(cfg):
    """The world model of a preset's objective: LeWM, or DINO-WM around a ViT-S/14 DINOv2."""
    if cfg.loss.objective == "dinowm":
        from lewm.baselines.dinowm import DinoWM, paper_dinov2_config
        from lewm.baselines.dinowm.encoder import dinov2_from_config

        return DinoWM(cfg.model, dinov2_from_config(paper_dinov2_config()))
    from lewm.model.world_model import LeWM

    return LeWM(cfg.model)


def _is_reference(path: str) -> bool:
    """Whether ``path`` is in the authors' format (no model.safetensors of ours)."""
    from pathlib import Path

    from lewm.checkpoint import WEIGHTS_FILE

    p = Path(path)
    return p.suffix == ".pt" or (p.is_dir() and not (p / WEIGHTS_FILE).is_file())


def _asdict(obj):
    import dataclasses

    return dataclasses.asdict(obj)
