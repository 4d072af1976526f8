"""Training clips from a reference-layout file (spec §4.1, §4.6).

A clip is ``num_steps`` frames ``frameskip`` rows apart (rows s, s+f, s+2f, ...)
and the ``num_steps * frameskip`` raw actions from row s, z-scored per raw
dimension and then reshaped step-major into ``num_steps`` blocks of f*A: block
k holds the f actions leaving frame k. Every start s in [0, L - span] of every
episode is a clip (stride one raw step).

Pixels are read into RAM when they fit (``in_memory``), otherwise read from
the HDF5 file per clip; small columns are always cached.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lewm.data.hdf5 import DatasetInfo, inspect_dataset, open_h5
from lewm.data.normalize import ActionNormalizer
from lewm.errors import DatasetError


@dataclass
class ClipBatch:
    pixels: torch.Tensor  # uint8 (B, T, H, W, 3)
    actions: torch.Tensor  # float32 (B, T, f*A), normalised; non-finite entries replaced by 0


def episode_split(n_episodes: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split episode ids 0.9/0.1 (default) with a seeded permutation; both parts sorted."""
    if n_episodes < 2:
        raise DatasetError(
            f"need at least 2 episodes for a train/validation split, got {n_episodes}"
        )
    perm = np.random.default_rng(seed).permutation(n_episodes)
    n_val = min(max(1, int(round(n_episodes * val_fraction))), n_episodes - 1)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def clip_split(clips: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The reference's leaky split of clip indices (spec §4.6; ``train.split=clip``).

    ``clips`` (n, 2) is every (episode, start) of the file in order; a seeded
    permutation sends its first ``int(n * val_fraction)`` entries to validation.
    Returns (train, validation) clip arrays, each in file order.
    """
    perm = np.random.default_rng(seed).permutation(len(clips))
    n_val = int(len(clips) * val_fraction)
    return clips[np.sort(perm[n_val:])], clips[np.sort(perm[:n_val])]


def clip_index(info: DatasetInfo, episodes: np.ndarray, span: int) -> np.ndarray:
    """(n_clips, 2) array of (episode, start row within the episode) for the given episodes."""
    parts = []
    for ep in episodes:
        n_starts = int(info.ep_len[ep]) - span + 1
        if n_starts > 0:
            starts = np.arange(n_starts, dtype=np.int64)
            parts.append(np.stack([np.full(n_starts, ep, dtype=np.int64), starts], axis=1))
    return np.concatenate(parts) if parts else np.zeros((0, 2), dtype=np.int64)


class ClipDataset:
    """Random-access clips of one reference-layout file.

    Args:
        path: the ``.h5`` file.
        num_steps: frames per clip (history + 1 = 4 for the paper).
        frameskip: raw steps between frames.
        normalizer: action statistics (fit on the whole file by default; see :meth:`fit_normalizer`).
        in_memory: "auto" | "yes" | "no": load ``pixels`` into RAM.
        profile: "clean" asserts that the used blocks (0..num_steps-2) are finite; both
            profiles then replace non-finite entries by 0 (the mean action) after normalisation,
            entry by entry like the reference (spec §4.1). In a file that passes
            ``inspect_dataset`` that is only each episode's NaN last row, in the unused last block.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        num_steps: int,
        frameskip: int,
        normalizer: ActionNormalizer | None = None,
        *,
        in_memory: str = "auto",
        profile: str = "clean",
        info: DatasetInfo | None = None,
    ):
        self.path = Path(path)
        self.info = info or inspect_dataset(self.path)
        self.num_steps, self.frameskip = num_steps, frameskip
        self.span = num_steps * frameskip
        self.profile = profile
        if self.info.min_episode_length < self.span:
            short = int((self.info.ep_len < self.span).sum())
            if short == self.info.n_episodes:
                raise DatasetError(
                    f"{self.path}: every episode is shorter than one clip ({self.span} rows = "
                    f"{num_steps} frames x frameskip {frameskip}); longest has {int(self.info.ep_len.max())}"
                )
        with open_h5(self.path) as f:
            self.actions = np.asarray(f["action"][()], dtype=np.float32)  # (N, A)
            self._pixels = self._load_pixels(f, in_memory)
        self.normalizer = normalizer or ActionNormalizer.fit(self.actions, ddof=1)
        if self.normalizer.dim != self.info.action_dim:
            raise DatasetError(
                f"{self.path}: action statistics have {self.normalizer.dim} dims, the file has {self.info.action_dim}"
            )
        self.actions_norm = self.normalizer.normalize(self.actions).astype(np.float32)
        self._local = threading.local()

    # -- storage -------------------------------------------------------------
    def _load_pixels(self, f, in_memory: str) -> np.ndarray | None:
        nbytes = int(np.prod(f["pixels"].shape))
        if in_memory == "no":
            return None
        if in_memory == "auto" and nbytes > available_memory() // 2:
            return None
        return f["pixels"][()]

    @property
    def in_memory(self) -> bool:
        return self._pixels is not None

    def _file(self):
        f = getattr(self._local, "file", None)
        if f is None:  # one handle per thread: h5py handles are not shared across threads safely
            f = self._local.file = open_h5(self.path)
        return f

    def fingerprint(self) -> str:
        """sha256 of the episode lengths and the raw action column: identifies the file's
        episodes (and so the split) without reading its pixels."""
        h = hashlib.sha256(np.ascontiguousarray(self.info.ep_len, dtype=np.int64).tobytes())
        h.update(np.ascontiguousarray(self.actions).tobytes())
        return h.hexdigest()

    # -- access --------------------------------------------------------------
    def clip_index(self, episodes: np.ndarray) -> np.ndarray:
        return clip_index(self.info, episodes, self.span)

    def get(self, clips: np.ndarray) -> ClipBatch:
        """Gather clips (n, 2) of (episode, start) into a batch."""
        rows = self.info.ep_offset[clips[:, 0]] + clips[:, 1]  # (n,) absolute start rows
        frame_rows = rows[:, None] + np.arange(self.num_steps) * self.frameskip  # (n, T)
        if self._pixels is not None:
            pixels = self._pixels[frame_rows]  # (n, T, H, W, 3)
        else:
            ds = self._file()["pixels"]
            pixels = np.stack([ds[r : r + self.span : self.frameskip] for r in rows])
        action_rows = rows[:, None] + np.arange(self.span)  # (n, span)
        act = self.actions_norm[action_rows]  # (n, span, A), normalised per raw dim
        blocks = act.reshape(
            len(rows), self.num_steps, self.frameskip * act.shape[-1]
        )  # step-major
        finite = np.isfinite(blocks)  # (n, T, f*A)
        if self.profile == "clean" and not finite[:, : self.num_steps - 1].all():
            raise DatasetError(
                f"{self.path}: a sampled clip has non-finite actions in a used block"
            )
        blocks = np.where(finite, blocks, 0.0).astype(np.float32)  # only the bad entries
        return ClipBatch(torch.from_numpy(np.ascontiguousarray(pixels)), torch.from_numpy(blocks))


class ClipLoader:
    """Shuffled, drop-last batches of clip indices with a seeded order, prefetched in a thread.

    The order of epoch e is ``default_rng([seed, e]).permutation``, so a run
    resumed at (epoch, position) sees exactly the same batches. ``batch_size`` is the
    global batch; with several processes (``shard``, a slice of it) each one gathers only
    its contiguous part of every global batch, so the shards of all processes, in rank
    order, are the single-process batch, whatever the number of processes.
    """

    def __init__(
        self,
        dataset: ClipDataset,
        clips: np.ndarray,
        batch_size: int,
        seed: int,
        prefetch: int = 2,
        *,
        shard: slice | None = None,
    ):
        if len(clips) < batch_size:
            raise DatasetError(
                f"{dataset.path}: {len(clips)} training clips, fewer than one batch of {batch_size}; "
                "collect more episodes or lower train.batch_size"
            )
        self.dataset, self.clips, self.batch_size, self.seed = dataset, clips, batch_size, seed
        self.prefetch = prefetch
        self.shard = shard or slice(None)
        self.batches_per_epoch = len(clips) // batch_size

    def epoch_order(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, epoch]).permutation(len(self.clips))

    def batches(self, start_batch: int = 0) -> Iterator[ClipBatch]:
        """Endless stream of batches starting at global batch index ``start_batch``."""
        import queue

        q: queue.Queue = queue.Queue(maxsize=self.prefetch)
        stop = threading.Event()

        def put(item) -> None:  # blocks while the queue is full, unless the consumer stopped
            while not stop.is_set():
                try:
                    q.put(item, timeout=0.1)
                    return
                except queue.Full:
                    continue

        def produce() -> None:
            i, order_epoch, order = start_batch, -1, None
            try:
                while not stop.is_set():
                    epoch, pos = divmod(i, self.batches_per_epoch)
                    if epoch != order_epoch:
                        order = self.epoch_order(epoch)
                        order_epoch = epoch
                    idx = order[pos * self.batch_size : (pos + 1) * self.batch_size]  # (B,)
                    put(self.dataset.get(self.clips[idx[self.shard]]))  # this process's shard
                    i += 1
            except BaseException as exc:  # surface loader errors in the training thread
                put(exc)

        thread = threading.Thread(target=produce, daemon=True)
        thread.start()
        try:
            while True:
                item = q.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            # Wait for the producer: a thread still gathering a batch when the interpreter
            # exits can abort the process ("terminate called without an active exception").
            stop.set()
            thread.join()


def available_memory() -> int:
    """Bytes the kernel could give this process now: ``MemAvailable`` (free + reclaimable cache).

    Free pages alone (``SC_AVPHYS_PAGES``) miss the page cache, which on a machine that just
    wrote the dataset holds the dataset itself.
    """
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 8 << 30
