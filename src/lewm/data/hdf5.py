"""The reference HDF5 dataset layout (spec §5, OFFICIAL_FORMAT §6): read, check, write.

One HDF5 dataset per column at the root, each a flat array over all rows of all
episodes (episodes contiguous, in order), plus ``ep_len`` (int32, E) and
``ep_offset`` (int64, E). ``pixels`` is uint8 (N, H, W, 3); ``action`` is float
(N, A) where row t is the action applied after observing row t, so the last row
of every episode is NaN.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from lewm.errors import DatasetError

FORMAT_VERSION = 1
REQUIRED_COLUMNS = ("pixels", "action", "ep_len", "ep_offset")
BLOSC_FILTER_ID = 32001
COMPRESSIONS = ("gzip", "blosc", "none")


def _ensure_filters() -> bool:
    """Register the hdf5plugin filters (Blosc for paper-era files). Returns availability."""
    try:
        import hdf5plugin  # noqa: F401
    except ImportError:
        return False
    return True


def open_h5(path: str | os.PathLike, mode: str = "r") -> h5py.File:
    """Open an HDF5 file with a clear error for a missing or non-HDF5 path."""
    path = Path(path)
    _ensure_filters()
    if mode == "r" and not path.is_file():
        raise DatasetError(f"{path}: no such dataset file")
    try:
        return h5py.File(path, mode)
    except OSError as exc:
        raise DatasetError(f"{path}: not a readable HDF5 file ({exc})") from exc


@dataclass(frozen=True)
class DatasetInfo:
    """What a checked dataset holds."""

    path: str
    n_rows: int
    n_episodes: int
    ep_len: np.ndarray = field(repr=False)
    ep_offset: np.ndarray = field(repr=False)
    columns: dict[str, tuple[tuple[int, ...], str]]  # name -> (shape, dtype)
    image_size: tuple[int, int]  # (H, W)
    action_dim: int
    attrs: dict

    @property
    def min_episode_length(self) -> int:
        return int(self.ep_len.min()) if self.n_episodes else 0


def inspect_dataset(path: str | os.PathLike, *, check_actions: bool = True) -> DatasetInfo:
    """Check a file against the reference layout and describe it.

    Raises:
        DatasetError: naming the file, the column and what is wrong.
    """
    path = Path(path)
    with open_h5(path) as f:
        return _inspect(f, path, check_actions=check_actions)


def _inspect(f: h5py.File, path: Path, *, check_actions: bool) -> DatasetInfo:
    missing = [c for c in REQUIRED_COLUMNS if c not in f]
    if missing:
        raise DatasetError(
            f"{path}: missing column(s) {missing}; the reference layout needs {list(REQUIRED_COLUMNS)}"
        )
    columns = {
        name: (tuple(obj.shape), str(obj.dtype))
        for name, obj in f.items()
        if isinstance(obj, h5py.Dataset)
    }
    ep_len, ep_offset = _episode_index(f, path)
    n_rows = int(ep_len.sum())
    pixels, action = f["pixels"], f["action"]
    _check_columns(pixels, action, columns, n_rows, path)
    if check_actions:
        _check_action_rows(np.asarray(action[()], dtype=np.float64), ep_len, ep_offset, path)
    attrs = {}
    if "lewm_meta" in f.attrs:
        try:
            attrs = json.loads(f.attrs["lewm_meta"])
        except (TypeError, ValueError):
            attrs = {}
    return DatasetInfo(
        path=str(path),
        n_rows=n_rows,
        n_episodes=int(len(ep_len)),
        ep_len=ep_len,
        ep_offset=ep_offset,
        columns=columns,
        image_size=(int(pixels.shape[1]), int(pixels.shape[2])),
        action_dim=int(action.shape[1]),
        attrs=attrs,
    )


def _episode_index(f: h5py.File, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``ep_len`` and ``ep_offset`` (int64, E), checked: positive lengths, exclusive cumsum."""
    ep_len = np.asarray(f["ep_len"][()], dtype=np.int64)
    ep_offset = np.asarray(f["ep_offset"][()], dtype=np.int64)
    if ep_len.ndim != 1 or ep_offset.shape != ep_len.shape:
        raise DatasetError(
            f"{path}: ep_len {ep_len.shape} and ep_offset {ep_offset.shape} must be 1-D of equal length"
        )
    if (ep_len <= 0).any():
        raise DatasetError(f"{path}: ep_len has non-positive entries")
    expected_offset = np.concatenate([[0], np.cumsum(ep_len)[:-1]]) if len(ep_len) else ep_len
    if not np.array_equal(ep_offset, expected_offset):
        raise DatasetError(f"{path}: ep_offset is not the exclusive cumulative sum of ep_len")
    return ep_len, ep_offset


def _check_columns(pixels, action, columns: dict, n_rows: int, path: Path) -> None:
    """Dtypes and shapes of ``pixels`` and ``action``, N rows in every column, Blosc readable."""
    if pixels.dtype != np.uint8 or pixels.ndim != 4 or pixels.shape[-1] != 3:
        raise DatasetError(
            f"{path}: column 'pixels' must be uint8 (N, H, W, 3), got {pixels.dtype} {pixels.shape}"
        )
    if action.ndim != 2 or not np.issubdtype(action.dtype, np.floating):
        raise DatasetError(
            f"{path}: column 'action' must be float (N, A), got {action.dtype} {action.shape}"
        )
    for name, (shape, _) in columns.items():
        if name not in ("ep_len", "ep_offset") and (not shape or shape[0] != n_rows):
            raise DatasetError(
                f"{path}: column {name!r} has {shape[0] if shape else 0} rows, expected {n_rows} (sum of ep_len)"
            )
    if pixels.chunks is not None and pixels.compression is None:
        filters = pixels.id.get_create_plist()
        ids = [filters.get_filter(i)[0] for i in range(filters.get_nfilters())]
        if BLOSC_FILTER_ID in ids and not _ensure_filters():
            raise DatasetError(
                f"{path}: pixels are Blosc-compressed (paper-era file); `pip install hdf5plugin` to read it"
            )


def _check_action_rows(a: np.ndarray, ep_len, ep_offset, path: Path) -> None:
    """Only each episode's last action row may hold NaN/inf (the reference alignment)."""
    interior = np.ones(len(a), dtype=bool)
    interior[ep_offset + ep_len - 1] = False
    bad = ~np.isfinite(a[interior]).all(axis=1)
    if bad.any():
        row = int(np.flatnonzero(interior)[np.flatnonzero(bad)[0]])
        ep = int(np.searchsorted(ep_offset, row, side="right") - 1)
        raise DatasetError(
            f"{path}: column 'action' has NaN/inf in non-terminal row {row} "
            f"(episode {ep}, step {row - ep_offset[ep]}); only each episode's last row may be NaN"
        )


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
        if compression == "blosc" and not _ensure_filters():
            raise DatasetError("compression='blosc' needs hdf5plugin: pip install hdf5plugin")
        if not self.path.parent.is_dir():
            raise DatasetError(f"{self.path}: directory {self.path.parent} does not exist")
        self.compression = compression
        self.image_chunk_rows = image_chunk_rows
        self.tmp_path = self.path.with_name(f".{self.path.name}.partial-{os.getpid()}")
        self._f = h5py.File(self.tmp_path, "w")
        if meta is not None:
            self._f.attrs["lewm_meta"] = json.dumps(dict(meta))
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
            self._create(cols)
        assert self._spec is not None
        if set(cols) != set(self._spec):
            raise DatasetError(
                f"episode {ep} has columns {sorted(cols)}, earlier episodes had {sorted(self._spec)}"
            )
        start, stop = self._rows, self._rows + length
        for name, arr in cols.items():
            shape, dtype = self._spec[name]
            if arr.shape[1:] != shape:
                raise DatasetError(
                    f"episode {ep} column {name!r} has row shape {arr.shape[1:]}, expected {shape}"
                )
            ds = self._f[name]
            ds.resize(stop, axis=0)
            ds[start:stop] = arr.astype(dtype, copy=False)
        self._rows = stop
        self._ep_len.append(length)

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
                name, shape=(0, *row_shape), maxshape=(None, *row_shape), dtype=dtype, **kwargs
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
        self._f.create_dataset("ep_len", data=ep_len, chunks=True)
        self._f.create_dataset("ep_offset", data=ep_offset, chunks=True)
        self._f.attrs["lewm_format_version"] = FORMAT_VERSION
        self._f.close()
        os.replace(self.tmp_path, self.path)
        return self.path

    def abort(self) -> None:
        """Discard everything written so far."""
        try:
            self._f.close()
        finally:
            self.tmp_path.unlink(missing_ok=True)

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
