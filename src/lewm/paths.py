"""Output-path validation, done before any work starts.

Every command that writes (``collect``, ``train``, ``eval``, ``report``,
``data preview``) calls one of the two checks below on its output path first, so
a path that cannot be used fails in a second with one ``error:`` line instead of
after minutes of work (or with a traceback). The checks cover: an empty path
(which would silently mean the current directory), a file where a directory is
wanted and vice versa, a path under an existing file, a directory that cannot be
written (permissions or a read-only mount), and an output equal to one of the
command's inputs (``--out`` naming the ``--data`` file).

Nothing is created or written here; the callers create what they need.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from lewm.errors import ConfigError, DatasetError

__all__ = ["OutputPathError", "check_output_dir", "check_output_file"]


class OutputPathError(ConfigError, DatasetError):
    """An output path that cannot be used (empty, wrong kind, unwritable, equal to an input).

    Both a ConfigError and a DatasetError: the per-command checks it replaces raised one
    or the other, and code that caught those still catches this."""


def check_output_dir(
    path: str | os.PathLike,
    *,
    inputs: Iterable[str | os.PathLike] = (),
    what: str = "--out",
) -> Path:
    """Check that ``path`` can be used (or created) as an output directory.

    Args:
        path: the directory a command will write into; it may not exist yet.
        inputs: files or directories the command reads; the output may be none
            of them and may not contain an input file's own path.
        what: how the path is named in error messages (the flag).

    Returns:
        ``path`` as a :class:`Path` (not resolved, so messages keep the user's form).

    Raises:
        OutputPathError: the path is empty, names an existing file, lies under a
            file, cannot be created or written, or equals an input.
    """
    p = _non_empty(path, what)
    if p.exists() and not p.is_dir():
        raise OutputPathError(f"{what} {p} is an existing file; a directory is wanted")
    _check_not_an_input(p, inputs, what)
    _check_writable_from(p, what)
    return p


def check_output_file(
    path: str | os.PathLike,
    *,
    inputs: Iterable[str | os.PathLike] = (),
    what: str = "--out",
    parent_must_exist: bool = False,
) -> Path:
    """Check that ``path`` can be written as an output file.

    Whether an existing file may be replaced is the caller's rule (``--overwrite``);
    this only checks that writing is possible at all.

    Args:
        path: the file a command will write; it may not exist yet.
        inputs: files the command reads; the output may be none of them.
        what: how the path is named in error messages (the flag).
        parent_must_exist: refuse a path whose folder does not exist (instead of
            letting the caller create it).

    Returns:
        ``path`` as a :class:`Path`.

    Raises:
        OutputPathError: the path is empty, names a directory, lies under a file,
            its folder is missing (when required) or unwritable, or equals an input.
    """
    p = _non_empty(path, what)
    if p.is_dir():
        raise OutputPathError(f"{what} {p} is a directory; a file name is wanted")
    if str(path).endswith(os.sep):
        raise OutputPathError(f"{what} {str(path)!r} ends with a separator; a file name is wanted")
    _check_not_an_input(p, inputs, what)
    parent = p.parent
    if parent_must_exist and not parent.exists():
        raise OutputPathError(f"{what} {p}: folder {parent} does not exist; create it first")
    _check_writable_from(parent, what, target=p)
    return p


def _non_empty(path: str | os.PathLike | None, what: str) -> Path:
    # Path("") is Path("."): an empty flag would silently write into the cwd.
    if path is None or not str(os.fspath(path)).strip():
        raise OutputPathError(f"{what} is empty; give a path")
    return Path(os.fspath(path)).expanduser()


def _same(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def _check_not_an_input(p: Path, inputs: Iterable[str | os.PathLike], what: str) -> None:
    for item in inputs:
        if item is None or not str(os.fspath(item)):
            continue
        src = Path(os.fspath(item)).expanduser()
        if _same(p, src):
            raise OutputPathError(f"{what} {p} is also an input ({src}); choose another path")


def _check_writable_from(target_dir: Path, what: str, *, target: Path | None = None) -> None:
    """Walk up to the nearest existing ancestor and check it is a writable directory."""
    shown = target if target is not None else target_dir
    probe = target_dir
    while not probe.exists():
        if probe.is_symlink():  # a dangling link: creating through it fails obscurely
            raise OutputPathError(f"{what} {shown}: {probe} is a broken symbolic link")
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise OutputPathError(
            f"{what} {shown} lies under {probe}, which is a file, not a directory"
        )
    if _read_only_mount(probe):
        raise OutputPathError(f"{what} {shown}: {probe} is on a read-only file system")
    if not os.access(probe, os.W_OK | os.X_OK) or not _can_create_in(probe):
        raise OutputPathError(f"{what} {shown}: directory {probe} is not writable")
    if target is not None and target.exists() and not os.access(target, os.W_OK):
        # os.replace would still work in a writable folder, but a read-only file is a
        # clear sign the user does not want it replaced.
        raise OutputPathError(f"{what} {target} exists and is read-only")


def _can_create_in(directory: Path) -> bool:
    # os.access answers "yes" for root even where creating fails (/proc, some
    # mounts); an unnamed temporary file (O_TMPFILE on Linux) is the real test and
    # leaves nothing behind.
    try:
        with tempfile.TemporaryFile(dir=directory):
            return True
    except OSError:
        return False


def _read_only_mount(directory: Path) -> bool:
    try:
        return bool(os.statvfs(directory).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):  # AttributeError: no statvfs (Windows)
        return False
