"""The demo and its per-environment recipes, at smoke-test size, through the console script.

A demo is resumable stage by stage: the chain test kills a real ``lewm demo`` process
(SIGKILL: no cleanup runs) during collection, then during training, then during
evaluation, and each rerun of the same command continues from where the kill left it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import h5py
import pytest

from lewm.envs.collect_shards import parts_dir
from lewm.recipes import RECIPES, quick, recipe

ROOT = Path(__file__).resolve().parents[1]
LEWM = shutil.which("lewm", path=str(Path(sys.executable).parent)) or "lewm"


def demo(out: Path, *extra: str, timeout: float = 300) -> subprocess.CompletedProcess:
    cmd = [LEWM, "demo", "--quick", "--out", str(out), "--no-progress", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def test_quick_demo_writes_everything(tmp_path):
    out = tmp_path / "demo"
    proc = demo(out)
    assert proc.returncode == 0, proc.stderr
    results = json.loads((out / "results.json").read_text())
    for key in ("success_rate", "success_rate_std", "per_seed", "random_success_rate",
                "episodes", "plan_seconds_mean", "solver", "checkpoint", "demo"):  # fmt: skip
        assert key in results
    assert results["held_out"] is True
    assert results["env"] == "tworoom"
    assert set(results["demo"]) >= {"collect_seconds", "train_seconds", "eval_seconds",
                                    "total_seconds"}  # fmt: skip
    stages = json.loads((out / "stages.json").read_text())
    with h5py.File(out / "tworoom_train.h5") as f, h5py.File(out / "tworoom_eval.h5") as g:
        assert stages["collect_frames"] == int(f["ep_len"][:].sum() + g["ep_len"][:].sum())
    for stage in ("collect", "train", "eval"):
        assert stages[f"{stage}_peak_rss_mb"] > 50  # a Python process with torch loaded
    assert (out / "training_curve.png").stat().st_size > 1000
    assert (out / "run" / "model.safetensors").exists()
    assert any((out / "videos").glob("*.gif"))
    assert "random-policy floor" in proc.stdout
    again = demo(out, timeout=120)  # a finished demo: every stage kept, the table printed again
    assert again.returncode == 0, again.stderr
    assert "training finished earlier" in again.stdout and "evaluated earlier" in again.stdout
    other = demo(out, "--pairs", "3", timeout=60)
    assert other.returncode == 2 and "another recipe" in other.stderr


def test_a_resumed_demo_reports_the_peak_memory_of_every_run(tmp_path):
    """After a resume, the printed peak is the largest stage's over all runs, not the last
    process's own (which may only have evaluated)."""
    from lewm.demo import _Stages, peak_rss_mb

    (tmp_path / "stages.json").write_text(json.dumps({"train_peak_rss_mb": 1e7}))
    assert _Stages(tmp_path).peak_rss_mb() == 1e7  # an earlier run's training process
    (tmp_path / "stages.json").write_text(json.dumps({"train_peak_rss_mb": 1.0}))
    assert _Stages(tmp_path).peak_rss_mb() == peak_rss_mb()  # this process is larger


@pytest.mark.parametrize("env", ["pusht", "reacher", "cube"])
def test_every_recipe_runs_end_to_end_quick(tmp_path, env):
    pytest.importorskip("mujoco") if env in ("reacher", "cube") else None
    out = tmp_path / env
    proc = demo(out, "--env", env)
    assert proc.returncode == 0, proc.stderr
    results = json.loads((out / "results.json").read_text())
    assert results["env"] == env and results["held_out"] is True
    assert results["env_kwargs"].items() >= quick(recipe(env)).env_kwargs.items()
    planned = {"context": results["mpc"]["context"], "cost_step": results["mpc"]["cost_step"]}
    assert planned == {"context": 1, "cost_step": None, **recipe(env).eval_settings}
    with h5py.File(out / f"{env}_train.h5") as f:
        assert json.loads(f.attrs["lewm_meta"])["policy"] == RECIPES[env].policy


def _kill_when(proc: subprocess.Popen, ready, timeout: float = 600.0) -> str:
    """SIGKILL ``proc`` once ``ready()`` holds; returns what it printed."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if ready():
            proc.kill()
            return proc.communicate()[0]
        time.sleep(0.01)
    proc.kill()
    proc.wait()
    pytest.fail(f"the demo finished or hung before the kill point ({proc.returncode})")


def _saved_step(out: Path) -> int:
    try:
        return json.loads((out / "run" / "config.json").read_text())["step"]
    except (OSError, ValueError, KeyError):
        return 0


def test_a_killed_demo_continues_each_stage_where_it_stopped(tmp_path):
    out = tmp_path / "demo"
    args = ["--train-episodes", "12", "--steps", "100", "--seeds", "42,43",
            "--set", "train.save_every=10"]  # fmt: skip
    cmd = [LEWM, "demo", "--quick", "--out", str(out), "--no-progress", *args]

    def start():
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    train_file = out / "tworoom_train.h5"
    _kill_when(start(), lambda: any(parts_dir(train_file).glob("part-*.h5")))
    assert not train_file.exists()
    shards = sorted(p.name for p in parts_dir(train_file).glob("part-*.h5"))

    _kill_when(start(), lambda: 10 <= _saved_step(out) < 100)
    assert train_file.exists() and not parts_dir(train_file).exists()
    killed_at = _saved_step(out)

    printed = _kill_when(start(), lambda: (out / "eval" / "seed_42" / "results.json").exists())
    assert f"resuming training from step {killed_at}" in printed
    assert not (out / "results.json").exists()

    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "seed 42: evaluated earlier, kept" in proc.stdout
    results = json.loads((out / "results.json").read_text())
    assert results["seeds"] == [42, 43] and len(results["episodes"]) == 4
    assert results["demo"]["train_steps"] == 100
    assert shards and killed_at >= 10
    with h5py.File(train_file) as f:
        assert len(f["ep_len"]) == 12


def test_recipes_plan_at_a_studied_setting_and_the_paper_one_flag_away(monkeypatch):
    """Each studied environment's recipe plans with its compute study's CEM budget, or with
    another solver's setting of that study whose success is inside CEM 300x30's interval;
    --paper-budget gives CEM 300x30 to any."""
    import lewm.demo
    from lewm.cli import build_parser
    from lewm.errors import ConfigError
    from lewm.eval.budgets import STUDIED

    for env, budget in STUDIED.items():
        r = RECIPES[env]
        assert r.topk is None, env  # the solver's own top-k rule, as in the study
        if r.solver == "cem":
            assert (r.samples, r.iterations) == (budget.samples, budget.iterations), env
            continue
        study = json.loads((ROOT / budget.study / "study.json").read_text())
        rows = {row["name"]: row for row in study["settings"]}
        row = rows[f"{r.solver}_{r.samples}x{r.iterations}"]
        assert row["pooled_success"] >= rows[study["reference"]]["wilson95"][0], env
    seen = []
    monkeypatch.setattr(lewm.demo, "run_demo", lambda out, cfg, progress: seen.append(cfg))
    parse = build_parser().parse_args
    for env in ("tworoom", "cube"):
        args = parse(["demo", "--env", env, "--out", "o", "--paper-budget"])
        assert args.func(args) == 0
        assert (seen[-1].solver, seen[-1].samples, seen[-1].iterations) == ("cem", 300, 30)
    args = parse(["demo", "--env", "tworoom", "--out", "o", "--paper-budget", "--iters", "3"])
    with pytest.raises(ConfigError, match="--paper-budget"):
        args.func(args)


def test_a_recipes_policy_keywords_reach_both_files_and_the_documented_command(
    tmp_path, monkeypatch
):
    """policy_kwargs (a slower PushT expert) drive the training and the held-out collection,
    and the lewm collect command RESULTS.md prints for the recipe carries them."""
    import dataclasses

    import numpy as np

    import lewm.recipes
    from lewm.demo import _collect
    from lewm.results_table import eval_file_command

    slow = dataclasses.replace(RECIPES["pusht"], policy_kwargs={"max_speed": 0.3})
    for path in _collect(quick(slow), tmp_path, progress=False):
        with h5py.File(path) as f:
            assert json.loads(f.attrs["lewm_meta"])["policy_kwargs"] == {"max_speed": 0.3}
            actions = f["action"][:]
        assert np.nanmax(np.linalg.norm(actions, axis=1)) <= 0.3 + 1e-6
    monkeypatch.setattr(lewm.recipes, "RECIPES", {**RECIPES, "pusht": slow})
    assert "--policy-set max_speed=0.3 " in eval_file_command("pusht")
