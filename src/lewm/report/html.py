"""The page: one self-contained HTML document (inline CSS, no script, images as data URIs).

Everything user-provided goes through :func:`esc`. Tables always carry ``<th>``
headers and sit in a ``.table-wrap`` that scrolls on its own, so a wide table never
makes the body scroll sideways on a phone.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence

CSS = """
:root { --fg: #1d232b; --muted: #5c6773; --line: #d9dee4; --bg: #ffffff; --soft: #f4f6f8;
        --ok: #1f7a3a; --bad: #b42318; --warn-bg: #fff4e5; --warn-line: #e8a33d; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; color: var(--fg); background: var(--bg); line-height: 1.45;
       font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
main { max-width: 1160px; margin: 0 auto; padding: 16px; }
header.top { border-bottom: 1px solid var(--line); margin-bottom: 8px; }
h1 { font-size: 1.55rem; margin: 8px 0 4px; overflow-wrap: anywhere; }
h2 { font-size: 1.25rem; margin: 28px 0 8px; padding-top: 8px; border-top: 1px solid var(--line); }
h3 { font-size: 1.05rem; margin: 18px 0 6px; overflow-wrap: anywhere; }
p, li { overflow-wrap: anywhere; }
.muted { color: var(--muted); }
nav ul { list-style: none; padding: 0; margin: 8px 0; display: flex; flex-wrap: wrap; gap: 6px 14px; }
nav a { color: #1a5fb4; text-decoration: none; }
code { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 0.92em;
       background: var(--soft); padding: 0 3px; border-radius: 3px; overflow-wrap: anywhere; }
.table-wrap { overflow-x: auto; max-width: 100%; margin: 6px 0 12px; }
table { border-collapse: collapse; min-width: 50%; }
th, td { border: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
thead th { background: var(--soft); }
th[scope=row] { background: var(--soft); font-weight: 600; }
table.kv { width: 100%; max-width: 960px; }
table.kv th[scope=row] { width: 30%; min-width: 7.5em; }
table.kv td { overflow-wrap: anywhere; }
table.kv th { overflow-wrap: break-word; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
p.cap { margin: 10px 0 2px; }
table:not(.kv) td { white-space: nowrap; }
table:not(.kv) code { overflow-wrap: normal; }
.alert { border: 1px solid var(--warn-line); background: var(--warn-bg); padding: 8px 12px;
         border-radius: 6px; margin: 10px 0; }
.alert.bad { border-color: var(--bad); background: #fdecea; }
.alert ul { margin: 4px 0; padding-left: 20px; }
.grid { display: grid; gap: 14px; grid-template-columns: repeat(auto-fill, minmax(min(100%, 460px), 1fr)); }
.gifs { display: grid; gap: 12px; grid-template-columns: repeat(auto-fill, minmax(min(100%, 300px), 1fr)); }
figure { margin: 0; min-width: 0; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid var(--line); }
.gifs img { width: 100%; image-rendering: pixelated; }
figcaption { font-size: 0.9em; color: var(--muted); margin-top: 3px; overflow-wrap: anywhere; }
.ok { color: var(--ok); font-weight: 600; }
.bad { color: var(--bad); font-weight: 600; }
footer { margin-top: 32px; padding-top: 8px; border-top: 1px solid var(--line); color: var(--muted);
         font-size: 0.9em; }
"""


def esc(value: object) -> str:
    """HTML-escaped text (attribute-safe)."""
    return html.escape(str(value), quote=True)


def num(value: object, digits: int = 3) -> str:
    """A number for a table: ``digits`` significant decimals, "—" for missing, "nan"/"inf" kept."""
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return "—" if value is None else esc(value)
    if isinstance(value, int):
        return f"{value:,}"
    if not math.isfinite(value):
        return str(value)
    if value != 0 and (abs(value) >= 1e5 or abs(value) < 10 ** (-digits)):
        return f"{value:.{digits}g}"
    return f"{value:.{digits}f}"


def pct(value: object, digits: int = 1) -> str:
    """A percentage already in 0..100."""
    return "—" if not isinstance(value, int | float) else f"{value:.{digits}f} %"


def table(
    headers: Sequence[str], rows: Iterable[Sequence[str]], *, caption: str = "", numeric=()
) -> str:
    """A table with a header row. Cells are HTML already (escape them first).

    Args:
        headers: column titles (plain text, escaped here).
        rows: cells per row (HTML).
        numeric: indices of right-aligned numeric columns.
    """
    head = "".join(f'<th scope="col">{esc(h)}</th>' for h in headers)
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>"
            for i, c in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    return (
        f'{_caption(caption)}<div class="table-wrap"><table{_label(caption)}><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def kv_table(rows: Iterable[tuple[str, str]], *, caption: str = "", key: str = "item") -> str:
    """A two-column table: row headers (plain text) and values (HTML)."""
    body = "".join(f'<tr><th scope="row">{esc(k)}</th><td>{v}</td></tr>' for k, v in rows)
    return (
        f'{_caption(caption)}<div class="table-wrap"><table class="kv"{_label(caption)}><thead><tr>'
        f'<th scope="col">{esc(key)}</th><th scope="col">value</th></tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


# Captions sit above the table, not in <caption>: a table wider than a phone scrolls in its
# box, and the caption's text would scroll (and be cut) with it.
def _caption(text: str) -> str:
    return f'<p class="cap muted">{esc(text)}</p>' if text else ""


def _label(text: str) -> str:
    return f' aria-label="{esc(text)}"' if text else ""


def figure(src: str, alt: str, caption: str = "") -> str:
    """An embedded image (``src`` is a data URI) with alt text and an optional caption."""
    cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return f'<figure><img src="{src}" alt="{esc(alt)}" loading="eager">{cap}</figure>'


def alert(title: str, items: Sequence[str], *, bad: bool = False) -> str:
    """A highlighted box listing problems (items are plain text)."""
    lis = "".join(f"<li>{esc(i)}</li>" for i in items)
    return (
        f'<div class="alert{" bad" if bad else ""}" role="alert"><strong>{esc(title)}</strong>'
        f"<ul>{lis}</ul></div>"
    )


def section(sid: str, title: str, body: str) -> str:
    return f'<section id="{esc(sid)}"><h2>{esc(title)}</h2>{body}</section>'


def page(title: str, subtitle: str, nav: Sequence[tuple[str, str]], body: str, foot: str) -> str:
    """The whole document. ``nav``: (section id, label) pairs; ``body``: the sections' HTML."""
    links = "".join(f'<li><a href="#{esc(i)}">{esc(label)}</a></li>' for i, label in nav)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body><main>"
        f'<header class="top"><h1>{esc(title)}</h1><p class="muted">{esc(subtitle)}</p>'
        f'<nav aria-label="sections"><ul>{links}</ul></nav></header>'
        f"{body}<footer>{esc(foot)}</footer></main></body></html>\n"
    )
