"""The compute-study tooling: Wilson intervals, the cheapest matching setting, and a
resumable quick study end to end (benchmarks/compute_study.py --quick)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from lewm.eval.study import (
    Setting,
    cheapest_match,
    chosen_budget,
    earlier_step_vs_last,
    paired,
    random_floor,
    study_settings,
)

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
    return {"name": name, "solver": name.split("_")[0], "token_passes_per_decision": passes,
            "pooled_success": pooled, "wilson95": ci, "seconds_per_solve": passes / 1e5}  # fmt: skip


def test_cheapest_match_uses_the_reference_interval():
    rows = [row("cem_300x30", 81000, 86.0, [73.8, 93.0]), row("cem_150x15", 20250, 80.0, [67, 89]),
            row("cem_50x10", 4500, 60.0, [46, 72]), row("icem_100x10", 9000, 96.0, [87, 99])]  # fmt: skip
    assert cheapest_match(rows, "cem_300x30") == "icem_100x10"  # better than the reference counts
    rows[-1]["pooled_success"] = 70.0
    assert cheapest_match(rows, "cem_300x30") == "cem_150x15"
    assert cheapest_match(rows, "missing") is None
    rows = [row("cem_300x30", 81000, 69.3, [61.5, 76.2]), row("cem_100x10", 9000, 66.0, [58, 73]),
            row("mppi_100x10", 9000, 72.0, [64, 79])]  # fmt: skip
    rows[1]["seconds_per_solve"] = 0.01  # the fastest, but not the best at this compute
    assert cheapest_match(rows, "cem_300x30") == "mppi_100x10"  # equal passes: more success
    assert cheapest_match(rows, "cem_300x30", solver="cem") == "cem_100x10"


def test_the_budget_is_the_cheapest_match_only_when_the_reference_beats_the_floor():
    rows = [row("cem_300x30", 81000, 8.0, [4.6, 13.5]), row("cem_50x10", 4500, 6.0, [3.2, 11.0])]
    assert cheapest_match(rows, "cem_300x30") == "cem_50x10"
    near = {"wilson95": [1.4, 7.6]}  # 5/150: the reference's interval overlaps it
    assert chosen_budget(rows, "cem_300x30", near) == "cem_300x30"
    far = {"wilson95": [0.0, 4.0]}
    assert chosen_budget(rows, "cem_300x30", far) == "cem_50x10"
    rows.append(row("icem_16x2", 32, 9.0, [5.0, 14.0]))  # cheaper, but not the default solver
    assert chosen_budget(rows, "cem_300x30", far) == "cem_50x10"
    rows.pop()
    rows[1]["pooled_success"] = 2.0  # nothing cheaper matches
    assert chosen_budget(rows, "cem_300x30", far) == "cem_300x30"


def test_the_random_floor_counts_the_same_episodes_as_the_headline_metric():
    episodes = [{"random_success": True, "already_solved": True}] + [
        {"random_success": k < 1, "already_solved": False} for k in range(4)
    ]
    res = {"episodes": episodes, "headline_metric": "success_rate_excluding_solved"}
    assert random_floor(res)["successes"] == 1 and random_floor(res)["episodes"] == 4
    res["headline_metric"] = "success_rate"
    floor = random_floor(res)
    assert (floor["successes"], floor["episodes"], floor["pooled_success"]) == (2, 5, 40.0)
    assert floor["wilson95"][0] < 40.0 < floor["wilson95"][1]


def evaluation(successes, solved=()):
    """A results.json of seed 42's pairs 0..n-1 with these outcomes (``solved``: indices
    already solved at the start), counted like the clean profile counts them."""
    return {"headline_metric": "success_rate_excluding_solved",
            "episodes": [{"seed": 42, "index": k, "success": ok, "already_solved": k in solved}
                         for k, ok in enumerate(successes)]}  # fmt: skip


def test_paired_counts_what_only_one_setting_solves_and_tests_it_exactly():
    a = evaluation([True] * 12 + [False] * 8)
    b = evaluation([True] * 2 + [False] * 10 + [True] * 2 + [False] * 6)
    got = paired(a, b)
    assert (got["episodes"], got["only_this"], got["only_other"]) == (20, 10, 2)
    assert (got["both"], got["neither"]) == (2, 6)
    # two-sided exact: P(X <= 2 or X >= 10), X ~ Binomial(12, 1/2) = 2 * 79 / 4096
    assert abs(got["mcnemar_exact_p"] - 2 * 79 / 4096) < 1e-12
    assert paired(a, a)["mcnemar_exact_p"] == 1.0  # no discordant episode: no evidence
    # the episodes the headline metric leaves out (already solved) are left out of the pairs
    assert paired(evaluation([True] * 20, solved={0, 1}), b)["episodes"] == 18


def test_each_earlier_step_ranking_is_paired_with_the_same_budget_on_the_last_step():
    settings = [Setting("cem", 300, 30), Setting("cem", 300, 10), Setting("cem", 300, 10, 4),
                Setting("cem", 150, 15, 4)]  # fmt: skip
    results = [evaluation([False] * 4), evaluation([True, False, False, False]),
               evaluation([True, True, True, False]), evaluation([True] * 4)]  # fmt: skip
    rows = earlier_step_vs_last(settings, results)
    assert len(rows) == 1  # 150x15 on the last step is not in this study
    assert rows[0]["setting"] == "cem_300x10_step4" and rows[0]["other"] == "cem_300x10"
    assert (rows[0]["only_this"], rows[0]["only_other"], rows[0]["both"]) == (2, 0, 1)


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
    assert study["budget"] in names and study["random_floor"]["episodes"] == 2
    for r in study["settings"]:
        assert (out / r["results"]).is_file()
        lo, hi = r["wilson95"]
        assert lo <= r["pooled_success"] <= hi
    by = {r["name"]: r for r in study["settings"]}
    assert by["cem_16x2"]["token_passes_per_decision"] == 16 * 2 * 9
    assert by["cem_16x2_step4"]["token_passes_per_decision"] == 16 * 2 * 6  # 1+1+1+3
    assert (out / "success_vs_compute.png").stat().st_size > 1000
    pairs = {(p["setting"], p["other"]): p for p in study["earlier_step_vs_last"]}
    assert set(pairs) == {("cem_16x2_step4", "cem_16x2"), ("cem_8x2_step4", "cem_8x2")}
    for p in pairs.values():  # the same pairs, counted the way the headline metric counts them
        assert p["episodes"] == by[p["other"]]["episodes"]
        assert p["only_this"] + p["both"] == by[p["setting"]]["successes"]
    again = subprocess.run(list(map(str, cmd)), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and again.stderr.count("skipped") == len(names)
    # the reference measured already (e.g. a shipped evaluation) stands in for its setting
    ref = out / "cem_16x2" / "results.json"
    reuse = [*cmd[: cmd.index("--out") + 1], tmp_path / "again", "--quick", "--device", "cpu",
             "--only", "cem_16x2", "--reference-results", ref]  # fmt: skip
    proc = subprocess.run(list(map(str, reuse)), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and "cem_16x2: reused" in proc.stderr, proc.stderr
    copied = json.loads((tmp_path / "again" / "cem_16x2" / "results.json").read_text())
    assert copied == json.loads(ref.read_text())
    assert (
        json.loads((tmp_path / "again" / "study.json").read_text())["reference_command"]
        == (copied["command"])
    )
    other = [tmp_path / "other" if a == tmp_path / "again" else a for a in reuse]
    other += ["--env-set", "size=3"]  # not the reference's environment settings
    proc = subprocess.run(list(map(str, other)), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "differs in env_kwargs" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "other" / "cem_16x2").exists()
    # any other setting measured already: reused too, and in the study whatever --only says
    step4 = out / "cem_8x2_step4" / "results.json"
    more = [*reuse, "--reuse", f"cem_8x2_step4={step4}"]
    more[more.index("--out") + 1] = tmp_path / "more"
    proc = subprocess.run(list(map(str, more)), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and "cem_8x2_step4: reused" in proc.stderr, proc.stderr
    study = json.loads((tmp_path / "more" / "study.json").read_text())
    assert [r["name"] for r in study["settings"]] == ["cem_16x2", "cem_8x2_step4"]
    assert set(study["reused"]) == {"cem_16x2", "cem_8x2_step4"}
    assert json.loads((tmp_path / "more" / "cem_8x2_step4" / "results.json").read_text()) == (
        json.loads(step4.read_text())
    )
    wrong = [*reuse, "--reuse", f"cem_8x2={step4}"]  # another setting's evaluation
    wrong[wrong.index("--out") + 1] = tmp_path / "wrong"
    proc = subprocess.run(list(map(str, wrong)), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2 and "differs in cost_step" in proc.stderr
    assert not (tmp_path / "wrong").exists()  # every reuse is checked before anything is written
    bad = [*reuse, "--reuse", f"cem_1x1={step4}"]  # no such setting: refused before any work
    bad[bad.index("--out") + 1] = tmp_path / "bad"
    proc = subprocess.run(list(map(str, bad)), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2 and "--reuse names no setting of this study: cem_1x1" in (
        proc.stderr
    )
    assert not (tmp_path / "bad").exists()


def test_reuse_differences_name_what_differs():
    from lewm.eval.study import reuse_differences

    setting = Setting("cem", 16, 2)
    results = {
        "env": "tworoom",
        "env_kwargs": {"profile": "clean"},
        "profile": "clean",
        "seeds": [42],
        "episodes_per_seed": 2,
        "files": {"a/model.safetensors": "aa", "d.h5": "dd"},
        "solver": {"solver": "cem", "samples": 16, "iterations": 2, "topk": 2, "init_std": 1.0},
        "mpc": {"cost_step": None},
        "policy": None,
    }
    expected = {
        "env": "tworoom",
        "env_kwargs": {},
        "profile": "clean",
        "seeds": (42,),
        "episodes_per_seed": 2,
        "files": {"elsewhere/model.safetensors": "aa", "elsewhere/d.h5": "dd"},  # same bytes
    }
    assert reuse_differences(results, setting, expected) == []
    changed = {**expected, "files": {"m": "zz", "d": "dd"}, "seeds": (43,)}
    assert reuse_differences(results, setting, changed) == ["seeds", "files"]
    assert reuse_differences(results, Setting("cem", 16, 2, cost_step=4), expected) == ["cost_step"]
    assert reuse_differences(results, Setting("cem", 8, 2), expected) == ["solver"]


def test_studied_budgets_follow_the_committed_studies():
    """lewm.eval.budgets.STUDIED names each study's cheapest match and quotes its figures."""
    from lewm.eval.budgets import STUDIED

    assert STUDIED, "no environment has a studied budget"
    for env, budget in STUDIED.items():
        study = json.loads((ROOT / budget.study / "study.json").read_text())
        assert study["env"] == env and study["budget"] == budget.name
        rows = {row["name"]: row for row in study["settings"]}
        low, high = rows[study["reference"]]["wilson95"]
        quoted = (rows[budget.name]["pooled_success"], rows[study["reference"]]["pooled_success"])
        assert f"{quoted[0]:.1f} % against {quoted[1]:.1f} % [{low:.1f}, {high:.1f}]" in budget.why


def test_every_committed_study_that_found_a_cheaper_setting_sets_its_budget():
    """The other direction: a committed study whose chosen budget is not its reference is
    the environment's budget. A study that kept 300x30 (its reference could not be told from
    the random floor) leaves the environment at 300x30, unless another study of the same
    environment, of a model that plans there, chose its budget."""
    from lewm.eval.budgets import PAPER, default_budget

    studies = sorted((ROOT / "benchmarks" / "results").glob("compute_study_*/study.json"))
    assert studies, "no committed compute study"
    deciding = {}
    for path in studies:
        study = json.loads(path.read_text())
        if study["budget"] != study["reference"]:
            assert study["env"] not in deciding, f"two studies set {study['env']}'s budget"
            deciding[study["env"]] = (path.parent.relative_to(ROOT).as_posix(), study["budget"])
    for path in studies:
        env = json.loads(path.read_text())["env"]
        budget = default_budget(env)
        if env in deciding:
            assert (budget.study, budget.name) == deciding[env], path.parent.name
        else:
            assert budget is PAPER, f"{path.parent.name}: {budget.name} != {PAPER.name}"


def test_the_plot_takes_settings_at_0_and_100_percent(tmp_path):
    """Wilson's interval ends at the point itself there (up to rounding): no negative bar."""
    from lewm.eval.scoring import wilson_percent
    from lewm.eval.study import plot_study

    rows = [
        {**row(name, passes, 100.0 * k / 150, list(wilson_percent(k, 150))), "curve": curve,
         "samples": s, "iterations": i}
        for name, passes, k, curve, s, i in (("cem_300x30", 81000, 144, "cem", 300, 30),
                                             ("icem_150x15", 20250, 150, "icem", 150, 15),
                                             ("mppi_100x10", 9000, 0, "mppi", 100, 10))
    ]  # fmt: skip
    plot_study(rows, tmp_path / "p.png", "t")
    assert (tmp_path / "p.png").stat().st_size > 1000


def test_paired_script_compares_two_evaluations_of_the_same_pairs_and_refuses_others(tmp_path):
    script = ROOT / "benchmarks" / "paired.py"
    record = {"env": "tworoom", "seeds": [42], "episodes_per_seed": 4, "data": "d.h5",
              "files": {"d.h5": "ab" * 32}}  # fmt: skip
    a = {**record, **evaluation([True, True, True, False])}
    b = {**record, **evaluation([True, False, False, False])}
    for name, res in (("a", a), ("b", b), ("c", {**b, "files": {"d.h5": "cd" * 32}})):
        (tmp_path / f"{name}.json").write_text(json.dumps(res))

    def run(x, y):
        return subprocess.run([sys.executable, str(script), str(tmp_path / x), str(tmp_path / y)],
                              capture_output=True, text=True, timeout=120)  # fmt: skip

    proc = run("a.json", "b.json")
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert (got["only_this"], got["only_other"], got["both"], got["neither"]) == (2, 0, 1, 1)
    assert got["mcnemar_exact_p"] == 0.5  # 2 of 2 discordant: 2 * (1/2)^2
    proc = run("a.json", "c.json")  # another held-out file: other pairs, nothing to pair
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert "differ in the held-out file's sha256" in proc.stderr


def test_paired_script_same_rows_accepts_other_bytes_only_when_every_pair_agrees(tmp_path):
    script = ROOT / "benchmarks" / "paired.py"

    def results(digest, distance=10.0):
        res = {"env": "pusht", "seeds": [42], "episodes_per_seed": 2, "data": "d.h5",
               "files": {"d.h5": digest}, **evaluation([True, False])}  # fmt: skip
        for k, e in enumerate(res["episodes"]):
            e.update(start_row=10 * k, goal_row=10 * k + 5, initial_distance=distance + k)
        return res

    for name, res in (("a", results("ab" * 32)), ("b", results("cd" * 32)),
                      ("c", results("cd" * 32, distance=10.5))):  # fmt: skip
        (tmp_path / f"{name}.json").write_text(json.dumps(res))

    def run(x, y):
        cmd = [sys.executable, str(script), str(tmp_path / x), str(tmp_path / y), "--same-rows"]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120)

    proc = run("a.json", "b.json")  # other bytes, the same pairs: compared
    assert proc.returncode == 0 and json.loads(proc.stdout)["both"] == 1, proc.stderr
    proc = run("a.json", "c.json")  # a start-to-goal distance differs: other pairs, refused
    assert proc.returncode == 2 and "2 pairs' rows, distances or solved flags" in proc.stderr
