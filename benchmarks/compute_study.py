"""Success versus planning compute for one checkpoint (issue 14): writes study.json and a PNG.

One ``lewm.eval.protocol.evaluate`` output folder per setting under ``--out`` (the paper's
protocol, the same pairs and seeds for every setting); a setting whose ``results.json``
exists is skipped, so a killed study continues where it stopped. Settings
(``lewm.eval.study.study_settings``): CEM 300x30 (the reference), 300x10, 150x15, 100x10,
50x10; iCEM and MPPI at 300x30, 150x15, 100x10; CEM 300x30 and 300x10 ranked on an
earlier predicted step (``--earlier-steps``, default 4 of 5).

    python benchmarks/compute_study.py --ckpt runs/tworoom --env tworoom \\
        --data tworoom_eval.h5 --out studies/tworoom
    python benchmarks/compute_study.py ... --quick      # a tiny grid, 1 seed, 2 pairs (tests)
    python benchmarks/compute_study.py ... --env-set render_size=64 \
        --reference-results checkpoints/reacher/results.json   # 300x30 measured already

``--reference-results`` stands in for the CEM 300x30 evaluation when it is the same
evaluation (environment and its settings, seeds, pairs, solver settings, and the sha256 of
the checkpoint and data files; ``lewm.eval.study.reuse_differences``); it is copied into
the study folder and named in ``study.json``. ``--reuse NAME=RESULTS.json`` does the same
for any other setting (e.g. a shipped CEM 300x10 row). Anything else is refused with one line.

``study.json``: per setting the pooled success and its Wilson 95 % interval, the mean and
std over seeds, predictor token passes per decision, seconds per solve; the cheapest
setting whose success is within the interval of CEM 300x30 (``cheapest_within_ci``); the
random floor on 300x30's episodes (``random_floor``); and ``budget``, the default CEM
budget the environment plans with: the cheapest CEM match when 300x30's interval lies wholly
above the floor's, else 300x30 (a reference the floor cannot be told from matches anything);
``earlier_step_vs_last``: each earlier-step ranking against the same budget ranked on the
last step, episode by episode (``lewm.eval.study.paired``: only-this / only-other counts and
the exact McNemar p-value).
``success_vs_compute.png``: success against token passes per decision, one curve per solver.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ckpt", required=True)
    p.add_argument("--env", required=True)
    p.add_argument("--data", required=True, help="the evaluation HDF5 file")
    p.add_argument("--out", required=True, help="study folder (one subfolder per setting)")
    p.add_argument("--seeds", default="42,43,44")
    p.add_argument("--episodes", type=int, default=50)
    p.add_argument("--earlier-steps", default="4", help="comma-separated ranking steps (4)")
    p.add_argument("--profile", default="clean", choices=("clean", "reference"))
    p.add_argument("--device", default="auto")
    p.add_argument("--only", default="", help="comma-separated setting names to run")
    p.add_argument(
        "--env-set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="environment constructor keyword (repeatable), e.g. render_size=64",
    )
    p.add_argument(
        "--reference-results",
        metavar="RESULTS.json",
        help="an earlier evaluation of CEM 300x30 to reuse (checked to be the same evaluation)",
    )
    p.add_argument(
        "--reuse",
        action="append",
        default=[],
        metavar="NAME=RESULTS.json",
        help="an earlier evaluation of setting NAME to reuse (repeatable; checked the same way)",
    )
    p.add_argument("--quick", action="store_true", help="tiny grid, 1 seed, 2 pairs")
    return p.parse_args(argv)


def env_kwargs(args) -> dict:
    from lewm.errors import ConfigError

    out = {}
    for item in args.env_set:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--env-set expects KEY=VALUE, got {item!r}")
        try:
            out[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            out[key.strip()] = raw  # a bare string
    return out


def reused(args, settings) -> dict[str, dict]:
    """{setting name: its earlier results.json} from ``--reference-results`` (the first
    setting's) and ``--reuse``, each checked to be this study's evaluation of its setting, all
    before any work."""
    from lewm.errors import ConfigError

    sources = {settings[0].name: args.reference_results} if args.reference_results else {}
    for item in args.reuse:
        name, sep, source = item.partition("=")
        if not sep or not name.strip() or not source.strip():
            raise ConfigError(f"--reuse expects NAME=RESULTS.json, got {item!r}")
        sources[name.strip()] = source.strip()
    by_name = {s.name: s for s in settings}
    unknown = sorted(set(sources) - set(by_name))
    if unknown:
        raise ConfigError(f"--reuse names no setting of this study: {', '.join(unknown)}")
    return {name: checked(args, by_name[name], source) for name, source in sources.items()}


def checked(args, setting, source: str) -> dict:
    """``source`` (an earlier results.json), refused unless it is this study's evaluation of
    ``setting``; its path is kept under ``"_source"``."""
    from lewm.errors import ConfigError
    from lewm.eval.files import checkpoint_files, file_hashes
    from lewm.eval.study import reuse_differences

    results = json.loads(Path(source).read_text())
    expected = {
        "env": args.env,
        "env_kwargs": env_kwargs(args),
        "profile": args.profile,
        "seeds": seeds(args),
        "episodes_per_seed": episodes(args),
        "files": file_hashes([*checkpoint_files(args.ckpt), args.data]),
    }
    differ = reuse_differences(results, setting, expected)
    if differ:
        raise ConfigError(
            f"{source} is not this study's {setting.name} evaluation: it differs in "
            f"{', '.join(differ)}"
        )
    return {**results, "_source": source}


def seeds(args) -> tuple[int, ...]:
    return (42,) if args.quick else tuple(int(s) for s in args.seeds.split(","))


def episodes(args) -> int:
    return 2 if args.quick else args.episodes


def run_setting(args, setting, out: Path, command: list[str], reuse: dict[str, dict]) -> dict:
    """The setting's results.json: read when it exists, else reused or evaluated and written."""
    from lewm.checkpoint import atomic_write_bytes
    from lewm.eval.config import EvalConfig
    from lewm.eval.protocol import evaluate

    path = out / setting.name / "results.json"
    if path.is_file():
        print(f"{setting.name}: done before, skipped", file=sys.stderr)
        return json.loads(path.read_text())
    if setting.name in reuse:
        results = {k: v for k, v in reuse[setting.name].items() if k != "_source"}
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, (json.dumps(results, indent=2) + "\n").encode())
        print(f"{setting.name}: reused {reuse[setting.name]['_source']}", file=sys.stderr)
        return results
    config = EvalConfig(
        episodes=episodes(args),
        seeds=seeds(args),
        solver=setting.solver,
        solver_settings=setting.solver_settings(),
        cost_step=setting.cost_step,
        profile=args.profile,
        device=args.device,
        env_kwargs=env_kwargs(args),
    )
    print(f"{setting.name}: evaluating", file=sys.stderr, flush=True)
    return evaluate(args.ckpt, args.env, args.data, out / setting.name, config, command=command)


def main(argv=None) -> int:
    from lewm.checkpoint import atomic_write_bytes
    from lewm.eval.files import portable_path
    from lewm.eval.study import (
        cheapest_match,
        chosen_budget,
        earlier_step_vs_last,
        plot_study,
        random_floor,
        study_settings,
        summarise,
    )

    args = parse_args(argv)
    out = Path(args.out)
    steps = [int(k) for k in args.earlier_steps.split(",") if k.strip()]
    settings = study_settings(steps, quick=args.quick)
    reuse = reused(args, settings)
    if args.only:  # the reference and the reused settings are always in the study
        keep = {n.strip() for n in args.only.split(",")} | set(reuse)
        settings = [s for s in settings if s.name in keep or s is settings[0]]
    command = ["python", "benchmarks/compute_study.py", *(sys.argv[1:] if argv is None else argv)]
    out.mkdir(parents=True, exist_ok=True)
    results = [run_setting(args, s, out, command, reuse) for s in settings]
    rows = [summarise(s, r) for s, r in zip(settings, results, strict=True)]
    reference = settings[0].name
    floor = random_floor(results[0])
    study = {
        "env": args.env,
        "checkpoint": portable_path(args.ckpt),
        "data": portable_path(args.data),
        "command": command,
        "reference": reference,
        # this script's own command, or the `lewm eval` of a reused --reference-results
        "reference_command": results[0].get("command"),
        "reused": {name: portable_path(r["_source"]) for name, r in reuse.items()},
        "cheapest_within_ci": cheapest_match(rows, reference),
        "rule": "fewest token passes per decision whose pooled success >= the lower end of "
        f"{reference}'s Wilson 95 % interval",
        "random_floor": floor,
        "budget": chosen_budget(rows, reference, floor),
        "budget_rule": f"the cheapest match among {settings[0].solver} settings when "
        f"{reference}'s Wilson interval lies wholly above the random floor's on the same "
        f"episodes, else {reference}",
        "settings": rows,
        # the same episodes, pair by pair: which one solves what the other does not
        "earlier_step_vs_last": earlier_step_vs_last(settings, results),
    }
    atomic_write_bytes(out / "study.json", (json.dumps(study, indent=2) + "\n").encode())
    plot_study(rows, out / "success_vs_compute.png", f"{args.env}: success vs planning compute")
    print(json.dumps({k: study[k] for k in ("reference", "cheapest_within_ci", "budget")}))
    return 0


if __name__ == "__main__":
    from lewm.errors import LewmError

    try:
        sys.exit(main())
    except LewmError as exc:  # bad input: one line, like the lewm commands
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
