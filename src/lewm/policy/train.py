"""``lewm policy train``: a goal-conditioned policy on a frozen world model's embeddings.

1. load the world model (eval mode, never updated) and the offline data;
2. choose the episodes: when the data is the run's training file, its validation
   episodes (the ones ``lewm eval`` plans on under ``clean``) are left out;
3. encode the anchor frames (:mod:`lewm.policy.samples`) and build hindsight pairs;
4. hold out ``val_fraction`` of the episodes for a validation loss, fit (:mod:`.fit`);
5. write the policy folder (:mod:`.folder`) with the world model's fingerprint.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from lewm.policy.fit import PolicyTrainConfig, fit
from lewm.policy.samples import encode_anchors, hindsight_pairs


def _episodes(model, ckpt: Path, data: Path, n_episodes: int) -> tuple[np.ndarray, list[int]]:
    """(episodes to train on, episodes left out: the run's validation episodes of ``data``)."""
    from lewm.eval.config import EvaluationError
    from lewm.eval.episodes import choose_episodes

    try:
        source = choose_episodes(model, ckpt, data, n_episodes, "clean")
    except EvaluationError:  # e.g. a clip split: no episode was held out from the world model
        source = None
    if source is None or source.episodes is None:
        return np.arange(n_episodes), []
    held = set(int(e) for e in source.episodes)
    return np.array([e for e in range(n_episodes) if e not in held]), sorted(held)


def _split(anchors, pairs: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of a seeded ``fraction`` of the episodes (at least one when there are two) go to
    validation."""
    eps = np.unique(anchors.episode)
    n_val = int(round(fraction * len(eps)))
    if fraction > 0 and len(eps) >= 2:
        n_val = max(1, n_val)
    val_eps = np.random.default_rng(seed).permutation(eps)[:n_val]
    is_val = np.isin(anchors.episode[pairs[:, 0]], val_eps)
    return pairs[~is_val], pairs[is_val]


def train_policy(
    ckpt: str | os.PathLike,
    data: str | os.PathLike,
    out: str | os.PathLike,
    cfg: PolicyTrainConfig | None = None,
    *,
    device: str = "auto",
    stats_from: str | os.PathLike | None = None,
    identity_normalizer: bool = False,
    log: Callable[[str], None] | None = None,
) -> dict:
    """Train and save a policy; returns the ``policy.json`` content.

    Raises LewmError subclasses for bad input before anything is written.
    """
    import lewm
    from lewm.data.h5io import open_h5
    from lewm.data.hdf5 import inspect_dataset
    from lewm.data.transforms import frames_to_pixels
    from lewm.eval.files import portable_path, scrub, sha256_file
    from lewm.eval.restore import fit_frames
    from lewm.paths import check_output_dir
    from lewm.policy.folder import save_policy, world_model_fingerprint
    from lewm.train import resolve_device

    cfg = cfg or PolicyTrainConfig()
    log = log or (lambda msg: None)
    ckpt, data, out = Path(ckpt), Path(data), Path(out)
    check_output_dir(out, inputs=(ckpt, data, stats_from), what="--out")
    info = inspect_dataset(data)
    dev = resolve_device(device)
    model = lewm.load(
        ckpt, device=dev, stats_from=stats_from, identity_normalizer=identity_normalizer
    )
    model.eval()
    train_eps, left_out = _episodes(model, ckpt, data, info.n_episodes)
    size, f = int(model.image_size), int(model.frameskip)
    norm = model.action_normalizer
    normalize = (lambda a: a) if norm is None else norm.normalize

    def encode(frames: np.ndarray) -> torch.Tensor:  # (b, h, w, 3) uint8 -> (b, *emb)
        with torch.no_grad():
            px = frames_to_pixels(fit_frames(frames, size), device=dev)  # (b, 3, S, S)
            return model.encode(px[:, None])[:, 0]

    t0 = time.perf_counter()
    order = np.random.default_rng(cfg.seed).permutation(train_eps)  # which episodes fill max_frames
    with open_h5(data) as h5:
        anchors = encode_anchors(h5, order, encode, normalize, f, cfg.blocks, cfg.max_frames)
    encode_seconds = time.perf_counter() - t0
    log(
        f"encoded {len(anchors)} anchor frames of {len(np.unique(anchors.episode))} episodes in {encode_seconds:.1f} s"
    )
    pairs = hindsight_pairs(anchors, cfg.max_ahead)
    train_pairs, val_pairs = _split(anchors, pairs, cfg.val_fraction, cfg.seed)
    t1 = time.perf_counter()
    policy, metrics = fit(anchors.z, anchors.target.to(anchors.z), train_pairs, val_pairs, cfg)
    fit_seconds = time.perf_counter() - t1
    log(f"fit {cfg.steps} steps in {fit_seconds:.1f} s: train loss {metrics['train_loss']:.4f}")
    meta = {
        "config": cfg.to_dict(),
        "world_model": {"checkpoint": portable_path(ckpt), **world_model_fingerprint(ckpt, model)},
        "data": {
            "path": portable_path(data),
            "sha256": sha256_file(data),
            "episodes_used": sorted(int(e) for e in np.unique(anchors.episode)),
            "episodes_left_out": left_out,
            "anchors": len(anchors),
            "frameskip": f,
        },
        "metrics": {**metrics, "encode_seconds": encode_seconds, "fit_seconds": fit_seconds},
        "lewm_version": lewm.__version__,
    }
    meta = scrub(meta, (ckpt, data, stats_from))
    save_policy(out, policy.cpu(), meta)
    return meta
