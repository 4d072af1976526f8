"""Do a checkpoint's BatchNorm running statistics match its weights? (docs/training.md)

Eval mode normalises the projector and ``pred_proj`` with running statistics, an average over
recent training batches. This prints, for one checkpoint:

- the eval-mode prediction loss on held-out clips with the running statistics, and again after
  replacing them by the population statistics of the current weights (a cumulative average over
  ``--batches`` training batches, dropout off);
- how far the projector's running mean sits from that population mean, in population standard
  deviations (median, 90th percentile, max over units).

    python benchmarks/batchnorm_lag.py --ckpt checkpoints/pusht --train data/pusht_train.h5 \\
        --heldout data/pusht_eval.h5
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch
from torch import nn


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ckpt", required=True, help="a run directory or a shipped folder")
    p.add_argument("--train", required=True, help="HDF5 file the statistics are recomputed from")
    p.add_argument("--heldout", required=True, help="HDF5 file of the held-out clips")
    p.add_argument("--clips", type=int, default=256, help="held-out clips (default 256)")
    p.add_argument("--batches", type=int, default=20, help="training batches of 32 (default 20)")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def _sample(dataset, n: int, rng: np.random.Generator):
    index = dataset.clip_index(np.arange(dataset.info.n_episodes))
    return dataset.get(index[rng.choice(len(index), n, replace=False)])


@torch.no_grad()
def _pred_loss(model, batch, chunk: int = 64) -> float:
    from lewm.data.transforms import frames_to_pixels

    losses = []
    for i in range(0, len(batch.pixels), chunk):
        z = model.encode(frames_to_pixels(batch.pixels[i : i + chunk]))
        a = batch.actions[i : i + chunk]
        losses.append(float(((model.predict(z[:, :-1], a[:, :-1]) - z[:, 1:]) ** 2).mean()))
    return float(np.mean(losses))


@torch.no_grad()
def recompute_statistics(model, dataset, batches: int, rng: np.random.Generator) -> None:
    """Running statistics := cumulative averages over ``batches`` training batches."""
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm1d)]
    for bn in norms:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average
        bn.train()
    for _ in range(batches):
        batch = _sample(dataset, 32, rng)
        _pred_loss(model, batch, chunk=32)
    for bn in norms:
        bn.eval()


def main(argv=None) -> int:
    import lewm
    from lewm.data.clips import ClipDataset

    args = parse_args(argv)
    model = lewm.load(args.ckpt).eval()
    rng = np.random.default_rng(args.seed)
    steps = model.history_size + 1

    def dataset(path):
        return ClipDataset(path, steps, model.frameskip, model.action_normalizer, in_memory="no")

    heldout = _sample(dataset(args.heldout), args.clips, rng)
    bn = model.projector.net[1]
    running_mean = bn.running_mean.clone()
    before = _pred_loss(model, heldout)
    recompute_statistics(model, dataset(args.train), args.batches, rng)
    shift = (running_mean - bn.running_mean).abs() / bn.running_var.sqrt()
    out = {
        "checkpoint": args.ckpt,
        "heldout_pred_loss_running_stats": before,
        "heldout_pred_loss_recomputed_stats": _pred_loss(model, heldout),
        "projector_mean_shift_in_std": {
            "median": float(shift.median()),
            "p90": float(shift.quantile(0.9)),
            "max": float(shift.max()),
        },
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
