"""Where a model came from: one declared, typed field on every world model.

:func:`lewm.load` fills it; evaluation (held-out episodes, results metadata) and
``lewm info`` read it. A freshly built model has ``source="new"`` and no metadata.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from lewm.config import Config

Source = Literal["new", "lewm", "reference"]


@dataclass(frozen=True)
class Provenance:
    """Read-only record of a model's origin.

    Attributes:
        source: ``new`` (built in this process), ``lewm`` (one of our run directories) or
            ``reference`` (the authors' release format).
        path: the folder or file it was loaded from, if any.
        meta: our run's ``config.json`` (training config, data description, step, action
            statistics); empty for other sources.
        config: the training config parsed from ``meta`` (ours only).
        layout: the authors' ViT key naming the weights came in (``4.x`` / ``5.x``).
        action_stats: where the action normaliser came from: ``run`` (saved with the run),
            ``file:PATH`` (fitted on a training file), ``identity`` (explicitly none), or None.
    """

    source: Source = "new"
    path: str | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)
    config: Config | None = None
    layout: str | None = None
    action_stats: str | None = None

    def __post_init__(self) -> None:
        # A private copy, so later edits of the caller's dict cannot change the record.
        object.__setattr__(self, "meta", dict(self.meta))

    @property
    def step(self) -> int | None:
        """Optimiser steps the weights were trained for (ours only)."""
        step = self.meta.get("step")
        return None if step is None else int(step)

    @property
    def preset(self) -> str | None:
        return self.meta.get("preset")

    @property
    def data(self) -> Mapping[str, Any]:
        """The training data description (path, episodes, rows, env, ...); empty if unknown."""
        return self.meta.get("data") or {}

    @property
    def env(self) -> str | None:
        """The environment the training file was collected in, if recorded."""
        return self.data.get("env")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly summary (for ``lewm info`` and results files)."""
        return {
            "source": self.source,
            "path": self.path,
            "step": self.step,
            "preset": self.preset,
            "env": self.env,
            "layout": self.layout,
            "action_stats": self.action_stats,
        }
