"""Wall time to collect N episodes with W workers (``lewm.envs.collect.collect``).

    .venv/bin/python benchmarks/bench_collect.py --envs tworoom pusht --episodes 1000 --workers 2

Writes each file under --out-dir (default: a fresh temporary directory) and
deletes it afterwards unless --keep. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--envs", nargs="+", default=["tworoom", "pusht"])
    p.add_argument("--policy", default="expert")
    p.add_argument("--episodes", type=int, default=1000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--compression", default="gzip", choices=("gzip", "blosc", "none"))
    p.add_argument("--out-dir", default=None)
    p.add_argument("--keep", action="store_true")
    args = p.parse_args()

    from lewm.data.hdf5 import inspect_dataset
    from lewm.envs.collect import collect

    out_dir = Path(args.out_dir or tempfile.mkdtemp(prefix="lewm_bench_collect_"))
    out_dir.mkdir(parents=True, exist_ok=True)
    result = {
        "benchmark": "collect",
        "episodes": args.episodes,
        "workers": args.workers,
        "image_size": args.image_size,
        "policy": args.policy,
        "compression": args.compression,
        "cpu_count": os.cpu_count(),
        "envs": {},
    }
    total = 0.0
    try:
        for env in args.envs:
            path = out_dir / f"bench_{env}.h5"
            t0 = time.perf_counter()
            collect(env, args.policy, args.episodes, args.image_size, args.seed, path, args.workers,
                    compression=args.compression, overwrite=True, progress=False)  # fmt: skip
            wall = time.perf_counter() - t0
            total += wall
            info = inspect_dataset(path, check_actions=False)
            result["envs"][env] = {
                "wall_s": round(wall, 2),
                "rows": info.n_rows,
                "rows_per_s": round(info.n_rows / wall, 1),
                "mean_episode_rows": round(info.n_rows / info.n_episodes, 1),
                "file_mb": round(path.stat().st_size / 2**20, 1),
            }
            if not args.keep:
                path.unlink()
    finally:
        if not args.keep and args.out_dir is None:
            shutil.rmtree(out_dir, ignore_errors=True)
    result["total_wall_s"] = round(total, 2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
