"""The sensitivity table (issue 12) on constructed cells: intervals, drops, verdicts."""

from __future__ import annotations

import pytest

from lewm.analysis.sensitivity import Cell, cell_from_results, markdown, sensitivity_row


def test_cell_pools_every_seed_of_a_results_file():
    results = {"episodes": [{"success": s} for s in (True, False, True, True)]}
    cell = cell_from_results(results)
    assert (cell.successes, cell.episodes, cell.rate) == (3, 4, 75.0)
    lo, hi = cell.interval
    assert lo < 75.0 < hi


def test_a_cell_cannot_have_more_successes_than_episodes():
    with pytest.raises(ValueError, match="not in 0..50"):
        Cell(51, 50)


def test_robust_coefficient_has_no_scale_outside_the_interval():
    row = sensitivity_row("LeWM λ", 0.09, {0.5: Cell(44, 50), 1.0: Cell(45, 50), 2.0: Cell(43, 50)})
    assert row["max_drop"] == pytest.approx(4.0)
    assert row["outside_ci"] == []
    assert row["x0.5"]["successes"] == 44 and row["x2"]["episodes"] == 50


def test_a_collapse_is_flagged_and_an_improvement_is_not_a_drop():
    row = sensitivity_row("PLDM beta", 12, {0.5: Cell(2, 50), 1.0: Cell(20, 50), 2.0: Cell(24, 50)})
    assert row["max_drop"] == pytest.approx(36.0)
    assert row["outside_ci"] == ["x0.5"]
    up = sensitivity_row(
        "PLDM gamma", 0.2, {0.5: Cell(30, 50), 1.0: Cell(10, 50), 2.0: Cell(12, 50)}
    )
    assert up["max_drop"] == pytest.approx(-4.0)  # both scales do better than x1
    assert up["outside_ci"] == ["x0.5"]  # a change either way is reported


def test_a_missing_scale_is_refused():
    with pytest.raises(ValueError, match="PLDM zeta: no run at scale"):
        sensitivity_row("PLDM zeta", 0.7, {0.5: Cell(1, 2), 1.0: Cell(1, 2)})


def test_markdown_has_a_line_per_coefficient_with_intervals():
    rows = [
        sensitivity_row("LeWM λ", 0.09, {0.5: Cell(44, 50), 1.0: Cell(45, 50), 2.0: Cell(2, 50)})
    ]
    text = markdown(rows)
    lines = text.strip().splitlines()
    assert len(lines) == 3
    assert lines[2].startswith("| LeWM λ | 0.09 | 88.0 (")
    assert "| 86.0 | x2 |" in lines[2]


def test_the_study_runs_end_to_end_and_a_rerun_only_rewrites_the_table(tmp_path, monkeypatch):
    import json
    import sys

    from analysis_helpers import tworoom_run
    from repo_scripts import load_script

    _, data = tworoom_run()
    out = tmp_path / "sens"
    argv = ["sensitivity.py", "--data", str(data), "--eval-data", str(data), "--env", "tworoom",
            "--out", str(out), "--preset", "tiny", "--steps", "1", "--episodes", "1",
            "--iters", "1", "--samples", "8"]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    script = load_script("benchmarks/sensitivity.py")
    script.main()
    result = json.loads((out / "sensitivity.json").read_text())
    names = [r["coefficient"] for r in result["rows"]]
    assert names == ["LeWM λ", "PLDM alpha", "PLDM beta", "PLDM gamma", "PLDM zeta"]
    # the PLDM default is trained once (in alpha's sweep) and shared by every PLDM row
    assert not (out / "pldm_beta" / "loss.pldm.beta=12").exists()
    assert len({json.dumps(r["x1"]) for r in result["rows"][1:]}) == 1
    assert all(r[k]["episodes"] == 1 for r in result["rows"] for k in ("x0.5", "x1", "x2"))
    md = (out / "sensitivity.md").read_text()
    assert md.count("\n") == 2 + len(names) + 2  # header, rows, a blank line, the floor
    assert "random-policy floor" in md

    def no_training(*a, **kw):
        raise AssertionError("a finished study trained again")

    monkeypatch.setattr("lewm.train.train", no_training)
    (out / "sensitivity.md").unlink()
    script.main()
    assert (out / "sensitivity.md").read_text() == md
