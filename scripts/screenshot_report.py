#!/usr/bin/env python3
"""Screenshot a `lewm report` page in headless Chromium (for the README / docs).

Usage:
    python scripts/screenshot_report.py REPORT.html OUT.png [--width 1280] [--height 900] [--full-page]

Needs Debian's chromium (/usr/bin/chromium, or $LEWM_CHROMIUM) and playwright (the `dev` extra);
no browser is downloaded. By default only the first screen (the top of the report) is captured.
Example, after `lewm demo`:
    python scripts/screenshot_report.py demo_out/report.html docs/report_screenshot.png
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    from lewm.errors import LewmError
    from lewm.report.browser import screenshot

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("html", help="the report HTML file")
    p.add_argument("png", help="where to write the screenshot")
    p.add_argument("--width", type=int, default=1280, help="viewport width in px (default 1280)")
    p.add_argument("--height", type=int, default=900, help="viewport height in px (default 900)")
    p.add_argument(
        "--full-page", action="store_true", help="capture the whole page, not one screen"
    )
    args = p.parse_args(argv)
    try:
        out = screenshot(args.html, args.png, args.width, args.height, full_page=args.full_page)
    except LewmError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
