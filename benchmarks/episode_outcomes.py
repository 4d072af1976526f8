"""Where the episodes of one evaluation ended, beside the random floor's (docs/results.md).

Over the starts not already solved: how many the plan solved, moved (the distance changed by
more than 1e-3), brought closer, left farther than the start, and the median distances.

    python benchmarks/episode_outcomes.py checkpoints/pusht/results.json
"""

from __future__ import annotations

import json
import statistics
import sys


def outcomes(results: dict) -> dict:
    """The counts and medians for the planner and the random floor of ``results.json``."""
    eps = [e for e in results["episodes"] if not e["already_solved"]]
    out = {"starts_not_already_solved": len(eps)}
    out["median_initial_distance"] = statistics.median(e["initial_distance"] for e in eps)
    for who, prefix in (("plan", ""), ("random", "random_")):
        pairs = [(e[f"{prefix}initial_distance"], e[f"{prefix}final_distance"]) for e in eps]
        out[who] = {
            "solved": sum(bool(e[f"{prefix}success"]) for e in eps),
            "moved": sum(abs(b - a) > 1e-3 for a, b in pairs),
            "closer": sum(b < a - 1e-3 for a, b in pairs),
            "farther": sum(b > a for a, b in pairs),
            "median_final_distance": statistics.median(b for _, b in pairs),
        }
    return out


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        print(json.dumps(outcomes(json.load(f)), indent=2))
