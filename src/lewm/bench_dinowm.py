"""``lewm bench plan --model dinowm``: the DINO-WM baseline's planning cost, timed like LeWM's.

The model comes from ``lewm.baselines.dinowm.bench_model(image_size=, action_dim=, seed=)``
(a random-init model with the planning interface; imported only here). A full DINO-WM
solve on a CPU can take hours (spec §6.7: ~300x LeWM's), so one solver iteration (a
cost call on S candidates) is timed first; when ``iterations`` of them would exceed
``max_solve_seconds`` the solve is extrapolated, encode + iterations x the median
iteration, and ``extrapolated`` says so. GFLOP are counted with
``torch.utils.flop_counter`` on a few candidates (attention through the math kernel, so
that its products are counted) and scaled to S (the rollout is per candidate).
"""

from __future__ import annotations

import statistics
import time

import torch

from lewm.bench import _threads, bench_solver, spread, time_solves
from lewm.errors import ConfigError
from lewm.planning import GoalCost


def action_width(model) -> int:
    """f*A of a planning model: ``action_input_dim``, else ``frameskip * action_dim``."""
    for owner in (model, getattr(model, "cfg", None)):
        width = getattr(owner, "action_input_dim", None)
        if isinstance(width, int):
            return width
    return int(model.frameskip) * int(model.action_dim)


def _counted_gflop(model, frame, goal, samples: int, horizon: int, fa: int, g) -> tuple:
    """FLOPs of one solve's encode and of one iteration on ``samples`` candidates."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    few = min(samples, 4)
    cost = GoalCost(model)
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH):
        counter = FlopCounterMode(display=False)
        with counter:
            ctx = cost.prepare(frame, goal)
        encode = counter.get_total_flops()
        counter = FlopCounterMode(display=False)
        with counter:
            cost(ctx, torch.randn(1, few, horizon, fa, generator=g))
    return (encode, counter.get_total_flops() * samples / few)


def _bench_model():
    """``lewm.baselines.dinowm.bench_model``, imported only for ``--model dinowm``."""
    try:
        from lewm.baselines.dinowm import bench_model
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("lewm.baselines"):
            raise
        raise ConfigError(
            "--model dinowm needs the DINO-WM baseline (lewm.baselines.dinowm), which this "
            "installation does not have"
        ) from None
    return bench_model


def _iteration_seconds(model, frame, goal, cand, repeats: int) -> tuple[float, list[float]]:
    """(seconds of the solve's encodes, seconds of ``repeats`` cost calls on ``cand``)."""
    cost = GoalCost(model)
    t0 = time.perf_counter()
    with torch.no_grad():
        ctx = cost.prepare(frame, goal)
    encode_seconds = time.perf_counter() - t0
    times = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        with torch.no_grad():
            cost(ctx, cand)
        times.append(time.perf_counter() - t0)
    return encode_seconds, times


def bench_dinowm(
    solver: str = "cem",
    *,
    samples: int = 300,
    iterations: int = 30,
    horizon: int = 5,
    repeats: int = 3,
    threads: int | None = 2,
    seed: int = 0,
    image_size: int = 224,
    action_dim: int = 2,
    max_solve_seconds: float = 60.0,
    peak: bool = False,
) -> dict:
    """Seconds per solve (measured or extrapolated), per iteration, GFLOP for DINO-WM."""
    bench_model = _bench_model()
    with _threads(threads):
        model = bench_model(image_size=image_size, action_dim=action_dim, seed=seed)
        if isinstance(model, torch.nn.Module):
            model.eval()
        fa = action_width(model)
        g = torch.Generator().manual_seed(seed)
        frame = torch.randn(1, 1, 3, image_size, image_size, generator=g)
        goal = torch.randn(1, 1, 3, image_size, image_size, generator=g)
        planner = bench_solver(solver, samples, iterations)
        cand = torch.randn(1, samples, horizon, fa, generator=g)
        encode_seconds, it_times = _iteration_seconds(model, frame, goal, cand, repeats)
        estimate = encode_seconds + iterations * statistics.median(it_times)
        extrapolated = estimate * (repeats + 1) > max_solve_seconds
        if extrapolated:
            times = [encode_seconds + iterations * t for t in it_times]
        else:
            times, _ = time_solves(model, planner, frame, goal, horizon, fa, seed, repeats)
        enc_flops, iter_flops = _counted_gflop(model, frame, goal, samples, horizon, fa, g)
        gflop = (enc_flops + iterations * iter_flops) / 1e9
        out = {
            "model": "dinowm",
            "image_size": image_size,
            "params": sum(p.numel() for p in getattr(model, "parameters", list)()),
            "solver": planner.settings(),
            "horizon": horizon,
            "n_envs": 1,
            "threads": torch.get_num_threads(),
            "device": "cpu",
            "extrapolated": extrapolated,
            **spread(times, "solve_seconds"),
            "iteration_seconds_median": statistics.median(it_times),
            "predictor_calls_per_solve": iterations * horizon,
            "predictor_call_seconds_median": statistics.median(it_times) / horizon,
            "encode_context_and_goal_seconds": encode_seconds,
            "gflop_per_solve": gflop,
            "gflops": gflop / statistics.median(times),
            "flop_method": "torch.utils.flop_counter on a few candidates, scaled to S "
            "(attention through the math kernel)",
        }
        if peak:  # the large GEMM only: DINO-WM's rollout GEMMs have other shapes
            from lewm.bench_peak import matmul_peak

            out["matmul_peak"] = matmul_peak()
            out["fraction_of_large_gemm_peak"] = (
                out["gflops"] / out["matmul_peak"]["large_gemm"]["gflops"]
            )
        return out
