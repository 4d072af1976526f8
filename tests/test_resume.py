"""The resume rule: a resume keeps the saved budget unless ``--steps`` is given, and never trains
past the saved learning-rate schedule (where the lr is 0)."""

import json
import re

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


# --------------------------------------------------------------------------- what a resume may change


def test_resume_refuses_each_changed_setting_naming_it(tmp_path, synthetic_h5, capsys):
    run = tmp_path / "run"
    assert lewm_train("--data", synthetic_h5, "--out", run, "--steps", 2) == 0
    log, _ = (run / "metrics.jsonl").read_text(), capsys.readouterr()
    for extra, key, saved, asked in (
        (["--preset", "small"], "preset", "'tiny'", "'small'"),
        (["--profile", "reference"], "profile", "'clean'", "'reference'"),
        (["--seed", "3"], "train.seed", "0", "3"),
        (["--set", "optim.lr=0.5"], "optim.lr", "0.001", "0.5"),
        (["--set", "train.batch_size=4"], "train.batch_size", "8", "4"),
    ):
        assert lewm_train("--data", synthetic_h5, "--out", run, "--resume", *extra) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"{key} is {saved}" in err[0] and asked in err[0], err
        assert "train.log_every" in err[0]  # says what a resume may change
    assert (run / "metrics.jsonl").read_text() == log and saved_step(run) == 2


def test_resume_accepts_the_saved_values_and_the_cadences(tmp_path, synthetic_h5):
    run = tmp_path / "run"
    kw = ["--set", "train.schedule_steps=8", "--set", "train.log_every=2"]
    assert lewm_train("--data", synthetic_h5, "--out", run, "--steps", 4, *kw) == 0
    same = ["--seed", 0, "--preset", "tiny", "--profile", "clean", "--set", "optim.lr=1e-3"]
    cadence = ["--set", "train.log_every=1", "--set", "train.save_every=1"]
    assert (
        lewm_train("--data", synthetic_h5, "--out", run, "--resume", "--steps", 6, *same, *cadence)
        == 0
    )
    assert [r["step"] for r in metrics(run)] == [2, 4, 5, 6]  # the new log cadence is used
    assert json.loads((run / "config.json").read_text())["train"]["log_every"] == 1


def test_resume_refuses_another_data_file_but_not_a_moved_one(tmp_path, synthetic_h5, capsys):
    from lewm.data.synthetic import write_synthetic

    run = tmp_path / "run"
    assert (
        lewm_train(
            "--data", synthetic_h5, "--out", run, "--steps", 2, "--set", "train.schedule_steps=4"
        )
        == 0
    )
    other = write_synthetic(tmp_path / "other.h5", episodes=10, length=40, image_size=32, seed=1)
    assert lewm_train("--data", other, "--out", run, "--resume", "--steps", 3) == 2
    err = capsys.readouterr().err
    assert "not the file run" in err and "held-out split" in err and str(synthetic_h5) in err
    moved = tmp_path / "moved.h5"
    moved.write_bytes(synthetic_h5.read_bytes())
    assert lewm_train("--data", moved, "--out", run, "--resume", "--steps", 3) == 0
    assert saved_step(run) == 3


def test_a_hand_edited_config_json_is_refused_not_silently_ignored(tmp_path, synthetic_h5, capsys):
    """The optimiser and schedule come from train_state.pt: an edited optim.lr would be recorded
    in config.json but not used. A resumable setting edited there is used."""
    run = tmp_path / "run"
    assert (
        lewm_train(
            "--data", synthetic_h5, "--out", run, "--steps", 2, "--set", "train.schedule_steps=6"
        )
        == 0
    )
    conf = json.loads((run / "config.json").read_text())
    conf["optim"]["lr"] = 0.5
    (run / "config.json").write_text(json.dumps(conf))
    assert lewm_train("--data", synthetic_h5, "--out", run, "--resume", "--steps", 4) == 2
    err = capsys.readouterr().err
    assert "optim.lr is 0.5 but the checkpoint was trained with 0.001" in err and "edited" in err
    conf["optim"]["lr"], conf["train"]["log_every"] = 0.001, 1
    (run / "config.json").write_text(json.dumps(conf))
    assert lewm_train("--data", synthetic_h5, "--out", run, "--resume", "--steps", 4) == 0
    assert [r["step"] for r in metrics(run)][-2:] == [3, 4]


# --------------------------------------------------------------------------- a run without a checkpoint


def test_a_run_stopped_before_its_first_checkpoint_resumes_from_step_0(
    tmp_path, synthetic_h5, capsys
):
    """What a kill before the first save leaves: config.json, split.json, maybe some metrics."""
    import shlex

    straight, run = tmp_path / "straight", tmp_path / "run"
    args = ["--steps", 6, "--set", "train.log_every=1"]
    assert lewm_train("--data", synthetic_h5, "--out", straight, *args) == 0
    assert lewm_train("--data", synthetic_h5, "--out", run, *args) == 0
    for name in ("train_state.pt", "model.safetensors"):
        (run / name).unlink()
    capsys.readouterr()
    assert lewm_train("--data", synthetic_h5, "--out", run, *args) == 2  # not silently restarted
    err = capsys.readouterr().err
    assert "stopped before its first checkpoint" in err
    command = re.search(r"`(lewm train [^`]*)`", err).group(1)  # the command the error names
    assert main(shlex.split(command)[1:] + ["--no-progress"]) == 0  # works as printed
    from safetensors.torch import load_file

    a, b = load_file(straight / "model.safetensors"), load_file(run / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [r["loss"] for r in metrics(run)] == [r["loss"] for r in metrics(straight)]


def test_an_empty_or_split_only_directory_is_a_new_run(tmp_path, synthetic_h5, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "split.json").write_text("{}")  # killed between split.json and config.json
    (run / ".train_state.pt.x1.tmp").write_bytes(b"half")  # a killed atomic write
    assert lewm_train("--data", synthetic_h5, "--out", run, "--resume") == 2
    assert "nothing to resume" in capsys.readouterr().err
    assert lewm_train("--data", synthetic_h5, "--out", run, "--steps", 1) == 0
    assert saved_step(run) == 1 and not list(run.glob(".*.tmp"))


# --------------------------------------------------------------------------- damaged files, output paths


def test_a_truncated_or_hostile_train_state_is_one_error(tmp_path, synthetic_h5, capsys):
    import os

    run = tmp_path / "run"
    assert (
        lewm_train(
            "--data", synthetic_h5, "--out", run, "--steps", 2, "--set", "train.schedule_steps=4"
        )
        == 0
    )
    state, _ = run / "train_state.pt", capsys.readouterr()
    good = state.read_bytes()
    state.write_bytes(good[: len(good) // 2])
    assert lewm_train("--data", synthetic_h5, "--out", run, "--resume", "--steps", 3) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "train_state.pt" in err[0] and "rm " in err[0], err
    assert "weights_only" not in err[0]

    class Payload:
        def __reduce__(self):
            return (os.getcwd, ())

    torch.save({"step": 2, "model": Payload()}, state)
    assert lewm_train("--data", synthetic_h5, "--out", run, "--resume", "--steps", 3) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "refused" in err[0] and "arbitrary code" in err[0], err
    assert "weights_only" not in err[0]


def test_unusable_output_paths_fail_before_any_work(tmp_path, synthetic_h5, capsys):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    for out, words in (
        ("", "--out is empty"),
        (a_file, "is an existing file"),
        (a_file / "run", "which is a file"),
        (synthetic_h5, "is an existing file"),
    ):
        assert lewm_train("--data", synthetic_h5, "--out", out, "--steps", 1) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and words in err[0], (out, err)
    assert a_file.read_text() == "x" and sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_a_read_only_output_directory_fails_before_any_work(tmp_path, synthetic_h5, capsys):
    import os
    import subprocess

    ro = tmp_path / "ro"
    ro.mkdir()
    if (
        os.geteuid() != 0
        or subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(ro)]).returncode
    ):
        pytest.skip("needs root to mount a read-only file system (root ignores permission bits)")
    try:
        assert lewm_train("--data", synthetic_h5, "--out", ro / "run", "--steps", 1) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "read-only" in err[0], err
    finally:
        subprocess.run(["umount", str(ro)], check=True)
