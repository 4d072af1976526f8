"""Evaluation: the paper's planning protocol (``protocol.py``) and episode GIFs (``video.py``).

``from lewm.eval import evaluate`` is imported lazily, so ``import lewm.eval`` stays light.
"""

from __future__ import annotations

__all__ = ["evaluate"]


def __getattr__(name: str):
    if name == "evaluate":
        from lewm.eval.protocol import evaluate

        return evaluate
    raise AttributeError(f"module 'lewm.eval' has no attribute {name!r}")
