"""The planning benchmark and the claim behind it: the fast rollout gives the reference's plans."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lewm.bench import _ReferenceModel, bench_plan, random_model, reference_rollout
from lewm.planning import GoalCost, make_generator, make_solver


def test_fast_rollout_equals_reference_rollout():
    model = random_model("tiny").double()
    with torch.no_grad():
        for seed in range(2):
            g = torch.Generator().manual_seed(seed)
            ctx = torch.randn(6, 1, 32, generator=g, dtype=torch.float64)
            cand = torch.randn(6, 5, 10, generator=g, dtype=torch.float64)
            torch.testing.assert_close(
                model.rollout(ctx, cand),
                reference_rollout(model, ctx, cand),
                rtol=1e-12,
                atol=1e-12,
            )


def test_same_cem_plans_as_the_reference_rollout():
    model = random_model("tiny").double()
    g = torch.Generator().manual_seed(0)
    frame = torch.randn(2, 3, 32, 32, generator=g, dtype=torch.float64)
    goal = torch.randn(2, 3, 32, 32, generator=g, dtype=torch.float64)
    solver = make_solver("cem", samples=64, iterations=5, topk=8)
    plans = []
    for m in (model, _ReferenceModel(model)):
        cost = GoalCost(m)
        with torch.no_grad():
            ctx = cost.prepare(frame, goal)
        res = solver.solve(
            cost.cost_fn(ctx), 2, 5, 10, generators=[make_generator(0, i, 0) for i in range(2)]
        )
        plans.append(res.plan)
    torch.testing.assert_close(plans[0], plans[1], rtol=1e-9, atol=1e-9)


def test_bench_plan_reports_the_documented_keys():
    out = bench_plan("tiny", samples=16, iterations=2, repeats=1, threads=1, baseline=True)
    for key in (
        "solve_seconds_median",
        "predictor_call_seconds_median",
        "solver",
        "horizon",
        "threads",
    ):
        assert key in out
    assert out["solver"]["samples"] == 16 and out["solve_seconds_median"] > 0
    assert out["max_abs_rollout_difference_vs_reference"] < 1e-4
    assert out["extrapolated"] is False and out["model"] == "lewm"
    # the analytic counts of lewm.model.flops: 2 encodes + 2 x 16 rollouts
    from lewm.model.flops import solve_flops

    want = solve_flops(random_model("tiny").cfg, 16, 2, 5)
    assert out["flops_per_solve"] == want.to_dict()
    assert out["gflop_per_solve"] == want.total / 1e9
    assert out["gflops"] == pytest.approx(want.total / 1e9 / out["solve_seconds_median"])
    assert out["token_passes_per_solve"] == 9 * 16 * 2  # 1+1+1+3+3 per candidate
    assert out["reference_rollout_token_passes_per_solve"] == 12 * 16 * 2
    assert out["reference_rollout_gflop_per_solve"] > out["gflop_per_solve"]
    assert out["max_abs_plan_difference_vs_reference_rollout"] < 1e-4


def test_bench_plan_compile_times_the_compiled_rollout_and_says_how_far_it_is():
    out = bench_plan("tiny", samples=8, iterations=1, repeats=1, threads=1, baseline=True,
                     compile=True)  # fmt: skip
    assert out["compiled_solve_seconds_median"] > 0 and out["compile_and_warmup_seconds"] > 0
    assert out["compiled_speedup_vs_reference_rollout"] == pytest.approx(
        out["reference_rollout_solve_seconds_median"] / out["compiled_solve_seconds_median"]
    )
    assert 0 <= out["max_abs_rollout_difference_compiled_vs_eager"] < 1e-4
    assert "max_abs_plan_difference_compiled_vs_eager" in out


def test_bench_plan_json_has_spread_reference_and_peak():
    proc = subprocess.run(
        [_lewm(), "bench", "plan", "--preset", "tiny", "--samples", "8", "--iters", "1",
         "--threads", "1", "--json"],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    out = json.loads(proc.stdout)
    assert len(out["solve_seconds_all"]) == 5 == len(out["reference_rollout_solve_seconds_all"])
    assert out["solve_seconds_min"] <= out["solve_seconds_median"] <= out["solve_seconds_max"]
    peak = out["matmul_peak"]
    assert peak["large_gemm"]["gflops"] > 0 and len(peak["predictor_gemms"]) == 8
    assert peak["predictor_gemms"][0]["shape"] == [8, 32, 96]  # S rows, D, 3 x heads x dh
    assert out["fraction_of_large_gemm_peak"] == pytest.approx(
        out["gflops"] / peak["large_gemm"]["gflops"]
    )
    assert "reference_rollout_fraction_of_predictor_gemm_peak" in out


def test_dinowm_bench_measures_or_extrapolates(monkeypatch):
    """--model dinowm calls lewm.baselines.dinowm.bench_model; a long solve is extrapolated."""
    import types

    from lewm.bench_dinowm import bench_dinowm

    fake = types.ModuleType("lewm.baselines.dinowm")
    fake.bench_model = lambda image_size, action_dim, seed: random_model("tiny", action_dim, seed)
    monkeypatch.setitem(sys.modules, "lewm.baselines.dinowm", fake)
    kw = dict(samples=8, iterations=2, repeats=2, threads=1, image_size=32)
    measured = bench_dinowm(max_solve_seconds=1e9, **kw)
    assert measured["extrapolated"] is False and measured["model"] == "dinowm"
    guessed = bench_dinowm(max_solve_seconds=0.0, **kw)
    assert guessed["extrapolated"] is True
    its = guessed["iteration_seconds_median"]
    assert guessed["solve_seconds_median"] == pytest.approx(
        guessed["encode_context_and_goal_seconds"] + 2 * its
    )
    # the counter on a tiny LeWM: the analytic count, except the fast rollout's attention
    # (elementwise products, which the counter does not see); encodes go through SDPA's math
    # kernel, whose products it counts
    from lewm.model.flops import encode_flops, rollout_flops

    cfg = random_model("tiny").cfg
    want = (encode_flops(cfg).total * 2 + rollout_flops(cfg, 1, 5).linear * 8 * 2) / 1e9
    assert guessed["gflop_per_solve"] == pytest.approx(want, rel=1e-12)


def test_dinowm_without_the_baseline_is_one_error_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "lewm.baselines.dinowm", None)  # import fails
    from lewm.cli import main

    assert main(["bench", "plan", "--model", "dinowm", "--samples", "4", "--iters", "1"]) == 2


def _lewm():
    return shutil.which("lewm", path=str(Path(sys.executable).parent)) or "lewm"


def test_bench_plan_cli():
    lewm = shutil.which("lewm", path=str(Path(sys.executable).parent)) or "lewm"
    proc = subprocess.run(
        [
            lewm,
            "bench",
            "plan",
            "--preset",
            "tiny",
            "--samples",
            "8",
            "--iters",
            "2",
            "--repeats",
            "1",
            "--threads",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert json.loads(proc.stdout)["preset"] == "tiny"


def test_bench_solver_uses_the_one_topk_rule():
    from lewm.bench import bench_solver
    from lewm.planning import default_topk

    for name in ("cem", "icem", "mppi"):
        for samples in (64, 300, 1000):
            planner = bench_solver(name, samples, 4)
            assert (planner.samples, planner.iterations) == (samples, 4)
            assert planner.topk == max(default_topk(samples), getattr(planner, "keep_elites", 0))
    assert bench_solver("gradient", 16, 4).settings() == make_solver("gradient").settings()


def test_bench_plan_times_the_chosen_solver():
    out = bench_plan("tiny", "icem", samples=16, iterations=2, repeats=1, threads=1)
    assert out["solver"]["solver"] == "icem" and out["solver"]["topk"] == 5  # keep_elites
    assert len(out["solve_seconds_all"]) == 1
