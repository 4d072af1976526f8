"""``lewm report``: one self-contained HTML page per run (docs/report.md).

The page holds the run's identity, its training curves, its evaluations (table,
95 % intervals, episode GIFs; several of them compared), and probing / surprise
results beside the paper's values. Images are embedded as data URIs and the page
has no script, so it opens anywhere without network access.

    from lewm.report import write_report
    result = write_report("runs/tworoom", evals=["runs/tworoom/eval"], out="report.html")

Modules: :mod:`.loading` (run directory), :mod:`.evals` (evaluation directories,
checkpoint matching, Wilson intervals), :mod:`.analysis` (probe/surprise files and
the paper's values), :mod:`.media` and :mod:`.plots` (images), :mod:`.html` and the
``section_*`` modules (the page), :mod:`.build` (:func:`write_report`),
:mod:`.browser` (headless Chromium, for tests and screenshots).
"""

from lewm.report.build import ReportError, ReportResult, render, write_report
from lewm.report.evals import wilson_interval

__all__ = ["ReportError", "ReportResult", "render", "wilson_interval", "write_report"]
