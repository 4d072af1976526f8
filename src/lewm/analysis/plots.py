"""Matplotlib figures of the analysis commands (no pyplot: no global state, headless)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from lewm.analysis.outputs import figure_png


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def probe_scatter(
    title: str, panels: Sequence[tuple[str, np.ndarray, np.ndarray, float | None]]
) -> bytes:
    """Predicted vs true (z-scored, every dimension pooled), one panel per (label, true, pred, r)."""
    cols = min(4, max(1, len(panels)))
    rows = math.ceil(len(panels) / cols)
    fig = _figure(3.0 * cols, 3.0 * rows)
    for i, (label, true, pred, r) in enumerate(panels):
        ax = fig.add_subplot(rows, cols, i + 1)
        t, p = np.ravel(true), np.ravel(pred)
        ax.scatter(t, p, s=3, alpha=0.4, linewidths=0)
        lo = float(min(t.min(initial=0), p.min(initial=0)))
        hi = float(max(t.max(initial=0), p.max(initial=0)))
        ax.plot([lo, hi], [lo, hi], color="black", linewidth=0.8)
        ax.set_title(f"{label}\nr = {r:.3f}" if r is not None else label, fontsize=8)
        ax.set_xlabel("true (z-scored)", fontsize=7)
        ax.set_ylabel("predicted", fontsize=7)
        ax.tick_params(labelsize=6)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return figure_png(fig)


def surprise_curves(
    title: str, curves: Mapping[str, Mapping[str, Any]], event: int, window: tuple[int, int]
) -> bytes:
    """Mean surprise per model step with 95 % bands; the event step and the test window marked."""
    fig = _figure(6.4, 3.8)
    ax = fig.add_subplot(1, 1, 1)
    for name, c in curves.items():
        steps = np.asarray(c["steps"])
        mean = np.asarray(c["mean"], dtype=float)
        ax.plot(steps, mean, label=name, linewidth=1.4)
        ax.fill_between(steps, np.asarray(c["low"], float), np.asarray(c["high"], float), alpha=0.2)
    ax.axvline(event, color="red", linestyle="--", linewidth=1, label="event")
    ax.axvspan(window[0] - 0.5, window[1] + 0.5, color="red", alpha=0.06)
    ax.set_xlabel("model step (target frame)")
    ax.set_ylabel("surprise ||pred - z||^2")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return figure_png(fig)


def sweep_plot(param: str, rows: Sequence[Mapping[str, Any]], log_x: bool) -> bytes:
    """Success rate (and probe r, when measured) against the swept value."""
    fig = _figure(6.0, 3.8)
    ax = fig.add_subplot(1, 1, 1)
    xs = [float(r["value"]) for r in rows]
    ys = [r.get("success_rate") for r in rows]
    err = [r.get("success_rate_std") or 0.0 for r in rows]
    ok = [i for i, y in enumerate(ys) if y is not None]
    ax.errorbar([xs[i] for i in ok], [ys[i] for i in ok], yerr=[err[i] for i in ok],
                marker="o", capsize=3, label="success rate (%)")  # fmt: skip
    ax.set_xlabel(param)
    ax.set_ylabel("success rate (%)")
    ax.set_ylim(0, 100)
    if log_x:
        ax.set_xscale("log")
    rs = [r.get("probe_r") for r in rows]
    if any(v is not None for v in rs):
        ax2 = ax.twinx()
        ok = [i for i, v in enumerate(rs) if v is not None]
        ax2.plot([xs[i] for i in ok], [rs[i] for i in ok], marker="s", color="tab:orange",
                 label="probe r (linear)")  # fmt: skip
        ax2.set_ylabel("mean Pearson r, linear probe")
        ax2.set_ylim(0, 1)
        ax2.legend(loc="lower right", fontsize=8)
    ax.legend(loc="lower left", fontsize=8)
    ax.set_title(f"sweep of {param}", fontsize=9)
    fig.tight_layout()
    return figure_png(fig)


def image_strip(rows: Sequence[tuple[str, np.ndarray]], scale: int = 2) -> bytes:
    """Rows of uint8 frames (label, (n, H, W, 3)) as one labelled image grid."""
    n = max(len(f) for _, f in rows)
    h, w = rows[0][1].shape[1:3]
    fig = _figure(max(4.0, n * w * scale / 100 + 1.2), len(rows) * h * scale / 100 + 0.4)
    for i, (label, frames) in enumerate(rows):
        for j, frame in enumerate(frames):
            ax = fig.add_subplot(len(rows), n, i * n + j + 1)
            ax.imshow(frame, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(label, fontsize=7, rotation=0, ha="right", va="center")
    fig.subplots_adjust(wspace=0.05, hspace=0.05, left=0.15)
    return figure_png(fig)
