"""Fault injection for ``lewm train`` (issue 16): kills at any moment and a full disk leave a run
that resumes to the bit-identical result of an uninterrupted one, with exit code 0.

The killed runs are real ``lewm train`` processes (SIGKILL: no cleanup code runs); the resumes
and the reference run go through ``lewm.cli.main`` in this process. Everything runs on one
thread, so that the killed process and this one compute the same bits.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from lewm.cli import main
from lewm.train_metrics import TIMING_KEYS

LEWM = shutil.which("lewm", path=str(Path(sys.executable).parent)) or "lewm"
STEPS = 30
BASE = ["--preset", "tiny", "--steps", str(STEPS), "--no-progress", "--device", "cpu"]


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def train_here(data, out, *extra) -> int:
    return main(["train", "--data", str(data), "--out", str(out), *BASE, *map(str, extra)])


def start(data, out, *extra) -> subprocess.Popen:
    cmd = [LEWM, "train", "--data", str(data), "--out", str(out), *BASE, *map(str, extra)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def kill_when(proc: subprocess.Popen, ready, timeout: float = 120.0) -> bool:
    """SIGKILL ``proc`` as soon as ``ready()`` holds; False if it finished first."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if ready():
            proc.kill()
            proc.wait()
            return True
        time.sleep(0.0005)
    proc.kill()
    proc.wait()
    return False


def saving(run: Path):
    return lambda: any(run.glob(".*.tmp"))  # an atomic write in progress


def state_step(run: Path) -> int | None:
    try:
        return int(torch.load(run / "train_state.pt", weights_only=True)["step"])
    except Exception:  # absent, or replaced while we read it
        return None


def finish(data, run, *extra) -> None:
    """What the user does after the kill: resume; a directory without config.json holds no run."""
    if (run / "config.json").exists():
        assert (
            main(["train", "--data", str(data), "--out", str(run), "--resume", "--no-progress"])
            == 0
        )
    else:
        assert train_here(data, run, *extra) == 0


def assert_identical(a: Path, b: Path) -> None:
    from safetensors.torch import load_file

    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    sa, sb = (torch.load(p / "train_state.pt", weights_only=True) for p in (a, b))
    assert sa["step"] == sb["step"] == STEPS
    assert torch.equal(sa["torch_rng"], sb["torch_rng"])
    for (ka, va), (kb, vb) in zip(
        sa["optimizer"]["state"].items(), sb["optimizer"]["state"].items(), strict=True
    ):
        assert ka == kb and all(torch.equal(va[k], vb[k]) for k in va)

    def records(run):
        lines = (run / "metrics.jsonl").read_text().splitlines()
        return [{k: v for k, v in json.loads(x).items() if k not in TIMING_KEYS} for x in lines]

    assert records(a) == records(b)
    assert not list(a.glob(".*.tmp"))  # the killed writer's temporary files are gone


@pytest.fixture(scope="module")
def reference(tmp_path_factory, synthetic_h5):
    torch.set_num_threads(1)
    run = tmp_path_factory.mktemp("faults") / "straight"
    assert train_here(synthetic_h5, run) == 0
    return run


def test_kill_before_the_first_checkpoint(tmp_path, synthetic_h5, reference):
    run = tmp_path / "run"
    extra = ["--set", "train.save_every=1000"]  # only the last step saves
    assert kill_when(start(synthetic_h5, run, *extra), lambda: (run / "config.json").exists())
    assert not (run / "train_state.pt").exists()
    finish(synthetic_h5, run, *extra)
    assert_identical(run, reference)


def test_kill_between_checkpoints(tmp_path, synthetic_h5, reference):
    run = tmp_path / "run"
    extra = ["--set", "train.save_every=7"]
    assert kill_when(start(synthetic_h5, run, *extra), lambda: state_step(run) == 7)
    finish(synthetic_h5, run, *extra)
    assert_identical(run, reference)


def test_kill_during_a_save(tmp_path, synthetic_h5, reference):
    run = tmp_path / "run"
    extra = ["--set", "train.save_every=1"]
    killed = kill_when(start(synthetic_h5, run, *extra), saving(run))
    assert killed, "the run finished before a save could be caught"
    finish(synthetic_h5, run, *extra)
    assert_identical(run, reference)


@pytest.mark.parametrize("seed", [0, 1])
def test_kill_at_a_random_moment(tmp_path, synthetic_h5, reference, seed):
    run = tmp_path / "run"
    extra = ["--set", "train.save_every=1"]
    proc = start(synthetic_h5, run, *extra)
    delay = random.Random(seed).uniform(0.0, 0.4)
    started = []

    def later():
        if not started and (run / "config.json").exists():
            started.append(time.monotonic())
        return bool(started) and time.monotonic() - started[0] > delay

    kill_when(proc, later)
    finish(synthetic_h5, run, *extra)
    assert_identical(run, reference)


def test_extending_a_finished_run_never_trains_at_lr_0(tmp_path, synthetic_h5, capsys):
    """The README's `--steps N --resume` after a finished run used to train at lr 0."""
    run = tmp_path / "run"
    assert main(["train", "--data", str(synthetic_h5), "--out", str(run), "--preset", "tiny",
                 "--steps", "6", "--no-progress", "--set", "train.log_every=1"]) == 0  # fmt: skip
    capsys.readouterr()
    log = (run / "metrics.jsonl").read_text()
    resume = ["train", "--data", str(synthetic_h5), "--out", str(run), "--resume", "--no-progress"]
    assert main([*resume, "--steps", "9"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "lr is 0" in err[0]
    assert (run / "metrics.jsonl").read_text() == log  # nothing trained


def test_a_full_disk_is_one_error_and_a_resumable_run(tmp_path, synthetic_h5, reference, capsys):
    """A 1.6 MB file system holds one checkpoint of the tiny model, not two at once (the atomic
    replace needs room for both): the second save fails. After making room, the run resumes."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1600k", "tmpfs", str(mnt)]).returncode:
        pytest.skip("this machine does not allow mounting a tmpfs")
    try:
        run = mnt / "run"
        assert train_here(synthetic_h5, run, "--set", "train.save_every=1") == 2
        err = capsys.readouterr().err.strip().splitlines()
        lines = [line for line in err if not line.startswith("note:")]
        assert len(lines) == 1 and lines[0].startswith("error: cannot save"), err
        assert "No space left on device" in lines[0] and "--resume" in lines[0]
        assert state_step(run) is not None and not list(run.glob(".*.tmp"))
        subprocess.run(["mount", "-o", "remount,size=64m", str(mnt)], check=True)
        finish(synthetic_h5, run)
        assert_identical(run, reference)
    finally:
        subprocess.run(["umount", str(mnt)], check=True)
