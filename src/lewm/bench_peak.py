"""What this machine's fp32 matrix products can do: the yardstick of ``lewm bench plan``.

A solve is GEMM-bound, so its GFLOP/s is compared with two measured ceilings:

- ``large_gemm``: one large square product (2048^3), the machine's practical peak;
- ``predictor_gemms``: the products a planning rollout actually runs (rows = S or 3S
  candidates-tokens, the predictor's widths), each timed alone, and their FLOP-weighted
  harmonic mean: what a rollout made only of its GEMMs would reach.

``benchmarks/matmul_peak.py`` prints the same as JSON on its own.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

import torch


def physical_cores() -> int:
    """Physical cores among the CPUs this process may run on (hyperthreads counted once);
    ``os.cpu_count()`` where the topology cannot be read."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
    cores = set()
    for cpu in cpus:
        path = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list")
        try:
            cores.add(path.read_text().strip())
        except OSError:
            cores.add(str(cpu))
    return max(1, len(cores))


def gemm_gflops(m: int, k: int, n: int, repeats: int = 5, seed: int = 0) -> float:
    """Median GFLOP/s of (m, k) @ (k, n) in fp32 on the CPU over ``repeats`` timings."""
    g = torch.Generator().manual_seed(seed)
    a, b = torch.randn(m, k, generator=g), torch.randn(k, n, generator=g)
    out = torch.empty(m, n)
    torch.mm(a, b, out=out)  # warm-up: allocation, packing, thread start
    calls = max(1, int(2e9 // (2 * m * k * n)))  # ~2 GFLOP per timing: long enough to measure
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(calls):
            torch.mm(a, b, out=out)
        times.append((time.perf_counter() - t0) / calls)
    return 2 * m * k * n / statistics.median(times) / 1e9


def predictor_shapes(cfg, samples: int) -> list[tuple[int, int, int]]:
    """(rows, in, out) of the GEMMs a planning rollout of ``samples`` candidates runs."""
    d, p = cfg.embed_dim, cfg.predictor
    inner, w = p.heads * p.dim_head, p.num_frames
    s, ws = samples, samples * w  # one new token per row; a full window
    return [
        (s, d, 3 * inner),  # fused QKV, growing window
        (ws, d, 2 * inner),  # keys/values of a full window
        (ws, inner, d),  # attention output projection
        (ws, d, p.mlp_dim),  # MLP in
        (ws, p.mlp_dim, d),  # MLP out
        (s, d, p.mlp_dim),
        (s, p.mlp_dim, d),
        (s * 5, d, 6 * d * p.depth),  # every layer's AdaLN modulation, once per rollout
    ]


def matmul_peak(cfg=None, samples: int = 300, large: int = 2048, repeats: int = 5) -> dict:
    """The two ceilings of the module docstring (predictor shapes need the model ``cfg``)."""
    out = {
        "threads": torch.get_num_threads(),
        "large_gemm": {
            "shape": [large, large, large],
            "gflops": gemm_gflops(large, large, large, repeats),
        },
    }
    if cfg is not None:
        rows = [
            {"shape": list(shape), "gflops": gemm_gflops(*shape, repeats=repeats)}
            for shape in predictor_shapes(cfg, samples)
        ]
        flops = [2 * r["shape"][0] * r["shape"][1] * r["shape"][2] for r in rows]
        seconds = sum(f / (r["gflops"] * 1e9) for f, r in zip(flops, rows, strict=True))
        out["predictor_gemms"] = rows
        out["predictor_gemms_gflops"] = sum(flops) / seconds / 1e9
    return out
