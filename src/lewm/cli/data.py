"""``lewm data info|preview``: look inside a dataset file."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "data",
        help="inspect a dataset file (info, preview)",
        description="Inspect an HDF5 dataset in the reference layout.",
    )
    sub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda args: _missing_subcommand(p))

    info = sub.add_parser(
        "info",
        help="episodes, steps, columns and action statistics",
        description="Check the layout and print episodes, steps, columns (shape, dtype) "
        "and per-dimension action statistics.",
    )
    info.add_argument("file", help="dataset .h5 file")
    info.set_defaults(func=run_info)

    prev = sub.add_parser(
        "preview",
        help="animated GIF of a few episodes side by side",
        description="Write an animated GIF showing a few episodes side by side; shorter "
        "episodes hold their last frame.",
    )
    prev.add_argument("file", help="dataset .h5 file")
    prev.add_argument("--episodes", type=int, default=4, help="number of episodes (default 4)")
    prev.add_argument("--start", type=int, default=0, help="first episode index (default 0)")
    prev.add_argument("--out", required=True, help="output .gif")
    prev.add_argument("--fps", type=float, default=10.0, help="frames per second (default 10)")
    prev.add_argument("--every", type=int, default=1, help="keep every k-th frame (default 1)")
    prev.add_argument(
        "--scale", type=int, default=1, help="integer upscaling of the frames (default 1)"
    )
    prev.set_defaults(func=run_preview)


def _missing_subcommand(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def run_info(args: argparse.Namespace) -> int:
    print(describe(args.file))
    return 0


def run_preview(args: argparse.Namespace) -> int:
    path, n_frames, episodes = write_preview(
        args.file,
        args.out,
        episodes=args.episodes,
        start=args.start,
        fps=args.fps,
        every=args.every,
        scale=args.scale,
    )
    print(f"wrote {path}: episodes {episodes}, {n_frames} frames")
    return 0


# The two functions below are the library side of the subcommands (importable
# for tests and notebooks); their heavy imports stay inside them.


INFO_SAMPLE_CHUNKS = 64  # chunks per column that `data info` decompresses to find damage


def describe(path) -> str:
    """Human-readable summary of a dataset file: layout check, columns, action statistics."""
    import json

    import numpy as np

    from lewm.data.hdf5 import inspect_dataset, open_h5
    from lewm.data.normalize import extreme_actions

    # every chunked column's chunks, sampled: a damaged file is reported as damaged
    info = inspect_dataset(path, sample_chunks=INFO_SAMPLE_CHUNKS)
    lines = [f"file: {info.path}"]
    meta = info.attrs
    if meta:
        keys = ("env", "policy", "episodes", "image_size", "seed", "max_steps")
        lines.append("collected: " + ", ".join(f"{k}={meta[k]}" for k in keys if k in meta))
    ep_len = info.ep_len
    lines.append(
        f"episodes: {info.n_episodes}   steps (rows): {info.n_rows}   "
        f"transitions: {info.n_rows - info.n_episodes}"
    )
    if info.n_episodes:
        lines.append(
            f"episode length: min {int(ep_len.min())}, mean {float(ep_len.mean()):.1f}, "
            f"max {int(ep_len.max())}"
        )
    lines.append(
        f"image size: {info.image_size[0]}x{info.image_size[1]}   action dim: {info.action_dim}"
    )
    lines.append("columns:")
    width = max(len(n) for n in info.columns)
    for name in sorted(info.columns):
        shape, dtype = info.columns[name]
        lines.append(f"  {name:<{width}}  {str(tuple(shape)):<22} {dtype}")
    with open_h5(path) as f:
        action = np.asarray(f["action"][()], dtype=np.float64)
    nan_rows = ~np.isfinite(action).all(axis=1)
    valid = action[~nan_rows]
    lines.append(
        f"action statistics over {len(valid)} rows "
        f"({int(nan_rows.sum())} NaN rows; one per episode expected):"
    )
    lines.append(f"  {'dim':>3} {'mean':>10} {'std':>10} {'min':>10} {'max':>10}")
    if len(valid):
        stats = zip(valid.mean(0), valid.std(0), valid.min(0), valid.max(0), strict=True)
        for d, (mu, sd, lo, hi) in enumerate(stats):
            lines.append(f"  {d:>3} {mu:>10.4f} {sd:>10.4f} {lo:>10.4f} {hi:>10.4f}")
        problem = extreme_actions(valid)
        if problem:
            lines.append(f"warning: {problem}")
    if meta and "env_kwargs" in meta and meta["env_kwargs"]:
        lines.append(f"env kwargs: {json.dumps(meta['env_kwargs'])}")
    return "\n".join(lines)


def write_preview(
    path,
    out,
    *,
    episodes: int = 4,
    start: int = 0,
    fps: float = 10.0,
    every: int = 1,
    scale: int = 1,
):
    """Write an animated GIF of ``episodes`` episodes side by side.

    Returns:
        (output path, number of GIF frames, list of episode indices shown).
    """

    import numpy as np
    from PIL import Image

    from lewm.data.hdf5 import inspect_dataset, open_h5
    from lewm.errors import ConfigError
    from lewm.paths import check_output_file

    out = check_output_file(out, inputs=[path], parent_must_exist=True)
    for name, value in (("episodes", episodes), ("every", every), ("scale", scale)):
        if value <= 0:
            raise ConfigError(f"--{name} must be positive, got {value}")
    if fps <= 0:
        raise ConfigError(f"--fps must be positive, got {fps}")
    if out.suffix.lower() != ".gif":
        raise ConfigError(f"{out}: the preview is an animated GIF; use a .gif name")
    info = inspect_dataset(path, check_actions=False)
    if not 0 <= start < info.n_episodes:
        raise ConfigError(f"--start {start} is out of range: {path} has {info.n_episodes} episodes")
    chosen = list(range(start, min(start + episodes, info.n_episodes)))
    clips = []
    with open_h5(path) as f:
        pixels = f["pixels"]
        for e in chosen:
            lo = int(info.ep_offset[e])
            clips.append(np.asarray(pixels[lo : lo + int(info.ep_len[e])])[::every])  # (T, H, W, 3)
    n_frames = max(len(c) for c in clips)
    h, w = clips[0].shape[1:3]
    gap = 2
    frames = []
    for t in range(n_frames):
        canvas = np.full((h, len(clips) * (w + gap) - gap, 3), 255, dtype=np.uint8)
        for i, clip in enumerate(clips):
            canvas[:, i * (w + gap) : i * (w + gap) + w] = clip[min(t, len(clip) - 1)]
        img = Image.fromarray(canvas)
        if scale > 1:
            img = img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)
        frames.append(img)
    tmp = out.with_name(f".{out.name}.partial")
    try:
        frames[0].save(
            tmp,
            format="GIF",
            save_all=True,
            append_images=frames[1:],
            duration=max(int(round(1000.0 / fps)), 20),
            loop=0,
        )
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return out, n_frames, chosen
