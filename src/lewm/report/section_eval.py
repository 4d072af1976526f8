"""Evaluation sections: one per evaluation directory, and a comparison of several."""

from __future__ import annotations

from typing import Any

from lewm.report.evals import (
    EvalData,
    Pooled,
    gif_label,
    pick_gifs,
    settings,
    stale_note,
    varying_settings,
)
from lewm.report.html import alert, esc, figure, kv_table, num, pct, table
from lewm.report.loading import RunData
from lewm.report.media import gif_uri
from lewm.report.plots import comparison_plot

MAX_GIFS = 8
GIF_INTRO = (
    "Panels: <strong>agent</strong> (what the planner saw; green border from the success step, "
    "red on a failure's last frame) | <strong>dataset</strong> continuation | <strong>goal</strong>."
)


def _mean_std(results: dict[str, Any], key: str) -> str:
    """``mean ± std %`` over seeds; a single seed has no spread (std null)."""
    mean, std = results.get(key), results.get(f"{key}_std")
    if not isinstance(mean, int | float):
        return "—"
    if isinstance(std, int | float):
        return f"{mean:.1f} ± {std:.1f} %"
    one_seed = len(results.get("per_seed") or []) == 1
    return f"{mean:.1f} %" + (" (one seed: no spread)" if one_seed else "")


def _ci(p: Pooled | None, which: str = "success") -> str:
    """The 95 % Wilson interval over pooled episodes, with its k/n."""
    if p is None or (iv := p.interval(which)) is None:
        return "—"
    k, n = {
        "success": (p.success, p.n),
        "random": (p.random_success, p.n),
        "unsolved": (p.success_unsolved, p.n_unsolved),
    }[which]
    return f'[{100 * iv[0]:.1f}, {100 * iv[1]:.1f}] % <span class="muted">({k}/{n})</span>'


def _muted(text: str) -> str:
    return f' <span class="muted">{esc(text)}</span>'


def _settings_text(d: Any) -> str:
    if not isinstance(d, dict) or not d:
        return "not recorded"
    return ", ".join(f"{k}={v}" for k, v in d.items() if not isinstance(v, dict | list))


def _data_rows(r: dict[str, Any]) -> list[tuple[str, str]]:
    held = {True: "held out", False: "seen in training"}.get(r.get("held_out"), "unknown")
    data = esc(
        f"{r.get('data', 'not recorded')} (profile {r.get('profile', '?')}, episodes {held})"
    )
    if r.get("held_out_note"):
        data += "<br>" + _muted(r["held_out_note"])
    env = str(r.get("env", "?"))
    if r.get("env_kwargs"):
        env += f" ({_settings_text(r['env_kwargs'])})"
    seeds = r.get("seeds") or [s.get("seed") for s in r.get("per_seed") or []]
    return [
        ("environment", esc(env)),
        ("evaluation data", data),
        ("seeds", esc(f"{seeds} × {r.get('episodes_per_seed', '?')} pairs")),
    ]


def _score_rows(r: dict[str, Any], p: Pooled | None) -> list[tuple[str, str]]:
    std_kind = r.get("std_kind") or "std over seeds (kind not recorded)"
    solved = r.get("already_solved_fraction")
    return [
        ("success rate", esc(_mean_std(r, "success_rate")) + _muted(f"({std_kind})")),
        ("95 % interval", _ci(p) + _muted("Wilson, pooled episodes of all seeds")),
        (
            "success excluding starts already solved",
            esc(pct(r.get("success_rate_excluding_solved")))
            + " mean over seeds; "
            + _ci(p, "unsolved"),
        ),
        ("random-policy floor", esc(_mean_std(r, "random_success_rate")) + "; " + _ci(p, "random")),
        (
            "already solved at step 0",
            esc(pct(100 * solved)) if isinstance(solved, int | float) else "—",
        ),
        ("headline metric", f"<code>{esc(r.get('headline_metric', '—'))}</code>"),
    ]


def _cost_rows(r: dict[str, Any]) -> list[tuple[str, str]]:
    timing = r.get("timing") if isinstance(r.get("timing"), dict) else {}
    plan = f"{num(r.get('plan_seconds_mean'))} s per environment-solve over {r.get('solves', '?')} solves"
    rows = [
        ("solver", esc(_settings_text(r.get("solver")))),
        ("MPC", esc(_settings_text(r.get("mpc")))),
        ("planning time", esc(plan)),
        ("evaluation time", esc(f"{num(timing.get('total_seconds'), 1)} s in all")),
    ]
    rc = r.get("render_consistency")
    if isinstance(rc, dict):
        ok = "ok" if rc.get("ok") else "MISMATCH"
        diff = num(rc.get("mean_abs_diff"))
        rows.append(
            ("render consistency", esc(f"{ok}: mean |render − dataset| {diff} grey levels"))
        )
    return rows


def eval_rows(e: EvalData) -> list[tuple[str, str]]:
    """(label, HTML value) rows: where the pairs came from, the scores and their spread, the cost."""
    return _data_rows(e.results) + _score_rows(e.results, e.pooled) + _cost_rows(e.results)


def per_seed_table(r: dict[str, Any]) -> str:
    rows = []
    for s in r.get("per_seed") or []:
        if not isinstance(s, dict):
            continue
        solved = s.get("already_solved_fraction")
        rows.append(
            [
                esc(s.get("seed", "?")),
                num(s.get("episodes")),
                pct(s.get("success_rate")),
                pct(s.get("success_rate_excluding_solved")),
                pct(s.get("random_success_rate")),
                pct(100 * solved) if isinstance(solved, int | float) else "—",
                num(s.get("plan_seconds_mean")),
            ]
        )
    headers = ["seed", "pairs", "success", "excl. solved", "random floor", "solved at step 0"]
    headers.append("plan s / solve")
    return (
        table(headers, rows, caption="per evaluation seed", numeric=(1, 2, 3, 4, 5, 6))
        if rows
        else ""
    )


def _gif_figure(path, problems: list[str]) -> str:
    label, ok = gif_label(path)
    try:
        uri, note = gif_uri(path)
    except (OSError, ValueError, SyntaxError) as exc:  # PIL's errors for damaged files
        problems.append(f"{path}: unreadable GIF ({exc})")
        return ""
    word = {True: "success", False: "failure"}.get(ok, "outcome unknown")
    badge = {True: '<span class="ok">success</span>', False: '<span class="bad">failure</span>'}
    cap = f"{badge.get(ok, '')} {esc(label)}" + (_muted(f"({note})") if note else "")
    alt = f"Episode video, {label}, {word}: panels agent | dataset continuation | goal"
    return f'<figure><img src="{uri}" alt="{esc(alt)}"><figcaption>{cap}</figcaption></figure>'


def gif_grid(e: EvalData, problems: list[str]) -> str:
    if not e.gifs:
        return (
            '<p class="muted">No episode videos (<code>lewm eval --video N</code> writes them).</p>'
        )
    figs = [f for f in (_gif_figure(g, problems) for g in pick_gifs(list(e.gifs), MAX_GIFS)) if f]
    shown = f"{len(figs)} of {len(e.gifs)}" if len(e.gifs) > len(figs) else f"all {len(figs)}"
    intro = f'<p class="muted">Episode videos ({shown}; successes and failures alternate). {GIF_INTRO}</p>'
    return intro + f'<div class="gifs">{"".join(figs)}</div>'


def eval_section(e: EvalData, run: RunData, problems: list[str]) -> str:
    out = [
        f"<h3>Evaluation <code>{esc(e.label)}</code></h3>",
        f'<p class="muted"><code>{esc(e.path)}</code></p>',
    ]
    if not e.belongs:
        title = "Not this run's checkpoint: kept out of the run's tables"
        out.append(alert(title, [e.checkpoint_note], bad=True))
    elif (stale := stale_note(e.results, run)) is not None:
        out.append(alert("Evaluated an earlier state of this run", [stale]))
    out.append(kv_table(eval_rows(e), caption="results.json"))
    warnings = [w for w in e.results.get("warnings") or [] if isinstance(w, str)]
    if warnings:
        out.append(alert("Warnings recorded by the evaluation", warnings))
    out.append(per_seed_table(e.results))
    out.append(gif_grid(e, problems))
    return "".join(out)


def _study_axis(evals: list[EvalData], varying: list[str]) -> list[float] | None:
    """Numeric x positions when exactly one numeric setting differs (e.g. a budget study)."""
    if len(varying) != 1:
        return None
    values = [settings(e.results).get(varying[0]) for e in evals]
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return [float(v) for v in values] if len(set(values)) == len(values) else None
    return None


def _comparison_row(e: EvalData, varying: list[str]) -> list[str]:
    r, p, s = e.results, e.pooled, settings(e.results)
    return [
        f"<code>{esc(e.label)}</code>",
        *[esc(s.get(k, "—")) for k in varying],
        esc(len(r.get("per_seed") or [])),
        num(p.n if p else None),
        esc(_mean_std(r, "success_rate")),
        _ci(p),
        pct(r.get("success_rate_excluding_solved")),
        pct(r.get("random_success_rate")),
        num(r.get("plan_seconds_mean")),
    ]


def comparison_section(evals: list[EvalData]) -> str:
    """One table and one plot over the evaluations of this run (e.g. a solver budget study)."""
    varying = varying_settings(evals)
    x = _study_axis(evals, varying)
    if x is not None:  # sort the study by its variable
        order = sorted(range(len(evals)), key=x.__getitem__)
        evals, x = [evals[i] for i in order], [x[i] for i in order]
    headers = ["evaluation", *varying, "seeds", "pairs", "success", "95 % interval"]
    headers += ["excl. solved", "random floor", "plan s / solve"]
    rows = [_comparison_row(e, varying) for e in evals]
    plot = comparison_plot(
        [e.label for e in evals],
        [float(e.results["success_rate"]) for e in evals],
        [e.pooled.interval() if e.pooled else None for e in evals],
        [e.results.get("random_success_rate") for e in evals],
        x=x,
        xlabel=varying[0] if x is not None else "evaluation",
    )
    note = (
        f"Settings that differ: {', '.join(varying)}."
        if varying
        else "Same solver and MPC settings."
    )
    numeric = tuple(range(1 + len(varying), len(headers)))
    return (
        f'<p class="muted">{esc(note)}</p>'
        + table(headers, rows, caption="one row per evaluation of this run", numeric=numeric)
        + f'<div class="grid">{figure(plot.uri, plot.alt)}</div>'
    )
