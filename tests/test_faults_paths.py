"""Fault injection, output paths (issue 16 §7): an empty path, a file where a directory is
wanted (and the reverse), a path under a file, a read-only folder and an output equal to
an input are refused before any work, by ``lewm.paths`` for every command that writes."""

from __future__ import annotations

import os
import subprocess

import pytest
from cli_helpers import assert_one_error, run_cli

from lewm.errors import ConfigError, DatasetError
from lewm.paths import OutputPathError, check_output_dir, check_output_file


@pytest.fixture
def tree(tmp_path):
    (tmp_path / "dir").mkdir()
    (tmp_path / "file").write_text("x")
    return tmp_path


# --------------------------------------------------------------------------- the checks


@pytest.mark.parametrize(
    "path, message",
    [
        ("", "is empty"),
        ("   ", "is empty"),
        ("file", "is an existing file"),
        ("file/sub", "which is a file"),
        ("file/a/b", "which is a file"),
    ],
)
def test_check_output_dir_refuses(tree, path, message):
    with pytest.raises(OutputPathError, match=message):
        check_output_dir(tree / path if path.strip() else path)


@pytest.mark.parametrize(
    "path, message",
    [("", "is empty"), ("dir", "is a directory"), ("file/x", "which is a file")],
)
def test_check_output_file_refuses(tree, path, message):
    with pytest.raises(OutputPathError, match=message):
        check_output_file(tree / path if path else path)


def test_outputs_equal_to_an_input(tree):
    with pytest.raises(OutputPathError, match="also an input"):
        check_output_file(tree / "file", inputs=[tree / "file"])
    with pytest.raises(OutputPathError, match="also an input"):  # the same file by another name
        check_output_file(tree / "dir" / ".." / "file", inputs=[str(tree / "file")])
    with pytest.raises(OutputPathError, match="also an input"):
        check_output_dir(tree / "dir", inputs=[tree / "dir"])
    assert check_output_dir(tree / "dir" / "new", inputs=[tree / "file"]) == tree / "dir" / "new"


def test_new_paths_are_fine_and_nothing_is_created(tree):
    assert check_output_dir(tree / "a" / "b") == tree / "a" / "b"
    assert check_output_file(tree / "dir" / "x.h5") == tree / "dir" / "x.h5"
    with pytest.raises(OutputPathError, match="does not exist"):
        check_output_file(tree / "nope" / "x.h5", parent_must_exist=True)
    assert sorted(p.name for p in tree.iterdir()) == ["dir", "file"]


def test_the_error_is_a_config_and_a_dataset_error():
    """Code that caught the old per-command errors still catches these."""
    assert issubclass(OutputPathError, ConfigError) and issubclass(OutputPathError, DatasetError)


@pytest.fixture
def read_only_dir(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    if os.geteuid() == 0:  # root writes through permissions: mount something read-only
        made = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(ro)], capture_output=True
        )
        if made.returncode != 0:
            pytest.skip("running as root and cannot make a read-only mount")
        yield ro
        subprocess.run(["umount", "-l", str(ro)], check=False)
    else:
        ro.chmod(0o555)
        yield ro
        ro.chmod(0o755)


def test_read_only_folders(read_only_dir):
    with pytest.raises(OutputPathError, match="read-only|not writable"):
        check_output_dir(read_only_dir / "run")
    with pytest.raises(OutputPathError, match="read-only|not writable"):
        check_output_file(read_only_dir / "x.h5")


# --------------------------------------------------------------------------- commands


@pytest.fixture(scope="module")
def data_and_ckpt(good_h5, good_ckpt):
    return good_h5, good_ckpt


@pytest.fixture
def no_evaluation(monkeypatch):
    """Running a single episode is a test failure: --out must be refused before."""
    import lewm.eval.protocol as protocol

    def refuse(*args, **kwargs):
        raise AssertionError("the evaluation ran before --out was checked")

    monkeypatch.setattr(protocol, "run_seed", refuse)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda t, d, c: "", "is empty"),
        (lambda t, d, c: t / "file", "is an existing file"),
        (lambda t, d, c: t / "file" / "eval", "which is a file"),
        (lambda t, d, c: d, "is an existing file"),  # the --data file itself
        (lambda t, d, c: c / "config.json", "is an existing file"),  # a checkpoint file (the folder
        # itself is allowed: checkpoints/ENV/results.json lies beside the weights it scores)
    ],
)
def test_eval_out_is_checked_before_the_evaluation(
    capsys, tree, data_and_ckpt, no_evaluation, make, message
):
    data, ckpt = data_and_ckpt
    out = make(tree, data, ckpt)
    rc, _, err = run_cli(
        capsys, "eval", "--ckpt", ckpt, "--env", "tworoom", "--data", data, "--out", out,
        "--episodes", "1", "--seeds", "0", "--device", "cpu",
    )  # fmt: skip
    assert_one_error(rc, err, contains=message)
    assert not (ckpt / "results.json").exists()


def test_eval_out_read_only_before_the_evaluation(
    capsys, read_only_dir, data_and_ckpt, no_evaluation
):
    data, ckpt = data_and_ckpt
    rc, _, err = run_cli(
        capsys, "eval", "--ckpt", ckpt, "--env", "tworoom", "--data", data,
        "--out", read_only_dir / "eval", "--episodes", "1", "--seeds", "0", "--device", "cpu",
    )  # fmt: skip
    assert_one_error(rc, err, contains="--out")


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda t, c: "", "is empty"),
        (lambda t, c: t / "dir", "is a directory"),
        (lambda t, c: c, "is a directory"),  # the run directory itself
        (lambda t, c: t / "file" / "r.html", "which is a file"),
    ],
)
def test_report_out(capsys, tree, data_and_ckpt, make, message):
    _, ckpt = data_and_ckpt
    rc, _, err = run_cli(capsys, "report", ckpt, "--out", make(tree, ckpt))
    assert_one_error(rc, err, contains=message)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda t: "", "is empty"),
        (lambda t: t / "dir", "is a directory"),
        (lambda t: t / "file" / "p.gif", "which is a file"),
        (lambda t: t / "missing" / "p.gif", "does not exist"),
    ],
)
def test_preview_out(capsys, tree, data_and_ckpt, make, message):
    data, _ = data_and_ckpt
    rc, _, err = run_cli(capsys, "data", "preview", data, "--out", make(tree))
    assert_one_error(rc, err, contains=message)
    assert sorted(p.name for p in tree.iterdir()) == ["dir", "file"]
