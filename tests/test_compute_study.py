"""The compute-study tooling: Wilson intervals, the cheapest matching setting, and a
resumable quick study end to end (benchmarks/compute_study.py --quick)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from lewm.eval.study import Setting, cheapest_match, study_settings

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "compute_study.py"


def test_the_grid_of_the_issue():
    names = [s.name for s in study_settings()]
    assert names[0] == "cem_300x30"
    for name in ("cem_300x10", "cem_150x15", "cem_100x10", "cem_50x10", "icem_150x15",
                 "mppi_100x10", "cem_300x30_step4"):  # fmt: skip
        assert name in names
    assert Setting("icem", 50, 10).solver_settings()["topk"] == 5  # keep_elites
    assert Setting("cem", 150, 15).solver_settings() == {
        "samples": 150,
        "iterations": 15,
        "topk": 15,
    }


def row(name, passes, pooled, ci):
    return {"name": name, "token_passes_per_decision": passes, "pooled_success": pooled,
            "wilson95": ci, "seconds_per_solve": passes / 1e5}  # fmt: skip


def test_cheapest_match_uses_the_reference_interval():
    rows = [row("cem_300x30", 81000, 86.0, [73.8, 93.0]), row("cem_150x15", 20250, 80.0, [67, 89]),
            row("cem_50x10", 4500, 60.0, [46, 72]), row("icem_100x10", 9000, 96.0, [87, 99])]  # fmt: skip
    assert cheapest_match(rows, "cem_300x30") == "icem_100x10"  # better than the reference counts
    rows[-1]["pooled_success"] = 70.0
    assert cheapest_match(rows, "cem_300x30") == "cem_150x15"
    assert cheapest_match(rows, "missing") is None


def test_quick_study_end_to_end_and_resumable(tmp_path):
    sys.path.insert(0, str(Path(__file__).parent))
    from tiny_run import make_tiny_run

    run, data = make_tiny_run(tmp_path)
    out = tmp_path / "study"
    cmd = [sys.executable, str(SCRIPT), "--ckpt", run, "--env", "tworoom", "--data", data,
           "--out", out, "--quick", "--device", "cpu"]  # fmt: skip
    proc = subprocess.run(list(map(str, cmd)), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    study = json.loads((out / "study.json").read_text())
    names = [r["name"] for r in study["settings"]]
    assert names == [s.name for s in study_settings(quick=True)]
    assert study["reference"] == "cem_16x2" and study["cheapest_within_ci"] in names
    for r in study["settings"]:
        assert (out / r["results"]).is_file()
        lo, hi = r["wilson95"]
        assert lo <= r["pooled_success"] <= hi
    by = {r["name"]: r for r in study["settings"]}
    assert by["cem_16x2"]["token_passes_per_decision"] == 16 * 2 * 9
    assert by["cem_16x2_step4"]["token_passes_per_decision"] == 16 * 2 * 6  # 1+1+1+3
    assert (out / "success_vs_compute.png").stat().st_size > 1000
    again = subprocess.run(list(map(str, cmd)), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and again.stderr.count("skipped") == len(names)


def test_studied_budgets_follow_the_committed_studies():
    """lewm.eval.budgets.STUDIED names each study's cheapest match and quotes its figures."""
    from lewm.eval.budgets import STUDIED

    assert STUDIED, "no environment has a studied budget"
    for env, budget in STUDIED.items():
        study = json.loads((ROOT / budget.study / "study.json").read_text())
        assert study["env"] == env and study["cheapest_within_ci"] == budget.name
        rows = {row["name"]: row for row in study["settings"]}
        low, high = rows[study["reference"]]["wilson95"]
        quoted = (rows[budget.name]["pooled_success"], rows[study["reference"]]["pooled_success"])
        assert f"{quoted[0]:.1f} % against {quoted[1]:.1f} % [{low:.1f}, {high:.1f}]" in budget.why
