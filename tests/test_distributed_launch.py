"""Bad multi-process launches are refused before anything is written (spec §3.4): a batch
the processes cannot split, missing or malformed rendezvous variables; WORLD_SIZE=1 is the
single-process path."""

from __future__ import annotations

import pytest

TINY = ["--preset", "tiny", "--device", "cpu", "--no-progress"]


# --------------------------------------------------------------------------- bad launches


@pytest.mark.parametrize(
    ("batch", "world", "words"),
    [
        (8, 3, ["train.batch_size 8", "3 processes", "run [2, 4, 8]"]),
        (2, 4, ["4 processes", "at most 2"]),
    ],
)
def test_batch_split_is_checked(batch, world, words):
    from lewm.distributed import check_batch_split
    from lewm.errors import LewmError

    with pytest.raises(LewmError) as err:
        check_batch_split(batch, world)
    assert all(w in str(err.value) for w in words) and "\n" not in str(err.value)
    check_batch_split(8, 4)


@pytest.mark.parametrize(
    ("variables", "words"),
    [
        ({"WORLD_SIZE": "2"}, ["RANK, MASTER_ADDR, MASTER_PORT are not", "torchrun"]),
        ({"WORLD_SIZE": "2", "RANK": "0", "MASTER_PORT": "29500"}, ["MASTER_ADDR is not"]),
        ({"WORLD_SIZE": "two"}, ["WORLD_SIZE='two' is not an integer"]),
        ({"WORLD_SIZE": "2", "RANK": "2", "MASTER_ADDR": "x", "MASTER_PORT": "1"}, ["RANK=2"]),
    ],
)
def test_missing_rendezvous_variables_are_one_error_before_anything(
    tmp_path, synthetic_h5, monkeypatch, capsys, variables, words
):
    from lewm.cli import main

    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    assert main(["train", "--data", str(synthetic_h5), "--out", str(tmp_path / "run"), *TINY]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert all(w in err[0] for w in words), err[0]
    assert not (tmp_path / "run").exists()


def test_world_size_one_is_the_single_process_path(monkeypatch):
    from lewm.distributed import launch_from_env

    assert launch_from_env({"WORLD_SIZE": "1", "RANK": "0"}).world_size == 1
    assert launch_from_env({}).world_size == 1


def test_a_batch_the_processes_cannot_split_is_refused_before_the_rendezvous(
    tmp_path, synthetic_h5, monkeypatch, capsys
):
    """Checked before the process group is joined (this process is rank 0 of 3; nobody else
    exists), so nothing waits and nothing is written."""
    from lewm.cli import main

    for name, value in {"WORLD_SIZE": "3", "RANK": "0", "MASTER_ADDR": "127.0.0.1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MASTER_PORT", "1")
    assert main(["train", "--data", str(synthetic_h5), "--out", str(tmp_path / "run"), *TINY]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "train.batch_size 8" in err[0] and "3 processes" in err[0], err
    assert not (tmp_path / "run").exists()
