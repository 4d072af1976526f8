"""Planning speed: seconds per full solve and per predictor call (``lewm bench plan``).

A solve is what one MPC replanning step costs: encode the current frame and
the goal once, then ``iterations`` rounds of ``samples`` candidates rolled out
``horizon`` blocks by the predictor, scored against the goal embedding.

``reference_rollout`` is the straightforward implementation of the reference
(re-encode the context every iteration, re-embed actions at every predictor
call, run the whole window through the predictor and ``pred_proj`` at every
step); our ``LeWM.rollout`` (:mod:`lewm.model.fast_rollout`) must give the same
plans, faster. GFLOP are counted analytically (:mod:`lewm.model.flops`) and
compared with the machine's measured matmul peak (:mod:`lewm.bench_peak`).
``--model dinowm`` times the DINO-WM baseline (:mod:`lewm.bench_dinowm`).
"""

from __future__ import annotations

import copy
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


class _CompiledModel(_ReferenceModel):
    """Planning interface over :meth:`LeWM.compile_rollout` of a copy of the model (opt-in)."""

    def __init__(self, model: LeWM):
        super().__init__(copy.deepcopy(model))
        self.model.compile_rollout()

    def rollout(self, context_emb, candidates, action_history=None):
        return self.model.rollout(context_emb, candidates, action_history)


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


def spread(times: list[float], key: str) -> dict:
    """``{key}_median``, ``_min``, ``_max``, ``_all`` (seconds) of repeated timings."""
    return {
        f"{key}_median": statistics.median(times),
        f"{key}_min": min(times),
        f"{key}_max": max(times),
        f"{key}_all": times,
    }


def time_solves(m, planner: Solver, frame, goal, horizon: int, fa: int, seed: int, repeats: int):
    """``repeats`` timed solves (after one warm-up) of ``planner`` on planning model ``m``.

    Returns:
        (seconds per solve, list; the last plan (1, Hp, fA)).
    """

    def solve() -> tuple[float, torch.Tensor]:
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

    solve()  # warm-up (and, compiled, the compilation)
    runs = [solve() for _ in range(repeats)]
    return [dt for dt, _ in runs], runs[-1][1]


def _call_seconds(model: LeWM, samples: int, fa: int, g: torch.Generator) -> tuple[list, list]:
    """Ten timings each of one predictor call on a full window of S candidates: the fast
    path (the window's last layer for the last token only) and the reference's ``predict``."""
    from lewm.model.fast_rollout import LayerCache, layer_modulations, predictor_call

    w = model.history_size
    z = torch.randn(samples, w, model.embed_dim, generator=g)  # (S, W, D)
    blocks = torch.randn(samples, w, fa, generator=g)  # (S, W, fA)
    fast, ref = [], []
    with torch.no_grad():
        mods = layer_modulations(model.predictor, model.encode_actions(blocks))
        x = z.transpose(0, 1) + model.predictor.pos_embedding[0, :w, None]  # (W, S, D)
        for _ in range(10):
            t0 = time.perf_counter()
            predictor_call(model, x, mods, [LayerCache() for _ in mods])
            t1 = time.perf_counter()
            model.predict(z, blocks)[:, -1]
            fast.append(t1 - t0)
            ref.append(time.perf_counter() - t1)
    return fast, ref


def _rollout_difference(model: LeWM, other, samples: int, horizon: int, fa: int, g) -> float:
    """Max |model's rollout - other's| (a planning model) over the same random context and
    candidates."""
    with torch.no_grad():
        ctx = torch.randn(samples, 1, model.embed_dim, generator=g)  # (S, 1, D)
        cand = torch.randn(samples, horizon, fa, generator=g)  # (S, Hp, fA)
        return (model.rollout(ctx, cand) - other.rollout(ctx, cand)).abs().max().item()


def _flops(model: LeWM, planner: Solver, horizon: int, fast: bool) -> dict | None:
    """Analytic GFLOP of one solve (None for the gradient solver: its backward is not counted)."""
    from lewm.model.flops import solve_flops, token_passes

    s = planner.settings()
    if "iterations" not in s:
        return None
    count = solve_flops(model.cfg, s["samples"], s["iterations"], horizon, 1, fast)
    passes = token_passes(1, horizon, model.history_size, fast) * s["samples"] * s["iterations"]
    return {"gflop": count.total / 1e9, "flops": count.to_dict(), "token_passes": passes}


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
    peak: bool = False,
    compile: bool = False,
) -> dict:
    """Seconds per solve and per predictor call, GFLOP and GFLOP/s, for a random-init model
    on the CPU; ``baseline``: the same for the reference rollout in the same run; ``peak``:
    the machine's matmul ceilings (:func:`lewm.bench_peak.matmul_peak`)."""
    from lewm.bench_peak import matmul_peak, physical_cores

    with _threads(threads):
        model = random_model(preset_name, seed=seed)
        size, fa = model.image_size, model.cfg.action_input_dim
        g = torch.Generator().manual_seed(seed)
        frame = torch.randn(1, 1, 3, size, size, generator=g)
        goal = torch.randn(1, 1, 3, size, size, generator=g)
        planner = bench_solver(solver, samples, iterations)
        call_fast, call_ref = _call_seconds(model, samples, fa, g)
        times, plan = time_solves(model, planner, frame, goal, horizon, fa, seed, repeats)
        t_enc = time.perf_counter()
        with torch.no_grad():
            GoalCost(model).prepare(frame, goal)
        out = {
            "model": "lewm",
            "preset": preset_name,
            "params": model.num_parameters(),
            "solver": planner.settings(),
            "horizon": horizon,
            "n_envs": 1,
            "threads": torch.get_num_threads(),
            "physical_cores": physical_cores(),
            "device": "cpu",
            "extrapolated": False,
            **spread(times, "solve_seconds"),
            "predictor_call_seconds_median": statistics.median(call_fast),
            "predictor_calls_per_solve": iterations * horizon if solver != "gradient" else None,
            "encode_context_and_goal_seconds": time.perf_counter() - t_enc,
            "max_abs_rollout_difference_vs_reference": _rollout_difference(
                model, _ReferenceModel(model), samples, horizon, fa, g
            ),
        }
        _add_flops(out, _flops(model, planner, horizon, True), "")
        if baseline:
            ref_times, ref_plan = time_solves(
                _ReferenceModel(model), planner, frame, goal, horizon, fa, seed, repeats
            )
            out.update(spread(ref_times, "reference_rollout_solve_seconds"))
            out["reference_predictor_call_seconds_median"] = statistics.median(call_ref)
            out["speedup_vs_reference_rollout"] = (
                out["reference_rollout_solve_seconds_median"] / out["solve_seconds_median"]
            )
            out["max_abs_plan_difference_vs_reference_rollout"] = (
                (ref_plan - plan).abs().max().item()
            )
            _add_flops(out, _flops(model, planner, horizon, False), "reference_rollout_")
        if compile:
            out.update(
                _bench_compiled(model, planner, frame, goal, horizon, fa, seed, repeats, plan)
            )
            if baseline:
                out["compiled_speedup_vs_reference_rollout"] = (
                    out["reference_rollout_solve_seconds_median"]
                    / out["compiled_solve_seconds_median"]
                )
        if peak:
            out["matmul_peak"] = matmul_peak(model.cfg, samples)
            _add_fraction_of_peak(out)
        return out


def _add_flops(out: dict, flops: dict | None, prefix: str) -> None:
    """``{prefix}gflop_per_solve``, ``{prefix}gflops`` (per second, at the median), the split."""
    if flops is None:
        out[f"{prefix}gflop_per_solve"] = None
        return
    seconds = out[f"{prefix}solve_seconds_median"]
    out[f"{prefix}gflop_per_solve"] = flops["gflop"]
    out[f"{prefix}gflops"] = flops["gflop"] / seconds
    out[f"{prefix}flops_per_solve"] = flops["flops"]
    out[f"{prefix}token_passes_per_solve"] = flops["token_passes"]
    out["flop_method"] = "analytic (lewm.model.flops): matrix products, 2 FLOP per multiply-add"


def _add_fraction_of_peak(out: dict) -> None:
    peak = out["matmul_peak"]
    for prefix in ("", "reference_rollout_"):
        gflops = out.get(f"{prefix}gflops")
        if gflops is not None:
            out[f"{prefix}fraction_of_large_gemm_peak"] = gflops / peak["large_gemm"]["gflops"]
            out[f"{prefix}fraction_of_predictor_gemm_peak"] = (
                gflops / peak["predictor_gemms_gflops"]
            )


def _bench_compiled(model, planner, frame, goal, horizon, fa, seed, repeats, plan) -> dict:
    """The fast rollout under ``torch.compile`` (inductor): its timings, compile time, and
    how far its plan is from the eager one."""
    compiled = _CompiledModel(model)
    t0 = time.perf_counter()
    times, c_plan = time_solves(compiled, planner, frame, goal, horizon, fa, seed, repeats)
    total = time.perf_counter() - t0
    out = spread(times, "compiled_solve_seconds")
    out["compile_and_warmup_seconds"] = total - sum(times)
    out["max_abs_plan_difference_compiled_vs_eager"] = (c_plan - plan).abs().max().item()
    # the rollouts themselves, on one batch of random candidates: a plan can move by more
    # when two candidates' costs are within rounding and the elite set flips
    out["max_abs_rollout_difference_compiled_vs_eager"] = _rollout_difference(
        model,
        compiled,
        planner.settings().get("samples", 1),
        horizon,
        fa,
        torch.Generator().manual_seed(seed),
    )
    return out
