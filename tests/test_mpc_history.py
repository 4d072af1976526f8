"""The MPC policy's context window: past frames and executed blocks, padding at an episode's
start, and ``prime`` (the past an episode did not live through, e.g. from the dataset)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from mpc_helpers import FakeSolver, PointWorld, frames_of, preprocess

from lewm.planning import MPCConfig, MPCPolicy, PlanningError


def test_history_frames_and_blocks_with_padding_at_episode_start():
    f, fa = 2, 4
    model = PointWorld(frameskip=f, mu=(0.0, 0.0), sigma=(1.0, 1.0))
    config = MPCConfig(horizon=2, receding_horizon=1, context_frames=3)
    policy = MPCPolicy(model, FakeSolver(), preprocess, config)
    policy.reset(1)
    for t in range(5):
        policy.act(frames_of([10 * t]), frames_of([200]))
    # encode calls alternate (context, goal); solves at steps 0, 2, 4; frames f steps apart,
    # front-padded with the first frame
    contexts = [model.encoded[i][0, :, 0, 0, 0] * 255 for i in (0, 2, 4)]
    assert [c.round().tolist() for c in contexts] == [[0, 0, 0], [0, 0, 20], [0, 20, 40]]
    assert (model.encoded[1][0, 0, 0, 0, 0] * 255).round() == 200
    hist = [h[0] for h in model.histories]  # row 0 of each flattened rollout call
    zero, block0 = torch.zeros(fa), torch.arange(fa, dtype=torch.float32)  # block 0 of plan 0
    assert torch.equal(hist[0], torch.stack([zero, zero]))  # episode start: zero (mean) blocks
    assert torch.equal(hist[1], torch.stack([zero, block0]))
    assert torch.equal(hist[2], torch.stack([block0, 1000 + block0]))  # then block 0 of plan 1


def test_prime_puts_the_past_in_the_first_context_and_history():
    """A primed environment's first solve sees the given past frames and their normalised
    actions; an unprimed one in the same batch is padded as before; the next solve's window
    slides over the primed past like over lived steps."""
    f, a = 2, 2
    model = PointWorld(frameskip=f, mu=(1.0, -1.0), sigma=(2.0, 2.0))
    config = MPCConfig(horizon=2, receding_horizon=1, context_frames=3)
    policy = MPCPolicy(model, FakeSolver(), preprocess, config)
    policy.reset(2)
    past = np.arange(2 * f * a, dtype=np.float32).reshape(2 * f, a)  # raw, two blocks
    policy.prime(0, frames_of([7, 9]), past)
    policy.act(frames_of([11, 50]), frames_of([200, 200]))
    first = (model.encoded[0][:, :, 0, 0, 0] * 255).round()
    assert first.tolist() == [[7, 9, 11], [50, 50, 50]]
    normalised = torch.from_numpy((past - np.array([1.0, -1.0])) / 2.0).float()
    assert torch.allclose(model.histories[0][0], normalised.reshape(2, f * a))
    assert torch.equal(model.histories[0][-1], torch.zeros(2, f * a))  # env 1: at rest
    policy.act(frames_of([12, 51]), frames_of([200, 200]))
    policy.act(frames_of([13, 52]), frames_of([200, 200]))  # second solve: block boundary
    second = (model.encoded[2][:, :, 0, 0, 0] * 255).round()
    assert second[0].tolist() == [9, 11, 13]
    assert torch.allclose(model.histories[1][0][0], normalised.reshape(2, f * a)[1])


def test_prime_is_checked():
    model = PointWorld(frameskip=2)
    policy = MPCPolicy(model, FakeSolver(), preprocess, MPCConfig(horizon=2, context_frames=3))
    policy.reset(1)
    with pytest.raises(PlanningError, match="1..2 past frames"):
        policy.prime(0, frames_of([1, 2, 3]), np.zeros((6, 2)))
    with pytest.raises(PlanningError, match="shape"):
        policy.prime(0, frames_of([1]), np.zeros((3, 2)))
    policy.act(frames_of([1]), frames_of([2]))
    with pytest.raises(PlanningError, match="right after reset"):
        policy.prime(0, frames_of([1]), np.zeros((2, 2)))
