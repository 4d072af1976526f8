"""Writing analysis outputs: every file atomically, the JSON summary last.

A command computes everything first and writes at the very end, so an error or an
interrupt leaves no new file behind; each file appears whole or not at all
(:func:`lewm.checkpoint.atomic_write_bytes`). The JSON summary is written after the
plots, so its presence means the directory is complete.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lewm.checkpoint import atomic_write_bytes


def clean_json(value: Any) -> Any:
    """NaN and infinities -> None (JSON has neither); numpy scalars and arrays -> Python."""
    if isinstance(value, Mapping):
        return {str(k): clean_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_json(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return clean_json(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def json_bytes(obj: Mapping[str, Any]) -> bytes:
    return (json.dumps(clean_json(obj), indent=2) + "\n").encode()


def figure_png(fig) -> bytes:
    """A matplotlib Figure as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return buf.getvalue()


def write_outputs(out: str | Path, files: Mapping[str, bytes]) -> list[Path]:
    """Create ``out`` and write ``files`` (name -> bytes) in order, each atomically."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data in files.items():
        atomic_write_bytes(out / name, data)
        written.append(out / name)
    return written


def parse_ints(text: str, flag: str) -> tuple[int, ...]:
    """``"0,1,2"`` -> (0, 1, 2); anything else is a ConfigError naming the flag."""
    from lewm.errors import ConfigError

    try:
        values = tuple(int(s) for s in str(text).split(",") if s.strip())
    except ValueError:
        raise ConfigError(f"{flag} expects comma-separated integers, got {text!r}") from None
    if not values:
        raise ConfigError(f"{flag}: give at least one integer")
    return values


def parse_names(text: str | None) -> tuple[str, ...]:
    """``"a,b"`` -> ("a", "b"); brackets may hold commas (``state[0:2]``)."""
    if not text:
        return ()
    out, depth, cur = [], 0, ""
    for ch in text:
        depth += (ch == "[") - (ch == "]")
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    out.append(cur.strip())
    return tuple(n for n in out if n)
