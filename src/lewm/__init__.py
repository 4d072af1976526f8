"""LeWorldModel (LeWM): a JEPA world model trained end-to-end from pixels.

Public API (imported lazily so ``import lewm`` stays fast)::

    model = lewm.load("runs/tworoom")      # our run dir or the authors' release folder
    z = model.encode(pixels)               # (B, T, 3, H, W) -> (B, T, D)
    z_next = model.predict(z, actions)     # (B, T, D), (B, T, f*A) -> (B, T, D)
    traj = model.rollout(z0, candidates)   # (B, H, D), (B, Hp, f*A) -> (B, H+Hp, D)
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["load", "LeWM", "__version__"]


def __getattr__(name: str):
    if name == "load":
        from lewm.checkpoint import load

        return load
    if name == "LeWM":
        from lewm.model.world_model import LeWM

        return LeWM
    raise AttributeError(f"module 'lewm' has no attribute {name!r}")
