"""Analysis sections: probe and surprise tables beside the paper's values, and their plots."""

from __future__ import annotations

from typing import Any

from lewm.report.analysis import AnalysisData, paper_probe, paper_surprise
from lewm.report.evals import checkpoint_match
from lewm.report.html import alert, esc, figure, num, table
from lewm.report.loading import RunData
from lewm.report.media import png_uri

SIGNIFICANCE = 0.01  # the paper's paired t-test threshold (spec §9.2)


def _mse(stats: dict[str, Any]) -> str:
    mean, std = stats.get("mse_mean"), stats.get("mse_std")
    return num(mean) + (f" ± {num(std)}" if isinstance(std, int | float) else "")


def _paper(value) -> str:
    if value is None:
        return "—"
    mse, std, r = value
    return f"{mse:.3f}" + (f" ± {std:.3f}" if std is not None else "") + f", r {r:.3f}"


def probe_table(env: object, features: str, quantities: dict[str, Any]) -> str:
    rows = []
    for name, probes in quantities.items():
        if not isinstance(probes, dict):
            continue
        for kind, stats in probes.items():
            if not isinstance(stats, dict):
                continue
            rows.append(
                [
                    f"<code>{esc(name)}</code>",
                    esc(kind),
                    _mse(stats),
                    num(stats.get("pearson_r")),
                    num(stats.get("r2")),
                    esc(_paper(paper_probe(env, name, kind))),
                ]
            )
    headers = ["quantity", "probe", "MSE (mean ± std)", "Pearson r", "R²", "paper LeWM (MSE, r)"]
    cap = f"probe.json: features {features}, environment {env or '?'}; targets z-scored"
    return table(headers, rows, caption=cap, numeric=(2, 3, 4))


def surprise_table(env: object, kinds: dict[str, dict[str, Any]]) -> str:
    rows = []
    for kind, s in kinds.items():
        p = s.get("p")
        sig = "—"
        if isinstance(p, int | float):
            sig = '<span class="ok">yes</span>' if p < SIGNIFICANCE else "no"
        rows.append(
            [
                esc(kind),
                num(s.get("t")),
                num(p, 3) if isinstance(p, int | float) else "—",
                sig,
                num(s.get("auroc")),
                num(s.get("relative_accuracy")),
                num(s.get("pairs")),
                esc(paper_surprise(kind)),
            ]
        )
    headers = [
        "kind",
        "t",
        "p",
        f"p < {SIGNIFICANCE}",
        "AUROC",
        "relative accuracy",
        "pairs",
        "paper (LeWM)",
    ]
    cap = f"surprise.json: environment {env or '?'}; paired t-test on the max surprise in the 3 model steps after the event"
    return table(headers, rows, caption=cap, numeric=(1, 2, 4, 5, 6))


def analysis_section(a: AnalysisData, run: RunData, problems: list[str]) -> str:
    out = [
        f"<h3>Analysis <code>{esc(a.path.name)}</code></h3>",
        f'<p class="muted"><code>{esc(a.path)}</code></p>',
    ]
    if a.checkpoint:
        belongs, note = checkpoint_match({"checkpoint": a.checkpoint}, a.path, run)
        if not belongs:
            out.append(alert("Not this run's checkpoint", [note], bad=True))
    for features, quantities in a.probes:
        out.append(probe_table(a.probe_env, features, quantities))
    if a.surprise:
        out.append(surprise_table(a.surprise_env, a.surprise))
        out.append(
            '<p class="muted">The paper reports surprise only as findings and curves, not numbers (spec §9.2).</p>'
        )
    figs = []
    for png in a.pngs:
        try:
            figs.append(
                figure(png_uri(png), f"Analysis plot {png.stem} from {a.path.name}", png.name)
            )
        except (OSError, ValueError, SyntaxError) as exc:  # PIL's errors for damaged files
            problems.append(f"{png}: unreadable PNG ({exc})")
    if figs:
        out.append(f'<div class="grid">{"".join(figs)}</div>')
    return "".join(out)
