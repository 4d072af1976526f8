"""results.json names what it read without this machine's absolute paths: portable paths,
the command as typed, and the sha256 of every input file (issue 10)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lewm.eval.files import checkpoint_files, file_hashes, portable_path, scrub, sha256_file

LEWM = shutil.which("lewm", path=str(Path(sys.executable).parent)) or "lewm"


def test_portable_paths(tmp_path, monkeypatch):
    work = tmp_path / "work"
    (work / "runs").mkdir(parents=True)
    monkeypatch.chdir(work)
    assert portable_path(work / "runs" / "a") == "runs/a"  # under the cwd: relative to it
    assert portable_path("runs/./a") == "runs/a"
    assert portable_path("../data/x.h5") == "../data/x.h5"  # typed relative: kept
    assert portable_path(tmp_path / "data" / "x.h5") == "../data/x.h5"  # absolute outside
    assert portable_path(work) == "."


def test_scrub_replaces_absolute_forms_everywhere(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    other = Path("/somewhere/else/train.h5")
    value = {
        "note": f"a file other than the training file ({other})",
        "list": [f"{tmp_path}/run/config.json", 3, None],
        f"{tmp_path}/key": "x",
    }
    out = scrub(value, [other])
    assert out["note"] == f"a file other than the training file ({portable_path(other)})"
    assert out["list"] == ["run/config.json", 3, None] and "key" in out
    assert portable_path(other).startswith("../") and str(tmp_path) not in json.dumps(out)


def test_hashes(tmp_path):
    f = tmp_path / "x.bin"
    f.write_bytes(b"lewm" * 1000)
    assert sha256_file(f) == hashlib.sha256(b"lewm" * 1000).hexdigest()
    f.write_bytes(b"changed!")  # another size: hashed again, not remembered
    assert sha256_file(f) == hashlib.sha256(b"changed!").hexdigest()
    assert list(file_hashes([f, None, f])) == [portable_path(f)]


def test_checkpoint_files(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    for name in ("config.json", "model.safetensors", "split.json", "train_state.pt"):
        (run / name).write_text("x")
    assert [p.name for p in checkpoint_files(run)] == [
        "config.json",
        "model.safetensors",
        "split.json",
    ]
    authors = tmp_path / "authors"
    authors.mkdir()
    for name in ("config.json", "weights.pt"):
        (authors / name).write_text("x")
    assert [p.name for p in checkpoint_files(authors)] == ["config.json", "weights.pt"]
    assert [p.name for p in checkpoint_files(authors / "weights.pt")] == [
        "config.json",
        "weights.pt",
    ]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from tiny_run import make_tiny_run

    return make_tiny_run(tmp_path_factory.mktemp("files"))


def test_results_json_records_command_and_files_without_absolute_paths(tiny_run, tmp_path):
    run, data = tiny_run
    work = tmp_path / "work"
    work.mkdir()
    shutil.copytree(run, work / "run")
    shutil.copy(data, work / "tr.h5")
    args = ["eval", "--ckpt", "run", "--env", "tworoom", "--data", "tr.h5", "--episodes", "1",
            "--seeds", "42", "--samples", "8", "--iters", "1", "--budget", "25",
            "--device", "cpu", "--out", "ev"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    subprocess.run([LEWM, *args], cwd=work, check=True, capture_output=True, timeout=300, env=env)
    text = (work / "ev" / "results.json").read_text()
    res = json.loads(text)
    assert res["command"] == ["lewm", *args]  # as typed
    assert res["checkpoint"] == "run" and res["data"] == "tr.h5"
    want = {
        f"run/{n}": sha256_file(work / "run" / n)
        for n in ("config.json", "model.safetensors", "split.json")
    }
    assert res["files"] == {**want, "tr.h5": sha256_file(work / "tr.h5")}
    # no absolute path of this machine anywhere (the run's config.json records its training
    # file by absolute path: it is scrubbed from the notes too)
    for root in {str(tmp_path), str(tmp_path.resolve()), str(run.parent), "/tmp/"}:
        assert root not in text, root
    # evaluate() without a command records null
    from lewm.eval.protocol import evaluate

    os.chdir(work)
    try:
        again = evaluate("run", "tworoom", "tr.h5", None, episodes=1, seeds=(42,), budget=25,
                         solver_settings={"samples": 8, "iterations": 1}, device="cpu",
                         log=lambda m: None)  # fmt: skip
    finally:
        os.chdir(Path(__file__).parent)
    assert again["command"] is None and again["files"] == res["files"]
