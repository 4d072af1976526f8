"""Evaluation directories (``results.json`` + ``videos/*.gif``) as the report reads them.

Which checkpoint an evaluation belongs to is decided by evidence, strongest first:
a recorded sha256 of the weights; then the recorded checkpoint path (resolved,
relative paths tried against the working directory and the evaluation directory);
and a model whose image size / frameskip / action dimension differ from the run's
is never this run's. An evaluation of another checkpoint is shown under a warning
and kept out of the run's table and comparison.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lewm.eval.scoring import wilson_interval
from lewm.report.loading import RunData, read_json_object

SHA_KEYS = ("checkpoint_sha256", "weights_sha256", "model_sha256")
GIF_NAME = re.compile(r"seed(?P<seed>-?\d+)_pair(?P<pair>\d+)_ep(?P<ep>\d+)_(?P<outcome>\w+)\.gif$")


@dataclass(frozen=True)
class Pooled:
    """Episode counts pooled over every seed of an evaluation."""

    n: int  # episodes
    success: int
    random_success: int
    n_unsolved: int  # episodes whose start did not already satisfy the success test
    success_unsolved: int

    def interval(self, which: str = "success") -> tuple[float, float] | None:
        if which == "unsolved":
            return wilson_interval(self.success_unsolved, self.n_unsolved)
        k = self.random_success if which == "random" else self.success
        return wilson_interval(k, self.n)


def pooled_counts(results: dict[str, Any]) -> Pooled | None:
    """Counts from the per-episode records, else reconstructed from ``per_seed`` rates."""
    eps = results.get("episodes")
    if isinstance(eps, list) and eps and all(isinstance(e, dict) for e in eps):
        unsolved = [e for e in eps if not e.get("already_solved")]
        return Pooled(
            n=len(eps),
            success=sum(bool(e.get("success")) for e in eps),
            random_success=sum(bool(e.get("random_success")) for e in eps),
            n_unsolved=len(unsolved),
            success_unsolved=sum(bool(e.get("success")) for e in unsolved),
        )
    seeds = results.get("per_seed")
    if not isinstance(seeds, list) or not seeds:
        return None
    try:
        n = [int(s["episodes"]) for s in seeds]
        ks = [round(s["success_rate"] * m / 100) for s, m in zip(seeds, n, strict=True)]
        kr = [round(s["random_success_rate"] * m / 100) for s, m in zip(seeds, n, strict=True)]
        solved = [round(s["already_solved_fraction"] * m) for s, m in zip(seeds, n, strict=True)]
        excl = [s.get("success_rate_excluding_solved") or 0.0 for s in seeds]
    except (KeyError, TypeError, ValueError):
        return None
    n_uns = [m - a for m, a in zip(n, solved, strict=True)]
    k_uns = [round(x * u / 100) for x, u in zip(excl, n_uns, strict=True)]
    return Pooled(sum(n), sum(ks), sum(kr), sum(n_uns), sum(k_uns))


@dataclass
class EvalData:
    path: Path
    label: str
    results: dict[str, Any]
    belongs: bool  # evaluates RUN_DIR's checkpoint (or nothing says otherwise)
    checkpoint_note: str  # why we think so; shown when not obviously this run
    pooled: Pooled | None
    gifs: list[Path] = field(default_factory=list)


def _resolved_candidates(recorded: str, eval_dir: Path) -> list[Path]:
    p = Path(recorded).expanduser()
    if p.is_absolute():
        return [p.resolve()]
    return [(base / p).resolve() for base in (Path.cwd(), eval_dir, eval_dir.parent)]


def _model_conflict(results: dict[str, Any], run: RunData) -> str | None:
    model = results.get("model")
    cfg = run.config or {}
    mine = {
        "image_size": (cfg.get("model") or {}).get("encoder", {}).get("image_size"),
        "frameskip": (cfg.get("model") or {}).get("frameskip"),
        "action_dim": (cfg.get("model") or {}).get("action_dim"),
    }
    if not isinstance(model, dict):
        return None
    for key, value in mine.items():
        theirs = model.get(key)
        if value is not None and theirs is not None and theirs != value:
            return f"its model has {key} {theirs}, the run's has {value}"
    return None


def checkpoint_match(results: dict[str, Any], eval_dir: Path, run: RunData) -> tuple[bool, str]:
    """(belongs to the run, explanation)."""
    conflict = _model_conflict(results, run)
    if conflict:
        return False, f"another checkpoint: {conflict}"
    for key in SHA_KEYS:
        sha = results.get(key)
        if isinstance(sha, str) and sha:
            mine = run.weights_sha256()
            if mine is None:
                return (
                    False,
                    f"records {key} {sha[:12]}…, but the run has no {run.path}/model.safetensors",
                )
            if mine.lower() == sha.lower():
                return True, f"same weights ({key} {sha[:12]}…)"
            return False, f"another checkpoint: {key} {sha[:12]}… ≠ the run's {mine[:12]}…"
    recorded = results.get("checkpoint")
    if not isinstance(recorded, str) or not recorded:
        return True, "results.json does not name its checkpoint; assumed to be this run's"
    run_path = run.path.resolve()
    if run_path in _resolved_candidates(recorded, eval_dir):
        return True, f"checkpoint {recorded}"
    return False, f"another checkpoint: results.json names {recorded}, not {run.path}"


def stale_note(results: dict[str, Any], run: RunData) -> str | None:
    """A note when the evaluation saw an earlier step of this run than the one saved now."""
    step = results.get("checkpoint_step")
    now = (run.config or {}).get("step")
    if isinstance(step, int) and isinstance(now, int) and step != now:
        return f"evaluated at step {step}; the run directory now holds step {now}"
    return None


def episode_gifs(eval_dir: Path) -> list[Path]:
    return sorted((eval_dir / "videos").glob("*.gif")) if (eval_dir / "videos").is_dir() else []


def gif_label(path: Path) -> tuple[str, bool | None]:
    """(caption, success) from ``seed{S}_pair{i}_ep{E}_{success|fail}.gif``; success None if unknown."""
    m = GIF_NAME.search(path.name)
    if not m:
        return path.stem, None
    ok = m["outcome"] == "success"
    return f"seed {m['seed']}, pair {int(m['pair'])}, episode {m['ep']}", ok


def pick_gifs(gifs: list[Path], limit: int = 8) -> list[Path]:
    """At most ``limit`` GIFs, alternating successes and failures so both are shown."""
    good = [g for g in gifs if gif_label(g)[1] is True]
    bad = [g for g in gifs if gif_label(g)[1] is not True]
    out: list[Path] = []
    while (good or bad) and len(out) < limit:
        for pool in (good, bad):
            if pool and len(out) < limit:
                out.append(pool.pop(0))
    return out


def load_eval(eval_dir: str | Path, run: RunData, problems: list[str]) -> EvalData | None:
    """Read one evaluation directory (None, with a problem recorded, if it has no results)."""
    path = Path(eval_dir)
    if not path.is_dir():
        problems.append(f"{path}: evaluation directory not found")
        return None
    results = read_json_object(path / "results.json", problems)
    if results is None:
        return None
    if not isinstance(results.get("success_rate"), int | float):
        problems.append(f"{path / 'results.json'}: no numeric 'success_rate'; not an evaluation")
        return None
    belongs, note = checkpoint_match(results, path, run)
    if not belongs:
        problems.append(
            f"{path}: not this run's checkpoint ({note.removeprefix('another checkpoint: ')})"
        )
    return EvalData(
        path, path.name, results, belongs, note, pooled_counts(results), episode_gifs(path)
    )


def unique_labels(evals: list[EvalData]) -> None:
    """Give evaluations with the same folder name a longer label (parent/name)."""
    names = [e.path.name for e in evals]
    for e in evals:
        if names.count(e.path.name) > 1 or not e.path.name:
            e.label = "/".join(e.path.resolve().parts[-2:])


def settings(results: dict[str, Any]) -> dict[str, Any]:
    """Solver and MPC settings flattened (``solver`` name first), for tables and comparisons."""
    out: dict[str, Any] = {}
    for block in ("solver", "mpc"):
        value = results.get(block)
        if isinstance(value, dict):
            out.update({k: v for k, v in value.items() if isinstance(v, str | int | float | bool)})
    return out


def varying_settings(evals: list[EvalData]) -> list[str]:
    """Setting names whose values differ between the evaluations (the study's variables)."""
    all_settings = [settings(e.results) for e in evals]
    keys = list(dict.fromkeys(k for s in all_settings for k in s))
    return [k for k in keys if len({repr(s.get(k)) for s in all_settings}) > 1]
