"""Every environment honours the shared contract used by collection and evaluation."""

import numpy as np
import pytest

from lewm.envs import ENVS
from lewm.envs.collect import make_env


@pytest.mark.parametrize("name", sorted(ENVS))
def test_contract_methods_and_success_agree(name):
    env = make_env(name, 32)
    try:
        obs, info = env.reset(seed=0)
        assert env.is_success() == bool(info["success"])
        row = env.record()
        for method in ("load_state", "load_goal", "goal_distance", "is_success", "render"):
            assert callable(getattr(env, method)), method
        env.load_goal(row)  # the goal is the current state: solved without stepping
        assert env.is_success() and env.goal_distance() < 1e-6 + (
            0.05 if name == "reacher" else 0.0
        )
        _, _, terminated, _, info = env.step(np.zeros(env.action_space.shape, dtype=np.float32))
        assert env.is_success() == bool(info["success"])
        frame = env.render()
        assert frame.dtype == np.uint8 and frame.shape == (32, 32, 3)
    finally:
        env.close()
