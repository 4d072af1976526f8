"""Fault injection, bad values and output pipes: a bad ``--set`` value or seed, extreme
action statistics, states outside the arena, a closed pipe and a damaged ``split.json``
end in one ``error:`` line and exit 2, or in a warning (issue 16, groups 8 and 9)."""

from __future__ import annotations

import json
import shutil
import subprocess

import h5py
import pytest
from cli_helpers import (
    LEWM,
    assert_one_error,
    eval_args,
    no_eval_output,
    run_cli,
)

# --------------------------------------------------------------------------- values


@pytest.mark.parametrize(
    "item, key",
    [
        ("train.log_every=0", "train.log_every"),
        ("train.save_every=0", "train.save_every"),
        ("train.val_every=0", "train.val_every"),
        ("optim.beta1=2", "optim.beta1"),
        ("model.embed_dim=0", "model.embed_dim"),
        ("optim.grad_clip=-1", "optim.grad_clip"),
        ("train.epochs=-1", "train.epochs"),
        ("optim.lr=nan", "optim.lr"),
        ("optim.lr=inf", "optim.lr"),
        ("train.seed=-1", "train.seed"),
        (f"train.seed={2**64}", "train.seed"),
        ("model.encoder.image_size=-32", "model.encoder.image_size"),
        ("model.predictor.num_frames=2.5", "model.predictor.num_frames"),
    ],
)
def test_bad_values_info_and_train(capsys, good_h5, tmp_path, item, key):
    rc, out, err = run_cli(capsys, "info", "--preset", "tiny", "--set", item)
    assert_one_error(rc, err, contains=key)
    run = tmp_path / "run"
    rc, _, err = run_cli(
        capsys, "train", "--data", good_h5, "--preset", "tiny", "--out", run,
        "--set", "train.steps=0", "--set", item, "--device", "cpu", "--no-progress",
    )  # fmt: skip
    assert_one_error(rc, err, contains=key)
    assert not (run / "config.json").exists()


@pytest.mark.parametrize("seed", ["-1", str(2**64), str(2**63)])
def test_bad_seeds_everywhere(capsys, good_h5, good_ckpt, tmp_path, seed):
    rc, _, err = run_cli(
        capsys, "collect", "--env", "tworoom", "--episodes", "1", "--seed", seed,
        "--out", tmp_path / "c.h5", "--no-progress",
    )  # fmt: skip
    assert_one_error(rc, err, contains="seed")
    assert not list(tmp_path.iterdir())
    rc, _, err = run_cli(
        capsys, "train", "--data", good_h5, "--preset", "tiny", "--out", tmp_path / "r",
        "--seed", seed, "--device", "cpu", "--no-progress",
    )  # fmt: skip
    assert_one_error(rc, err, contains="seed")
    args = list(eval_args(good_ckpt, good_h5, tmp_path / "e"))
    args[args.index("--seeds") + 1] = seed
    rc, _, err = run_cli(capsys, *args)
    assert_one_error(rc, err, contains="seed")
    assert not list(tmp_path.iterdir())


def test_extreme_action_statistics_warn(capsys, fault_root, good_h5):
    """One interior action of 1e30 (issue 16 §9): fitting warns, data info says so."""
    from lewm.data.normalize import ActionNormalizer

    path = fault_root / "extreme.h5"
    shutil.copy(good_h5, path)
    with h5py.File(path, "r+") as f:
        a = f["action"][()]
        a[3, 0] = 1e30
        f["action"][...] = a
    with pytest.warns(UserWarning, match="extreme value 1e\\+30"):
        ActionNormalizer.fit(a)
    rc, out, err = run_cli(capsys, "data", "info", path)
    assert rc == 0 and "warning: action dimension 0 holds an extreme value" in out


def test_states_outside_the_environment_are_not_silently_solved(
    capsys, fault_root, good_ckpt, good_h5
):
    """States far outside the arena (issue 16 §9): a warning says 'already solved' means nothing."""
    path = fault_root / "outside.h5"
    shutil.copy(good_h5, path)
    with h5py.File(path, "r+") as f:
        for name in ("proprio", "pos_agent", "state", "goal_state", "observation"):
            f[name][...] = f[name][()] + 1e4
    out = fault_root / "outside_eval"
    rc, _, err = run_cli(capsys, *eval_args(good_ckpt, path, out))
    assert rc == 0, err
    results = json.loads((out / "results.json").read_text())
    assert any("outside the tworoom arena" in w for w in results["warnings"])
    assert "outside the tworoom arena" in err


# --------------------------------------------------------------------------- output pipes


def test_info_json_into_a_closed_pipe():
    """`lewm info --json | head` (issue 16 §8): the reader went away; one line, exit 2."""
    proc = subprocess.Popen(
        [LEWM, "info", "--preset", "paper", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    proc.stdout.close()  # like `head` exiting before lewm writes
    err = proc.stderr.read()
    rc = proc.wait(timeout=120)
    assert_one_error(rc, err, contains="broken pipe")
    assert "Exception ignored" not in err


@pytest.mark.parametrize(
    "text, expected",
    [
        ("{not json", "invalid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"split": "episode", "val_episodes": ["a"]}', "val_episodes"),
        ('{"split": "episode", "val_episodes": [99]}', "val_episodes"),
    ],
)
def test_damaged_split_json_in_eval(
    capsys, fault_root, good_ckpt, good_h5, tmp_path, text, expected
):
    """Evaluating on the training file reads the run's split.json: damage is one line."""
    run = tmp_path / "run"
    shutil.copytree(good_ckpt, run)
    meta = json.loads((run / "config.json").read_text())
    meta["data"]["path"] = str(good_h5.resolve())
    (run / "config.json").write_text(json.dumps(meta))
    (run / "split.json").write_text(text)
    out = tmp_path / "eval"
    rc, _, err = run_cli(capsys, *eval_args(run, good_h5, out))
    assert_one_error(rc, err, contains=expected)
    no_eval_output(out)
