"""Planning speed: seconds per full solve and per predictor call (``lewm bench plan``).

A solve is what one MPC replanning step costs: encode the current frame and
the goal once, then ``iterations`` rounds of ``samples`` candidates rolled out
``horizon`` blocks by the predictor, scored against the goal embedding.

``reference_rollout`` is the straightforward implementation of the reference
(re-encode the context every iteration, re-embed actions at every predictor
call, run the whole window through the predictor and ``pred_proj`` at every
step); our ``LeWM.rollout`` must give the same plans, faster.
"""

from __future__ import annotations

import statistics
import time
from contextlib import contextmanager

import torch

from lewm.config import preset
from lewm.model.world_model import LeWM
from lewm.planning import GoalCost, Solver, default_topk, make_generator, make_solver


def random_model(preset_name: str = "paper", action_dim: int = 2, seed: int = 0) -> LeWM:
    """A random-init model whose AdaLN modulations are non-zero (an untrained predictor ignores actions)."""
    cfg = preset(preset_name).model
    cfg.action_dim = action_dim
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LeWM(cfg)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if "adaLN_modulation" in name:
                    p.normal_(0, 0.02)
    return model.eval()


def reference_rollout(model: LeWM, context_emb, candidates, action_history=None):
    """The reference's rollout, step by step through ``predict`` (no caching of any kind)."""
    h, w = context_emb.shape[1], model.history_size
    blocks = candidates if action_history is None else torch.cat([action_history, candidates], 1)
    tokens = list(context_emb.unbind(1))
    for t in range(candidates.shape[1]):
        n = h + t
        lo = max(0, n - w)
        tokens.append(model.predict(torch.stack(tokens[lo:n], 1), blocks[:, lo:n])[:, -1])
    return torch.stack(tokens, 1)


class _ReferenceModel:
    """Planning interface over ``reference_rollout``; re-encodes nothing it is not asked to."""

    def __init__(self, model: LeWM):
        self.model, self.history_size = model, model.history_size

    def encode(self, pixels):
        return self.model.encode(pixels)

    def rollout(self, context_emb, candidates, action_history=None):
        return reference_rollout(self.model, context_emb, candidates, action_history)


@contextmanager
def _threads(n: int | None):
    old = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def bench_solver(solver: str, samples: int, iterations: int) -> Solver:
    """The solver a benchmark times: ``samples`` x ``iterations``, top-k by :func:`default_topk`.

    The gradient solver keeps its own defaults (100 samples, 30 steps).
    """
    if solver == "gradient":
        return make_solver(solver)
    kw: dict = {"samples": samples, "iterations": iterations}
    if solver == "mppi":
        kw["topk"] = default_topk(samples)  # CEM and iCEM apply the rule themselves
    return make_solver(solver, **kw)


def _predictor_call_seconds(model: LeWM, samples: int, fa: int, g: torch.Generator) -> list[float]:
    """Ten timings of one predictor call as a solve makes it: S candidates, a full window."""
    z = torch.randn(samples, model.history_size, model.embed_dim, generator=g)  # (S, W, D)
    times = []
    with torch.no_grad():
        c = model.encode_actions(torch.randn(samples, model.history_size, fa, generator=g))
        mods = model.predictor.modulations(c)
        for _ in range(10):
            t0 = time.perf_counter()
            model.pred_proj(model.predictor.forward_cached(z, mods)[0][:, -1])
            times.append(time.perf_counter() - t0)
    return times


def _rollout_difference(model: LeWM, samples: int, horizon: int, fa: int, g) -> float:
    """Max |fast - reference| over the same random context and candidates."""
    with torch.no_grad():
        ctx = torch.randn(samples, 1, model.embed_dim, generator=g)  # (S, 1, D)
        cand = torch.randn(samples, horizon, fa, generator=g)  # (S, Hp, fA)
        return (model.rollout(ctx, cand) - reference_rollout(model, ctx, cand)).abs().max().item()


def bench_plan(
    preset_name: str = "paper",
    solver: str = "cem",
    *,
    samples: int = 300,
    iterations: int = 30,
    horizon: int = 5,
    repeats: int = 3,
    threads: int | None = 2,
    baseline: bool = False,
    seed: int = 0,
) -> dict:
    """Median seconds per solve and per predictor call for a random-init model on the CPU."""
    with _threads(threads):
        model = random_model(preset_name, seed=seed)
        size, fa = model.image_size, model.cfg.action_input_dim
        g = torch.Generator().manual_seed(seed)
        frame = torch.randn(1, 1, 3, size, size, generator=g)
        goal = torch.randn(1, 1, 3, size, size, generator=g)
        planner = bench_solver(solver, samples, iterations)

        def solve(m) -> tuple[float, torch.Tensor]:
            cost = GoalCost(m)
            t0 = time.perf_counter()
            ctx = cost.prepare(frame, goal)
            res = planner.solve(
                cost.cost_fn(ctx, differentiable=planner.needs_grad),
                1,
                horizon,
                fa,
                generators=[make_generator(seed, 0, 0)],
            )
            return time.perf_counter() - t0, res.plan

        call_times = _predictor_call_seconds(model, samples, fa, g)
        solve(model)  # warm-up
        runs = [solve(model) for _ in range(repeats)]  # (seconds, plan) each
        times = [dt for dt, _ in runs]
        t_enc = time.perf_counter()
        with torch.no_grad():
            GoalCost(model).prepare(frame, goal)
        encode_seconds = time.perf_counter() - t_enc
        out = {
            "preset": preset_name,
            "params": model.num_parameters(),
            "solver": planner.settings(),
            "horizon": horizon,
            "n_envs": 1,
            "threads": torch.get_num_threads(),
            "device": "cpu",
            "solve_seconds_median": statistics.median(times),
            "solve_seconds_all": times,
            "predictor_call_seconds_median": statistics.median(call_times),
            "predictor_calls_per_solve": iterations * horizon if solver != "gradient" else None,
            "encode_context_and_goal_seconds": encode_seconds,
            "max_abs_rollout_difference_vs_reference": _rollout_difference(
                model, samples, horizon, fa, g
            ),
        }
        if baseline:
            ref = _ReferenceModel(model)
            ref_runs = [solve(ref) for _ in range(max(1, repeats - 1))]
            ref_times = [dt for dt, _ in ref_runs]
            out["reference_rollout_solve_seconds_median"] = statistics.median(ref_times)
            out["speedup_vs_reference_rollout"] = (
                out["reference_rollout_solve_seconds_median"] / out["solve_seconds_median"]
            )
            out["max_abs_plan_difference_vs_reference_rollout"] = (
                (ref_runs[-1][1] - runs[-1][1]).abs().max().item()
            )
        return out
