"""The one rule for how many elites a sampling solver keeps when not told."""

from __future__ import annotations

from lewm.errors import ConfigError


def default_topk(samples: int) -> int:
    """Elites kept of ``samples`` candidates: a tenth, rounded down, at least 2, at most ``samples``.

    The paper keeps 30 of 300. Floor division, not ``round``, so the rule has no
    half-way cases (``round`` rounds 2.5 down but 3.5 up). At least 2 because
    CEM's elite std is unbiased (N-1); at most ``samples`` so one candidate still works.
    """
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise ConfigError(f"samples must be an int >= 1, got {samples!r}")
    return min(samples, max(2, samples // 10))
