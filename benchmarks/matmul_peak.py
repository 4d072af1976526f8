"""The machine's fp32 matmul ceilings, as ``lewm bench plan --json`` reports them (prints JSON).

    python benchmarks/matmul_peak.py                     # 2048^3 and the paper predictor's GEMMs
    python benchmarks/matmul_peak.py --preset small --samples 150 --threads 1

``large_gemm``: one 2048^3 product (the practical peak); ``predictor_gemms``: the products
a planning rollout of ``--samples`` candidates runs, each timed alone, and their
FLOP-weighted harmonic mean ``predictor_gemms_gflops`` (see ``lewm/bench_peak.py``).
"""

from __future__ import annotations

import argparse
import json

import torch


def main(argv=None) -> int:
    from lewm.bench_peak import matmul_peak, physical_cores
    from lewm.config import preset

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="paper", help="the model whose predictor GEMMs are timed")
    p.add_argument("--samples", type=int, default=300, help="candidates per solver iteration")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: physical cores)")
    p.add_argument("--large", type=int, default=2048, help="side of the large square GEMM")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads or physical_cores())
    cfg = preset(args.preset).model
    print(json.dumps(matmul_peak(cfg, args.samples, args.large, args.repeats), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
