"""Loader throughput against the train step (prints JSON).

Writes a synthetic 64x64 dataset (default 200 episodes x 100 rows), then
measures clips/s of ``ClipDataset.get`` for random batches, in RAM and
streamed from disk (uncompressed and gzip), and compares with the train-step
clips/s of the small preset (run ``benchmarks/train_step.py`` for that figure).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--episodes", type=int, default=200)
    p.add_argument("--length", type=int, default=100)
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--batches", type=int, default=50)
    args = p.parse_args()

    from lewm.data.clips import ClipDataset, ClipLoader
    from lewm.data.synthetic import write_synthetic

    out = {
        "benchmark": "loader",
        "episodes": args.episodes,
        "rows": args.episodes * args.length,
        "image_size": args.image_size,
        "batch_clips": args.batch,
        "results": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        for compression in ("none", "gzip"):
            path = Path(tmp) / f"{compression}.h5"
            t0 = time.perf_counter()
            write_synthetic(
                path,
                episodes=args.episodes,
                length=args.length,
                image_size=args.image_size,
                compression=compression,
            )
            write_s = time.perf_counter() - t0
            for in_memory in ("yes", "no"):
                t0 = time.perf_counter()
                ds = ClipDataset(path, 4, 5, in_memory=in_memory)
                open_s = time.perf_counter() - t0
                clips = ds.clip_index(np.arange(ds.info.n_episodes))
                rng = np.random.default_rng(0)
                t0 = time.perf_counter()
                for _ in range(args.batches):
                    ds.get(clips[rng.integers(0, len(clips), args.batch)])
                get_s = (time.perf_counter() - t0) / args.batches
                loader = ClipLoader(ds, clips, args.batch, seed=0)
                it = loader.batches()
                next(it)
                t0 = time.perf_counter()
                for _ in range(args.batches):
                    next(it)
                loop_s = (time.perf_counter() - t0) / args.batches
                it.close()
                out["results"].append(
                    {
                        "compression": compression,
                        "in_memory": in_memory == "yes",
                        "file_mb": path.stat().st_size / 2**20,
                        "write_seconds": write_s,
                        "open_seconds": open_s,
                        "clips_per_s": args.batch / get_s,
                        "prefetched_clips_per_s": args.batch / loop_s,
                    }
                )
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
