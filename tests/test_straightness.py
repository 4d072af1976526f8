"""Temporal straightness (spec §9.3): the statistic and `lewm straightness`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from analysis_helpers import cli, tworoom_run

from lewm.analysis.straightness import (
    clip_and_trajectory_cosines,
    step_cosines,
    temporal_straightness,
)


def test_straight_lines_score_one_at_any_speed():
    t = torch.tensor([0.0, 1.0, 3.0, 4.0, 9.0])  # uneven speed along one direction
    z = torch.stack([t, -2 * t, 0.5 * t], dim=-1)[None].repeat(3, 1, 1)  # (3, 5, 3)
    assert temporal_straightness(z).item() == pytest.approx(1.0, abs=1e-6)


def test_back_and_forth_scores_minus_one_and_a_right_angle_zero():
    zigzag = torch.tensor([[[0.0], [1.0], [0.0], [1.0]]])  # v = +1, -1, +1
    assert temporal_straightness(zigzag).item() == pytest.approx(-1.0)
    corner = torch.tensor([[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]]])
    assert temporal_straightness(corner).item() == pytest.approx(0.0, abs=1e-7)


def test_zero_velocity_counts_as_zero_not_nan():
    z = torch.zeros(2, 5, 4)
    z[0, 3:] = 1.0  # one step of motion, the rest standing still
    cos = step_cosines(z)
    assert torch.isfinite(cos).all() and (cos == 0).all()


def test_mean_over_batch_and_time_and_no_gradient():
    z = torch.randn(4, 6, 8, requires_grad=True)
    s = temporal_straightness(z)
    assert s.shape == () and not s.requires_grad
    assert s.item() == pytest.approx(step_cosines(z).mean().item())
    # independent Gaussian points: consecutive velocities share a point with opposite signs
    big = torch.randn(256, 40, 64, generator=torch.Generator().manual_seed(0))
    assert temporal_straightness(big).item() == pytest.approx(-0.5, abs=0.02)


def test_shape_is_checked():
    with pytest.raises(ValueError, match="T>=3"):
        temporal_straightness(torch.zeros(2, 2, 3))


def test_clips_and_trajectories_of_a_file_layout():
    """Two episodes of straight motion (rows move along a line): every cosine is 1."""
    ep_len = np.array([23, 17])
    rows = np.concatenate([np.arange(n) for n in ep_len]).astype(np.float32)
    z = np.stack([rows, 2 * rows], axis=1)  # (40, 2)
    clips, trajs = clip_and_trajectory_cosines(z, ep_len, frameskip=5)
    assert clips.shape == ((23 - 15) + (17 - 15), 2)  # every start with 4 frames, 2 cosines each
    assert np.allclose(clips, 1.0) and np.allclose(trajs, 1.0)
    # whole episodes at frameskip 5, 5 phases: frames per phase 5,5,5,4,4 and 4,4,3,3,3
    assert len(trajs) == (3 + 3 + 3 + 2 + 2) + (2 + 2 + 1 + 1 + 1)


def test_command_on_held_out_episodes(tmp_path):
    run, data = tworoom_run()
    code, out, err = cli("straightness", "--ckpt", run, "--data", data, "--device", "cpu",
                         "--out", tmp_path / "s")  # fmt: skip
    assert code == 0, err
    res = json.loads(out)
    split = json.loads((run / "split.json").read_text())
    assert res["held_out"] is True and res["episodes"] == len(split["val_episodes"])
    assert -1 <= res["projector"]["clips"]["mean"] <= 1
    assert res["projector"]["clips"]["pairs"] == 2 * res["projector"]["clips"]["clips"]
    assert res["val_straightness"] == res["projector"]["clips"]["mean"]
    assert json.loads((tmp_path / "s" / "straightness.json").read_text()) == res


def test_command_bad_input(tmp_path):
    from lewm.envs.collect import collect

    run, _ = tworoom_run()
    other = collect("tworoom", "expert", 3, 24, 1, tmp_path / "tr24.h5", progress=False)
    code, _, err = cli("straightness", "--ckpt", run, "--data", other, "--device", "cpu",
                       "--out", tmp_path / "o")  # fmt: skip
    assert code == 2 and "error:" in err and "--resize-frames" in err
    assert not (tmp_path / "o").exists()
