"""``lewm probe``: linear and MLP probes of physical quantities on frozen embeddings (spec §9.1)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "probe",
        help="probe a checkpoint's embeddings for physical quantities (linear + MLP)",
        description="Fit linear (ridge) and MLP probes from single frozen embeddings to the "
        "physical quantities stored in a dataset file (spec §9.1), split by episode 80/10/10, "
        "for the projector output and the CLS token before it. Writes OUT/probe.json and "
        "OUT/probe_<features>.png, and prints a table beside the paper's values. "
        "Example: lewm probe --ckpt runs/pusht --data pusht_eval.h5 --out analysis/pusht",
    )
    p.add_argument("--ckpt", required=True, help="run directory (or the authors' checkpoint)")
    p.add_argument("--data", required=True, help="HDF5 file (reference layout) with state columns")
    p.add_argument("--out", required=True, help="output directory for probe.json and the PNGs")
    p.add_argument(
        "--quantities",
        help="comma-separated quantity names of the environment's table, or columns "
        "(COLUMN or COLUMN[a:b]); default: the environment's table (docs/analysis.md)",
    )
    p.add_argument("--env", help="environment of the file (default: recorded in it, or guessed)")
    p.add_argument("--features", default="projector,cls", help="projector,cls (default: both)")
    p.add_argument(
        "--split-seeds", default="0,1,2", help="episode-split seeds; the first gives the headline"
    )
    p.add_argument("--no-mlp", action="store_true", help="linear probes only")
    p.add_argument(
        "--mlp-all-seeds",
        action="store_true",
        help="MLP probes on every split seed (default: the first; linear probes use all)",
    )
    p.add_argument("--mlp-steps", type=int, default=3000, help="MLP step cap (3000)")
    p.add_argument("--every", type=int, default=1, help="probe every K-th row of an episode (1)")
    p.add_argument("--max-frames", type=int, help="cap on frames (whole episodes, seeded)")
    p.add_argument("--batch-size", type=int, default=256, help="frames per encoder batch (256)")
    p.add_argument("--resize-frames", action="store_true", help="resize frames of another size")
    p.add_argument(
        "--stats-from",
        metavar="FILE.h5",
        help="authors' checkpoints: file for action statistics (default: --data; unused here)",
    )
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | mps (default: auto)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json
    import sys

    from lewm.analysis.outputs import parse_ints, parse_names, write_outputs
    from lewm.analysis.probe import MLPConfig
    from lewm.analysis.probe_run import ProbeSettings, probe_files, probe_table, run_probe
    from lewm.errors import ConfigError
    from lewm.paths import check_output_dir
    from lewm.train import resolve_device

    out = check_output_dir(args.out, inputs=(args.ckpt, args.data), what="--out")
    if args.mlp_steps < 1:
        raise ConfigError("--mlp-steps must be positive")
    settings = ProbeSettings(
        quantities=parse_names(args.quantities),
        env=args.env,
        split_seeds=parse_ints(args.split_seeds, "--split-seeds"),
        features=parse_names(args.features),
        mlp=None if args.no_mlp else MLPConfig(max_steps=args.mlp_steps),
        mlp_all_seeds=args.mlp_all_seeds,
        every=args.every,
        max_frames=args.max_frames,
        batch_size=args.batch_size,
        resize_frames=args.resize_frames,
    )

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    result, scatter = run_probe(
        args.ckpt,
        args.data,
        settings,
        device=resolve_device(args.device),
        stats_from=args.stats_from,
        log=log,
    )
    write_outputs(out, probe_files(result, scatter))
    print(probe_table(result), file=sys.stderr, flush=True)
    print(json.dumps({"probe": str(out / "probe.json"), "env": result["env"],
                      "frames_per_s": result["encode"]["frames_per_s"]}))  # fmt: skip
    return 0
