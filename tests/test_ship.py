"""Shipping a run (``lewm results ship``) and the success table (``lewm results table``)."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch

import lewm
from lewm.cli import main
from lewm.errors import CheckpointError
from lewm.eval.scoring import wilson_percent
from lewm.results_table import baselines_note, build_table, cost_table
from lewm.ship import ship_run


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, synthetic_h5):
    run = tmp_path_factory.mktemp("run") / "run"
    code = main(["train", "--data", str(synthetic_h5), "--out", str(run), "--preset", "tiny",
                 "--steps", "3", "--no-progress", "--device", "cpu"])  # fmt: skip
    assert code == 0
    return run


def test_shipped_folder_loads_and_predicts_like_the_run_to_half_precision(tiny_run, tmp_path):
    out = ship_run(tiny_run, tmp_path / "ship")
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors",
                                                      "training.json"]  # fmt: skip
    full, half = lewm.load(tiny_run), lewm.load(out)
    assert all(p.dtype == torch.float32 for p in half.parameters())
    x = torch.randn(2, 1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a, b = full.encode(x), half.encode(x)
    assert not torch.equal(a, b)  # the weights really went through float16
    torch.testing.assert_close(a, b, atol=3e-2, rtol=3e-2)
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["data"]["path"] == "dot.h5"  # no absolute path of this machine
    info = json.loads((out / "training.json").read_text())
    assert info["steps"] == 3 and info["train_data"]["n_episodes"] == 10
    assert info["train_seconds"] > 0
    assert info["trained_on"] == {"device": "cpu", "name": "cpu", "precision": "fp32",
                                  "processes": 1}  # fmt: skip
    size = (out / "model.safetensors").stat().st_size
    assert size < 0.6 * (tiny_run / "model.safetensors").stat().st_size


def test_a_shipped_baseline_says_its_objective(tmp_path, synthetic_h5):
    run = tmp_path / "pldm"
    code = main(["train", "--objective", "pldm", "--data", str(synthetic_h5), "--out", str(run),
                 "--preset", "tiny", "--steps", "2", "--no-progress", "--device", "cpu"])  # fmt: skip
    assert code == 0
    info = json.loads((ship_run(run, tmp_path / "ship") / "training.json").read_text())
    assert info["objective"] == "pldm"
    assert lewm.load(tmp_path / "ship").provenance.config.loss.objective == "pldm"


def test_shipping_something_that_is_not_a_run_is_one_error(tmp_path):
    with pytest.raises(CheckpointError, match="config.json"):
        ship_run(tmp_path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_wilson_percent_matches_hand_values_and_scipy():
    from scipy.stats import binomtest

    lo, hi = wilson_percent(143, 150)
    assert lo == pytest.approx(90.68, abs=0.01) and hi == pytest.approx(97.72, abs=0.01)
    lo, hi = wilson_percent(0, 50)
    assert lo == pytest.approx(0.0, abs=1e-9) and hi == pytest.approx(7.13, abs=0.01)
    for k, n in [(0, 1), (1, 1), (3, 7), (43, 50), (50, 50), (137, 150)]:
        ci = binomtest(k, n).proportion_ci(0.95, method="wilson")
        assert wilson_percent(k, n) == pytest.approx((100 * ci.low, 100 * ci.high), abs=1e-9)
    assert all(math.isnan(v) for v in wilson_percent(0, 0))


def _results(env: str, successes: list[bool]) -> dict:
    return {
        "env": env, "success_rate": 100 * sum(successes) / len(successes),
        "success_rate_std": 1.5, "random_success_rate": 10.0, "already_solved_fraction": 0.1,
        "success_rate_excluding_solved": 80.0, "held_out": True, "seeds": [42, 43, 44],
        "solver": {"solver": "cem", "samples": 300, "iterations": 10}, "mpc": {"budget": 50},
        "plan_seconds_mean": 1.25, "command": ["lewm", "eval", "--ckpt", f"checkpoints/{env}"],
        "episodes": [{"success": s} for s in successes],
    }  # fmt: skip


def test_table_has_one_row_per_checkpoint_with_pooled_interval_and_command(tmp_path):
    for env, k in (("cube", 100), ("tworoom", 143)):
        (tmp_path / env).mkdir()
        res = _results(env, [True] * k + [False] * (150 - k))
        (tmp_path / env / "results.json").write_text(json.dumps(res))
    (tmp_path / "tworoom" / "training.json").write_text(
        json.dumps({"train_seconds": 600, "train_data": {"n_episodes": 5, "n_rows": 99}})
    )
    table = build_table(tmp_path)
    rows = [line for line in table.splitlines() if line.startswith("| tworoom") or
            line.startswith("| cube")]  # fmt: skip
    assert rows[0].startswith("| tworoom") and rows[1].startswith("| cube")  # paper order
    assert "| 87 | 97 | 100 |" in rows[0] and "90.7–97.7 (143/150)" in rows[0]
    assert "5 ep / 99 rows | 10 |" in rows[0]
    assert "`lewm eval --ckpt checkpoints/tworoom`" in table
    assert main(["results", "table", "--checkpoints", str(tmp_path),
                 "--out", str(tmp_path / "R.md")]) == 0  # fmt: skip
    text = (tmp_path / "R.md").read_text()
    assert "pusht, reacher" in text  # the environments without a row are named


def test_a_model_trained_on_a_gpu_says_so_beside_its_minutes(tmp_path):
    for env, where in (("tworoom", {"device": "cpu", "name": "cpu", "precision": "fp32"}),
                       ("pusht", {"device": "cuda", "name": "NVIDIA H200", "precision": "bf16",
                                  "processes": 1})):  # fmt: skip
        (tmp_path / env).mkdir()
        (tmp_path / env / "results.json").write_text(json.dumps(_results(env, [True] * 150)))
        (tmp_path / env / "training.json").write_text(json.dumps(
            {"train_seconds": 360, "train_data": {"n_episodes": 5, "n_rows": 99},
             "trained_on": where}))  # fmt: skip
    rows = {line.split(" | ")[0]: line for line in build_table(tmp_path).splitlines()}
    assert "| 6 on 1 NVIDIA H200, bf16 |" in rows["| pusht"]
    assert "| 6 |" in rows["| tworoom"]  # a CPU run, like a run older than the record


def test_a_policy_subfolder_is_its_own_row_with_the_world_models_training_facts(tmp_path):
    (tmp_path / "tworoom" / "policy").mkdir(parents=True)
    (tmp_path / "tworoom" / "results.json").write_text(json.dumps(_results("tworoom", [True])))
    (tmp_path / "tworoom" / "training.json").write_text(
        json.dumps({"train_seconds": 1200, "train_data": {"n_episodes": 7, "n_rows": 70}})
    )
    res = _results("tworoom", [True] * 147 + [False] * 3)
    res["plan_seconds_mean"] = 0.004247
    res["checkpoint"] = "checkpoints/tworoom"
    res["policy"] = {"mode": "policy", "path": "checkpoints/tworoom/policy",
                     "trained_on": "data/tworoom_train.h5", "config": {"steps": 2000, "seed": 0}}  # fmt: skip
    (tmp_path / "tworoom" / "policy" / "results.json").write_text(json.dumps(res))
    table = build_table(tmp_path)
    row = next(line for line in table.splitlines() if "`checkpoints/tworoom/policy`" in line)
    assert "lewm + policy" in row and "policy, no search, budget 50" in row
    assert "94.3–99.3 (147/150)" in row and "7 ep / 70 rows | 20 | 0.00425 |" in row
    assert ("`lewm policy train --ckpt checkpoints/tworoom --data data/tworoom_train.h5 "
            "--steps 2000 --seed 0 --out checkpoints/tworoom/policy`") in table  # fmt: skip
    assert "--seed 0 --out data/tworoom_train.h5" in table  # the data the policy learnt from


def test_each_rows_collect_command_is_the_recipe_its_model_was_made_with(tmp_path):
    """A recipe changed after a model was shipped (Cube: coarser meshes, more episodes) must not
    rewrite the held-out file command of that model's rows; the file is the one the row read."""
    from lewm.recipes import recipe

    old = dataclasses.asdict(recipe("cube"))
    old.update(env_kwargs={"fast_render": True, "render_size": 64}, train_episodes=500)
    new = {**old, "env_kwargs": {**old["env_kwargs"], "mesh_detail": 0.1}}
    for name, made_with, data in (("cube", old, "data/cube_eval.h5"),
                                  ("cube-new", new, "data/cube-new_eval.h5")):  # fmt: skip
        (tmp_path / name).mkdir()
        res = _results("cube", [True] * 150)
        res["command"] = ["lewm", "eval", "--ckpt", f"checkpoints/{name}", "--data", data]
        (tmp_path / name / "results.json").write_text(json.dumps(res))
        (tmp_path / name / "training.json").write_text(json.dumps(
            {"train_seconds": 60, "train_data": {"n_episodes": 5, "n_rows": 9}, "demo": made_with}
        ))  # fmt: skip
    lines = {line.split("`")[1]: line for line in build_table(tmp_path).splitlines()
             if line.startswith("- `")}  # fmt: skip
    assert ("--env-set fast_render=true --env-set render_size=64 --out data/cube_eval.h5` then"
            in lines["cube"])  # fmt: skip
    assert ("--env-set render_size=64 --env-set mesh_detail=0.1 --out data/cube-new_eval.h5` "
            "then `lewm eval --ckpt checkpoints/cube-new --data data/cube-new_eval.h5`"
            in lines["cube-new"])  # fmt: skip
    assert "--episodes 100 --image-size 64 --seed 1 " in lines["cube"]


def test_another_solvers_subfolder_is_a_row_and_a_stray_subfolder_is_not(tmp_path):
    (tmp_path / "tworoom" / "icem").mkdir(parents=True)
    (tmp_path / "tworoom" / "results.json").write_text(json.dumps(_results("tworoom", [True])))
    (tmp_path / "tworoom" / "training.json").write_text(
        json.dumps({"train_seconds": 1200, "train_data": {"n_episodes": 7, "n_rows": 70}})
    )
    res = _results("tworoom", [True] * 150)
    res["checkpoint"] = "checkpoints/tworoom"
    res["solver"] = {"solver": "icem", "samples": 150, "iterations": 15}
    (tmp_path / "tworoom" / "icem" / "results.json").write_text(json.dumps(res))
    (tmp_path / "tworoom" / "other").mkdir()  # an evaluation of another checkpoint: no row
    stray = {**res, "checkpoint": "checkpoints/reacher"}
    (tmp_path / "tworoom" / "other" / "results.json").write_text(json.dumps(stray))
    table = build_table(tmp_path)
    row = next(line for line in table.splitlines() if "`checkpoints/tworoom/icem`" in line)
    assert "icem 150×15, budget 50" in row and "97.5–100.0 (150/150)" in row
    assert "7 ep / 70 rows | 20 |" in row  # the world model's training facts
    assert "checkpoints/tworoom/other" not in table


def test_a_row_ranked_on_an_earlier_predicted_step_says_so(tmp_path):
    (tmp_path / "reacher" / "step4").mkdir(parents=True)
    (tmp_path / "reacher" / "results.json").write_text(json.dumps(_results("reacher", [True])))
    res = {**_results("reacher", [True, False]), "checkpoint": "checkpoints/reacher"}
    res["mpc"] = {"budget": 50, "cost_step": 4}
    (tmp_path / "reacher" / "step4" / "results.json").write_text(json.dumps(res))
    rows = {line.split("`")[1]: line for line in build_table(tmp_path).splitlines()
            if line.startswith("| reacher")}  # fmt: skip
    assert "cem 300×10 ranked on predicted step 4, budget 50" in rows["checkpoints/reacher/step4"]
    assert "ranked on" not in rows["checkpoints/reacher"]


def test_a_row_with_more_context_frames_says_so_and_whether_the_first_came_from_the_data(
    tmp_path,
):
    (tmp_path / "reacher").mkdir()
    (tmp_path / "reacher" / "results.json").write_text(json.dumps(_results("reacher", [True])))
    for name, history in (("ctx3", False), ("ctx3-data", True)):
        (tmp_path / "reacher" / name).mkdir(parents=True)
        res = {**_results("reacher", [True, False]), "checkpoint": "checkpoints/reacher"}
        res["mpc"] = {"budget": 50, "cost_step": 4, "context": 3, "dataset_history": history}
        (tmp_path / "reacher" / name / "results.json").write_text(json.dumps(res))
    rows = {line.split("`")[1]: line for line in build_table(tmp_path).splitlines()
            if line.startswith("| reacher")}  # fmt: skip
    plain = "cem 300×10 ranked on predicted step 4, 3 context frames, budget 50"
    assert plain in rows["checkpoints/reacher/ctx3"]
    assert ("cem 300×10 ranked on predicted step 4, 3 context frames (the first from the "
            "dataset's past), budget 50") in rows["checkpoints/reacher/ctx3-data"]  # fmt: skip
    assert "context" not in rows["checkpoints/reacher"]


def test_a_row_that_replans_before_the_plan_is_executed_says_so(tmp_path):
    (tmp_path / "pusht").mkdir()
    base = _results("pusht", [True])
    base["mpc"] = {"budget": 50, "horizon": 5, "receding": 5}  # the paper: the whole plan
    (tmp_path / "pusht" / "results.json").write_text(json.dumps(base))
    (tmp_path / "pusht" / "r1").mkdir()
    res = {**_results("pusht", [True, False]), "checkpoint": "checkpoints/pusht"}
    res["mpc"] = {"budget": 50, "horizon": 5, "receding": 1}
    (tmp_path / "pusht" / "r1" / "results.json").write_text(json.dumps(res))
    rows = {line.split("`")[1]: line for line in build_table(tmp_path).splitlines()
            if line.startswith("| pusht")}  # fmt: skip
    assert "cem 300×10, replanned every 1 of 5 blocks, budget 50" in rows["checkpoints/pusht/r1"]
    assert "replanned" not in rows["checkpoints/pusht"]


def test_the_baselines_note_names_the_pldm_rows_still_missing_and_says_dinowm_is_not_measured(
    tmp_path,
):
    assert "measured on no environment yet; not yet on tworoom, pusht." in baselines_note(tmp_path)
    (tmp_path / "tworoom-pldm").mkdir()
    res = {**_results("tworoom", [True, False]), "model": {"objective": "pldm"}}
    (tmp_path / "tworoom-pldm" / "results.json").write_text(json.dumps(res))
    note = baselines_note(tmp_path)
    assert "measured on tworoom; not yet on pusht." in note
    assert "DINO-WM: not measured here." in note and "--objective dinowm" in note


def test_the_baselines_note_summarises_the_sensitivity_study_from_its_json(tmp_path):
    from lewm.analysis.sensitivity import Cell, sensitivity_row

    assert "not run; no `sensitivity.json`" in baselines_note(tmp_path, tmp_path / "none.json")
    rows = [
        sensitivity_row("LeWM λ", 0.09, {0.5: Cell(35, 50), 1.0: Cell(48, 50), 2.0: Cell(24, 50)}),
        sensitivity_row("PLDM beta", 12, {0.5: Cell(16, 50), 1.0: Cell(18, 50), 2.0: Cell(18, 50)}),
    ]
    settings = {"env": "tworoom", "preset": "small", "steps": 1000, "episodes": 50, "seeds": "42"}
    study = {"settings": settings, "random_success_rate": 24.0, "rows": rows}
    (tmp_path / "s.json").write_text(json.dumps(study))
    line = baselines_note(tmp_path, tmp_path / "s.json").splitlines()[-1]
    assert "1,000 training steps, 50 pairs per evaluation seed (42)" in line
    assert "LeWM λ 70 / 96 / 48 % (×0.5, ×2 outside ×1's interval)" in line
    assert "PLDM beta 32 / 36 / 36 %;" in line and line.endswith("random floor 24 %.")


def test_the_cost_table_computes_rates_from_the_recorded_stages(tmp_path):
    for env in ("cube", "pusht"):
        (tmp_path / env).mkdir()
        res = _results(env, [True])
        res["timing"] = {"total_seconds": 359.3}
        (tmp_path / env / "results.json").write_text(json.dumps(res))
    stages = {"collect_seconds": 400.0, "collect_frames": 240_000, "train_peak_rss_mb": 3584.0}
    (tmp_path / "pusht" / "training.json").write_text(
        json.dumps({"steps": 6000, "train_seconds": 5820.0, "stages": stages})
    )
    rows = cost_table(tmp_path).splitlines()
    assert rows[2] == (
        "| `checkpoints/cube` | not recorded | not recorded | not recorded | not recorded "
        "| not recorded | 359 |"
    )  # a run without a training.json: nothing invented
    assert rows[3] == "| `checkpoints/pusht` | 400 | 240,000 | 600 | 0.97 | 3.5 | 359 |"
