"""``lewm sweep``: one training run per value of one config key, each evaluated (spec §11.3).

Layout under the output directory::

    KEY=VALUE/            a run directory (lewm train), one per value
    KEY=VALUE/eval/       its results.json (lewm eval on the evaluation file)
    KEY=VALUE/probe/      its probe.json (with --probe: linear probes, projector features)
    sweep.json, sweep.png the table and the plot, written when every value is done

Resumable at every stage: a run that reached its step budget is not trained again, a
run stopped earlier (Ctrl-C, a crash, a smaller ``--steps`` before) is resumed through
``lewm train``'s own resume path (which refuses a saved config that differs from the
sweep's), and a run with a results.json / probe.json is not evaluated / probed again.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lewm.errors import ConfigError
from lewm.eval.files import portable_path


@dataclass(frozen=True)
class SweepSpec:
    param: str
    values: tuple[str, ...]
    data: Path
    eval_data: Path
    env: str
    out: Path
    preset: str = "small"
    steps: int | None = None
    overrides: tuple[str, ...] = ()
    objective: str | None = None
    eval_settings: dict[str, Any] = field(default_factory=dict)  # EvalConfig fields
    probe: bool = False
    device: str = "auto"

    def __post_init__(self) -> None:
        if not self.values:
            raise ConfigError("--values: give at least one value")
        if len(set(self.values)) != len(self.values):
            raise ConfigError(f"--values has duplicates: {list(self.values)}")
        if self.steps is not None and self.steps < 1:
            raise ConfigError("--steps must be positive")


def run_name(param: str, value: str) -> str:
    """The run directory's name: ``KEY=VALUE`` with path-unsafe characters replaced."""
    return re.sub(r"[^A-Za-z0-9._=+-]", "_", f"{param}={value}")


def base_overrides(spec: SweepSpec, value: str) -> dict[str, str]:
    """Every setting the sweep fixes for one run, by dotted key (the swept one last)."""
    out = {}
    for item in spec.overrides:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        out[key.strip()] = raw.strip()
    out[spec.param] = value
    return out


def build_config(spec: SweepSpec, value: str):
    """The config of one run: preset (and objective), --set items, then KEY=VALUE; validated."""
    from lewm.config import apply_overrides, preset

    cfg = preset(spec.preset, "clean", spec.objective) if spec.objective else preset(spec.preset)
    items = [f"{k}={v}" for k, v in base_overrides(spec, value).items()]
    cfg = apply_overrides(cfg, items)
    if spec.steps is not None:
        cfg.train.steps = spec.steps
    return cfg.validate()


def train_state(run_dir: Path) -> tuple[str, int, int]:
    """("new" | "partial" | "done", saved step, saved stop step) of a run directory."""
    cfg_path = run_dir / "config.json"
    if not cfg_path.is_file():
        return "new", 0, 0
    from lewm.checkpoint.common import read_json

    meta = read_json(cfg_path)
    has_state = (run_dir / "train_state.pt").is_file()
    step = int(meta.get("step") or 0) if has_state else 0
    stop = int((meta.get("train") or {}).get("steps") or 0)
    return ("done" if has_state and stop and step >= stop else "partial"), step, stop


def train_one(spec: SweepSpec, value: str, run_dir: Path, log: Callable[[str], None]) -> str:
    """Train, resume or skip the run of ``value``; returns what was done."""
    import lewm.train

    status, step, stop = train_state(run_dir)
    wanted = spec.steps or stop
    if status == "done" and (spec.steps is None or step >= spec.steps):
        log(f"{run_dir.name}: trained ({step} steps), skipped")
        return "skipped"
    cfg = build_config(spec, value)
    if status == "new":
        log(f"{run_dir.name}: training")
        lewm.train.train(cfg, spec.data, run_dir, device=spec.device, progress=False)
        return "trained"
    log(f"{run_dir.name}: resuming from step {step} to {wanted or 'its budget'}")
    cfg.train.steps = spec.steps or 0
    requested = {"preset": spec.preset, **base_overrides(spec, value)}
    if spec.objective:
        requested["loss.objective"] = spec.objective
    lewm.train.train(cfg, spec.data, run_dir, resume=True, device=spec.device, progress=False,
                     overrides=requested)  # fmt: skip
    return "resumed"


def evaluate_one(spec: SweepSpec, run_dir: Path, log: Callable[[str], None]) -> dict[str, Any]:
    """results.json of the run (evaluated now unless it exists)."""
    from lewm.eval import protocol

    path = run_dir / "eval" / "results.json"
    if path.is_file():
        log(f"{run_dir.name}: evaluated, results.json read")
        return json.loads(path.read_text())
    log(f"{run_dir.name}: evaluating on {spec.eval_data}")
    return protocol.evaluate(run_dir, spec.env, spec.eval_data, run_dir / "eval",
                             device=spec.device, log=log, **spec.eval_settings)  # fmt: skip


def probe_one(spec: SweepSpec, run_dir: Path, log: Callable[[str], None]) -> float | None:
    """Mean Pearson r of the linear probes (projector features) on the evaluation file."""
    from lewm.analysis.outputs import write_outputs
    from lewm.analysis.probe_run import ProbeSettings, probe_files, run_probe
    from lewm.train import resolve_device

    path = run_dir / "probe" / "probe.json"
    if path.is_file():
        result = json.loads(path.read_text())
    else:
        settings = ProbeSettings(split_seeds=(0,), features=("projector",), mlp=None, env=spec.env)
        result, scatter = run_probe(run_dir, spec.eval_data, settings,
                                    device=resolve_device(spec.device), log=log)  # fmt: skip
        write_outputs(run_dir / "probe", probe_files(result, scatter))
    rs = [q["linear"]["pearson_r"] for q in result["features"]["projector"]["quantities"].values()]
    rs = [r for r in rs if r is not None]
    return sum(rs) / len(rs) if rs else None


def run_sweep(spec: SweepSpec, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Every value: train (or resume or skip), evaluate, probe; then sweep.json and sweep.png."""
    from lewm.analysis.outputs import json_bytes, write_outputs
    from lewm.analysis.plots import sweep_plot
    from lewm.paths import check_output_dir

    check_output_dir(spec.out, inputs=(spec.data, spec.eval_data), what="--out")
    for value in spec.values:  # every config is checked before the first run trains
        build_config(spec, value)
    rows = []
    for value in spec.values:
        run_dir = spec.out / run_name(spec.param, value)
        action = train_one(spec, value, run_dir, log)
        res = evaluate_one(spec, run_dir, log)
        row = {"value": _number(value), "run_dir": portable_path(run_dir), "training": action,
               "steps": train_state(run_dir)[1]}  # fmt: skip
        for key in ("success_rate", "success_rate_std", "random_success_rate", "std_kind", "seeds"):
            row[key] = res.get(key)
        row["probe_r"] = probe_one(spec, run_dir, log) if spec.probe else None
        rows.append(row)
    result = _summary(spec, rows)
    png = sweep_plot(spec.param, rows, result["log_x"]) if result["numeric"] else None
    write_outputs(
        spec.out, {**({"sweep.png": png} if png else {}), "sweep.json": json_bytes(result)}
    )
    return result


def _number(value: str) -> Any:
    try:
        return int(value) if re.fullmatch(r"[+-]?\d+", value) else float(value)
    except ValueError:
        return value


def _summary(spec: SweepSpec, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    numeric = all(isinstance(r["value"], (int, float)) and math.isfinite(r["value"]) for r in rows)
    return {
        "param": spec.param,
        "values": [r["value"] for r in rows],
        "env": spec.env,
        "data": portable_path(spec.data),
        "eval_data": portable_path(spec.eval_data),
        "preset": spec.preset,
        "steps": spec.steps,
        "overrides": list(spec.overrides),
        "objective": spec.objective or "lewm",
        "evaluation": spec.eval_settings,
        "probe": "mean Pearson r of linear probes on projector features, split seed 0"
        if spec.probe
        else None,
        "numeric": numeric,
        "log_x": numeric and all(r["value"] > 0 for r in rows),
        "runs": list(rows),
    }
