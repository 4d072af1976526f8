"""A long collection that survives being killed: shards, then one merged file.

``collect_sharded(..., shard_episodes=K)`` runs :func:`lewm.envs.collect.collect` on
consecutive blocks of ``K`` episodes (``first_episode = 0, K, 2K, ...``), each written
atomically to ``.NAME.parts/part-FFFFFFF-NNNNN.h5`` next to the destination. A shard
that exists is finished (the writer renames it into place only when complete), so a
rerun after a kill starts at the first missing shard. When every shard is there they
are copied, in episode order, into the destination (again atomically) and the shard
folder is removed.

Episode ``i`` draws its seeds from ``(seed, i)`` whatever file it lands in, so the
merged file is byte for byte the file of a one-shot ``collect`` with the same arguments
(same rows, same ``lewm_meta``), so a documented ``lewm collect`` command reproduces the
sha256 of a file a ``lewm demo`` collected in shards.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from lewm.errors import ConfigError, DatasetError

__all__ = ["collect_sharded", "parts_dir"]

_WRITER_COLUMNS = ("ep_idx", "step_idx", "ep_len", "ep_offset")  # the writer makes these


def parts_dir(out: str | os.PathLike) -> Path:
    """The hidden folder holding the finished shards of ``out``."""
    out = Path(out)
    return out.parent / f".{out.name}.parts"


def collect_sharded(
    env: str,
    policy: str,
    episodes: int,
    image_size: int,
    seed: int,
    out: str | os.PathLike,
    workers: int = 1,
    *,
    shard_episodes: int = 250,
    progress: bool = True,
    **collect_kwargs: Any,
) -> Path:
    """Collect like :func:`lewm.envs.collect.collect`, resumably (see the module doc).

    Returns ``out`` at once if it already exists (a finished collection). Keyword
    arguments other than ``shard_episodes`` go to ``collect`` for every shard.
    """
    from lewm.envs.collect import collect

    out = Path(out)
    if out.exists():
        return out
    if (
        isinstance(shard_episodes, bool)
        or not isinstance(shard_episodes, int)
        or shard_episodes < 1
    ):
        raise ConfigError(f"shard_episodes must be a positive integer, got {shard_episodes!r}")
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise ConfigError(f"episodes must be a positive integer, got {episodes!r}")
    parts = parts_dir(out)
    parts.mkdir(parents=True, exist_ok=True)
    files = []
    for first in range(0, episodes, shard_episodes):
        n = min(shard_episodes, episodes - first)
        part = parts / f"part-{first:07d}-{n:05d}.h5"
        if not part.exists():
            if progress:
                print(f"collect {env}: episodes {first}..{first + n - 1} of {episodes}", flush=True)
            collect(
                env,
                policy,
                n,
                image_size,
                seed,
                part,
                workers,
                progress=progress,
                first_episode=first,
                **collect_kwargs,
            )
        files.append(part)
    request = {"env": env, "policy": policy, "image_size": image_size, "seed": seed}
    merge_shards(files, out, request, collect_kwargs.get("compression", "gzip"))
    shutil.rmtree(parts)
    return out


def merge_shards(files: list[Path], out: Path, request: dict, compression: str) -> Path:
    """Copy the episodes of ``files`` (in order) into ``out``, atomically.

    ``request`` (env, policy, image_size, seed) must match every shard's metadata, so
    shards left by a run with other settings are refused rather than mixed in.
    """
    from lewm.data.hdf5 import DatasetWriter, open_h5

    metas = []
    for path in files:
        with open_h5(path) as f:
            metas.append(json.loads(f.attrs.get("lewm_meta", "{}")))
    meta = _merged_meta(metas)
    asked = {k: v for k, v in request.items() if meta.get(k) != v}
    if asked:
        raise DatasetError(
            f"{parts_dir(out)} holds shards collected with other settings "
            f"({', '.join(f'{k}={meta.get(k)!r}' for k in asked)}); delete it to start over"
        )
    with DatasetWriter(out, compression=compression, meta=meta) as writer:
        for path in files:
            with open_h5(path) as f:
                _copy_episodes(f, writer)
    return out


def _copy_episodes(f, writer) -> None:
    """Every episode of the open file ``f`` appended to ``writer``, one column read per episode."""
    names = [k for k in creation_order(f) if k not in _WRITER_COLUMNS]
    ep_len, ep_offset = np.asarray(f["ep_len"]), np.asarray(f["ep_offset"])
    for length, offset in zip(ep_len, ep_offset, strict=True):
        writer.add_episode({k: f[k][int(offset) : int(offset) + int(length)] for k in names})


def creation_order(f) -> list[str]:
    """The columns of ``f`` in the order the writer created them (``f.keys()`` is
    alphabetical). A file written once, without deletions, allocates every object header
    at the end of the file, so header addresses follow creation. Appending the episodes
    in this order makes the merged file's bytes those of the one-shot collection."""
    import h5py

    return sorted(f.keys(), key=lambda name: h5py.h5o.get_info(f[name].id).addr)


def _merged_meta(metas: list[dict]) -> dict:
    """The one-shot collection's metadata: shards must agree on everything but their range."""
    first = dict(metas[0])
    first.pop("first_episode", None)
    total = 0
    for meta in metas:
        meta = dict(meta)
        if meta.pop("first_episode", 0) != total:
            raise DatasetError("collection shards are not consecutive; delete the .parts folder")
        total += meta.pop("episodes")
        expected = {k: v for k, v in first.items() if k != "episodes"}
        if meta != expected:
            raise DatasetError(
                "collection shards were made with different settings; delete the .parts folder"
            )
    return {**first, "episodes": total}
