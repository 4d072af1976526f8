"""LeWM's one loss weight against PLDM's six: success when each is halved or doubled (issue 12).

Runs ``lewm sweep`` (resumable: rerun the same command to continue) for

- LeWM: ``loss.sigreg_weight`` at 0.5x, 1x, 2x of 0.09;
- PLDM: each non-zero coefficient (alpha 18, beta 12, gamma 0.2, zeta 0.7) at 0.5x and 2x,
  one at a time, plus the default run once (nu and mu are 0 in the paper: scaling 0 is 0);

all with the same data, preset, steps and evaluation, then writes ``OUT/sensitivity.json`` and
``OUT/sensitivity.md``: per coefficient the success at 0.5x / 1x / 2x and the largest drop from 1x.

Usage::

    python benchmarks/sensitivity.py --data tworoom_train.h5 --eval-data tworoom_eval.h5 \\
        --env tworoom --out sweeps/sensitivity --steps 1000 --seeds 42 --iters 10
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

PLDM = {"alpha": 18.0, "beta": 12.0, "gamma": 0.2, "zeta": 0.7}
LAMBDA = 0.09


def _sweep(args, param: str, values: list[float], objective: str, name: str) -> dict:
    from lewm.cli import main

    out = Path(args.out) / name
    argv = ["sweep", "--param", param, "--values", ",".join(f"{v:g}" for v in values),
            "--data", args.data, "--eval-data", args.eval_data, "--env", args.env,
            "--out", str(out), "--preset", args.preset, "--steps", str(args.steps),
            "--objective", objective, "--seeds", args.seeds, "--iters", str(args.iters),
            "--samples", str(args.samples)]  # fmt: skip
    if main(argv) != 0:
        raise SystemExit(f"sweep {name} failed")
    return json.loads((out / "sweep.json").read_text())


def _rates(sweep: dict) -> dict[float, float]:
    return {float(r["value"]): r["success_rate"] for r in sweep["runs"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for flag in ("--data", "--eval-data", "--env", "--out"):
        p.add_argument(flag, required=True)
    p.add_argument("--preset", default="small")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--seeds", default="42")
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--samples", type=int, default=300)
    args = p.parse_args()

    rows = []
    lam = _rates(_sweep(args, "loss.sigreg_weight", [LAMBDA * k for k in (0.5, 1, 2)], "lewm",
                        "lewm_lambda"))  # fmt: skip
    rows.append(("LeWM λ", LAMBDA, lam[LAMBDA * 0.5], lam[LAMBDA], lam[LAMBDA * 2]))
    base = None
    for name, default in PLDM.items():
        values = [default * 0.5, default * 2] + ([default] if base is None else [])
        r = _rates(_sweep(args, f"loss.pldm.{name}", values, "pldm", f"pldm_{name}"))
        base = r.get(default, base)
        rows.append((f"PLDM {name}", default, r[default * 0.5], base, r[default * 2]))
    table = [{"coefficient": c, "default": d, "x0.5": lo, "x1": mid, "x2": hi,
              "max_drop": max(mid - lo, mid - hi)} for c, d, lo, mid, hi in rows]  # fmt: skip
    lines = ["| coefficient | default | ×0.5 | ×1 | ×2 | largest drop from ×1 |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    lines += [f"| {t['coefficient']} | {t['default']:g} | {t['x0.5']:.1f} | {t['x1']:.1f} | "
              f"{t['x2']:.1f} | {t['max_drop']:.1f} |" for t in table]  # fmt: skip
    out = Path(args.out)
    settings = {k: v for k, v in vars(args).items() if k != "out"}
    (out / "sensitivity.json").write_text(
        json.dumps({"settings": settings, "rows": table}, indent=2)
    )
    (out / "sensitivity.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
