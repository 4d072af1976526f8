"""Train-step time, samples/s and peak memory per preset on this machine (prints JSON).

Each configuration runs in its own subprocess so peak RSS is per configuration.
A sample is one 4-frame clip (4 images through the encoder).

    python benchmarks/train_step.py                      # tiny, small, paper (paper at B=32)
    python benchmarks/train_step.py --paper-batch 128    # the authors' batch (about a minute per step)
    python benchmarks/train_step.py --candidates         # the small-preset candidates of docs/training.md
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CANDIDATES = {
    # name: overrides on top of the small preset
    "small": [],
    "small-patch8": ["model.encoder.patch_size=8"],
    "small-patch8-enc4-w128": [
        "model.encoder.patch_size=8",
        "model.encoder.depth=4",
        "model.encoder.hidden_dim=128",
        "model.encoder.heads=4",
        "model.encoder.mlp_dim=512",
    ],
    "small-batch64": ["train.batch_size=64"],
    "small-pred6": [
        "model.predictor.depth=6",
        "model.predictor.heads=16",
        "model.predictor.dim_head=64",
        "model.predictor.mlp_dim=2048",
        "model.projector_hidden=2048",
    ],
    "paper-at-64": [
        "model.encoder.depth=12",
        "model.predictor.depth=6",
        "model.predictor.heads=16",
        "model.predictor.dim_head=64",
        "model.predictor.mlp_dim=2048",
        "model.projector_hidden=2048",
    ],
}


def measure(
    preset_name: str, overrides: list[str], batch: int | None, steps: int, threads: int
) -> dict:
    import resource
    import time
    from contextlib import nullcontext

    import torch

    from lewm.config import apply_overrides, preset
    from lewm.losses import step_generator
    from lewm.model.world_model import LeWM
    from lewm.train import build_optimizer, forward_losses

    torch.set_num_threads(threads)
    cfg = apply_overrides(preset(preset_name), overrides)
    cfg.model.action_dim = 2
    if batch:
        cfg.train.batch_size = batch
    b, t, s = cfg.train.batch_size, cfg.model.predictor.num_frames + 1, cfg.model.encoder.image_size
    torch.manual_seed(0)
    model = LeWM(cfg.model).train()
    opt = build_optimizer(model, cfg, torch.device("cpu"))
    g = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (b, t, s, s, 3), dtype=torch.uint8, generator=g)
    actions = torch.randn(b, t, cfg.model.action_input_dim, generator=g)
    times = []
    for step in range(steps + 1):
        t0 = time.perf_counter()
        losses, _ = forward_losses(
            model, cfg, pixels, actions, torch.device("cpu"), nullcontext, step_generator(0, step)
        )
        opt.zero_grad(set_to_none=True)
        losses["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step > 0:  # the first step warms up allocators
            times.append(time.perf_counter() - t0)
    times.sort()
    med = times[len(times) // 2]
    return {
        "config": preset_name,
        "overrides": overrides,
        "params": model.num_parameters(),
        "image_size": s,
        "batch_clips": b,
        "step_seconds_median": med,
        "clips_per_s": b / med,
        "images_per_s": b * t / med,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "threads": threads,
    }


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--paper-batch", type=int, default=32)
    p.add_argument("--candidates", action="store_true")
    p.add_argument("--one", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:  # child process
        spec = json.loads(args.one)
        print(
            json.dumps(
                measure(spec["preset"], spec["overrides"], spec["batch"], args.steps, args.threads)
            )
        )
        return
    jobs = (
        [{"preset": "small", "overrides": o, "batch": None} for o in CANDIDATES.values()]
        if args.candidates
        else [
            {"preset": "tiny", "overrides": [], "batch": None},
            {"preset": "small", "overrides": [], "batch": None},
            {"preset": "paper", "overrides": [], "batch": args.paper_batch},
        ]
    )
    results = []
    for job in jobs:
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--one",
                json.dumps(job),
                "--steps",
                str(args.steps),
                "--threads",
                str(args.threads),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(json.dumps(results[-1]), file=sys.stderr)
    print(json.dumps({"benchmark": "train_step", "results": results}, indent=2))


if __name__ == "__main__":
    main()
