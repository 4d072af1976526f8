"""Several single-seed evaluations of one checkpoint as one ``results.json`` dictionary.

A long evaluation run seed by seed (``lewm demo`` does, so a killed evaluation keeps its
finished seeds) is merged here into what one multi-seed ``evaluate`` call returns: the
headline numbers recomputed over seeds (:func:`lewm.eval.scoring.over_seeds`), per-seed
rows and episodes concatenated, solve counts and times added.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lewm.eval.config import EvaluationError
from lewm.eval.scoring import over_seeds

# Settings every part must share: results of different evaluations are not one evaluation.
_SAME = ("env", "env_kwargs", "checkpoint", "checkpoint_step", "data", "profile", "solver",
         "mpc", "episodes_per_seed", "model", "held_out", "weights_sha256", "policy", "files")  # fmt: skip


def merge_seed_results(parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One results dictionary from evaluations of disjoint seeds (in the given order)."""
    if not parts:
        raise EvaluationError("no evaluation results to merge")
    first = parts[0]
    for part in parts[1:]:
        differ = [k for k in _SAME if part.get(k) != first.get(k)]
        if differ:
            raise EvaluationError(f"cannot merge evaluations that differ in {', '.join(differ)}")
    seeds = [s for p in parts for s in p["seeds"]]
    if len(set(seeds)) != len(seeds):
        raise EvaluationError(f"evaluations to merge repeat seeds: {seeds}")
    per_seed = [row for p in parts for row in p["per_seed"]]
    solves = sum(p["solves"] for p in parts)
    timing: dict[str, float] = {}
    for p in parts:
        for k, v in p.get("timing", {}).items():
            if isinstance(v, (int, float)):
                timing[k] = timing.get(k, 0.0) + v
    warnings = list(dict.fromkeys(w for p in parts for w in p.get("warnings", [])))
    plan_seconds = sum(p["plan_seconds_mean"] * p["solves"] for p in parts) / max(solves, 1)
    merged = {
        **first,
        **over_seeds(per_seed, first["profile"]),
        "per_seed": per_seed,
        "plan_seconds_mean": plan_seconds,
        "solves": solves,
        "seeds": seeds,
        "timing": timing,
        "warnings": warnings,
        "episodes": [row for p in parts for row in p["episodes"]],
        # one evaluate() call per seed: the commands are per part (None: a library call)
        "command": [p.get("command") for p in parts],
    }
    if "decision_ms_mean" in first:
        merged["decision_ms_mean"] = 1000 * plan_seconds
    return merged
