"""``lewm report``: one self-contained HTML page of a run, its evaluations and analyses."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="write one self-contained HTML report of a run (curves, evaluations, GIFs, analyses)",
        description="Write one self-contained HTML page (images embedded, no network needed) "
        "with the run's identity, training curves, evaluation tables and episode GIFs, and "
        "probing/surprise results. Damaged inputs are shown on the page; the exit code is 2 "
        "only when nothing valid is left.",
    )
    p.add_argument(
        "run_dir", metavar="RUN_DIR", help="training run directory (config.json, metrics.jsonl)"
    )
    p.add_argument(
        "--eval",
        dest="evals",
        action="append",
        default=[],
        metavar="EVAL_DIR",
        help="evaluation directory (results.json, videos/); repeat to compare several",
    )
    p.add_argument(
        "--analysis",
        dest="analyses",
        action="append",
        default=[],
        metavar="DIR",
        help="analysis directory (probe.json, surprise.json, PNGs); repeatable",
    )
    p.add_argument("--out", default="report.html", help="output HTML file (default: report.html)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from lewm.paths import check_output_file
    from lewm.report import write_report

    # before reading anything: an unusable --out (empty, a directory, an input) fails first
    check_output_file(args.out, inputs=[args.run_dir, *args.evals, *args.analyses])
    result = write_report(args.run_dir, evals=args.evals, analyses=args.analyses, out=args.out)
    for problem in result.problems:
        print(f"warning: {problem}", file=sys.stderr)
    print(f"wrote {result.path} ({result.size_bytes / 1e6:.1f} MB)")
    return 0
