"""The run's sections: identity (what was trained, on what, how long) and training curves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lewm.report.html import alert, esc, figure, kv_table, num, table
from lewm.report.loading import RunData, duration, training_seconds
from lewm.report.plots import training_plots


def _dataset(data: dict[str, Any]) -> str:
    path = data.get("path")
    name = Path(str(path)).name if path else "not recorded"
    parts = [f"<code>{esc(name)}</code>"]
    if path:
        parts.append(f'<span class="muted">({esc(path)})</span>')
    facts = []
    for key, label in (("n_episodes", "episodes"), ("n_rows", "frames")):
        if isinstance(data.get(key), int):
            facts.append(f"{data[key]:,} {label}")
    size = data.get("image_size")
    if isinstance(size, int):
        facts.append(f"{size}×{size} px")
    return " ".join(parts) + (f"<br>{esc(', '.join(facts))}" if facts else "")


def identity_rows(run: RunData, recorded_seconds: float | None = None) -> list[tuple[str, str]]:
    """(label, HTML value) rows describing the run."""
    cfg = run.config or {}
    data = cfg.get("data") if isinstance(cfg.get("data"), dict) else {}
    train = cfg.get("train") if isinstance(cfg.get("train"), dict) else {}
    seconds, source = training_seconds(run, recorded_seconds)
    commit = cfg.get("git_commit")
    rows = [
        ("run directory", f"<code>{esc(run.path)}</code>"),
        ("preset / profile", esc(f"{cfg.get('preset', '?')} / {cfg.get('profile', '?')}")),
        (
            "parameters",
            f"{run.params:,} trainable" if run.params is not None else "unknown",
        ),
        ("environment", esc(data.get("env", "not recorded"))),
        ("dataset", _dataset(data)),
        ("seed", esc(train.get("seed", "not recorded"))),
        (
            "steps",
            esc(
                f"{cfg.get('step', '?')} saved of {train.get('steps', '?')} planned, "
                f"batch size {train.get('batch_size', '?')}"
            ),
        ),
        ("git commit", f"<code>{esc(commit)}</code>" if commit else "not recorded"),
        (
            "training time",
            esc(duration(seconds))
            + (f' <span class="muted">({esc(source)})</span>' if seconds else ""),
        ),
        ("lewm version", esc(cfg.get("lewm_version", "not recorded"))),
    ]
    return rows


def identity_section(run: RunData, recorded_seconds: float | None = None) -> str:
    if run.config is None:
        note = alert(
            "No readable config.json",
            [f"{run.path}: the run's identity is unknown; showing what else is valid."],
            bad=True,
        )
        return note + kv_table(identity_rows(run, recorded_seconds)[:1])
    return kv_table(identity_rows(run, recorded_seconds), caption="from config.json")


def _last_values(run: RunData) -> str:
    rows = []
    for key in run.metrics.keys():
        steps, values = run.metrics.series(key)
        if key != "step":
            rows.append([f"<code>{esc(key)}</code>", num(values[-1], 4), num(int(steps[-1]))])
    return table(["metric", "last value", "at step"], rows, numeric=(1, 2))


def training_section(run: RunData) -> str:
    m = run.metrics
    if m.missing or not m.records:
        reason = "not found" if m.missing else "holds no valid record"
        return alert("No training curves", [f"{m.path}: {reason}."], bad=True)
    out = []
    if m.bad_lines:
        items = [f"line {n}: {why}" for n, why in m.bad_lines[:10]]
        if len(m.bad_lines) > 10:
            items.append(f"... and {len(m.bad_lines) - 10} more bad lines")
        out.append(
            alert(
                f"{m.path.name}: {len(m.bad_lines)} bad line(s) skipped; "
                f"showing the {len(m.records)} valid records",
                items,
            )
        )
    out.append(
        f'<p class="muted">{len(m.records)} logged records; validation points are the markers. '
        "Log-scale axes where every value is positive.</p>"
    )
    figs = [figure(p.uri, p.alt) for p in training_plots(m, run.config)]
    out.append(f'<div class="grid">{"".join(figs)}</div>')
    out.append("<h3>Last logged values</h3>" + _last_values(run))
    return "".join(out)
