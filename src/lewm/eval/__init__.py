"""Evaluation: the paper's planning protocol and episode GIFs.

Layout (one concept per file): ``config.py`` (:class:`EvalConfig`), ``pairs.py``
(start/goal draws), ``episodes.py`` (held-out selection), ``prepare.py`` (input
checks, model loading), ``restore.py`` (environments, dataset rows, restores),
``runs.py`` (MPC and random-floor runs), ``scoring.py`` (rates, stds, results.json),
``video.py`` (GIFs) and ``protocol.py`` (:func:`evaluate`, composing them).

``from lewm.eval import evaluate, EvalConfig`` is imported lazily, so ``import lewm.eval``
stays light.
"""

from __future__ import annotations

import importlib

__all__ = ["EvalConfig", "evaluate"]
_HOME = {"evaluate": "lewm.eval.protocol", "EvalConfig": "lewm.eval.config"}  # name -> module


def __getattr__(name: str):
    if name in _HOME:
        return getattr(importlib.import_module(_HOME[name]), name)
    raise AttributeError(f"module 'lewm.eval' has no attribute {name!r}")
