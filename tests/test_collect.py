"""Data collection (lewm.envs.collect, ``lewm collect``): layout, alignment, determinism, bad input."""

import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

from lewm.data.hdf5 import inspect_dataset
from lewm.envs import ENVS, EnvSpec
from lewm.envs.collect import collect, episode_seeds
from lewm.envs.pusht import PushTEnv
from lewm.envs.tworoom import TwoRoomEnv
from lewm.errors import ConfigError, DatasetError

TWOROOM_COLUMNS = {
    "proprio",
    "pos_agent",
    "state",
    "observation",
    "goal_state",
    "distance_to_target",
}
PUSHT_COLUMNS = {
    "state",
    "proprio",
    "pos_agent",
    "vel_agent",
    "block_pose",
    "goal_state",
    "goal_proprio",
    "n_contacts",
}
COMMON = {
    "pixels",
    "action",
    "reward",
    "terminated",
    "truncated",
    "ep_idx",
    "step_idx",
    "ep_len",
    "ep_offset",
}


def _read(path):
    with h5py.File(path, "r") as f:
        return {k: f[k][()] for k in f}


@pytest.fixture(scope="module")
def tworoom_h5(tmp_path_factory):
    path = tmp_path_factory.mktemp("collect") / "tworoom.h5"
    return collect("tworoom", "expert", 6, 32, 0, path, max_steps=40, progress=False)


@pytest.fixture(scope="module")
def pusht_h5(tmp_path_factory):
    path = tmp_path_factory.mktemp("collect") / "pusht.h5"
    return collect("pusht", "expert", 4, 32, 0, path, max_steps=40, progress=False)


def test_tworoom_file_layout(tworoom_h5):
    info = inspect_dataset(tworoom_h5)
    assert info.n_episodes == 6 and info.image_size == (32, 32) and info.action_dim == 2
    assert set(info.columns) == COMMON | TWOROOM_COLUMNS
    assert info.attrs["env"] == "tworoom" and info.attrs["policy"] == "expert"
    d = _read(tworoom_h5)
    assert (d["ep_len"] <= 41).all() and (d["ep_len"] >= 2).all()
    last = d["ep_offset"] + d["ep_len"] - 1
    assert np.isnan(d["action"][last]).all()
    assert np.isfinite(np.delete(d["action"], last, axis=0)).all()
    for e, (off, n) in enumerate(zip(d["ep_offset"], d["ep_len"], strict=True)):
        np.testing.assert_array_equal(d["step_idx"][off : off + n], np.arange(n))
        assert (d["ep_idx"][off : off + n] == e).all()
        # An episode ends at the time limit or at success, never in between.
        assert n == 41 or d["terminated"][off + n - 1]
        assert not d["terminated"][off : off + n - 1].any()
    assert d["proprio"].dtype == np.float32 and d["observation"].dtype == np.float64


def test_pusht_file_layout(pusht_h5):
    info = inspect_dataset(pusht_h5)
    assert info.n_episodes == 4 and info.image_size == (32, 32)
    assert set(info.columns) == COMMON | PUSHT_COLUMNS
    d = _read(pusht_h5)
    assert (
        d["state"].shape[1] == 7 and d["proprio"].shape[1] == 4 and d["state"].dtype == np.float64
    )
    np.testing.assert_array_equal(d["proprio"], d["state"][:, [0, 1, 5, 6]])


def test_replaying_actions_reproduces_the_next_rows_tworoom(tworoom_h5):
    """Spec §5: applying action[t] in state[t] yields state[t+1] (exactly, for TwoRoom)."""
    d = _read(tworoom_h5)
    env = TwoRoomEnv(image_size=32)
    cols = TWOROOM_COLUMNS
    for off, n in zip(d["ep_offset"], d["ep_len"], strict=True):
        for t in range(off, off + n - 1):
            env.load_state({k: d[k][t] for k in cols})
            np.testing.assert_array_equal(env.render(), d["pixels"][t])
            env.step(d["action"][t])
            row = env.record()
            for k in cols:
                np.testing.assert_array_equal(row[k], d[k][t + 1], err_msg=f"{k} row {t + 1}")
            np.testing.assert_array_equal(env.render(), d["pixels"][t + 1])


def test_replaying_actions_reproduces_the_next_rows_pusht(pusht_h5):
    """PushT restores add one 0.01 s substep (spec §8.2), so compare with a tolerance, and
    check that action[t] (not a neighbour) explains the transition t -> t+1."""
    d = _read(pusht_h5)
    env = PushTEnv(image_size=32)
    err_aligned, err_shifted = [], []
    for off, n in zip(d["ep_offset"], d["ep_len"], strict=True):
        for t in range(off + 1, off + n - 2):
            for shift, errs in ((0, err_aligned), (1, err_shifted)):
                env.load_state({"state": d["state"][t], "goal_state": d["goal_state"][t]})
                s, *_ = env.step(d["action"][t + shift])
                errs.append(np.linalg.norm(s[:2] - d["state"][t + 1][:2]))
    assert np.median(err_aligned) < 3.0
    assert np.median(err_aligned) < 0.3 * np.median(err_shifted)


def test_output_does_not_depend_on_worker_count(tmp_path, tworoom_h5):
    path = collect(
        "tworoom", "expert", 6, 32, 0, tmp_path / "w2.h5", workers=2, max_steps=40, progress=False
    )
    a, b = _read(tworoom_h5), _read(path)
    assert set(a) == set(b)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    # the same bytes: a file's sha256 is reproducible whatever --workers was
    assert open(tworoom_h5, "rb").read() == open(path, "rb").read()


def test_seeds_differ_between_episodes_and_runs(tmp_path):
    assert episode_seeds(0, 0) != episode_seeds(0, 1) != episode_seeds(1, 0)
    p1 = collect("tworoom", "random", 2, 16, 1, tmp_path / "a.h5", max_steps=5, progress=False)
    p2 = collect("tworoom", "random", 2, 16, 2, tmp_path / "b.h5", max_steps=5, progress=False)
    assert not np.array_equal(_read(p1)["proprio"], _read(p2)["proprio"])


def test_goal_pixels_column(tmp_path):
    path = collect(
        "pusht",
        "random",
        2,
        16,
        0,
        tmp_path / "g.h5",
        max_steps=3,
        goal_pixels=True,
        progress=False,
    )
    d = _read(path)
    assert d["goal"].shape == d["pixels"].shape and d["goal"].dtype == np.uint8
    env = PushTEnv(image_size=16)
    env.load_goal({"state": d["goal_state"][0]})
    env.set_state(d["goal_state"][0][:5])
    # render_goal draws the goal state without physics: equal to a render at that state
    # (the agent may not overlap the goal block, so the restore substep moves nothing).
    np.testing.assert_array_equal(d["goal"][0], env.render_goal())


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        (dict(env="maze"), ConfigError, "unknown environment"),
        (dict(policy="oracle"), ConfigError, "unknown policy"),
        (dict(episodes=0), ConfigError, "episodes"),
        (dict(image_size=-4), ConfigError, "image_size"),
        (dict(workers=0), ConfigError, "workers"),
        (dict(max_steps=0), ConfigError, "max_steps"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, error, match):
    args = dict(
        env="tworoom", policy="expert", episodes=2, image_size=16, seed=0, out=tmp_path / "x.h5"
    )
    args.update(kwargs)
    with pytest.raises(error, match=match):
        collect(**args, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_missing_directory_and_existing_file(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        collect("tworoom", "expert", 1, 16, 0, tmp_path / "nope" / "x.h5", progress=False)
    out = tmp_path / "x.h5"
    out.write_bytes(b"keep me")
    with pytest.raises(DatasetError, match="exists"):
        collect("tworoom", "expert", 1, 16, 0, out, progress=False)
    assert out.read_bytes() == b"keep me"
    collect("tworoom", "expert", 1, 16, 0, out, max_steps=2, overwrite=True, progress=False)
    assert inspect_dataset(out).n_episodes == 1


class FailingPolicy:
    """Raises on the 3rd episode's 5th step (crash-safety test)."""

    exc: type = RuntimeError

    def __init__(self, env, seed):
        self.env, self.calls = env, 0

    def reset(self):
        FailingPolicy.episodes = getattr(FailingPolicy, "episodes", 0) + 1

    def __call__(self, obs=None, info=None):
        self.calls += 1
        if FailingPolicy.episodes >= 3 and self.calls == 5:
            raise self.exc("policy failed")
        return np.zeros(2, np.float32)


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_interrupted_collection_leaves_no_file(tmp_path, monkeypatch, exc):
    spec = EnvSpec(
        name="flaky",
        gym_id="lewm/Flaky-v0",
        entry_point="lewm.envs.tworoom:TwoRoomEnv",
        policies={"failing": f"{__name__}:FailingPolicy"},
        max_episode_steps=10,
    )
    monkeypatch.setitem(ENVS, "flaky", spec)
    monkeypatch.setattr(FailingPolicy, "exc", exc)
    monkeypatch.setattr(FailingPolicy, "episodes", 0, raising=False)
    with pytest.raises(exc):
        collect("flaky", "failing", 5, 16, 0, tmp_path / "x.h5", progress=False)
    assert list(tmp_path.iterdir()) == []


class CrashingPolicy:
    """Kills its (worker) process on the 3rd step: a simulator segfault stand-in."""

    def __init__(self, env, seed):
        self.calls = 0

    def reset(self):
        pass

    def __call__(self, obs=None, info=None):
        self.calls += 1
        if self.calls == 3:
            os._exit(3)
        return np.zeros(2, np.float32)


def test_crashed_worker_is_reported_and_leaves_no_file(tmp_path, monkeypatch):
    spec = EnvSpec(
        name="crashy",
        gym_id="lewm/Crashy-v0",
        entry_point="lewm.envs.tworoom:TwoRoomEnv",
        policies={"crash": f"{__name__}:CrashingPolicy"},
        max_episode_steps=10,
    )
    monkeypatch.setitem(ENVS, "crashy", spec)
    with pytest.raises(RuntimeError, match="worker died"):
        collect("crashy", "crash", 4, 16, 0, tmp_path / "x.h5", workers=2, progress=False)
    assert list(tmp_path.iterdir()) == []


def _lewm(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "lewm", *args], capture_output=True, text=True, cwd=cwd
    )


def test_cli_collect_and_bad_input(tmp_path):
    out = tmp_path / "p.h5"
    r = _lewm("collect", "--env", "pusht", "--policy", "random", "--episodes", "2", "--image-size", "16",
              "--seed", "3", "--out", str(out), "--max-steps", "4", "--no-progress", cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "2 episodes" in r.stdout and inspect_dataset(out).n_rows == 10
    for bad in (["--env", "maze"], ["--env", "tworoom", "--policy", "oracle"], ["--env", "tworoom", "--episodes", "0"],
                ["--env", "tworoom", "--image-size", "0"], ["--env", "tworoom", "--out", str(tmp_path / "no" / "x.h5")]):  # fmt: skip
        args = [
            "collect",
            "--episodes",
            "1",
            "--out",
            str(tmp_path / "bad.h5"),
            "--no-progress",
            *bad,
        ]
        r = _lewm(*args, cwd=tmp_path)
        assert r.returncode == 2 and "error:" in r.stderr, (bad, r.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.h5"]


@pytest.mark.parametrize("env", ["tworoom", "pusht"])
def test_lewm_train_runs_on_collected_files(tmp_path, env):
    """A 20-step `lewm train --preset tiny` runs on a collected file without conversion."""
    data = collect(env, "expert", 6, 32, 0, tmp_path / f"{env}.h5", max_steps=40, progress=False)
    r = _lewm("train", "--data", str(data), "--preset", "tiny", "--out", str(tmp_path / "run"),
              "--steps", "20", "--device", "cpu", "--no-progress", cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "run").is_dir()


def test_worker_pool_reports_env_construction_errors_as_themselves(tmp_path):
    """A bad environment keyword fails in the parent before the pool starts, not as a 'crashed worker'."""
    import pytest as _pytest

    from lewm.envs.collect import collect as _collect

    out = tmp_path / "bad.h5"
    with _pytest.raises(ConfigError, match="bogus"):
        _collect(
            "tworoom", "random", 2, 32, 0, out, workers=2, env_kwargs={"bogus": 1}, progress=False
        )
    assert not out.exists() and not list(tmp_path.iterdir())
