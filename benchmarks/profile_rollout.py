"""Where a planning rollout's time goes: matrix products against everything else (prints JSON).

    python benchmarks/profile_rollout.py                    # paper size, 300 candidates
    python benchmarks/profile_rollout.py --preset small --samples 150 --no-compile

One CEM iteration's rollout (``--samples`` candidates, one context frame, horizon 5) of a
random-init model (non-zero AdaLN), three ways: the straightforward reference rollout
(``lewm.bench.reference_rollout``), the eager fast rollout (``LeWM.rollout``) and, unless
``--no-compile``, the compiled one (``LeWM.compile_rollout``). For each, under
``torch.profiler`` over ``--repeats`` rollouts: milliseconds per rollout, the share spent in
matrix-product kernels (``aten::addmm``/``mm``/``bmm``, MKL's and oneDNN's packed linears)
and what is left (elementwise kernels, copies, attention, dispatch), and the GEMM GFLOP/s
(the analytic ``lewm.model.flops`` count of the linear layers over the GEMM time). Run it on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

GEMM_OPS = (
    "aten::addmm",
    "aten::mm",
    "aten::bmm",
    "aten::baddbmm",
    "mkl::_mkl_linear",
    "mkldnn::_linear_pointwise",
)


def profile_rollouts(fn, args: tuple, repeats: int) -> dict:
    """Wall time per rollout and the profiler's self CPU time in GEMM kernels, in ms."""
    from torch.profiler import ProfilerActivity, profile

    with torch.no_grad():
        for _ in range(2):  # warm-up (and, compiled, the compilation)
            fn(*args)
        t0 = time.perf_counter()
        for _ in range(repeats):
            fn(*args)
        wall = (time.perf_counter() - t0) / repeats
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(repeats):
                fn(*args)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events) / repeats / 1e3
    gemm = sum(e.self_cpu_time_total for e in events if e.key in GEMM_OPS) / repeats / 1e3
    return {"wall_ms": wall * 1e3, "profiled_ms": total, "gemm_ms": gemm}


def main(argv=None) -> int:
    from lewm.bench import random_model, reference_rollout
    from lewm.bench_peak import physical_cores
    from lewm.model.flops import rollout_flops

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="paper")
    p.add_argument("--samples", type=int, default=300, help="candidates per rollout")
    p.add_argument("--horizon", type=int, default=5)
    p.add_argument("--repeats", type=int, default=10, help="rollouts timed and profiled")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: physical cores)")
    p.add_argument("--no-compile", action="store_true", help="skip the compiled rollout")
    args = p.parse_args(argv)
    if min(args.samples, args.horizon, args.repeats) < 1:
        p.error("--samples, --horizon and --repeats must be >= 1")
    torch.set_num_threads(args.threads or physical_cores())

    model = random_model(args.preset)
    g = torch.Generator().manual_seed(0)
    ctx = torch.randn(args.samples, 1, model.embed_dim, generator=g)  # (S, 1, D)
    cand = torch.randn(args.samples, args.horizon, model.cfg.action_input_dim, generator=g)
    ways = {
        "reference": (lambda c, a: reference_rollout(model, c, a), False),
        "fast_eager": (model.rollout, True),
    }
    if not args.no_compile:
        compiled = random_model(args.preset)  # same seed, same weights; its own compiled graph
        compiled.compile_rollout()
        ways["fast_compiled"] = (compiled.rollout, True)
    out = {"preset": args.preset, "samples": args.samples, "horizon": args.horizon}
    out["threads"] = torch.get_num_threads()
    for name, (fn, fast) in ways.items():
        r = profile_rollouts(fn, (ctx, cand), args.repeats)
        count = rollout_flops(model.cfg, 1, args.horizon, fast)
        gflop = count.total * args.samples / 1e9
        r["gflop"] = gflop
        r["gemm_share"] = r["gemm_ms"] / r["profiled_ms"]
        r["gemm_gflops"] = count.linear * args.samples / 1e9 / (r["gemm_ms"] / 1e3)
        r["gflops"] = gflop / (r["wall_ms"] / 1e3)
        out[name] = r
    ref = out["reference"]["wall_ms"]
    for name in ways:
        out[name]["speedup_vs_reference"] = ref / out[name]["wall_ms"]
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
