"""Resumable collection: shards merge into exactly the one-shot file; a rerun skips finished shards."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import h5py
import numpy as np
import pytest

import lewm.envs.collect as collect_mod
from lewm.envs.collect import collect
from lewm.envs.collect_shards import collect_sharded, parts_dir
from lewm.errors import ConfigError, DatasetError


def _columns(path):
    with h5py.File(path, "r") as f:
        return {k: np.asarray(f[k]) for k in f.keys()}, json.loads(f.attrs["lewm_meta"])


def _sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_sharded_file_equals_one_shot_collection(tmp_path):
    one = collect("tworoom", "expert", 5, 16, 3, tmp_path / "one.h5", progress=False)
    sharded = collect_sharded(
        "tworoom", "expert", 5, 16, 3, tmp_path / "sharded.h5", shard_episodes=2, progress=False
    )
    a, meta_a = _columns(one)
    b, meta_b = _columns(sharded)
    assert sorted(a) == sorted(b)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert meta_a == meta_b
    assert _sha256(one) == _sha256(sharded)  # the documented `lewm collect` gives the same bytes
    assert not parts_dir(sharded).exists()


def test_rerun_after_a_kill_collects_only_missing_shards(tmp_path, monkeypatch):
    out = tmp_path / "d.h5"
    parts = parts_dir(out)
    parts.mkdir()
    collect("tworoom", "expert", 2, 16, 0, parts / "part-0000000-00002.h5", progress=False)
    calls = []
    real = collect_mod.collect

    def counting(*args, first_episode=0, **kwargs):
        calls.append(first_episode)
        return real(*args, first_episode=first_episode, **kwargs)

    monkeypatch.setattr(collect_mod, "collect", counting)
    collect_sharded("tworoom", "expert", 5, 16, 0, out, shard_episodes=2, progress=False)
    assert calls == [2, 4]
    cols, meta = _columns(out)
    assert meta["episodes"] == 5 and len(cols["ep_len"]) == 5
    calls.clear()
    collect_sharded("tworoom", "expert", 5, 16, 0, out, shard_episodes=2, progress=False)
    assert calls == []  # a finished file is kept as it is


def test_shards_of_other_settings_are_refused(tmp_path):
    out = tmp_path / "d.h5"
    parts = parts_dir(out)
    parts.mkdir()
    collect("tworoom", "expert", 2, 16, 7, parts / "part-0000000-00002.h5", progress=False)
    with pytest.raises(DatasetError, match="settings"):
        collect_sharded("tworoom", "expert", 3, 16, 0, out, shard_episodes=2, progress=False)
    assert not out.exists()


def test_bad_shard_size_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="shard_episodes"):
        collect_sharded("tworoom", "expert", 3, 16, 0, tmp_path / "d.h5", shard_episodes=0)


def test_the_same_collection_gives_the_same_bytes(tmp_path):
    """results.json records the sha256 of its data file: regenerating it must give that hash."""
    import hashlib

    digests = set()
    for name in ("a.h5", "b.h5"):
        path = collect("tworoom", "expert", 3, 16, 1, tmp_path / name, progress=False)
        digests.add(hashlib.sha256(path.read_bytes()).hexdigest())
    assert len(digests) == 1


def test_collect_env_set_reaches_the_environment_and_is_recorded(tmp_path, capsys):
    from lewm.cli import main

    out = tmp_path / "green.h5"
    argv = ["collect", "--env", "tworoom", "--episodes", "1", "--image-size", "16", "--out",
            str(out), "--no-progress", "--env-set", "agent_color=[0,255,0]"]  # fmt: skip
    assert main(argv) == 0
    _, meta = _columns(out)
    assert meta["env_kwargs"]["agent_color"] == [0, 255, 0]
    plain = collect("tworoom", "expert", 1, 16, 0, tmp_path / "plain.h5", progress=False)
    assert not np.array_equal(_columns(out)[0]["pixels"], _columns(plain)[0]["pixels"])
    bad = tmp_path / "bad.h5"
    assert main(["collect", "--env", "tworoom", "--episodes", "1", "--out", str(bad),
                 "--no-progress", "--env-set", "bogus=1"]) == 2  # fmt: skip
    assert "bogus" in capsys.readouterr().err and not bad.exists()
