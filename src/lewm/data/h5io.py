"""The one safe layer between lewm and HDF5 files: opening, reading, writing.

- :func:`open_h5` opens a file for reading; every dataset read through it that fails
  (a damaged compressed chunk, a truncated file) raises a one-line
  :class:`~lewm.errors.DatasetError` naming the file and the column, instead of
  h5py's ``OSError`` from deep inside a loader.
- :class:`GuardedFile` is the raw file a writer gives h5py. HDF5 buffers writes and,
  when the disk fills, reports the failure from object destructors and then crashes
  the interpreter (SIGSEGV at exit). Through this file HDF5 never sees a failed
  write: the first ``OSError`` is kept (later writes are dropped) and the writer
  checks :attr:`GuardedFile.error` after every call, so a full disk becomes one
  ``OSError`` in Python and the partial file is removed.
- :func:`signals_deferred`: a Ctrl-C or SIGTERM that arrives while HDF5 is calling
  back into :class:`GuardedFile` would be swallowed there (HDF5 ignores exceptions
  raised in its callbacks) or, worse, look to HDF5 like a failed write; writers run
  their HDF5 calls inside this context, which delivers such signals right after.
- Partial files (``.NAME.partial-PID``) hold an exclusive ``flock`` while their
  writer lives; :func:`remove_stale_partials` deletes those whose lock is free (their
  writer died, e.g. by ``kill -9``), which the next writer to the same path does.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import h5py

from lewm.errors import DatasetError

FORMAT_VERSION = 1
BLOSC_FILTER_ID = 32001
COMPRESSIONS = ("gzip", "blosc", "none")


def ensure_filters() -> bool:
    """Register the hdf5plugin filters (Blosc for paper-era files). Returns availability."""
    try:
        import hdf5plugin  # noqa: F401
    except ImportError:
        return False
    return True


# --------------------------------------------------------------------------- reading


def open_h5(path: str | os.PathLike, mode: str = "r") -> h5py.File:
    """Open an HDF5 file; a missing, non-HDF5 or damaged file is a DatasetError.

    Datasets read from the returned file turn read failures into DatasetError too.
    """
    path = Path(path)
    ensure_filters()
    if mode == "r" and not path.is_file():
        raise DatasetError(f"{path}: no such dataset file")
    try:
        return CheckedFile(path, mode)
    except OSError as exc:
        raise DatasetError(f"{path}: not a readable HDF5 file ({_reason(exc)})") from exc


class CheckedFile(h5py.File):
    """An h5py File whose datasets are :class:`CheckedDataset` (reads that fail name the file)."""

    def __getitem__(self, name):
        obj = super().__getitem__(name)
        if isinstance(obj, h5py.Dataset):
            return CheckedDataset(obj.id, self.filename)
        return obj


class CheckedDataset(h5py.Dataset):
    """An h5py Dataset whose failed reads raise DatasetError (file, column, reason)."""

    def __init__(self, bind, filename: str):
        super().__init__(bind)
        self._lewm_filename = filename

    def __getitem__(self, args, new_dtype=None):
        try:
            return super().__getitem__(args, new_dtype=new_dtype)
        except OSError as exc:
            raise self._damaged(exc) from exc

    def read_direct(self, dest, source_sel=None, dest_sel=None):
        try:
            return super().read_direct(dest, source_sel, dest_sel)
        except OSError as exc:
            raise self._damaged(exc) from exc

    def _damaged(self, exc: OSError) -> DatasetError:
        return DatasetError(
            f"{self._lewm_filename}: column {self.name.lstrip('/')!r} cannot be read, the file "
            f"is damaged ({_reason(exc)}); collect it again or restore a copy"
        )


def _reason(exc: OSError) -> str:
    text = " ".join(str(exc).split())
    return text[:200]


# --------------------------------------------------------------------------- writing


class GuardedFile(io.RawIOBase):
    """A read/write raw file for ``h5py.File(fileobj)`` whose writes never fail for HDF5.

    The first write error is stored in :attr:`error` and later writes are dropped, so
    HDF5 stays consistent enough to close; the owner must check :attr:`error` after
    each HDF5 call and discard the file when it is set. The file holds an exclusive
    ``flock`` for as long as it is open (see :func:`remove_stale_partials`).
    """

    def __init__(self, path: Path):
        super().__init__()
        self.path = path
        self.error: OSError | None = None
        self._f = open(path, "w+b", buffering=0)  # noqa: SIM115 - closed in close()
        try:
            fcntl.flock(self._f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # no locks on this file system: cleanup then never deletes it
            pass

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        return self._f.readinto(b)

    def write(self, b) -> int:
        view = memoryview(b).cast("B")
        if self.error is None:
            done = 0
            try:
                while done < len(view):
                    n = self._f.write(view[done:])
                    if not n:
                        raise OSError(28, os.strerror(28), str(self.path))
                    done += n
            except OSError as exc:
                self.error = exc
        return len(view)

    def seek(self, pos: int, whence: int = 0) -> int:
        return self._f.seek(pos, whence)

    def tell(self) -> int:
        return self._f.tell()

    def truncate(self, size: int | None = None) -> int:
        try:
            return self._f.truncate(size)
        except OSError as exc:
            self.error = self.error or exc
            return self.tell() if size is None else size

    def flush(self) -> None:
        pass  # unbuffered

    def sync(self) -> None:
        """fsync, so a rename after it never exposes a file whose bytes are not on disk."""
        if self.error is None:
            try:
                os.fsync(self._f.fileno())
            except OSError as exc:
                self.error = exc

    def close(self) -> None:
        if not self.closed:
            self._f.close()  # releases the flock
        super().close()


_DEFERRED = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM while the block runs HDF5 calls; deliver them when it ends.

    Only the main thread receives Python signals; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {s: signal.signal(s, lambda signum, frame: caught.append(signum)) for s in _DEFERRED}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        for s in dict.fromkeys(caught):
            signal.raise_signal(s)  # now, to the real handler, outside HDF5


def partial_path(path: Path) -> Path:
    """The hidden file a writer of ``path`` fills before the final rename."""
    return path.with_name(f".{path.name}.partial-{os.getpid()}")


def remove_stale_partials(path: Path) -> list[Path]:
    """Delete ``.NAME.partial-*`` files of ``path`` whose writer is gone; returns them.

    A live writer holds an exclusive lock on its partial file, so a lock that can be
    taken means the writer died (SIGKILL, power loss) and its file is garbage.
    """
    removed = []
    for candidate in path.parent.glob(f".{path.name}.partial-*"):
        try:
            with open(candidate, "rb") as f:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                candidate.unlink()
                removed.append(candidate)
        except OSError:  # locked (a live writer), vanished, or not ours to delete
            continue
    return removed
