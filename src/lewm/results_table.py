"""``RESULTS.md``: the success table of the shipped checkpoints, beside the paper's figures.

One row per ``checkpoints/NAME/results.json`` (written by the ``lewm eval`` call it records
in ``command``), with the training facts of ``checkpoints/NAME/training.json``. Every
number in the table is computed here from those files; nothing is typed in by hand.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

__all__ = ["PAPER", "build_table", "wilson_interval"]

PAPER = {  # spec §11.1: success rate (%), budget 50, goal 25 steps ahead, training-file pairs
    "tworoom": {"lewm": 87, "pldm": 97, "dinowm": 100},
    "reacher": {"lewm": 86, "pldm": 78, "dinowm": 79},
    "pusht": {"lewm": 96, "pldm": 78, "dinowm": 74},
    "cube": {"lewm": 74, "pldm": 65, "dinowm": 86},
}
ENV_ORDER = ("tworoom", "pusht", "reacher", "cube")


def wilson_interval(successes: int, n: int) -> tuple[float, float]:
    """95 % Wilson score interval of a binomial proportion, in percent (SciPy's)."""
    if n == 0:
        return (math.nan, math.nan)
    from scipy.stats import binomtest

    ci = binomtest(successes, n).proportion_ci(0.95, method="wilson")
    return (100 * float(ci.low), 100 * float(ci.high))


def _row(folder: Path) -> dict:
    res = json.loads((folder / "results.json").read_text())
    info_path = folder / "training.json"
    info = json.loads(info_path.read_text()) if info_path.exists() else {}
    eps = res["episodes"]
    k = sum(bool(e["success"]) for e in eps)
    lo, hi = wilson_interval(k, len(eps))
    solver = res["solver"]
    std = res["success_rate_std"]
    data = info.get("train_data", {})
    minutes = info.get("train_seconds")
    return {
        "name": folder.name,
        "env": res["env"],
        "objective": res.get("model", {}).get("objective") or info.get("objective", "lewm"),
        "success": f"{res['success_rate']:.1f} ± {std:.1f}" if std is not None
        else f"{res['success_rate']:.1f}",
        "ci": f"{lo:.1f}–{hi:.1f}",
        "pooled": f"{k}/{len(eps)}",
        "random": f"{res['random_success_rate']:.1f}",
        "solved": f"{100 * res['already_solved_fraction']:.1f}",
        "excl": "n/a" if res["success_rate_excluding_solved"] is None
        else f"{res['success_rate_excluding_solved']:.1f}",
        "held_out": "yes" if res["held_out"] else "**no**",
        "solver": f"{solver['solver']} {solver.get('samples')}×{solver.get('iterations')}, "
        f"budget {res['mpc']['budget']}",
        "data": f"{data.get('n_episodes')} ep / {data.get('n_rows')} rows",
        "minutes": "n/a" if minutes is None else f"{minutes / 60:.0f}",
        "plan": f"{res['plan_seconds_mean']:.2f}",
        "seeds": ",".join(str(s) for s in res["seeds"]),
        "command": " ".join(res.get("command", ["(not recorded)"])),
    }  # fmt: skip


def build_table(checkpoints: str | Path = "checkpoints") -> str:
    """The Markdown table (and its footnotes) for every evaluated folder under ``checkpoints``."""
    folders = sorted(p.parent for p in Path(checkpoints).glob("*/results.json"))
    rows = sorted((_row(f) for f in folders), key=lambda r: (ENV_ORDER.index(r["env"])
                  if r["env"] in ENV_ORDER else 99, r["objective"]))  # fmt: skip
    head = ("| environment | model | paper LeWM | paper PLDM | paper DINO-WM | ours: success % "
            "(mean ± sample std over seeds) | 95 % CI (Wilson, pooled) | random floor % | "
            "already solved % | success excl. solved % | held-out pairs | solver, budget | "
            "training data | training min | planning s / env-solve |")  # fmt: skip
    lines = [head, "|" + "---|" * 15]
    for r in rows:
        paper = PAPER.get(r["env"], {})
        lines.append(
            f"| {r['env']} | {r['objective']} (`checkpoints/{r['name']}`) | "
            f"{paper.get('lewm', '–')} | {paper.get('pldm', '–')} | {paper.get('dinowm', '–')} | "
            f"{r['success']} (seeds {r['seeds']}) | {r['ci']} ({r['pooled']}) | {r['random']} | "
            f"{r['solved']} | {r['excl']} | {r['held_out']} | {r['solver']} | {r['data']} | "
            f"{r['minutes']} | {r['plan']} |"
        )
    lines += ["", "Commands that wrote each row's `results.json` (run from the repository root), "
              "after the command that makes its held-out evaluation file (the recipe's seed + 1; "
              "the same bytes on every run, sha256 in `results.json`):", ""]  # fmt: skip
    for r in rows:
        lines.append(f"- `{r['name']}`: `{eval_file_command(r['env'])}` then `{r['command']}`")
    return "\n".join(lines) + "\n"


def eval_file_command(env: str) -> str:
    """The ``lewm collect`` call that writes ``data/ENV_eval.h5`` as the recipe of ``env`` does."""
    from lewm.recipes import recipe

    cfg = recipe(env) if env in ENV_ORDER else None
    if cfg is None:
        return "(no recipe)"
    sets = "".join(f" --env-set {k}={json.dumps(v)}" for k, v in cfg.env_kwargs.items())
    return (f"lewm collect --env {env} --policy {cfg.policy} --episodes {cfg.eval_episodes} "
            f"--image-size {cfg.image_size} --seed {cfg.seed + 1}{sets} --out data/{env}_eval.h5")  # fmt: skip


def write_results_md(checkpoints: str | Path = "checkpoints") -> str:
    """The whole ``RESULTS.md``: what the table shows, the table, what is missing."""
    done = {json.loads(p.read_text())["env"] for p in Path(checkpoints).glob("*/results.json")}
    missing = [e for e in ENV_ORDER if e not in done]
    parts = [
        "# Results: LeWM trained and evaluated on this project's CPU\n",
        "Written by `lewm results table` from `checkpoints/*/results.json`; do not edit by hand.",
        "Protocol (spec §7): start/goal pairs drawn from a **held-out** file collected with "
        "another seed, goal 25 steps ahead, budget 50 steps, success if the environment's "
        "test fires at any step; evaluation seeds 42, 43, 44 with 50 pairs each. The random "
        "floor runs uniform actions on the same pairs. Paper columns: spec §11.1 (224×224, "
        "pairs from the training file). Training minutes and planning seconds are the wall-clock "
        "times each run recorded on this project's 2-core machine, which other jobs may have "
        "shared: upper bounds (idle-machine timings are in the README). Details and what was "
        "tried: `docs/results.md`.\n",
        build_table(checkpoints),
    ]
    if missing:
        parts.append(
            "Not in the table yet (no shipped, evaluated checkpoint): "
            + ", ".join(missing)
            + ". See `docs/results.md` for the state of each.\n"
        )
    return "\n".join(parts)
