"""What `lewm eval` leaves for a person: the GIF panels (agent, continuation, goal, success
border) and the console script end to end (summary line, results.json, one-line errors)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from cli_helpers import run_console

# --------------------------------------------------------------------------- videos


def test_gif_panels(tmp_path):
    import imageio.v3 as iio

    from lewm.eval.video import compose_frames, write_episode_gif

    agent = [np.full((16, 16, 3), v, np.uint8) for v in (10, 20, 30)]
    cont = [np.full((16, 16, 3), v, np.uint8) for v in range(100, 106)]
    goal = np.full((16, 16, 3), 200, np.uint8)
    frames = compose_frames(agent, cont, goal, success_step=2, min_panel=32)
    assert frames.shape[0] == 6 and frames.dtype == np.uint8  # the longer sequence
    body = frames[:, -32:]  # below the caption strip; panels are 32 px (16 x 2)
    assert (body[0, 16, 16] == 10).all() and (body[5, 16, 16] == 30).all()  # agent held
    assert (body[5, 16, 32 + 4 + 16] == 105).all() and (body[0, 16, 2 * 36 + 16] == 200).all()
    assert tuple(body[2, 0, 0]) != (30, 30, 30)  # success border from step 2
    path = write_episode_gif(tmp_path / "v" / "ep.gif", agent, cont, goal, success_step=None)
    assert iio.imread(path).shape[0] == 6
    with pytest.raises(ValueError, match="expected"):
        compose_frames([np.zeros((8, 8, 3), np.uint8)], cont, goal)


# --------------------------------------------------------------------------- console script


def test_console_script_end_to_end(tmp_path):
    data, run, out = tmp_path / "tr.h5", tmp_path / "run", tmp_path / "eval"
    run_console("collect", "--env", "tworoom", "--policy", "expert", "--episodes", 6, "--image-size", 32,
         "--seed", 0, "--out", data, "--no-progress")  # fmt: skip
    run_console("train", "--data", data, "--preset", "tiny", "--set", "model.encoder.image_size=32",
         "--out", run, "--steps", 3, "--no-progress", "--device", "cpu")  # fmt: skip
    proc = run_console("eval", "--ckpt", run, "--env", "tworoom", "--data", data, "--episodes", 2,
                "--samples", 16, "--iters", 2, "--video", 1, "--device", "cpu", "--out", out)  # fmt: skip
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    res = json.loads((out / "results.json").read_text())
    assert summary["success_rate"] == res["success_rate"]
    assert summary["std_kind"] == res["std_kind"]
    assert res["seeds"] == [42, 43, 44]  # the default, like the demo
    assert "± = sample std over 3 seeds, ddof 1" in proc.stderr  # every ± says which std
    assert len(res["episodes"]) == 6 and res["solver"]["topk"] == 2  # samples // 10, at least 2
    assert res["solves"] >= 2 and res["plan_seconds_mean"] > 0
    assert len(list((out / "videos").glob("*.gif"))) == 1
    # bad input: non-zero exit, a one-line error, no results.json
    bad = tmp_path / "bad"
    proc = run_console("eval", "--ckpt", run, "--env", "tworoom", "--data", data, "--goal-offset", 500,
                "--out", bad, check=False)  # fmt: skip
    assert proc.returncode == 2 and "error: no valid start states" in proc.stderr
    assert not (bad / "results.json").exists()
