"""benchmarks/train_step.py times the training loop's own step, with a spread."""

from pathlib import Path

from repo_scripts import load_script

import lewm.train

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "train_step.py"


def load_bench():
    return load_script("benchmarks/train_step.py")


def test_benchmark_times_the_shared_train_step(monkeypatch):
    calls = []
    step = lewm.train.train_step

    def counting_step(*args, **kwargs):
        calls.append(1)
        return step(*args, **kwargs)

    monkeypatch.setattr(lewm.train, "train_step", counting_step)
    r = load_bench().measure("tiny", [], batch=2, warmup=1, steps=2, threads=1)
    assert len(calls) == 3  # 1 warm-up + 2 timed, all through lewm.train.train_step
    assert (r["warmup_steps"], r["timed_steps"]) == (1, 2)
    for key in ("median", "p10", "p90", "min", "max", "std"):
        assert r[f"step_seconds_{key}"] >= 0
    assert r["step_seconds_min"] <= r["step_seconds_median"] <= r["step_seconds_max"]


def test_benchmark_defaults_are_10_warmup_and_20_timed_steps():
    args = load_bench().parse_args([])
    assert (args.warmup, args.steps) == (10, 20)
    assert "backward()" not in BENCH.read_text()  # no private copy of the step
