"""Writing the reference HDF5 layout crash-safely: :class:`DatasetWriter`.

Rows go to a hidden ``.NAME.partial-PID`` file next to the destination, written
through :class:`lewm.data.h5io.GuardedFile` (a full disk is one ``OSError``, never a
crash) and locked while the writer lives; ``close()`` adds the episode index, fsyncs
and renames it into place. A killed writer leaves only its partial file, which the
next writer of the same path deletes (:func:`lewm.data.h5io.remove_stale_partials`).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path

import h5py
import numpy as np

from lewm.data.h5io import (
    COMPRESSIONS,
    FORMAT_VERSION,
    GuardedFile,
    ensure_filters,
    partial_path,
    remove_stale_partials,
    signals_deferred,
)
from lewm.errors import DatasetError

__all__ = ["DatasetWriter"]


class DatasetWriter:
    """Append episodes to a reference-layout file, crash-safely.

    Rows are written to a hidden temporary file next to ``path``; ``close()``
    adds ``ep_len``/``ep_offset`` and renames it into place. If the writer is
    used as a context manager and the block raises, the temporary file is
    deleted, so an interrupted run never leaves a file that looks complete.

    Args:
        path: destination ``.h5`` file; its directory must exist.
        compression: ``"gzip"`` (default; level 1, chunks of ``image_chunk_rows``
            for image columns), ``"blosc"`` (LZ4 + shuffle as the paper-era files,
            needs hdf5plugin) or ``"none"``.
        meta: JSON-serialisable metadata stored in the file attribute ``lewm_meta``.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        compression: str = "gzip",
        image_chunk_rows: int = 100,
        meta: Mapping | None = None,
    ):
        self.path = Path(path)
        if compression not in COMPRESSIONS:
            raise DatasetError(f"compression must be one of {COMPRESSIONS}, got {compression!r}")
        if compression == "blosc" and not ensure_filters():
            raise DatasetError("compression='blosc' needs hdf5plugin: pip install hdf5plugin")
        if not self.path.parent.is_dir():
            raise DatasetError(f"{self.path}: directory {self.path.parent} does not exist")
        self.compression = compression
        self.image_chunk_rows = image_chunk_rows
        for stale in remove_stale_partials(self.path):
            print(f"note: removed {stale}, left by a writer that died", file=sys.stderr)
        self.tmp_path = partial_path(self.path)
        self._raw = GuardedFile(self.tmp_path)
        try:
            with signals_deferred():
                self._f = h5py.File(self._raw, "w")
                if meta is not None:
                    self._f.attrs["lewm_meta"] = json.dumps(dict(meta))
                self._check_io()
        except BaseException:
            self._discard()
            raise
        self._spec: dict[str, tuple[tuple[int, ...], np.dtype]] | None = None
        self._ep_len: list[int] = []
        self._rows = 0

    # -- writing -------------------------------------------------------------
    def add_episode(self, columns: Mapping[str, np.ndarray]) -> None:
        """Append one episode. Every array has the episode length as dim 0.

        ``pixels`` must be uint8 (L, H, W, 3) and ``action`` float (L, A) with a
        NaN last row (the reference alignment). ``ep_idx`` and ``step_idx`` are
        added by the writer.
        """
        cols = {k: np.asarray(v) for k, v in columns.items()}
        length = _check_episode(cols)
        ep = len(self._ep_len)
        cols["ep_idx"] = np.full(length, ep, dtype=np.int32)
        cols["step_idx"] = np.arange(length, dtype=np.int32)
        if self._spec is None:
            with signals_deferred():
                self._create(cols)
        assert self._spec is not None
        if set(cols) != set(self._spec):
            raise DatasetError(
                f"episode {ep} has columns {sorted(cols)}, earlier episodes had {sorted(self._spec)}"
            )
        for name, arr in cols.items():
            if arr.shape[1:] != self._spec[name][0]:
                raise DatasetError(
                    f"episode {ep} column {name!r} has row shape {arr.shape[1:]}, "
                    f"expected {self._spec[name][0]}"
                )
        with signals_deferred():  # HDF5 objects are released inside _append, so inside this too
            self._append(cols, self._rows, self._rows + length)
        self._rows += length
        self._ep_len.append(length)

    def _append(self, cols: Mapping[str, np.ndarray], start: int, stop: int) -> None:
        for name, arr in cols.items():
            ds = self._f[name]
            ds.resize(stop, axis=0)
            ds[start:stop] = arr.astype(self._spec[name][1], copy=False)
            self._check_io()

    def _create(self, cols: Mapping[str, np.ndarray]) -> None:
        self._spec = {}
        for name, arr in cols.items():
            row_shape = arr.shape[1:]
            dtype = arr.dtype
            if dtype.kind == "U":
                dtype = h5py.string_dtype()
            kwargs: dict = {}
            if len(row_shape) >= 2:  # images
                kwargs["chunks"] = (self.image_chunk_rows, *row_shape)
                if self.compression == "gzip":
                    kwargs.update(compression="gzip", compression_opts=1)
                elif self.compression == "blosc":
                    import hdf5plugin

                    kwargs.update(
                        hdf5plugin.Blosc(cname="lz4", clevel=5, shuffle=hdf5plugin.Blosc.SHUFFLE)
                    )
            else:
                kwargs["chunks"] = (1000, *row_shape)
            self._f.create_dataset(
                name,
                shape=(0, *row_shape),
                maxshape=(None, *row_shape),
                dtype=dtype,
                track_times=False,  # no creation time: the same episodes give the same bytes
                **kwargs,
            )
            self._spec[name] = (row_shape, np.dtype(dtype))

    # -- finishing -----------------------------------------------------------
    @property
    def n_episodes(self) -> int:
        return len(self._ep_len)

    def close(self) -> Path:
        """Write the episode index, flush and atomically move the file into place."""
        if not self._ep_len:
            self.abort()
            raise DatasetError(f"{self.path}: no episodes were written")
        ep_len = np.asarray(self._ep_len, dtype=np.int32)
        ep_offset = np.concatenate([[0], np.cumsum(ep_len, dtype=np.int64)[:-1]]).astype(np.int64)
        try:
            with signals_deferred():
                self._f.create_dataset("ep_len", data=ep_len, chunks=True, track_times=False)
                self._f.create_dataset("ep_offset", data=ep_offset, chunks=True, track_times=False)
                self._f.attrs["lewm_format_version"] = FORMAT_VERSION
                self._f.close()
                self._raw.sync()
                self._check_io()
                self._raw.close()
                os.replace(self.tmp_path, self.path)
        except BaseException:
            self._discard()
            raise
        return self.path

    def abort(self) -> None:
        """Discard everything written so far."""
        self._discard()

    def _check_io(self) -> None:
        """Raise the first write error the guarded file saw (a full disk, an I/O error)."""
        exc = self._raw.error
        if exc is not None:
            raise OSError(exc.errno, exc.strerror or str(exc), str(self.path)) from exc

    def _discard(self) -> None:
        # The partial file goes first: even if closing fails, nothing is left behind.
        self.tmp_path.unlink(missing_ok=True)
        try:
            with signals_deferred():
                if getattr(self, "_f", None) is not None and self._f.id.valid:
                    self._f.close()
        except (OSError, RuntimeError):
            pass  # writes after an error are dropped by the guarded file; nothing to save
        finally:
            self._raw.close()

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _check_episode(cols: Mapping[str, np.ndarray]) -> int:
    """Check one episode's columns for :meth:`DatasetWriter.add_episode`; returns its length."""
    for required in ("pixels", "action"):
        if required not in cols:
            raise DatasetError(f"episode is missing column {required!r}")
    for reserved in ("ep_len", "ep_offset", "ep_idx", "episode_idx", "step_idx"):
        if reserved in cols:
            raise DatasetError(f"column {reserved!r} is written by the writer; do not pass it")
    length = len(cols["pixels"])
    if length < 1:
        raise DatasetError("an episode needs at least one row")
    for name, arr in cols.items():
        if arr.ndim == 0 or len(arr) != length:
            raise DatasetError(
                f"column {name!r} has {len(arr) if arr.ndim else 0} rows, pixels has {length}"
            )
    px, act = cols["pixels"], cols["action"]
    if px.dtype != np.uint8 or px.ndim != 4 or px.shape[-1] != 3:
        raise DatasetError(f"pixels must be uint8 (L, H, W, 3), got {px.dtype} {px.shape}")
    if act.ndim != 2 or not np.issubdtype(act.dtype, np.floating):
        raise DatasetError(f"action must be float (L, A), got {act.dtype} {act.shape}")
    if not np.isnan(act[-1]).all():
        raise DatasetError("the last action row of an episode must be NaN (reference alignment)")
    if not np.isfinite(act[:-1]).all():
        raise DatasetError("non-terminal action rows must be finite")
    return length
