"""The sensitivity table: success when each loss coefficient is halved or doubled (issue 12).

Pure functions over evaluation outputs; ``benchmarks/sensitivity.py`` trains and evaluates the
runs (through ``lewm sweep``) and calls these. One row per coefficient, one cell per scale
(×0.5, ×1, ×2): the success rate on the evaluation pairs with its Wilson 95 % interval. A
scale is *outside* when its interval lies wholly below or above the ×1 interval; overlapping
intervals are not evidence of a change at this sample size.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lewm.eval.scoring import wilson_percent

SCALES = (0.5, 1.0, 2.0)


@dataclass(frozen=True)
class Cell:
    """Successes out of evaluation episodes for one trained run."""

    successes: int
    episodes: int

    def __post_init__(self) -> None:
        if not 0 <= self.successes <= self.episodes:
            raise ValueError(f"successes {self.successes} not in 0..{self.episodes}")

    @property
    def rate(self) -> float:
        return 100.0 * self.successes / self.episodes if self.episodes else float("nan")

    @property
    def interval(self) -> tuple[float, float]:
        return wilson_percent(self.successes, self.episodes)


def cell_from_results(results: Mapping[str, Any]) -> Cell:
    """The cell of one ``results.json`` (every seed's episodes pooled)."""
    episodes = results["episodes"]
    return Cell(sum(bool(e["success"]) for e in episodes), len(episodes))


def _separated(a: Cell, b: Cell) -> bool:
    (alo, ahi), (blo, bhi) = a.interval, b.interval
    return ahi < blo or bhi < alo


def sensitivity_row(coefficient: str, default: float, cells: Mapping[float, Cell]) -> dict:
    """One coefficient's row: each scale's cell, the largest drop from ×1, which scales differ."""
    missing = [s for s in SCALES if s not in cells]
    if missing:
        raise ValueError(f"{coefficient}: no run at scale {missing}")
    mid = cells[1.0]
    row: dict[str, Any] = {"coefficient": coefficient, "default": default}
    for s in SCALES:
        c = cells[s]
        row[f"x{s:g}"] = {"success_rate": c.rate, "ci95": list(c.interval),
                          "successes": c.successes, "episodes": c.episodes}  # fmt: skip
    row["max_drop"] = max(mid.rate - cells[s].rate for s in (0.5, 2.0))
    row["outside_ci"] = [f"x{s:g}" for s in (0.5, 2.0) if _separated(cells[s], mid)]
    return row


def markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """The table as Markdown: ``rate (lo–hi)`` per cell, then the largest drop and verdict."""

    def cell(c: Mapping[str, Any]) -> str:
        lo, hi = c["ci95"]
        return f"{c['success_rate']:.1f} ({lo:.0f}–{hi:.0f})"

    lines = [
        "| coefficient | default | ×0.5 | ×1 | ×2 | largest drop from ×1 | outside ×1's interval |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cells = " | ".join(cell(r[f"x{s:g}"]) for s in SCALES)
        outside = ", ".join(r["outside_ci"]) or "none"
        lines.append(f"| {r['coefficient']} | {r['default']:g} | {cells} | "
                     f"{r['max_drop']:.1f} | {outside} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def summary(study: Mapping[str, Any]) -> str:
    """One sentence of a ``sensitivity.json``: its setting, each row's ×0.5 / ×1 / ×2 rates,
    the scales whose interval is disjoint from ×1's, and the random floor (for ``RESULTS.md``)."""
    s = study["settings"]
    parts = []
    for r in study["rows"]:
        rates = " / ".join(f"{r[f'x{k:g}']['success_rate']:.0f}" for k in SCALES)
        outside = ", ".join(x.replace("x", "×") for x in r["outside_ci"])
        parts.append(f"{r['coefficient']} {rates} %" + (f" ({outside} outside ×1's interval)"
                                                          if outside else ""))  # fmt: skip
    return (f"{s['env']}, `{s['preset']}`, {s['steps']:,} training steps, {s['episodes']} pairs "
            f"per evaluation seed ({s['seeds']}); success at ×0.5 / ×1 / ×2: " + "; ".join(parts)
            + f"; random floor {study['random_success_rate']:.0f} %.")  # fmt: skip
