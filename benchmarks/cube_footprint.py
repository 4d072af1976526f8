"""How many pixels does Cube's cube cover at a given render size?

For ``--resets`` seeded resets, render the frame, move the cube out of view (below the table),
render again and count the pixels whose colour changed by more than ``--threshold`` (0-255, any
channel). The arm, the gripper and the target marker stay, so the changed pixels are the cube's
(and its shading of what lies under it; shadows are off with fast_render). Prints, per size, the
median count, its square root (the side of an equal square) and the share of one encoder patch.

    python benchmarks/cube_footprint.py --sizes 64,224 --patch 16,14
"""

from __future__ import annotations

import argparse
import json

import numpy as np


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="64,224", help="render sizes, comma-separated")
    p.add_argument("--patch", default="16,14", help="encoder patch size per render size")
    p.add_argument("--resets", type=int, default=20)
    p.add_argument("--threshold", type=int, default=10)
    p.add_argument("--mesh-detail", type=float, default=0.1)
    return p.parse_args(argv)


def footprint(size: int, resets: int, threshold: int, mesh_detail: float) -> list[int]:
    """Changed-pixel counts, one per reset, of the cube at ``size``x``size``."""
    from lewm.envs.cube import CubeEnv

    env = CubeEnv(image_size=size, render_size=size, fast_render=True, mesh_detail=mesh_detail)
    counts = []
    try:
        for seed in range(resets):
            env.reset(seed=seed)
            with_cube = env.render().astype(np.int16)
            env.teleport_cube([0.425, 0.0, -1.0])
            without = env.render().astype(np.int16)
            changed = np.abs(with_cube - without).max(-1) > threshold
            counts.append(int(changed.sum()))
    finally:
        env.close()
    return counts


def main(argv=None) -> dict:
    args = parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    patches = [int(s) for s in args.patch.split(",")]
    if len(patches) != len(sizes):
        raise SystemExit("--patch needs one value per --sizes value")
    out = {"resets": args.resets, "threshold": args.threshold, "mesh_detail": args.mesh_detail}
    for size, patch in zip(sizes, patches, strict=True):
        counts = footprint(size, args.resets, args.threshold, args.mesh_detail)
        median = float(np.median(counts))
        out[str(size)] = {
            "pixels_median": median,
            "pixels_min_max": [min(counts), max(counts)],
            "equal_square_side": round(float(np.sqrt(median)), 2),
            "patch": patch,
            "share_of_one_patch": round(median / patch**2, 3),
        }
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
