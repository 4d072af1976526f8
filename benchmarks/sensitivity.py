"""LeWM's one loss weight against PLDM's six: success when each is halved or doubled (issue 12).

Runs ``lewm sweep`` (resumable: rerun the same command to continue) for

- LeWM: ``loss.sigreg_weight`` at 0.5x, 1x, 2x of 0.09;
- PLDM: each non-zero coefficient (alpha 18, beta 12, gamma 0.2, zeta 0.7) at 0.5x and 2x,
  one at a time, plus the default run once (nu and mu are 0 in the paper: scaling 0 is 0);

all with the same data, preset, steps and evaluation, then writes ``OUT/sensitivity.json`` and
``OUT/sensitivity.md``: per coefficient the success at 0.5x / 1x / 2x with its Wilson 95 %
interval, the largest drop from 1x, and which scales' intervals are disjoint from 1x's
(``lewm.analysis.sensitivity``). Rerunning a finished study only rewrites the table.

Usage::

    python benchmarks/sensitivity.py --data tworoom_train.h5 --eval-data tworoom_eval.h5 \\
        --env tworoom --out sweeps/sensitivity --steps 1000 --seeds 42 --iters 10
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lewm.analysis.sensitivity import SCALES, cell_from_results, markdown, sensitivity_row
from lewm.checkpoint import atomic_write_bytes

PLDM = {"alpha": 18.0, "beta": 12.0, "gamma": 0.2, "zeta": 0.7}
LAMBDA = 0.09


def _sweep(args, param: str, values: list[float], objective: str, name: str) -> dict:
    from lewm.cli import main

    out = Path(args.out) / name
    argv = ["sweep", "--param", param, "--values", ",".join(f"{v:g}" for v in values),
            "--data", args.data, "--eval-data", args.eval_data, "--env", args.env,
            "--out", str(out), "--preset", args.preset, "--steps", str(args.steps),
            "--objective", objective, "--seeds", args.seeds, "--episodes", str(args.episodes),
            "--iters", str(args.iters), "--samples", str(args.samples)]  # fmt: skip
    if main(argv) != 0:
        raise SystemExit(f"sweep {name} failed")
    return json.loads((out / "sweep.json").read_text())


def _results(sweep: dict) -> dict[float, dict]:
    """Each value's results.json (its run's evaluation, where sweep.json says the run is)."""
    return {float(r["value"]): json.loads((Path(r["run_dir"]) / "eval" / "results.json").read_text())
            for r in sweep["runs"]}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for flag in ("--data", "--eval-data", "--env", "--out"):
        p.add_argument(flag, required=True)
    p.add_argument("--preset", default="small")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--seeds", default="42")
    p.add_argument("--episodes", type=int, default=50, help="evaluation pairs per seed (50)")
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--samples", type=int, default=300)
    args = p.parse_args()

    param = "loss.sigreg_weight"
    lam = _results(_sweep(args, param, [LAMBDA * k for k in SCALES], "lewm", "lewm_lambda"))
    rows = [
        sensitivity_row("LeWM λ", LAMBDA, {k: cell_from_results(lam[LAMBDA * k]) for k in SCALES})
    ]
    base = None
    for name, default in PLDM.items():
        param = f"loss.pldm.{name}"
        values = [default * 0.5, default * 2] + ([default] if base is None else [])
        res = _results(_sweep(args, param, values, "pldm", f"pldm_{name}"))
        base = res.get(default, base)
        scaled = {0.5: res[default * 0.5], 1.0: base, 2.0: res[default * 2]}
        rows.append(sensitivity_row(f"PLDM {name}", default,
                                    {k: cell_from_results(v) for k, v in scaled.items()}))  # fmt: skip
    pairs = lam[LAMBDA]  # the same pairs for every run: one floor, one already-solved fraction
    floor = {"random_success_rate": pairs["random_success_rate"],
             "already_solved_fraction": pairs["already_solved_fraction"]}  # fmt: skip
    note = (f"\nSame {rows[0]['x1']['episodes']} pairs for every run: random-policy floor "
            f"{floor['random_success_rate']:.1f} %, already solved at the start "
            f"{100 * floor['already_solved_fraction']:.1f} %.\n")  # fmt: skip
    out = Path(args.out)
    settings = {k: v for k, v in vars(args).items() if k != "out"}
    text = json.dumps({"settings": settings, **floor, "rows": rows}, indent=2)
    atomic_write_bytes(out / "sensitivity.json", text.encode())
    atomic_write_bytes(out / "sensitivity.md", (markdown(rows) + note).encode())
    print(markdown(rows) + note, end="")


if __name__ == "__main__":
    main()
