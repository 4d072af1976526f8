"""Matplotlib figures for the report, returned as PNG data URIs with alt text.

Uses :class:`matplotlib.figure.Figure` directly (no pyplot, no global state), so it
works headless and never touches the caller's backend. One small figure per panel:
the page lays them out in a grid that collapses to one column on a phone.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lewm.report.loading import MetricsLog
from lewm.report.media import data_uri

FIGSIZE = (5.6, 3.5)  # inches; 100 dpi -> 560 x 350 px
DPI = 100


@dataclass(frozen=True)
class Panel:
    title: str
    series: tuple[tuple[str, str], ...]  # (metric key, legend label)
    ylabel: str
    log: bool = False


PANELS = (
    Panel(
        "prediction loss",
        (("pred_loss", "train"), ("val_pred_loss", "validation")),
        "MSE of the next embedding",
        log=True,
    ),
    Panel(
        "SIGReg",
        (("sigreg_loss", "train"), ("val_sigreg_loss", "validation")),
        "SIGReg statistic",
        log=True,
    ),
    Panel(
        "total loss",
        (("loss", "train"), ("val_loss", "validation")),
        "prediction + λ·SIGReg",
        log=True,
    ),
    Panel("learning rate", (("lr", "lr"),), "learning rate"),
    Panel(
        "collapse monitor: embedding std",
        (("z_std", "std"),),
        "std per dimension",
    ),
    Panel(
        "collapse monitor: effective rank",
        (("z_eff_rank", "effective rank"),),
        "effective rank",
    ),
    Panel("gradient norm", (("grad_norm", "grad norm"),), "L2 norm (before clipping)"),
    Panel("throughput", (("steps_per_s", "steps/s"),), "steps / s"),
)
UNPLOTTED = {"step", "elapsed_seconds"}
MAX_OTHER = 16


@dataclass(frozen=True)
class Plot:
    title: str
    alt: str
    uri: str


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return data_uri(buf.getvalue(), "image/png")


def _new_axes():
    from matplotlib.figure import Figure

    fig = Figure(figsize=FIGSIZE, layout="constrained")
    return fig, fig.subplots()


def _last(xs: Sequence[float], ys: Sequence[float]) -> str:
    return f"last {ys[-1]:.4g} at step {int(xs[-1])}"


def line_plot(
    metrics: MetricsLog, panel: Panel, hlines: Sequence[tuple[float, str]] = ()
) -> Plot | None:
    """One panel of metric curves against the step; None if none of its keys was logged."""
    fig, ax = _new_axes()
    described, values = [], []
    for key, label in panel.series:
        xs, ys = metrics.series(key)
        if not xs:
            continue
        style = "o-" if len(xs) < 30 or key.startswith("val_") else "-"
        ax.plot(xs, ys, style, ms=3.5, lw=1.4, label=label)
        described.append(f"{label} ({key}) {_last(xs, ys)}")
        values += [y for y in ys if math.isfinite(y)]
    if not described:
        return None
    for y, label in hlines:
        ax.axhline(y, color="grey", ls="--", lw=1, label=label)
        values.append(y)
    if panel.log and values and min(values) > 0:
        ax.set_yscale("log")
    ax.set_title(panel.title)
    ax.set_xlabel("training step")
    ax.set_ylabel(panel.ylabel)
    ax.grid(alpha=0.3)
    if len(described) + len(hlines) > 1:
        ax.legend(fontsize=8)
    alt = f"Line plot of {panel.title} ({panel.ylabel}) against training step: " + "; ".join(
        described
    )
    return Plot(panel.title, alt, _png(fig))


def training_plots(metrics: MetricsLog, config: dict[str, Any] | None) -> list[Plot]:
    """Every known panel that has data, temporal straightness, then any unknown numeric key."""
    cfg = config or {}
    t_max = (cfg.get("loss") or {}).get("sigreg_t_max")
    embed_dim = (cfg.get("model") or {}).get("embed_dim")
    extras: dict[str, list[tuple[float, str]]] = {}
    if isinstance(t_max, int | float):
        from lewm.losses import sigreg_null_expectation

        floor = sigreg_null_expectation(float(t_max))
        extras["SIGReg"] = [(floor, f"Gaussian expectation {floor:.3f}")]
    if isinstance(embed_dim, int):
        extras["collapse monitor: effective rank"] = [(embed_dim, f"embedding dim D = {embed_dim}")]
    keys = metrics.keys()
    straight = tuple((k, k) for k in keys if "straight" in k)
    panels = list(PANELS)
    if straight:
        panels.insert(6, Panel("temporal straightness", straight, "mean cos(v_t, v_t+1)"))
    plots = [line_plot(metrics, p, extras.get(p.title, ())) for p in panels]
    known = UNPLOTTED | {k for p in panels for k, _ in p.series}
    other = [k for k in keys if k not in known][:MAX_OTHER]
    plots += [line_plot(metrics, Panel(f"other: {k}", ((k, k),), k)) for k in other]
    return [p for p in plots if p is not None]


def comparison_plot(
    labels: Sequence[str],
    rates: Sequence[float],
    intervals: Sequence[tuple[float, float] | None],
    floors: Sequence[float | None],
    x: Sequence[float] | None = None,
    xlabel: str = "evaluation",
) -> Plot:
    """Success rate (%) with 95 % Wilson intervals per evaluation, random floor beside it.

    ``x``: numeric positions (one varying setting, e.g. the solver budget); else categorical.
    """
    fig, ax = _new_axes()
    pos = list(x) if x is not None else list(range(len(labels)))
    lo = [r - 100 * iv[0] if iv else 0.0 for r, iv in zip(rates, intervals, strict=True)]
    hi = [100 * iv[1] - r if iv else 0.0 for r, iv in zip(rates, intervals, strict=True)]
    ax.errorbar(pos, rates, yerr=[lo, hi], fmt="o-", capsize=4, label="success (95 % Wilson)")
    fl = [(p, f) for p, f in zip(pos, floors, strict=True) if f is not None]
    if fl:
        ax.plot([p for p, _ in fl], [f for _, f in fl], "x--", color="grey", label="random floor")
    if x is None:
        ax.set_xticks(pos, labels, rotation=20 if len(labels) > 3 else 0, ha="right")
    elif min(pos) > 0 and max(pos) / min(pos) >= 10:
        ax.set_xscale("log")
    ax.set_ylim(-2, 102)
    ax.set_ylabel("success rate (%)")
    ax.set_xlabel(xlabel)
    ax.set_title("evaluations compared")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    parts = [f"{lab}: {r:.1f} %" for lab, r in zip(labels, rates, strict=True)]
    alt = (
        f"Success rate per evaluation with 95 % intervals and the random floor: {'; '.join(parts)}"
    )
    return Plot("evaluations compared", alt, _png(fig))
