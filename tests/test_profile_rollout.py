"""benchmarks/profile_rollout.py splits a rollout's time into matrix products and the rest."""

import json

import pytest
from repo_scripts import load_script

from lewm.config import preset
from lewm.model.flops import rollout_flops


def run(capsys, *argv: str) -> dict:
    assert load_script("benchmarks/profile_rollout.py").main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_profile_splits_gemm_time_and_counts_each_rollouts_own_flops(capsys):
    out = run(capsys, "--preset", "tiny", "--samples", "4", "--repeats", "2", "--no-compile")
    assert set(out) >= {"reference", "fast_eager"} and "fast_compiled" not in out
    cfg = preset("tiny").model
    cfg.action_dim = 2
    for name, fast in (("reference", False), ("fast_eager", True)):
        r = out[name]
        assert 0 < r["gemm_ms"] <= r["profiled_ms"]
        assert 0 < r["gemm_share"] <= 1
        assert r["gflop"] == pytest.approx(rollout_flops(cfg, 1, 5, fast).total * 4 / 1e9)
    assert out["fast_eager"]["gflop"] < out["reference"]["gflop"]
    assert out["fast_eager"]["speedup_vs_reference"] == pytest.approx(
        out["reference"]["wall_ms"] / out["fast_eager"]["wall_ms"]
    )


def test_profile_rejects_an_empty_budget(capsys):
    with pytest.raises(SystemExit) as e:
        load_script("benchmarks/profile_rollout.py").main(["--samples", "0"])
    assert e.value.code == 2
    assert "--samples" in capsys.readouterr().err
