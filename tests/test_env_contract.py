"""Every environment honours the shared contract used by collection and evaluation."""

import numpy as np
import pytest

from lewm.envs import ENVS
from lewm.envs.factory import make_env


@pytest.mark.parametrize("name", sorted(ENVS))
def test_contract_methods_and_success_agree(name):
    env, _ = make_env(name, 32)
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


# --------------------------------------------------------------------------- the factory


class KeywordEnv:
    """Records its constructor keywords; takes ``profile`` and one appearance keyword."""

    def __init__(self, render_mode="rgb_array", image_size=32, profile="clean", agent_color=None):
        self.kwargs = dict(image_size=image_size, profile=profile, agent_color=agent_color)


class PlainEnv:
    def __init__(self, render_mode="rgb_array", image_size=32):
        self.image_size = image_size


def _register(monkeypatch, cls, extra=None):
    from lewm.envs import EnvSpec

    monkeypatch.setitem(
        ENVS, "kw", EnvSpec("kw", "x/Kw-v0", f"{__name__}:{cls.__name__}", extra=extra)
    )


def test_factory_merges_recorded_profile_and_explicit_keywords(monkeypatch):
    _register(monkeypatch, KeywordEnv)
    recorded = {"agent_color": (1, 2, 3), "fast_render": True, "terminate_at_goal": False}
    env, used = make_env("kw", 24, profile="reference", recorded_kwargs=recorded)
    # only appearance keys the class accepts are inherited; the profile is passed
    assert used == {"agent_color": (1, 2, 3), "profile": "reference"}
    assert env.kwargs == {"image_size": 24, "profile": "reference", "agent_color": (1, 2, 3)}
    _, used = make_env(
        "kw", 24, profile="clean", recorded_kwargs=recorded, env_kwargs={"agent_color": None}
    )
    assert used == {"agent_color": None, "profile": "clean"}  # explicit keywords win


def test_factory_passes_profile_only_to_classes_that_take_it(monkeypatch):
    _register(monkeypatch, PlainEnv)
    env, used = make_env("kw", 16, profile="clean", recorded_kwargs={"agent_color": 1})
    assert used == {} and env.image_size == 16


def test_factory_errors_are_config_errors(monkeypatch):
    from lewm.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown environment"):
        make_env("maze", 16)
    _register(monkeypatch, PlainEnv)
    with pytest.raises(ConfigError, match="rejects keywords"):
        make_env("kw", 16, env_kwargs={"bogus": 1})
    from lewm.envs import EnvSpec

    monkeypatch.setitem(
        ENVS, "kw", EnvSpec("kw", "x/Kw-v0", "lewm_no_such_module:Env", extra="mujoco")
    )
    with pytest.raises(ConfigError, match=r"pip install 'lewm\[mujoco\]'"):
        make_env("kw", 16)
