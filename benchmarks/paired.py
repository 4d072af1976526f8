"""Two evaluations of the same start/goal pairs, compared episode by episode.

    python benchmarks/paired.py A/results.json B/results.json

Prints one JSON object: the episodes both count (the headline metric's: starts already
solved are left out when it leaves them out), how many only A solves, only B, both, neither,
and the two-sided exact McNemar p-value (``lewm.eval.study.paired``). Two overlapping
Wilson intervals can hide a difference that the discordant episodes show, because the two
evaluations share their pairs.

Refused with one ``error:`` line (exit 2) unless both are evaluations of the same pairs: the
same environment, seeds, pairs per seed, headline metric and the same held-out file (its
sha256 as each ``results.json`` recorded it). ``--same-rows`` accepts two held-out files with
different bytes (the same ``lewm collect`` command on two machines) when every pair has the
same start and goal rows, the same start-to-goal distance (to 1e-6) and the same "already
solved" flag in both.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def same_pairs(a: dict, b: dict) -> list[str]:
    """What makes ``a`` and ``b`` evaluations of different pairs (empty: the same pairs)."""

    def data_hash(r):
        return r.get("files", {}).get(r.get("data"))

    keys = ("env", "seeds", "episodes_per_seed", "headline_metric")
    differ = [k for k in keys if a.get(k) != b.get(k)]
    if data_hash(a) is None or data_hash(a) != data_hash(b):
        differ.append("the held-out file's sha256")
    return differ


def rows_differ(a: dict, b: dict) -> int:
    """How many pairs (seed, index) differ between ``a`` and ``b`` in start row, goal row,
    start-to-goal distance (beyond 1e-6) or "already solved"; a pair only one has counts too."""

    def pairs(r):
        return {(e["seed"], e["index"]): e for e in r["episodes"]}

    pa, pb = pairs(a), pairs(b)
    differ = len(pa.keys() ^ pb.keys())
    for k in pa.keys() & pb.keys():
        x, y = pa[k], pb[k]
        same = (x["start_row"], x["goal_row"], x["already_solved"]) == (
            y["start_row"], y["goal_row"], y["already_solved"]
        ) and abs(x["initial_distance"] - y["initial_distance"]) <= 1e-6  # fmt: skip
        differ += not same
    return differ


def main(argv=None) -> int:
    from lewm.errors import ConfigError
    from lewm.eval.study import paired

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("a", help="results.json of the first evaluation")
    p.add_argument("b", help="results.json of the second, on the same pairs")
    p.add_argument("--same-rows", action="store_true",
                   help="accept two held-out files whose pairs agree row by row (docstring)")  # fmt: skip
    args = p.parse_args(argv)
    a, b = (json.loads(Path(x).read_text()) for x in (args.a, args.b))
    differ = same_pairs(a, b)
    if args.same_rows and differ == ["the held-out file's sha256"]:
        bad = rows_differ(a, b)
        differ = [f"{bad} pairs' rows, distances or solved flags"] if bad else []
    if differ:
        raise ConfigError(f"{args.a} and {args.b} are not evaluations of the same pairs: they "
                          f"differ in {', '.join(differ)}")  # fmt: skip
    print(json.dumps({"a": args.a, "b": args.b, **paired(a, b)}))
    return 0


if __name__ == "__main__":
    from lewm.errors import LewmError

    try:
        sys.exit(main())
    except (LewmError, OSError, json.JSONDecodeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
