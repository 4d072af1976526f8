"""The resume rule: a resume keeps the saved budget unless ``--steps`` is given, and never trains
past the saved learning-rate schedule (where the lr is 0)."""

import json

import pytest
import torch

import lewm.train
from lewm.cli import main
from lewm.config import apply_overrides, preset
from lewm.errors import ConfigError, LewmError
from lewm.train import train


def tiny(steps, **overrides):
    cfg = preset("tiny")
    cfg.train.steps = steps
    return apply_overrides(cfg, [f"{k}={v}" for k, v in overrides.items()])


def metrics(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def saved_step(run):
    return torch.load(run / "train_state.pt", weights_only=True)["step"]


def lewm_train(*args):
    return main(["train", "--preset", "tiny", "--no-progress", "--device", "cpu", *map(str, args)])


def test_steps_past_the_saved_schedule_are_refused(tmp_path, synthetic_h5):
    """The README's `--steps 6000 --resume` after a 2,000-step run trained 4,000 steps at lr 0."""
    run = tmp_path / "run"
    train(tiny(6, **{"train.log_every": 3}), synthetic_h5, run, progress=False)  # schedule = 6
    log = (run / "metrics.jsonl").read_text()
    with pytest.raises(ConfigError, match="schedule ends at 6 steps") as err:
        train(tiny(9), synthetic_h5, run, resume=True, progress=False)
    message = str(err.value)
    assert "\n" not in message
    assert "new run with --steps 9" in message and "--set train.schedule_steps=N" in message
    assert saved_step(run) == 6 and (run / "metrics.jsonl").read_text() == log  # nothing ran


def test_steps_up_to_the_schedule_extend_a_run(tmp_path, synthetic_h5):
    run = tmp_path / "run"
    kw = {"train.log_every": 3, "train.val_every": 3, "train.schedule_steps": 12}
    train(tiny(6, **kw), synthetic_h5, run, progress=False)
    assert train(tiny(9), synthetic_h5, run, resume=True, progress=False).step == 9
    assert metrics(run)[-1]["lr"] > 0
    result = train(tiny(12), synthetic_h5, run, resume=True, progress=False)
    assert result.step == 12 and saved_step(run) == 12
    assert [r["step"] for r in metrics(run)] == [3, 6, 9, 12]
    assert metrics(run)[-1]["lr"] == 0.0  # the schedule's end, reached at the last step
    assert json.loads((run / "config.json").read_text())["train"]["steps"] == 12


def test_resume_without_steps_keeps_the_saved_budget(tmp_path, synthetic_h5, monkeypatch):
    """An interrupted 12-step run resumed without --steps stops at 12, not at the preset's 20."""
    run = tmp_path / "run"
    forward, calls = lewm.train.forward_losses, []

    def crash_after_7_steps(model, *args):
        calls.append(model.training)
        if sum(calls) == 8:  # training calls only; validation runs in eval mode
            raise KeyboardInterrupt
        return forward(model, *args)

    monkeypatch.setattr(lewm.train, "forward_losses", crash_after_7_steps)
    rc = lewm_train(
        "--data", synthetic_h5, "--out", run, "--steps", 12, "--set", "train.save_every=3"
    )
    assert rc == 130 and saved_step(run) == 6
    monkeypatch.setattr(lewm.train, "forward_losses", forward)
    assert lewm_train("--data", synthetic_h5, "--out", run, "--resume") == 0
    assert saved_step(run) == 12 and metrics(run)[-1]["step"] == 12


def test_resuming_a_finished_run_says_what_to_do(tmp_path, synthetic_h5, capsys):
    run = tmp_path / "run"
    assert lewm_train("--data", synthetic_h5, "--out", run, "--steps", 4) == 0
    assert lewm_train("--data", synthetic_h5, "--out", run, "--resume") == 2
    err = capsys.readouterr().err
    assert "already at step 4" in err and "start a new run" in err
    assert lewm_train("--data", synthetic_h5, "--out", run, "--resume", "--steps", 8) == 2
    assert "schedule ends at 4 steps" in capsys.readouterr().err
    assert saved_step(run) == 4


def test_resume_steps_before_the_checkpoint_are_refused(tmp_path, synthetic_h5):
    run = tmp_path / "run"
    train(tiny(6, **{"train.schedule_steps": 12}), synthetic_h5, run, progress=False)
    with pytest.raises(LewmError, match="already at step 6.*up to 12"):
        train(tiny(4), synthetic_h5, run, resume=True, progress=False)


def test_resume_refuses_config_changes(tmp_path, synthetic_h5, capsys):
    run = tmp_path / "run"
    assert lewm_train("--data", synthetic_h5, "--out", run, "--steps", 2) == 0
    for extra in (["--set", "optim.lr=1"], ["--seed", "3"]):
        assert lewm_train("--data", synthetic_h5, "--out", run, "--resume", *extra) == 2
        assert "saved config.json" in capsys.readouterr().err
