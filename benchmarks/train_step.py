"""Train-step time, samples/s and peak memory per preset on this machine (prints JSON).

Times ``lewm.train.train_step``, the step the training loop runs (forward -> backward ->
clip -> AdamW -> schedule), on one fixed random batch: ``--warmup`` untimed steps, then
``--steps`` timed ones, reported as the median with p10/p90, min/max and the sample std.
Each configuration runs in its own subprocess so peak RSS is per configuration.
A sample is one 4-frame clip (4 images through the encoder).

    python benchmarks/train_step.py                      # tiny, small, paper (paper at B=32)
    python benchmarks/train_step.py --preset small       # one preset
    python benchmarks/train_step.py --paper-batch 128    # the authors' batch (about a minute per step)
    python benchmarks/train_step.py --candidates         # the small-preset candidates of docs/training.md
    python benchmarks/train_step.py --preset paper --device cuda   # one GPU (bf16 autocast, as training)

The per-device throughput it prints is what docs/distributed.md turns into a training-time
estimate for N processes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

PRESETS = ("tiny", "small", "paper")
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
    preset_name: str,
    overrides: list[str],
    batch: int | None,
    warmup: int,
    steps: int,
    threads: int,
    device: str = "cpu",
) -> dict:
    """Time ``steps`` calls of :func:`lewm.train.train_step` after ``warmup`` untimed ones, on
    ``device`` with the precision training would use there (fp32 on CPU, bf16 autocast on CUDA);
    the batch starts on the CPU, as the loader's does."""
    import resource
    import time

    import numpy as np
    import torch

    from lewm.config import apply_overrides, preset
    from lewm.data.clips import ClipBatch
    from lewm.losses import step_generator
    from lewm.train import batch_loss, train_step
    from lewm.train_setup import autocast_for, build_training, resolve_device

    torch.set_num_threads(threads)
    cfg = apply_overrides(preset(preset_name), overrides)
    cfg.model.action_dim = 2
    cfg.train.schedule_steps = warmup + steps  # the lr does not change the cost of a step
    if batch:
        cfg.train.batch_size = batch
    b, t, s = cfg.train.batch_size, cfg.model.predictor.num_frames + 1, cfg.model.encoder.image_size
    dev = resolve_device(device)
    model, opt, sched = build_training(cfg, None, dev)
    loss_fn = batch_loss(model, cfg, dev, autocast_for(cfg, dev))  # the training precision
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    g = torch.Generator().manual_seed(0)
    batch = ClipBatch(
        torch.randint(0, 256, (b, t, s, s, 3), dtype=torch.uint8, generator=g),
        torch.randn(b, t, cfg.model.action_input_dim, generator=g),
    )
    times = []
    for step in range(warmup + steps):
        t0 = time.perf_counter()
        train_step(model, opt, sched, loss_fn, batch, step_generator(0, step), cfg.optim.grad_clip)
        sync()  # CUDA runs asynchronously: time the finished step
        if step >= warmup:  # the warm-up steps settle allocators and caches
            times.append(time.perf_counter() - t0)
    x = np.asarray(times)
    med = float(np.median(x))
    return {
        "config": preset_name,
        "overrides": overrides,
        "params": model.num_parameters(),
        "image_size": s,
        "batch_clips": b,
        "warmup_steps": warmup,
        "timed_steps": steps,
        "step_seconds_median": med,
        "step_seconds_p10": float(np.percentile(x, 10)),
        "step_seconds_p90": float(np.percentile(x, 90)),
        "step_seconds_min": float(x.min()),
        "step_seconds_max": float(x.max()),
        "step_seconds_std": float(x.std(ddof=1)) if len(x) > 1 else None,  # sample std
        "clips_per_s": b / med,
        "images_per_s": b * t / med,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_gpu_mb": torch.cuda.max_memory_allocated() / 2**20 if dev.type == "cuda" else None,
        "device": str(dev),
        "threads": threads,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--warmup", type=int, default=10, help="untimed steps first (default 10)")
    p.add_argument("--steps", type=int, default=20, help="timed steps (default 20)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu", help="cpu (default) | cuda | mps | auto")
    p.add_argument("--paper-batch", type=int, default=32)
    p.add_argument(
        "--preset", choices=PRESETS, action="append", help="only these presets (repeatable)"
    )
    p.add_argument("--candidates", action="store_true")
    p.add_argument("--one", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.warmup < 0 or args.steps < 1:
        p.error("--warmup must be >= 0 and --steps >= 1")
    return args


def main() -> None:
    args = parse_args()
    if args.one:  # child process
        spec = json.loads(args.one)
        result = measure(
            spec["preset"],
            spec["overrides"],
            spec["batch"],
            args.warmup,
            args.steps,
            args.threads,
            args.device,
        )
        print(json.dumps(result))
        return
    batches = {"tiny": None, "small": None, "paper": args.paper_batch}
    jobs = (
        [{"preset": "small", "overrides": o, "batch": None} for o in CANDIDATES.values()]
        if args.candidates
        else [
            {"preset": name, "overrides": [], "batch": batches[name]}
            for name in args.preset or PRESETS
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
                "--warmup",
                str(args.warmup),
                "--steps",
                str(args.steps),
                "--threads",
                str(args.threads),
                "--device",
                args.device,
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
