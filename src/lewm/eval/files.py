"""What an evaluation read, in a form that can be published: portable paths and file hashes.

``results.json`` is committed next to ``RESULTS.md`` (issue 10), so it must not hold the
machine's absolute paths: a path under the current directory is written relative to it,
one outside keeps the form the user typed when that was relative, and is otherwise made
relative to the current directory (``../..``). :func:`scrub` applies the same rule to the
free text of notes and warnings. ``files`` maps each such path to its sha256, so a reader
can check that a published result came from the files they hold.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

CHUNK = 1 << 20  # bytes read at a time while hashing


_HASHES: dict[tuple[str, int, int], str] = {}  # (resolved path, size, mtime_ns) -> sha256


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks (remembered while the file's
    size and modification time stay the same: a large data file is read once per process)."""
    st = os.stat(path)
    key = (str(Path(path).resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while block := f.read(CHUNK):
                h.update(block)
        _HASHES[key] = h.hexdigest()
    return _HASHES[key]


def portable_path(path: str | os.PathLike, cwd: Path | None = None) -> str:
    """``path`` without the machine's absolute prefix (module docstring)."""
    cwd = (cwd or Path.cwd()).resolve()
    p = Path(path)
    absolute = p if p.is_absolute() else cwd / p
    absolute = Path(os.path.normpath(absolute))
    try:
        return absolute.relative_to(cwd).as_posix() or "."
    except ValueError:
        pass
    if not p.is_absolute():
        return p.as_posix()
    return Path(os.path.relpath(absolute, cwd)).as_posix()


def checkpoint_files(ckpt: str | os.PathLike) -> list[Path]:
    """The files ``lewm.load`` reads for ``ckpt`` (and the run's ``split.json``), that exist.

    A run directory: ``config.json``, ``model.safetensors``, ``split.json``; the authors'
    folder: ``config.json`` and its ``.pt`` weights; a single file: it (and the
    ``config.json`` beside it).
    """
    from lewm.checkpoint.common import CONFIG_FILE, TRAIN_STATE_FILE, WEIGHTS_FILE

    p = Path(ckpt)
    if p.is_file():
        return [q for q in (p.parent / CONFIG_FILE, p) if q.is_file()]
    if not p.is_dir():
        return []
    if (p / WEIGHTS_FILE).is_file():
        names = [CONFIG_FILE, WEIGHTS_FILE, "split.json"]
        return [p / n for n in names if (p / n).is_file()]
    pts = [q for q in sorted(p.glob("*.pt")) if q.name != TRAIN_STATE_FILE]
    weights = [p / "weights.pt"] if (p / "weights.pt").is_file() else pts[:1]
    return [q for q in [p / CONFIG_FILE, *weights] if q.is_file()]


def file_hashes(paths: Iterable[str | os.PathLike | None]) -> dict[str, str]:
    """{portable path: sha256} of the given files (None and repeats skipped)."""
    out: dict[str, str] = {}
    for path in paths:
        if path is None:
            continue
        key = portable_path(path)
        if key not in out:
            out[key] = sha256_file(path)
    return out


def scrub(value: Any, paths: Iterable[str | os.PathLike | None] = ()) -> Any:
    """``value`` (JSON-like) with every absolute form of ``paths`` and of the current
    directory replaced by its portable form, in every string at any depth."""
    cwd = Path.cwd().resolve()
    table: dict[str, str] = {}
    for path in paths:
        if path is None:
            continue
        p = Path(path)
        for form in {str(p), str(p.absolute()), str(p.resolve())}:
            if Path(form).is_absolute():
                table[form] = portable_path(path, cwd)
    prefix = str(cwd) + os.sep
    order = sorted(table, key=len, reverse=True)  # longest first: no partial replacements

    def clean(text: str) -> str:
        for form in order:
            text = text.replace(form, table[form])
        return text.replace(prefix, "")

    def walk(v: Any) -> Any:
        if isinstance(v, str):
            return clean(v)
        if isinstance(v, Mapping):
            return {clean(k) if isinstance(k, str) else k: walk(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [walk(x) for x in v]
        return v

    return walk(value)
