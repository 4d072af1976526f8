"""The reference HDF5 dataset layout (spec §5, OFFICIAL_FORMAT §6): read and check.

One HDF5 dataset per column at the root, each a flat array over all rows of all
episodes (episodes contiguous, in order), plus ``ep_len`` (int32, E) and
``ep_offset`` (int64, E). ``pixels`` is uint8 (N, H, W, 3); ``action`` is float
(N, A) where row t is the action applied after observing row t, so the last row
of every episode is NaN.

:func:`inspect_dataset` refuses anything else with one :class:`DatasetError` naming
the file, the column and what is wrong, and decompresses a sample of chunks so a
damaged file is found before training or evaluation starts. Files are opened
through :mod:`lewm.data.h5io` (reads that fail name the file); writing is
:class:`lewm.data.hdf5_writer.DatasetWriter` (re-exported here).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from lewm.data.h5io import (
    BLOSC_FILTER_ID,
    COMPRESSIONS,
    FORMAT_VERSION,
    ensure_filters,
    open_h5,
)
from lewm.data.hdf5_writer import DatasetWriter
from lewm.errors import DatasetError

__all__ = [
    "BLOSC_FILTER_ID",
    "COMPRESSIONS",
    "FORMAT_VERSION",
    "REQUIRED_COLUMNS",
    "DatasetInfo",
    "DatasetWriter",
    "check_chunks",
    "inspect_dataset",
    "open_h5",
]

REQUIRED_COLUMNS = ("pixels", "action", "ep_len", "ep_offset")
SAMPLE_CHUNKS = 4  # chunks per column decompressed by every inspect_dataset (a few ms)


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


def inspect_dataset(
    path: str | os.PathLike, *, check_actions: bool = True, sample_chunks: int = SAMPLE_CHUNKS
) -> DatasetInfo:
    """Check a file against the reference layout and describe it.

    Args:
        check_actions: also check that only each episode's last action row is NaN.
        sample_chunks: decompress this many chunks of every chunked column (evenly
            spread, first and last included) to find damage; 0 skips it.

    Raises:
        DatasetError: naming the file, the column and what is wrong.
    """
    path = Path(path)
    with open_h5(path) as f:
        info = _inspect(f, path, check_actions=check_actions)
        if sample_chunks:
            check_chunks(f, path, sample_chunks)
        return info


def _inspect(f: h5py.File, path: Path, *, check_actions: bool) -> DatasetInfo:
    missing = [c for c in REQUIRED_COLUMNS if c not in f]
    if missing:
        raise DatasetError(
            f"{path}: missing column(s) {missing}; the reference layout needs {list(REQUIRED_COLUMNS)}"
        )
    for name in REQUIRED_COLUMNS:
        if not isinstance(f[name], h5py.Dataset):
            raise DatasetError(
                f"{path}: {name!r} is an HDF5 {type(f[name]).__name__.lower()}, not a dataset "
                "(the reference layout stores every column as one dataset at the root)"
            )
    _check_version(f, path)
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
    return DatasetInfo(
        path=str(path),
        n_rows=n_rows,
        n_episodes=int(len(ep_len)),
        ep_len=ep_len,
        ep_offset=ep_offset,
        columns=columns,
        image_size=(int(pixels.shape[1]), int(pixels.shape[2])),
        action_dim=int(action.shape[1]),
        attrs=_meta(f),
    )


def _check_version(f: h5py.File, path: Path) -> None:
    version = f.attrs.get("lewm_format_version", FORMAT_VERSION)
    try:
        version = int(version)
    except (TypeError, ValueError):
        raise DatasetError(f"{path}: lewm_format_version {version!r} is not an integer") from None
    if version > FORMAT_VERSION:
        raise DatasetError(
            f"{path}: written in dataset format version {version}, this lewm reads up to "
            f"{FORMAT_VERSION}; upgrade lewm"
        )


def _meta(f: h5py.File) -> dict:
    """The collection metadata (``lewm_meta`` JSON attribute); {} when absent or unreadable."""
    try:
        meta = json.loads(f.attrs["lewm_meta"]) if "lewm_meta" in f.attrs else {}
    except (TypeError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _integer_column(f: h5py.File, name: str, path: Path) -> np.ndarray:
    """A 1-D index column as int64; a fractional value is refused (never truncated)."""
    raw = np.asarray(f[name][()])
    if raw.dtype.kind in "iu":
        return raw.astype(np.int64)
    if raw.dtype.kind == "f" and np.isfinite(raw).all() and (raw == np.round(raw)).all():
        return raw.astype(np.int64)  # integral floats from another writer
    raise DatasetError(
        f"{path}: column {name!r} must hold integers, got {raw.dtype} values such as "
        f"{raw.reshape(-1)[:3].tolist()}"
    )


def _episode_index(f: h5py.File, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``ep_len`` and ``ep_offset`` (int64, E), checked: positive lengths, exclusive cumsum."""
    ep_len = _integer_column(f, "ep_len", path)
    ep_offset = _integer_column(f, "ep_offset", path)
    if ep_len.ndim != 1 or ep_offset.shape != ep_len.shape:
        raise DatasetError(
            f"{path}: ep_len {ep_len.shape} and ep_offset {ep_offset.shape} must be 1-D of equal length"
        )
    if len(ep_len) == 0:
        raise DatasetError(f"{path}: the file holds no episodes (ep_len is empty)")
    if (ep_len <= 0).any():
        raise DatasetError(f"{path}: ep_len has non-positive entries")
    expected_offset = np.concatenate([[0], np.cumsum(ep_len)[:-1]])
    if not np.array_equal(ep_offset, expected_offset):
        raise DatasetError(f"{path}: ep_offset is not the exclusive cumulative sum of ep_len")
    return ep_len, ep_offset


def _check_columns(pixels, action, columns: dict, n_rows: int, path: Path) -> None:
    """Dtypes and shapes of ``pixels`` and ``action``, N rows in every column, Blosc readable."""
    if pixels.dtype != np.uint8 or pixels.ndim != 4 or pixels.shape[-1] != 3:
        raise DatasetError(
            f"{path}: column 'pixels' must be uint8 (N, H, W, 3), got {pixels.dtype} {pixels.shape}"
        )
    if min(pixels.shape[1:3]) < 1:
        raise DatasetError(f"{path}: column 'pixels' has empty frames {pixels.shape[1:3]}")
    if action.ndim != 2 or not np.issubdtype(action.dtype, np.floating):
        raise DatasetError(
            f"{path}: column 'action' must be float (N, A), got {action.dtype} {action.shape}"
        )
    if action.shape[1] < 1:
        raise DatasetError(f"{path}: column 'action' has shape {action.shape}: no action dimension")
    for name, (shape, _) in columns.items():
        if name not in ("ep_len", "ep_offset") and (not shape or shape[0] != n_rows):
            raise DatasetError(
                f"{path}: column {name!r} has {shape[0] if shape else 0} rows, expected {n_rows} (sum of ep_len)"
            )
    if pixels.chunks is not None and pixels.compression is None:
        filters = pixels.id.get_create_plist()
        ids = [filters.get_filter(i)[0] for i in range(filters.get_nfilters())]
        if BLOSC_FILTER_ID in ids and not ensure_filters():
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


def check_chunks(f: h5py.File, path: Path, n: int) -> int:
    """Decompress up to ``n`` chunks of every chunked column (evenly spread, first and last
    included); a damaged chunk raises DatasetError (through :mod:`lewm.data.h5io`).

    Returns:
        the number of chunks read.
    """
    read = 0
    for name, ds in f.items():
        if not isinstance(ds, h5py.Dataset) or ds.chunks is None or not ds.shape or not ds.size:
            continue
        rows_per_chunk = ds.chunks[0]
        n_chunks = -(-ds.shape[0] // rows_per_chunk)
        for k in np.unique(np.linspace(0, n_chunks - 1, min(n, n_chunks)).round().astype(int)):
            start = int(k) * rows_per_chunk
            f[name][start : start + 1]  # one row decompresses (and checksums) its whole chunk
            read += 1
    return read
