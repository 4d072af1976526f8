"""Pixel preprocessing (spec §4.2), in torch: no torchvision.

uint8 HWC frames -> float in [0, 1] -> ImageNet normalisation -> CHW, with an
optional bilinear antialiased resize. Works on any device; follows the input
tensor's device (numpy input lands on the CPU unless ``device`` is given).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def frames_to_pixels(
    frames: np.ndarray | torch.Tensor,
    size: int | None = None,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """uint8 frames (..., H, W, 3) -> normalised float pixels (..., 3, H', W').

    Args:
        frames: RGB uint8 frames, any leading dims (e.g. (B, T, H, W, 3)).
        size: optional square output size; resized bilinearly with antialiasing.
    """
    x = torch.as_tensor(frames, device=device)
    if x.dtype != torch.uint8 or x.ndim < 3 or x.shape[-1] != 3:
        raise ValueError(f"expected uint8 frames (..., H, W, 3), got {x.dtype} {tuple(x.shape)}")
    lead = x.shape[:-3]
    x = x.reshape(-1, *x.shape[-3:]).permute(0, 3, 1, 2).to(dtype).div_(255.0)  # (N, 3, H, W)
    if size is not None and tuple(x.shape[-2:]) != (size, size):
        x = F.interpolate(
            x, size=(size, size), mode="bilinear", antialias=True, align_corners=False
        )
    mean = torch.tensor(IMAGENET_MEAN, device=x.device, dtype=dtype).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device, dtype=dtype).view(1, 3, 1, 1)
    x = (x - mean) / std
    return x.reshape(*lead, *x.shape[1:])


def pixels_to_frames(pixels: torch.Tensor) -> np.ndarray:
    """Inverse of :func:`frames_to_pixels` (for visualisation): (..., 3, H, W) -> uint8 (..., H, W, 3)."""
    mean = torch.tensor(IMAGENET_MEAN, device=pixels.device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=pixels.device).view(3, 1, 1)
    x = (pixels.float() * std + mean).clamp(0, 1).mul(255).round().to(torch.uint8)
    return x.movedim(-3, -1).cpu().numpy()
