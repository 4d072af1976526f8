"""The planning benchmark and the claim behind it: the fast rollout gives the reference's plans."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

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
