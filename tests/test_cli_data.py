"""``lewm data info`` and ``lewm data preview``."""

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from lewm.cli.data import describe, write_preview
from lewm.envs.collect import collect
from lewm.errors import ConfigError, DatasetError


@pytest.fixture(scope="module")
def h5(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "tw.h5"
    return collect("tworoom", "expert", 5, 24, 0, path, max_steps=12, progress=False)


def _lewm(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "lewm", *args], capture_output=True, text=True, cwd=cwd
    )


def test_info_through_the_console_script(h5, tmp_path):
    r = _lewm("data", "info", str(h5), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "episodes: 5" in out and "steps (rows): 65" in out  # 5 x (12 steps + reset row)
    assert "env=tworoom" in out and "policy=expert" in out
    assert "pixels" in out and "(65, 24, 24, 3)" in out and "uint8" in out
    assert "5 NaN rows" in out


def test_info_action_statistics(h5):
    import h5py

    with h5py.File(h5) as f:
        a = f["action"][()]
    a = a[np.isfinite(a).all(1)]
    text = describe(h5)
    stats_lines = text.splitlines()[-2:]
    for d, line in enumerate(stats_lines):
        fields = line.split()
        assert int(fields[0]) == d
        np.testing.assert_allclose([float(x) for x in fields[1:]], [a[:, d].mean(), a[:, d].std(), a[:, d].min(), a[:, d].max()], atol=1e-4)  # fmt: skip


def test_preview_gif(h5, tmp_path):
    out = tmp_path / "p.gif"
    r = _lewm("data", "preview", str(h5), "--episodes", "4", "--out", str(out), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    with Image.open(out) as gif:
        assert gif.n_frames == 13
        assert gif.size == (4 * 24 + 3 * 2, 24)
    path, n_frames, eps = write_preview(
        h5, tmp_path / "q.gif", episodes=10, start=2, every=2, scale=2
    )
    assert eps == [2, 3, 4] and n_frames == 7
    with Image.open(path) as gif:
        assert gif.size == (2 * (3 * 24 + 2 * 2), 2 * 24)


def test_bad_input(h5, tmp_path):
    with pytest.raises(DatasetError, match="no such dataset"):
        describe(tmp_path / "missing.h5")
    with pytest.raises(ConfigError, match="does not exist"):
        write_preview(h5, tmp_path / "no" / "p.gif")
    with pytest.raises(ConfigError, match=".gif"):
        write_preview(h5, tmp_path / "p.mp4")
    with pytest.raises(ConfigError, match="out of range"):
        write_preview(h5, tmp_path / "p.gif", start=9)
    with pytest.raises(ConfigError, match="episodes"):
        write_preview(h5, tmp_path / "p.gif", episodes=0)
    not_h5 = tmp_path / "bad.h5"
    not_h5.write_text("hello")
    r = _lewm("data", "info", str(not_h5), cwd=tmp_path)
    assert r.returncode == 2 and "error:" in r.stderr
    r = _lewm("data", "preview", str(h5), "--out", str(tmp_path / "x" / "p.gif"), cwd=tmp_path)
    assert r.returncode == 2 and "does not exist" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.h5"]


def test_collect_policy_set_reaches_the_policy_and_the_metadata(tmp_path):
    import json

    import h5py

    r = _lewm("collect", "--env", "pusht", "--episodes", "1", "--image-size", "16", "--max-steps",
              "30", "--out", "slow.h5", "--policy-set", "max_speed=0.3", "--no-progress",
              cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    with h5py.File(tmp_path / "slow.h5") as f:
        assert json.loads(f.attrs["lewm_meta"])["policy_kwargs"] == {"max_speed": 0.3}
        a = f["action"][:-1]
    assert np.linalg.norm(a, axis=1).max() <= 0.3 + 1e-6
    bad = _lewm("collect", "--env", "pusht", "--episodes", "1", "--out", "bad.h5",
                "--policy-set", "bogus=1", "--no-progress", cwd=tmp_path)  # fmt: skip
    assert bad.returncode != 0 and "bogus" in bad.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "bad.h5").exists()
