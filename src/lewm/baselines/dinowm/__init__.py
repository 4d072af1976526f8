"""DINO-WM (spec §10.2): frozen DINOv2 patch tokens as the latent, a causal patch predictor.

- :mod:`.encoder`: the frozen ``transformers.Dinov2Model`` from a local folder;
- :mod:`.predictor`: the frame-causal ViT over all patch tokens of the history;
- :mod:`.model`: :class:`DinoWM`, the world model with LeWM's planning verbs;
- :mod:`.loss`: the detached-target MSE it trains with;
- :mod:`.checkpoint`: rebuilding it from a run's ``config.json``.

:func:`bench_model` is a random-weight DINO-WM at the paper's sizes, for timing the planner.
"""

from __future__ import annotations

from typing import Any

from lewm.baselines.dinowm.model import DinoWM

__all__ = ["DinoWM", "bench_model", "paper_dinov2_config"]


def paper_dinov2_config(image_size: int = 518) -> dict[str, Any]:
    """The ``transformers`` config of facebook/dinov2-small (ViT-S/14), the paper's encoder."""
    return {
        "model_type": "dinov2",
        "hidden_size": 384,
        "num_hidden_layers": 12,
        "num_attention_heads": 6,
        "mlp_ratio": 4,
        "patch_size": 14,
        "image_size": image_size,
        "layer_norm_eps": 1e-6,
        "layerscale_value": 1.0,
        "qkv_bias": True,
        "hidden_act": "gelu",
        "use_swiglu_ffn": False,
    }


def bench_model(image_size: int = 224, action_dim: int = 2, seed: int = 0) -> DinoWM:
    """A random-weight DINO-WM at the paper's sizes, in eval mode: DINOv2 ViT-S/14 (256 patch
    tokens of 384 at 224), LeWM's predictor sizes, history 3, frameskip 5. Planning costs the
    same with any weights, so no download is needed to time it (``lewm bench plan``)."""
    import torch

    from lewm.baselines.dinowm.encoder import dinov2_from_config, encoder_sizes
    from lewm.config import EncoderConfig, preset

    dinov2 = paper_dinov2_config()
    cfg = preset("paper", objective="dinowm")
    cfg.model.action_dim = action_dim
    cfg.model.encoder = EncoderConfig(image_size=image_size, **encoder_sizes(dinov2))
    cfg.validate()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = DinoWM(cfg.model, dinov2_from_config(dinov2))
    return model.eval()
