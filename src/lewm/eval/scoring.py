"""How an evaluation is scored and reported: per-seed rates, means and stds over seeds,
the ``results.json`` dictionary and its atomic writing (spec §7.4, ``docs/evaluation.md``).

Per seed: ``success_rate`` (% of pairs whose success test fired at any of steps
1..budget), the random floor on the same pairs, the fraction already solved at
step 0, and the success rate among the other starts. Over seeds: the mean, and
the **sample** standard deviation (ddof 1), which is ``null`` for a single seed.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from lewm.eval.config import EvalConfig
    from lewm.eval.pairs import EvalPair
    from lewm.eval.prepare import EvalSetup
    from lewm.eval.restore import EnvSet
    from lewm.eval.runs import RunOutcome

Z95 = 1.959963984540054  # two-sided 95 % normal quantile
STD_KIND = "sample std over seeds (ddof=1); null for a single seed"
RENDER_DIFF_WARN = 5.0  # mean |dataset frame - render| (grey levels, 0..255) above which we warn


class Notes:
    """Progress lines go to ``log``; warnings also go to results.json ``warnings``."""

    def __init__(self, log: Callable[[str], None] | None = None) -> None:
        self.log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self.warnings: list[str] = []

    def warn(self, msg: str) -> None:
        self.warnings.append(msg)
        self.log(f"warning: {msg}")


@dataclass
class Timing:
    """Wall-clock seconds per stage (results.json ``timing``)."""

    start: float = field(default_factory=time.perf_counter)
    setup_seconds: float = 0.0
    mpc_seconds: float = 0.0
    plan_seconds: float = 0.0  # inside solver calls
    env_seconds: float = 0.0  # MPC environment steps + renders
    random_seconds: float = 0.0
    video_seconds: float = 0.0

    def to_dict(self) -> dict[str, float]:
        out = {"total_seconds": time.perf_counter() - self.start}
        out.update({k: v for k, v in asdict(self).items() if k != "start"})
        return out


@dataclass
class SeedResult:
    """One seed, scored."""

    summary: dict[str, Any]  # results.json per_seed entry
    rows: list[dict[str, Any]]  # results.json episodes entries
    render_diffs: np.ndarray  # (n,) grey levels
    solves: int  # (pair, solve) pairs planned
    plan_seconds: float  # inside solver calls


def finite_or_none(x: float) -> float | None:
    """JSON has no NaN/inf: a distance an environment cannot compute becomes null."""
    x = float(x)
    return x if np.isfinite(x) else None


def sample_std(values: Sequence[float]) -> float | None:
    """Sample standard deviation (ddof 1); None when there is only one value."""
    return float(np.std(values, ddof=1)) if len(values) > 1 else None


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score interval of ``successes`` in ``n`` trials, as fractions 0..1 (None if n = 0).

    centre = (p + z²/2n) / (1 + z²/n),  half = z·sqrt(p(1-p)/n + z²/4n²) / (1 + z²/n).
    The one interval every table, study and report of the project prints.
    """
    if n <= 0:
        return None
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def wilson_percent(successes: int, n: int) -> tuple[float, float]:
    """:func:`wilson_interval` at 95 % in percent; (nan, nan) for no trials."""
    ci = wilson_interval(successes, n)
    return (math.nan, math.nan) if ci is None else (100 * ci[0], 100 * ci[1])


def seed_summary(
    seed: int, success: np.ndarray, random_success: np.ndarray, solved0: np.ndarray
) -> dict[str, Any]:
    """Rates in %, the already-solved share as a fraction (spec §7.4, P9)."""
    rest = ~solved0
    excl = 100.0 * float(success[rest].mean()) if rest.any() else None
    random_excl = 100.0 * float(random_success[rest].mean()) if rest.any() else None
    return {
        "seed": seed,
        "success_rate": 100.0 * float(success.mean()),
        "random_success_rate": 100.0 * float(random_success.mean()),
        "already_solved_fraction": float(solved0.mean()),
        "success_rate_excluding_solved": excl,
        "random_success_rate_excluding_solved": random_excl,
        "episodes": int(len(success)),
    }


def score_seed(
    seed: int,
    pairs: Sequence[EvalPair],
    mpc: RunOutcome,
    rnd: RunOutcome,
    solved0: np.ndarray,
    diffs: np.ndarray,
    records: Sequence[Any],
) -> SeedResult:
    """Per-pair rows and the seed's summary; ``records`` are the policy's solve records."""
    rows = [
        {
            "seed": seed,
            **asdict(p),
            "success": bool(mpc.success[i]),
            "steps_to_success": mpc.steps_to_success[i],
            "initial_distance": finite_or_none(mpc.initial_distance[i]),
            "final_distance": finite_or_none(mpc.final_distance[i]),
            "already_solved": bool(solved0[i]),
            "random_success": bool(rnd.success[i]),
            "random_steps_to_success": rnd.steps_to_success[i],
            "random_initial_distance": finite_or_none(rnd.initial_distance[i]),
            "random_final_distance": finite_or_none(rnd.final_distance[i]),
            "render_diff": float(diffs[i]),
        }
        for i, p in enumerate(pairs)
    ]
    plan = sum(r.seconds for r in records)
    solves = sum(len(r.env_ids) for r in records)
    summary = seed_summary(seed, mpc.success, rnd.success, solved0)
    summary["plan_seconds_mean"] = plan / max(solves, 1)
    return SeedResult(summary, rows, diffs, solves, plan)


def render_consistency(diffs: np.ndarray, notes: Notes) -> dict[str, Any]:
    """P13: how far renders after ``load_state`` are from the dataset frames."""
    mean = float(np.mean(diffs))
    check = {
        "mean_abs_diff": mean,
        "max_abs_diff": float(np.max(diffs)),
        "units": "grey levels (0..255), mean over pixels and channels, render after load_state "
        "vs the dataset frame",
        "warn_above": RENDER_DIFF_WARN,
        "ok": bool(mean <= RENDER_DIFF_WARN),
    }
    if not check["ok"]:
        notes.warn(
            f"renders differ from the dataset frames by {mean:.2f} grey levels on average: the "
            "planner sees the dataset frame first and renders afterwards (spec §12 P13)"
        )
    return check


def over_seeds(per_seed: Sequence[dict[str, Any]], profile: str) -> dict[str, Any]:
    """The headline numbers: means over seeds, sample stds (ddof 1; None for one seed)."""
    rates = [s["success_rate"] for s in per_seed]
    floor = [s["random_success_rate"] for s in per_seed]
    excl = [s["success_rate_excluding_solved"] for s in per_seed]
    excl = [x for x in excl if x is not None]
    return {
        "success_rate": float(np.mean(rates)),
        "success_rate_std": sample_std(rates),
        "random_success_rate": float(np.mean(floor)),
        "random_success_rate_std": sample_std(floor),
        "std_kind": STD_KIND,
        "already_solved_fraction": float(np.mean([s["already_solved_fraction"] for s in per_seed])),
        "success_rate_excluding_solved": float(np.mean(excl)) if excl else None,
        "headline_metric": "success_rate_excluding_solved"
        if profile == "clean"
        else "success_rate",
    }


def build_results(
    setup: EvalSetup,
    seeds: Sequence[SeedResult],
    envs: EnvSet,
    timing: Timing,
    notes: Notes,
    command: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The ``results.json`` dictionary (keys documented in ``docs/evaluation.md``), with no
    absolute path of this machine in it (:func:`lewm.eval.files.scrub`)."""
    from lewm.eval.files import checkpoint_files, file_hashes, portable_path, scrub

    cfg = setup.config
    ckpt_files = checkpoint_files(setup.ckpt)
    files = file_hashes([*ckpt_files, setup.data, cfg.stats_from])
    weights = [portable_path(p) for p in ckpt_files if p.suffix in (".safetensors", ".pt")]
    results = {
        **_results_body(setup, seeds, envs, timing, notes),
        "checkpoint": portable_path(setup.ckpt),
        "data": portable_path(setup.data),
        "command": None if command is None else [str(a) for a in command],
        "files": files,
        # what `lewm report` matches an evaluation to its run by, wherever it is run from
        "weights_sha256": files[weights[0]] if weights else None,
        "policy": _policy_entry(setup),
    }
    train_file = setup.provenance.data.get("path")
    return scrub(results, (setup.ckpt, setup.data, cfg.stats_from, cfg.policy, train_file))


def _policy_entry(setup: EvalSetup) -> dict[str, Any] | None:
    """What the --policy folder was, or None."""
    cfg = setup.config
    if cfg.policy is None:
        return None
    from lewm.eval.files import file_hashes, portable_path
    from lewm.policy.folder import META_FILE, WEIGHTS_FILE

    meta = setup.policy_meta or {}
    return {
        "path": portable_path(cfg.policy),
        "mode": "policy-init" if cfg.policy_init else "policy",
        "files": file_hashes([cfg.policy / META_FILE, cfg.policy / WEIGHTS_FILE]),
        "config": meta.get("config"),
        "trained_on": meta.get("data", {}).get("path"),
    }


def _results_body(
    setup: EvalSetup, seeds: Sequence[SeedResult], envs: EnvSet, timing: Timing, notes: Notes
) -> dict[str, Any]:
    import lewm

    cfg = setup.config
    per_seed = [s.summary for s in seeds]
    solves = sum(s.solves for s in seeds)
    model, prov, size = setup.model, setup.provenance, setup.size
    render_check = render_consistency(np.concatenate([s.render_diffs for s in seeds]), notes)
    return {
        **over_seeds(per_seed, cfg.profile),
        "per_seed": per_seed,
        "plan_seconds_mean": sum(s.plan_seconds for s in seeds) / max(solves, 1),
        "decision_ms_mean": 1000.0 * sum(s.plan_seconds for s in seeds) / max(solves, 1),
        "solves": solves,
        "env": setup.env,
        "env_kwargs": envs.kwargs,
        "checkpoint_step": prov.step,
        "preset": prov.preset,
        "action_stats": prov.action_stats,
        "model": {
            "image_size": size,
            "frameskip": model.frameskip,
            "action_dim": model.action_dim,
            "history_size": model.history_size,
            "objective": prov.config.loss.objective if prov.config is not None else "lewm",
        },
        "profile": cfg.profile,
        "held_out": setup.source.held_out,
        "held_out_note": setup.source.note,
        "seeds": list(cfg.seeds),
        "episodes_per_seed": cfg.episodes,
        "solver": setup.planner.settings(),
        "mpc": _mpc_settings(cfg, model.frameskip, setup.planner),
        "render_consistency": render_check,
        "resize_frames": bool(cfg.resize_frames and setup.info.image_size != (size, size)),
        "device": str(setup.device),
        "compiled_rollout": bool(cfg.compile),
        "timing": timing.to_dict(),
        "warnings": notes.warnings,
        "lewm_version": lewm.__version__,
        "episodes": [row for s in seeds for row in s.rows],
    }


def _mpc_settings(cfg: EvalConfig, frameskip: int, planner: Any) -> dict[str, Any]:
    from lewm.planning.bounds import clamp_mode

    mpc = cfg.mpc_config(cfg.seeds[0])
    return {
        "horizon": cfg.horizon,
        "receding": mpc.receding_horizon,
        "frameskip": frameskip,
        "context": cfg.context,
        "dataset_history": cfg.dataset_history,
        "budget": cfg.budget,
        "goal_offset": cfg.goal_offset,
        "warm_start": mpc.warm_start,
        "cost_steps": mpc.cost_steps,
        "cost_step": mpc.cost_step,
        "clamp": clamp_mode(mpc.profile, mpc.clamp_to_bounds, planner),
    }


def write_results(out: str | Path, results: dict[str, Any]) -> Path:
    """Write ``out/results.json`` atomically (temp file + rename); NaN is refused."""
    from lewm.checkpoint import atomic_write_bytes

    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(results, indent=2, allow_nan=False) + "\n"
    path = out_dir / "results.json"
    atomic_write_bytes(path, text.encode())
    return path
