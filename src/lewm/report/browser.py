"""Open a report in the system's headless Chromium (Debian's ``chromium``) through Playwright.

For the browser test and ``scripts/screenshot_report.py``; nothing else imports it.
Playwright (a ``dev`` extra) only drives the browser: it never downloads one. The
flags keep Chromium from reaching the network on its own (background updates,
QUIC, sync), which this sandbox refuses anyway; each launch gets a fresh profile.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lewm.errors import LewmError

DEFAULT_CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
# What the checks read from the loaded page.
INSPECT_JS = """() => ({
  images: Array.from(document.images).map(i => ({alt: i.alt, width: i.naturalWidth})),
  scrollWidth: document.documentElement.scrollWidth,
  clientWidth: document.documentElement.clientWidth,
  // two-column tables must fit the page (wide data tables may scroll inside their own box)
  kvOverflow: Array.from(document.querySelectorAll('.table-wrap'))
    .filter(w => w.querySelector('table.kv') && w.scrollWidth > w.clientWidth + 1).length,
  sections: Array.from(document.querySelectorAll('section[id]')).map(s => s.id),
  title: document.title,
})"""


class BrowserError(LewmError, RuntimeError):
    """Chromium or Playwright is not available."""


def chromium_path() -> str | None:
    """The Chromium executable (``$LEWM_CHROMIUM``, else /usr/bin/chromium), None if absent."""
    path = os.environ.get("LEWM_CHROMIUM") or DEFAULT_CHROMIUM
    return path if Path(path).is_file() else shutil.which(path)


@dataclass
class PageLog:
    """What the page did while loading: console errors, script errors, non-local requests."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    external_requests: list[str] = field(default_factory=list)


@contextmanager
def open_page(
    html: str | os.PathLike, width: int = 1280, height: int = 900
) -> Iterator[tuple[Any, PageLog]]:
    """Yield (Playwright page, log) with ``html`` loaded at a ``width`` x ``height`` viewport."""
    exe = chromium_path()
    if exe is None:
        raise BrowserError(
            f"Chromium not found at {DEFAULT_CHROMIUM} (apt-get install chromium, or set LEWM_CHROMIUM)"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        raise BrowserError("playwright is not installed (pip install -e '.[dev]')") from exc
    log = PageLog()
    with tempfile.TemporaryDirectory(prefix="lewm-chromium-") as profile, sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(
            profile,
            executable_path=exe,
            headless=True,
            args=list(CHROMIUM_ARGS),
            viewport={"width": width, "height": height},
        )
        try:
            page = ctx.new_page()
            page.on("console", lambda m: m.type == "error" and log.console_errors.append(m.text))
            page.on("pageerror", lambda e: log.page_errors.append(str(e)))
            page.on(
                "request",
                lambda r: (
                    r.url.startswith(("data:", "file:", "about:"))
                    or log.external_requests.append(r.url)
                ),
            )
            page.goto(Path(html).resolve().as_uri(), wait_until="load")
            yield page, log
        finally:
            ctx.close()


def inspect(page: Any) -> dict[str, Any]:
    """Images (alt, natural width), document vs viewport width, overflowing two-column tables,
    section ids, title."""
    return page.evaluate(INSPECT_JS)


def screenshot(
    html: str | os.PathLike,
    png: str | os.PathLike,
    width: int = 1280,
    height: int = 900,
    *,
    full_page: bool = False,
) -> Path:
    """Render ``html`` at a ``width`` x ``height`` viewport and save a PNG screenshot."""
    if not Path(html).is_file():
        raise BrowserError(f"{html}: no such report file")
    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    with open_page(html, width, height) as (page, _):
        page.screenshot(path=str(png), full_page=full_page)
    return png
