"""``lewm decoder train|show``: the diagnostic decoder of spec §9.4 on frozen embeddings."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "decoder",
        help="train a pixel decoder on frozen embeddings; show decoded rollouts",
        description="A diagnostic decoder (spec §9.4): query tokens cross-attend to one "
        "detached embedding and give back the frame (no gradient reaches the world model). "
        "`train` fits it and writes OUT/decoder.safetensors, decoder.json and rollout.png; "
        "`show` draws real frames vs decoded open-loop rollouts from 3 context frames.",
    )
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    t = verbs.add_parser("train", help="fit a decoder to a checkpoint's embeddings of a file")
    t.add_argument("--ckpt", required=True, help="run directory (or the authors' checkpoint)")
    t.add_argument("--data", required=True, help="HDF5 file (reference layout)")
    t.add_argument("--out", required=True, help="output directory (the decoder)")
    t.add_argument("--steps", type=int, default=2000, help="optimiser steps (2000)")
    t.add_argument("--batch-size", type=int, default=64, help="frames per step (64)")
    t.add_argument("--lr", type=float, default=3e-4, help="AdamW learning rate (3e-4, cosine)")
    t.add_argument("--max-frames", type=int, default=10_000, help="frames used, whole episodes")
    t.add_argument("--every", type=int, default=1, help="every K-th row of an episode (1)")
    t.add_argument("--patch", type=int, help="decoder patch (default 16, or the encoder's)")
    t.add_argument("--seed", type=int, default=0, help="seed of the frames, split, init (0)")
    _common(t)
    t.set_defaults(func=run_train)
    s = verbs.add_parser("show", help="PNG strip: real vs decoded rollouts")
    s.add_argument("--decoder", required=True, help="a directory written by `decoder train`")
    s.add_argument("--data", required=True, help="HDF5 file (reference layout)")
    s.add_argument("--out", required=True, help="output PNG file")
    s.add_argument("--ckpt", help="the world model (default: the one the decoder was trained on)")
    s.add_argument("--episodes", type=int, default=3, help="episodes shown (3)")
    s.add_argument("--context", type=int, default=3, help="context frames (3)")
    s.add_argument("--horizon", type=int, default=8, help="predicted model steps (8)")
    s.add_argument("--seed", type=int, default=0, help="seed of the episode choice (0)")
    _common(s)
    s.set_defaults(func=run_show)
    p.set_defaults(func=lambda args: p.print_help() or 2)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--resize-frames", action="store_true", help="resize frames of another size")
    p.add_argument("--stats-from", metavar="FILE.h5", help="authors' checkpoints: action stats")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | mps (default: auto)")


def _log(msg: str) -> None:
    import sys

    print(msg, file=sys.stderr, flush=True)


def run_train(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    import lewm
    from lewm.analysis.decoder import DecoderConfig, decoder_files
    from lewm.analysis.decoder_run import DecoderTraining, pick_episodes, strip_png, train_decoder
    from lewm.analysis.features import check_image_size
    from lewm.analysis.outputs import write_outputs
    from lewm.data.hdf5 import inspect_dataset
    from lewm.paths import check_output_dir
    from lewm.train import resolve_device

    out = check_output_dir(args.out, inputs=(args.ckpt, args.data), what="--out")
    training = DecoderTraining(steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                               max_frames=args.max_frames, every=args.every, seed=args.seed)  # fmt: skip
    info = inspect_dataset(args.data)
    model = lewm.load(
        args.ckpt, device=resolve_device(args.device), stats_from=args.stats_from or args.data
    )
    check_image_size(model, info, args.resize_frames, args.ckpt)
    size = int(model.image_size)
    patch = args.patch or (16 if size % 16 == 0 else int(model.cfg.encoder.patch_size))
    cfg = DecoderConfig(embed_dim=int(model.embed_dim), image_size=size, patch=patch)
    decoder, record = train_decoder(model, info, cfg, training, log=_log)
    record.update(checkpoint=str(Path(args.ckpt).resolve()), data=str(args.data))
    episodes = pick_episodes(info, 3, 10 * model.frameskip + 1, args.seed, record["val_episodes"])
    files = {
        "rollout.png": strip_png(model, decoder, info, episodes, 3, 8),
        **decoder_files(decoder, record),
    }
    write_outputs(out, files)
    print(json.dumps({"decoder": str(out), "val_mse": record["val_mse"]}))
    return 0


def run_show(args: argparse.Namespace) -> int:
    import json

    import lewm
    from lewm.analysis.decoder import load_decoder
    from lewm.analysis.decoder_run import check_pair, pick_episodes, strip_png
    from lewm.checkpoint.atomic import atomic_write_bytes
    from lewm.data.hdf5 import inspect_dataset
    from lewm.errors import ConfigError
    from lewm.paths import check_output_file
    from lewm.train import resolve_device

    out = check_output_file(args.out, inputs=(args.data,), what="--out")
    if args.context < 1 or args.horizon < 1 or args.episodes < 1:
        raise ConfigError("--context, --horizon and --episodes must be positive")
    device = resolve_device(args.device)
    decoder, record = load_decoder(args.decoder, device)
    ckpt = args.ckpt or record.get("checkpoint")
    if not ckpt:
        raise ConfigError(f"{args.decoder} records no checkpoint; pass --ckpt")
    info = inspect_dataset(args.data)
    model = lewm.load(ckpt, device=device, stats_from=args.stats_from or args.data)
    check_pair(model, decoder, info, args.resize_frames, ckpt)
    span = (args.context + args.horizon - 1) * model.frameskip + 1
    episodes = pick_episodes(info, args.episodes, span, args.seed)
    png = strip_png(model, decoder, info, episodes, args.context, args.horizon)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, png)
    print(json.dumps({"strip": str(out), "episodes": episodes.tolist()}))
    return 0
