"""The report in a real browser: Debian's headless Chromium, driven by Playwright.

Renders a report holding every section (run, curves, two evaluations compared, one of
another checkpoint, GIFs, analysis) at 1280 px and at a phone's 390 px, screenshots it,
and checks: no console or script errors, no request leaving the file, every image
decoded (natural width > 0) with alt text, the key sections present, and no
horizontal scrolling of the page. Skipped, saying why, only when Chromium or
Playwright is missing (scripts/setup.sh installs both).
"""

from __future__ import annotations

import pytest

from lewm.report import write_report
from lewm.report.browser import chromium_path, inspect, open_page

pytest.importorskip(
    "playwright.sync_api", reason="playwright not installed (pip install -e '.[dev]')"
)
if chromium_path() is None:
    pytest.skip(
        "Chromium not installed: apt-get install chromium (scripts/setup.sh does it as root)",
        allow_module_level=True,
    )

from report_builders import make_analysis, make_eval, make_run  # noqa: E402 - after the skips

SECTIONS = {
    "problems",
    "identity",
    "training",
    "comparison",
    "evaluation",
    "other-checkpoints",
    "analysis",
}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    run = make_run(root, records=20)
    evals = [make_eval(root, run, name=f"budget{s}", samples=s, gifs=3) for s in (16, 64)]
    evals.append(make_eval(root, root / "elsewhere", name="foreign", gifs=1))
    res = write_report(run, evals=evals, analyses=[make_analysis(root)], out=root / "report.html")
    return res.path


@pytest.mark.parametrize("width", [1280, 390])
def test_report_renders_cleanly(report, width, tmp_path):
    with open_page(report, width=width, height=900) as (page, log):
        info = inspect(page)
        shot = tmp_path / f"report_{width}.png"
        page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    assert log.console_errors == [] and log.page_errors == []
    assert log.external_requests == []  # self-contained: nothing fetched from anywhere
    images = info["images"]
    assert len(images) >= 12  # training panels, comparison plot, GIFs, analysis PNG
    broken = [i["alt"][:60] for i in images if i["width"] <= 0]
    assert broken == [], f"images that did not decode: {broken}"
    assert all(i["alt"].strip() for i in images)
    assert SECTIONS <= set(info["sections"])
    assert info["kvOverflow"] == 0, f"{info['kvOverflow']} two-column table(s) wider than the page"
    assert info["scrollWidth"] <= info["clientWidth"], (
        f"page scrolls sideways at {width} px: {info['scrollWidth']} > {info['clientWidth']}"
    )


def test_the_overflow_check_can_fail(tmp_path):
    """The horizontal-scroll check detects a page that is too wide (a test of the test)."""
    wide = tmp_path / "wide.html"
    wide.write_text(
        '<!DOCTYPE html><meta name="viewport" content="width=device-width">'
        '<div style="width:2000px">wide</div>'
    )
    with open_page(wide, width=390) as (page, log):
        info = inspect(page)
    assert info["scrollWidth"] > info["clientWidth"] and log.console_errors == []
