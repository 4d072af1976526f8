"""End-to-end through the installed ``lewm`` console script."""

import json

import pytest
from cli_helpers import run_console


def test_help_lists_commands():
    out = run_console("--help").stdout
    for cmd in ("info", "train"):
        assert cmd in out


def test_info_paper_json():
    out = json.loads(run_console("info", "--preset", "paper", "--json").stdout)
    assert out["params"] == 18_034_478
    assert out["config"]["model"]["encoder"]["image_size"] == 224 and out["preset"] == "paper"


def test_info_cube_and_overrides():
    out = json.loads(run_console("info", "--preset", "paper", "--action-dim", "5", "--json").stdout)
    assert out["params"] == 18_034_628
    out = json.loads(
        run_console("info", "--preset", "tiny", "--set", "model.predictor.depth=1", "--json").stdout
    )
    assert out["config"]["model"]["predictor"]["depth"] == 1


def test_train_end_to_end_and_load(tmp_path, synthetic_h5):
    out = tmp_path / "run"
    proc = run_console(
        "train",
        "--data",
        synthetic_h5,
        "--preset",
        "tiny",
        "--out",
        out,
        "--steps",
        "6",
        "--set",
        "train.log_every=3",
        "--set",
        "train.schedule_steps=9",  # sized for the later resume to step 9
        "--no-progress",
        "--device",
        "cpu",
    )
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["step"] == 6
    assert (out / "model.safetensors").exists() and (out / "train_state.pt").exists()
    info = json.loads(run_console("info", "--ckpt", out, "--json").stdout)
    assert info["preset"] == "tiny" and info["params"] > 0
    proc = run_console(
        "train",
        "--data",
        synthetic_h5,
        "--preset",
        "tiny",
        "--out",
        out,
        "--steps",
        "9",
        "--resume",
        "--no-progress",
    )
    assert json.loads(proc.stdout.strip().splitlines()[-1])["step"] == 9
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [3, 6, 9]


def test_tensorboard_option(tmp_path, synthetic_h5):
    pytest.importorskip("tensorboard")
    out = tmp_path / "run"
    run_console(
        "train",
        "--data",
        synthetic_h5,
        "--preset",
        "tiny",
        "--out",
        out,
        "--steps",
        "5",
        "--tensorboard",
        "--no-progress",
    )
    assert any((out / "tensorboard").iterdir())


@pytest.mark.parametrize(
    "args, message",
    [
        (["--set", "train.bogus=1"], "unknown key 'train.bogus'"),
        (["--set", "train.steps=abc"], "expected an integer"),
        (["--preset", "giant"], "unknown preset"),
        (["--steps", "0"], "--steps must be positive"),
        (["--device", "cuda"], "cuda"),
    ],
)
def test_train_bad_input_exits_2(tmp_path, synthetic_h5, args, message):
    out = tmp_path / "run"
    proc = run_console(
        "train", "--data", synthetic_h5, "--preset", "tiny", "--out", out, *args, check=False
    )
    if "cuda" in args:
        import torch

        if torch.cuda.is_available():
            pytest.skip("a CUDA device is present")
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists()


def test_train_missing_data_file(tmp_path):
    proc = run_console(
        "train",
        "--data",
        tmp_path / "none.h5",
        "--preset",
        "tiny",
        "--out",
        tmp_path / "r",
        check=False,
    )
    assert proc.returncode == 2 and "no such dataset file" in proc.stderr


# --------------------------------------------------------------------------- error boundary


@pytest.mark.parametrize(
    "exc, rc, line",
    [
        (
            OSError(28, "No space left on device", "/data/x.h5"),
            2,
            "error: /data/x.h5: No space left",
        ),
        (
            OSError(
                "[Errno 28] Unable to synchronously create file (file write failed: time = x\n"
                ", filename = 'out/.x.h5.partial-1', errno = 28, error message = 'No space "
                "left on device', buf = 0x1)"
            ),
            2,
            "error: out/.x.h5.partial-1: No space left on device",
        ),
        (PermissionError(13, "Permission denied", "/ro/x"), 2, "error: /ro/x: Permission denied"),
        (KeyboardInterrupt(), 130, "interrupted"),
    ],
)
def test_error_boundary(monkeypatch, capsys, exc, rc, line):
    """Every failure a user can cause is one line and an exit code (issue 16 §8)."""
    import lewm.cli as cli

    def fail(argv):
        raise exc

    monkeypatch.setattr(cli, "_run", fail)
    assert cli.main([]) == rc
    err = capsys.readouterr().err
    assert err.splitlines() == [err.splitlines()[0]] and err.startswith(line), err


def test_sigterm_becomes_terminated(monkeypatch, capsys):
    import os
    import signal

    import lewm.cli as cli

    def wait_for_term(argv):
        os.kill(os.getpid(), signal.SIGTERM)
        raise AssertionError("SIGTERM did not interrupt the command")

    before = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(cli, "_run", wait_for_term)
    assert cli.main([]) == 143 and capsys.readouterr().err.strip() == "terminated"
    assert signal.getsignal(signal.SIGTERM) is before  # restored after the command


def test_lewm_warnings_are_one_line(monkeypatch, capsys):
    import warnings

    import lewm.cli as cli

    def warn(argv):
        warnings.warn_explicit(
            "statistics look odd\n  (second line)", UserWarning, cli._PACKAGE_DIR + "/x.py", 1
        )
        return 0

    monkeypatch.setattr(cli, "_run", warn)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        assert cli.main([]) == 0
    assert capsys.readouterr().err == "warning: statistics look odd (second line)\n"


@pytest.mark.parametrize(
    "exc",
    [MemoryError(), RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried 9 TB")],
)
def test_out_of_memory_is_one_line(monkeypatch, capsys, exc):
    import lewm.cli as cli

    monkeypatch.setattr(cli, "_run", lambda argv: (_ for _ in ()).throw(exc))
    assert cli.main([]) == 2
    assert capsys.readouterr().err.startswith("error: out of memory")


def test_a_bug_keeps_its_traceback(monkeypatch):
    import lewm.cli as cli

    monkeypatch.setattr(cli, "_run", lambda argv: (_ for _ in ()).throw(RuntimeError("bug")))
    with pytest.raises(RuntimeError, match="bug"):
        cli.main([])
