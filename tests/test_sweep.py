"""`lewm sweep` (spec §11.3): one run per value, evaluated, resumable at every stage."""

from __future__ import annotations

import json

import pytest
from analysis_helpers import cli, tworoom_run

import lewm.eval.protocol
import lewm.train
from lewm.analysis.sweep import SweepSpec, run_name, run_sweep, train_state
from lewm.errors import ConfigError

EVAL = {
    "episodes": 1,
    "seeds": (42,),
    "solver_settings": {"samples": 8, "iterations": 1, "topk": 2},
}


def _spec(out, data, **kw):
    base = dict(param="loss.sigreg_weight", values=("0.05", "0.2"), data=data, eval_data=data,
                env="tworoom", out=out, preset="tiny", steps=2,
                overrides=("train.save_every=1",), eval_settings=EVAL, device="cpu")  # fmt: skip
    return SweepSpec(**{**base, **kw})


def _count_calls(monkeypatch):
    calls = {"train": [], "resume": [], "eval": []}
    real_train, real_eval = lewm.train.train, lewm.eval.protocol.evaluate

    def train(cfg, data, out, **kw):
        calls["resume" if kw.get("resume") else "train"].append(out.name)
        return real_train(cfg, data, out, **kw)

    def evaluate(ckpt, *a, **kw):
        calls["eval"].append(ckpt.name)
        return real_eval(ckpt, *a, **kw)

    monkeypatch.setattr(lewm.train, "train", train)
    monkeypatch.setattr(lewm.eval.protocol, "evaluate", evaluate)
    return calls


def test_sweep_resumes_skips_and_does_not_re_evaluate(tmp_path, monkeypatch):
    _, data = tworoom_run()
    out = tmp_path / "sw"
    spec = _spec(out, data)
    a, b = (run_name(spec.param, v) for v in spec.values)
    # interrupted: Ctrl-C during the second step of the first run (step 1 is saved)
    real_step, steps = lewm.train.train_step, []

    def interrupted(*args, **kw):
        steps.append(1)
        if len(steps) == 2:
            raise KeyboardInterrupt
        return real_step(*args, **kw)

    monkeypatch.setattr(lewm.train, "train_step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec, log=lambda m: None)
    monkeypatch.setattr(lewm.train, "train_step", real_step)
    assert train_state(out / a) == ("partial", 1, 2) and not (out / b).exists()

    calls = _count_calls(monkeypatch)
    result = run_sweep(spec, log=lambda m: None)
    assert calls == {"train": [b], "resume": [a], "eval": [a, b]}
    assert train_state(out / a) == ("done", 2, 2) and train_state(out / b) == ("done", 2, 2)
    assert [r["value"] for r in result["runs"]] == [0.05, 0.2] and result["log_x"]
    assert [r["training"] for r in result["runs"]] == ["resumed", "trained"]
    saved = json.loads((out / "sweep.json").read_text())
    assert saved["runs"][0]["success_rate"] is not None and (out / "sweep.png").is_file()
    assert json.loads((out / a / "config.json").read_text())["loss"]["sigreg_weight"] == 0.05

    # again: nothing trained, nothing evaluated; a lost results.json is evaluated again
    (out / b / "eval" / "results.json").unlink()
    calls = _count_calls(monkeypatch)
    again = run_sweep(spec, log=lambda m: None)
    assert calls == {"train": [], "resume": [], "eval": [b]}
    assert [r["training"] for r in again["runs"]] == ["skipped", "skipped"]
    assert again["runs"][0]["success_rate"] == result["runs"][0]["success_rate"]


def test_a_run_of_another_value_is_refused(tmp_path):
    _, data = tworoom_run()
    out = tmp_path / "sw"
    spec = _spec(out, data, values=("0.05",))
    from lewm.analysis.sweep import build_config

    cfg = build_config(spec, "0.3")  # a run with another lambda, under 0.05's name
    cfg.train.steps = 1
    lewm.train.train(cfg, data, out / run_name(spec.param, "0.05"), device="cpu", progress=False)
    with pytest.raises(ConfigError, match="sigreg_weight"):
        run_sweep(spec, log=lambda m: None)
    assert not (out / "sweep.json").exists()


def test_bad_input_fails_before_training(tmp_path):
    _, data = tworoom_run()
    cases = [
        (("--param", "loss.no_such_key", "--values", "1,2"), "no_such_key"),
        (("--param", "loss.sigreg_weight", "--values", "0.1,abc"), "sigreg_weight"),
        (("--param", "loss.sigreg_weight", "--values", "0.1,0.1"), "duplicates"),
    ]
    for i, (extra, message) in enumerate(cases):
        out = tmp_path / f"s{i}"
        code, _, err = cli("sweep", *extra, "--data", data, "--eval-data", data, "--env", "tworoom",
                           "--out", out, "--preset", "tiny", "--steps", 1)  # fmt: skip
        assert code == 2 and err.startswith("error:") and message in err, err
        assert not out.exists()
