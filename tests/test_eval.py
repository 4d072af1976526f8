"""The evaluation protocol (spec §7): start/goal pairs, held-out episodes, the random
floor on the same pairs, results.json and bad input (GIFs and the console script:
``test_eval_outputs.py``)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from tiny_run import make_tiny_run

from lewm.errors import ConfigError
from lewm.eval.protocol import (
    EvaluationError,
    choose_episodes,
    draw_pairs,
    evaluate,
    make_eval_env,
    sample_starts,
    valid_start_rows,
)

FAST = dict(
    solver_settings={"samples": 8, "iterations": 1, "topk": 2}, device="cpu", log=lambda m: None
)


@pytest.fixture(scope="module")
def tworoom_run(tmp_path_factory):
    """6 expert TwoRoom episodes at 32x32 and a tiny model trained 3 steps on them."""
    return make_tiny_run(tmp_path_factory.mktemp("eval"))


# --------------------------------------------------------------------------- pairs


def test_valid_starts_leave_room_for_the_goal():
    ep_len, ep_offset = np.array([30, 10, 40]), np.array([0, 30, 40])
    rows = valid_start_rows(ep_len, ep_offset, 25)
    # episode 0: steps 0..4 (4 = 30 - 25 - 1); episode 1 is too short; episode 2: steps 0..14
    np.testing.assert_array_equal(rows, np.r_[0:5, 40:55])
    np.testing.assert_array_equal(valid_start_rows(ep_len, ep_offset, 25, [2]), np.r_[40:55])
    assert len(valid_start_rows(ep_len, ep_offset, 40)) == 0


def test_same_seed_same_pairs_other_seed_other_pairs():
    ep_len = np.array([60, 90, 45, 100])
    ep_offset = np.concatenate([[0], np.cumsum(ep_len)[:-1]])
    a = draw_pairs(ep_len, ep_offset, 25, 20, seed=42)
    b = draw_pairs(ep_len, ep_offset, 25, 20, seed=42)
    c = draw_pairs(ep_len, ep_offset, 25, 20, seed=43)
    assert a == b and [p.start_row for p in a] != [p.start_row for p in c]
    starts = [p.start_row for p in a]
    assert starts == sorted(starts) and len(set(starts)) == 20  # sorted, without replacement
    for p in a:  # goal 25 steps later in the same episode
        assert p.goal_row == p.start_row + 25
        assert p.start_row == ep_offset[p.episode] + p.start_step
        assert p.start_step + 25 <= ep_len[p.episode] - 1
    # the reference's draw: default_rng(seed).choice over the valid rows, then sorted
    valid = valid_start_rows(ep_len, ep_offset, 25)
    ref = np.sort(np.random.default_rng(42).choice(valid, size=20, replace=False))
    np.testing.assert_array_equal(starts, ref)


def test_pair_errors():
    ep_len, ep_offset = np.array([20, 24]), np.array([0, 20])
    with pytest.raises(EvaluationError, match="no valid start states"):
        draw_pairs(ep_len, ep_offset, 25, 2, seed=0)
    with pytest.raises(EvaluationError, match="lower --episodes"):
        sample_starts(np.arange(3), 5, seed=0)


def test_held_out_episodes(tworoom_run, tmp_path):
    import lewm

    run, data = tworoom_run
    model = lewm.load(run)
    n = 6
    split = json.loads((run / "split.json").read_text())
    clean = choose_episodes(model, run, data, n, "clean")
    assert clean.held_out is True and clean.episodes.tolist() == split["val_episodes"]
    ref = choose_episodes(model, run, data, n, "reference")
    assert ref.episodes is None and ref.held_out is False
    other = tmp_path / "other.h5"
    shutil.copy(data, other)
    sep = choose_episodes(model, run, other, n, "clean")
    assert sep.episodes is None and sep.held_out is True


# --------------------------------------------------------------------------- evaluate


def test_results_schema_same_pairs_and_repeatable(tworoom_run, tmp_path):
    run, data = tworoom_run
    kw = dict(episodes=2, seeds=(42, 7), budget=25, **FAST)
    res = evaluate(run, "tworoom", data, tmp_path / "out", **kw)
    on_disk = json.loads((tmp_path / "out" / "results.json").read_text())
    assert on_disk == json.loads(json.dumps(res))
    for key in (
        "success_rate",
        "success_rate_std",
        "per_seed",
        "random_success_rate",
        "already_solved_fraction",
        "success_rate_excluding_solved",
        "episodes",
        "plan_seconds_mean",
        "solver",
        "mpc",
        "checkpoint",
        "data",
        "profile",
        "held_out",
        "render_consistency",
        "env",
        "timing",
    ):
        assert key in res, key
    assert res["profile"] == "clean" and res["held_out"] is True
    assert res["solver"] == {
        "solver": "cem",
        "samples": 8,
        "iterations": 1,
        "topk": 2,
        "init_std": 1.0,
    }
    assert res["mpc"] == {
        "horizon": 5,
        "receding": 5,
        "frameskip": 5,
        "context": 1,
        "dataset_history": False,
        "budget": 25,
        "goal_offset": 25,
        "warm_start": True,
        "cost_steps": "last",
        "cost_step": None,  # rank on the last prediction (the reference)
        "clamp": "normalised",  # clean: candidates clamped to the Box in normalised units
    }
    # TwoRoom restores reproduce the dataset frames exactly
    assert res["render_consistency"]["mean_abs_diff"] == 0.0

    # the pairs are the protocol's draw from the held-out episodes, per seed
    val = json.loads((run / "split.json").read_text())["val_episodes"]
    from lewm.data.hdf5 import inspect_dataset

    info = inspect_dataset(data)
    eps = res["episodes"]
    assert [e["seed"] for e in eps] == [42, 42, 7, 7]
    for seed, entry in zip((42, 7), res["per_seed"], strict=True):
        mine = [e for e in eps if e["seed"] == seed]
        want = draw_pairs(info.ep_len, info.ep_offset, 25, 2, seed, val)
        assert [e["start_row"] for e in mine] == [p.start_row for p in want]
        assert all(e["episode"] in val for e in mine)
        # the random floor ran on the same pairs: same restored start, same goal
        for e in mine:
            assert e["random_initial_distance"] == e["initial_distance"]
            assert e["already_solved"] == (e["initial_distance"] < 16.0)
        assert entry["success_rate"] == 100 * np.mean([e["success"] for e in mine])
        assert entry["random_success_rate"] == 100 * np.mean([e["random_success"] for e in mine])
        assert entry["already_solved_fraction"] == np.mean([e["already_solved"] for e in mine])
    rates = [s["success_rate"] for s in res["per_seed"]]
    assert res["success_rate"] == pytest.approx(np.mean(rates))
    # the sample std over seeds (ddof 1), and results.json says which std it is
    assert res["success_rate_std"] == pytest.approx(np.std(rates, ddof=1))
    floor = [s["random_success_rate"] for s in res["per_seed"]]
    assert res["random_success_rate_std"] == pytest.approx(np.std(floor, ddof=1))
    assert "sample std" in res["std_kind"] and "ddof=1" in res["std_kind"]
    for e in eps:
        if e["success"]:
            assert 1 <= e["steps_to_success"] <= 25 and e["final_distance"] < 16.0
        else:
            assert e["steps_to_success"] is None

    again = evaluate(run, "tworoom", data, None, **kw)  # out=None writes nothing
    strip = ("render_diff",)
    assert [{k: v for k, v in e.items() if k not in strip} for e in again["episodes"]] == [
        {k: v for k, v in e.items() if k not in strip} for e in eps
    ]


def test_dataset_history_reads_the_past_and_primes_the_first_solve(tworoom_run, monkeypatch):
    """--dataset-history: each pair's past frames (every f rows, at most context-1, never
    before its episode) and the actions between them and the start reach MPCPolicy.prime."""
    from lewm.data.hdf5 import inspect_dataset, open_h5
    from lewm.eval.restore import read_pairs
    from lewm.planning import MPCPolicy

    run, data = tworoom_run
    info = inspect_dataset(data)
    pairs = draw_pairs(info.ep_len, info.ep_offset, 25, 6, 3)
    read = read_pairs(data, pairs, info.n_rows, 32, 3, 0, past_blocks=2, frameskip=5)
    with open_h5(data) as f:
        for p, d in zip(pairs, read, strict=True):
            k = min(2, p.start_step // 5)
            if k == 0:
                assert d.past_frames is None and d.past_actions is None
                continue
            rows = [p.start_row - 5 * j for j in range(k, 0, -1)]
            assert np.array_equal(d.past_frames, f["pixels"][rows])
            assert np.array_equal(d.past_actions, f["action"][rows[0] : p.start_row])
    assert any(p.start_step < 10 for p in pairs) and any(p.start_step >= 10 for p in pairs)

    primed = []
    real_prime = MPCPolicy.prime
    monkeypatch.setattr(
        MPCPolicy,
        "prime",
        lambda self, i, fr, ac: primed.append(len(fr)) or real_prime(self, i, fr, ac),
    )
    kw = dict(episodes=2, seeds=(42,), budget=25, context=3, **FAST)
    res = evaluate(run, "tworoom", data, None, dataset_history=True, **kw)
    assert res["mpc"]["context"] == 3 and res["mpc"]["dataset_history"] is True
    assert any("--dataset-history" in w for w in res["warnings"])
    want = [min(2, e["start_step"] // 5) for e in res["episodes"]]
    assert primed == [k for k in want if k > 0]
    primed.clear()
    assert evaluate(run, "tworoom", data, None, **kw)["mpc"]["dataset_history"] is False
    assert primed == []


def test_reference_profile_uses_the_file_as_is(tworoom_run):
    run, data = tworoom_run
    res = evaluate(
        run, "tworoom", data, None, episodes=3, seeds=(42,), budget=25, profile="reference", **FAST
    )
    assert res["profile"] == "reference" and res["held_out"] is False
    from lewm.data.hdf5 import inspect_dataset

    info = inspect_dataset(data)
    want = draw_pairs(info.ep_len, info.ep_offset, 25, 3, 42)  # over every episode
    assert [e["start_row"] for e in res["episodes"]] == [p.start_row for p in want]
    assert any("training episodes" in w for w in res["warnings"])


def test_one_seed_has_no_std(tworoom_run):
    """A single seed has no spread: the stds are null, not 0.0."""
    run, data = tworoom_run
    res = evaluate(run, "tworoom", data, None, episodes=2, seeds=(42,), budget=25, **FAST)
    assert res["seeds"] == [42] and len(res["per_seed"]) == 1
    assert res["success_rate_std"] is None and res["random_success_rate_std"] is None
    assert res["success_rate"] == res["per_seed"][0]["success_rate"]


def test_default_seeds_are_three():
    from lewm.eval.config import EvalConfig

    assert EvalConfig().seeds == (42, 43, 44)


def test_results_read_the_model_provenance(tworoom_run):
    """Step, preset and the held-out decision come from ``model.provenance``."""
    import lewm

    run, data = tworoom_run
    model = lewm.load(run)
    res = evaluate(run, "tworoom", data, None, episodes=1, seeds=(42,), budget=25, **FAST)
    assert res["checkpoint_step"] == model.provenance.step == 3
    assert res["preset"] == model.provenance.preset == "tiny"
    assert res["action_stats"] == "run" and res["held_out"] is True


class _Double:
    """A model-like object: only what choose_episodes reads."""


def test_held_out_from_a_provenance_double(tworoom_run):
    from lewm.model.provenance import Provenance

    run, data = tworoom_run
    bare = choose_episodes(_Double(), run, data, 6, "clean")  # no provenance: nothing known
    assert bare.held_out is None and bare.episodes is None
    double = _Double()
    double.provenance = Provenance(source="lewm", meta={"data": {"path": str(data)}})
    known = choose_episodes(double, run, data, 6, "clean")
    split = json.loads((run / "split.json").read_text())
    assert known.held_out is True and known.episodes.tolist() == split["val_episodes"]


def test_authors_checkpoint_needs_action_statistics(tworoom_run, tmp_path):
    """No statistics in the authors' format: --stats-from, --identity-normalizer, or (reference
    profile only) the evaluation file, as the reference planner does."""
    import lewm
    from lewm.checkpoint import export_reference
    from lewm.errors import CheckpointError

    run, data = tworoom_run
    ref = export_reference(lewm.load(run), tmp_path / "authors")
    small = dict(episodes=1, seeds=(42,), budget=25)
    kw = {**small, **FAST}
    _raises_without_results(
        CheckpointError, "action statistics", tmp_path, ref, "tworoom", data, **small
    )
    raw = evaluate(ref, "tworoom", data, None, identity_normalizer=True, **kw)
    assert raw["action_stats"] == "identity" and raw["held_out"] is None
    from lewm.eval.files import portable_path

    fitted = evaluate(ref, "tworoom", data, None, stats_from=data, **kw)
    assert fitted["action_stats"] == f"file:{portable_path(data)}"  # no absolute paths
    reference = evaluate(ref, "tworoom", data, None, profile="reference", **kw)
    assert reference["action_stats"] == f"file:{portable_path(data)}"


def _raises_without_results(exc, match, tmp_path, *args, **kwargs):
    out = tmp_path / "bad"
    with pytest.raises(exc, match=match):
        evaluate(*args, out, **{**FAST, **kwargs})
    assert not (out / "results.json").exists()


def test_bad_input(tworoom_run, tmp_path):
    from lewm.data.hdf5 import DatasetWriter
    from lewm.data.synthetic import write_synthetic
    from lewm.envs.collect import collect

    run, data = tworoom_run
    err = _raises_without_results
    err(ConfigError, "unknown environment", tmp_path, run, "maze", data)
    err(ConfigError, "unknown solver", tmp_path, run, "tworoom", data, solver="annealing")
    err(ConfigError, "unknown profile", tmp_path, run, "tworoom", data, profile="fast")
    err(ConfigError, "exceeds the episode budget", tmp_path, run, "tworoom", data, budget=10)
    err(EvaluationError, "no valid start states", tmp_path, run, "tworoom", data, goal_offset=150)
    # a dataset of another environment
    dot = write_synthetic(tmp_path / "dot.h5", episodes=3, length=40, image_size=32)
    err(EvaluationError, "collected in environment 'synthetic-dot'", tmp_path, run, "tworoom", dot)
    # frames of another size: refused unless resized on request
    small = collect("tworoom", "expert", 2, 24, 1, tmp_path / "tr24.h5", progress=False)
    err(EvaluationError, "--resize-frames", tmp_path, run, "tworoom", small)
    res = evaluate(
        run, "tworoom", small, None, episodes=1, seeds=(42,), budget=25, resize_frames=True, **FAST
    )
    assert res["resize_frames"] and res["held_out"] is True
    # actions of another dimension
    odd = tmp_path / "a3.h5"
    with DatasetWriter(odd, compression="none", meta={"env": "tworoom"}) as w:
        act = np.zeros((30, 3), np.float32)
        act[-1] = np.nan
        w.add_episode({"pixels": np.zeros((30, 32, 32, 3), np.uint8), "action": act})
    err(EvaluationError, "3-D actions", tmp_path, run, "tworoom", odd)


def test_compile_plans_through_the_compiled_rollout_and_needs_a_lewm_model(
    tworoom_run, tmp_path, monkeypatch
):
    run, data = tworoom_run
    kw = dict(episodes=2, seeds=(42,), budget=25, **FAST)
    eager = evaluate(run, "tworoom", data, None, **kw)
    compiled = evaluate(run, "tworoom", data, None, compile=True, **kw)
    assert compiled["compiled_rollout"] is True and eager["compiled_rollout"] is False
    assert compiled["solves"] == eager["solves"] > 0
    import lewm.eval.prepare

    monkeypatch.setattr(lewm.eval.prepare, "load_model", lambda *a: object())  # not LeWM
    _raises_without_results(
        ConfigError, "--compile plans through LeWM", tmp_path, run, "tworoom", data, compile=True
    )


def test_non_finite_costs_fail_cleanly(tworoom_run, tmp_path):
    from safetensors.torch import load_file, save_file

    from lewm.planning import PlanningError

    run, data = tworoom_run
    broken = tmp_path / "broken"
    shutil.copytree(run, broken)
    state = load_file(str(broken / "model.safetensors"))
    for key, value in state.items():
        if key.startswith("pred_proj") and value.is_floating_point():
            value.fill_(float("nan"))
    save_file(state, str(broken / "model.safetensors"))
    _raises_without_results(
        PlanningError, "non-finite", tmp_path, broken, "tworoom", data, episodes=1, budget=25
    )


class NoHooksEnv:
    def __init__(self, render_mode="rgb_array", image_size=32):
        self.image_size = image_size


def test_missing_hooks_fail_loudly(monkeypatch):
    from lewm.envs import ENVS, EnvSpec

    monkeypatch.setitem(
        ENVS, "tworoom", EnvSpec("tworoom", "x/NoHooks-v0", f"{__name__}:NoHooksEnv")
    )
    with pytest.raises(EvaluationError, match="load_state"):
        make_eval_env("tworoom", 32, "clean")
