"""Perturbation hooks of the surprise test (spec §9.2): colour changes and teleports through
the environments' public API, deterministic twins, PushT's block-seeking policy."""

from __future__ import annotations

import numpy as np
import pytest

from lewm.analysis import perturb
from lewm.analysis.surprise import SurpriseSettings, pair_seeds, simulate, simulate_pair
from lewm.envs.factory import make_env
from lewm.errors import ConfigError


def _env(name, size=32):
    return make_env(name, size)[0]


@pytest.mark.parametrize("name", ["tworoom", "pusht"])
def test_colour_change_changes_only_colour_pixels_and_is_undone(name):
    env = _env(name)
    env.reset(seed=3)
    before = env.render()
    what = perturb.change_colour(name, env, np.random.default_rng(0))
    after = env.render()
    assert what["object"] == perturb.OBJECTS[name][1]
    assert np.linalg.norm(np.subtract(what["to"], what["from"])) >= perturb.MIN_COLOUR_DISTANCE
    changed = (before != after).any(axis=-1)
    assert 0 < changed.mean() < 0.2  # the object, not the scene
    perturb.set_colour(name, env, what["from"])
    assert np.array_equal(env.render(), before)


def test_tworoom_teleport_moves_the_agent_into_free_space():
    from lewm.envs.tworoom import WALL_ZONE

    env = _env("tworoom")
    env.reset(seed=1)
    for seed in range(20):
        old = env.agent_pos.copy()
        what = perturb.teleport("tworoom", env, np.random.default_rng(seed))
        assert np.allclose(env.agent_pos, what["to"], atol=1e-4)
        assert np.hypot(*(env.agent_pos - old)) >= perturb.TWOROOM_MIN_JUMP
        assert not WALL_ZONE[0] <= env.agent_pos[0] <= WALL_ZONE[1]


def test_pusht_teleport_hook_keeps_angle_and_velocity():
    env = _env("pusht")
    env.reset(seed=2)
    for _ in range(5):
        env.step(np.array([0.3, -0.2], np.float32))
    s = env._state()
    env.teleport(agent_xy=(100.0, 120.0), block_xy=(300.0, 320.0))
    t = env._state()
    # set_state's one 0.01 s substep moves the (kinematic) agent by v * 0.01
    assert np.allclose(t[:2], np.array([100.0, 120.0]) + 0.01 * s[5:], atol=1e-6)
    assert np.allclose(t[2:4], [300.0, 320.0]) and t[4] == pytest.approx(s[4])
    assert np.allclose(t[5:], s[5:])
    env.teleport(block_xy=(250.0, 250.0))  # the agent stays
    assert np.allclose(env._state()[:2], t[:2] + 0.01 * t[5:], atol=1e-6)
    with pytest.raises(ValueError, match="agent_xy"):
        env.teleport(agent_xy=(1.0, np.nan))


def test_pusht_random_teleport_leaves_agent_clear_of_the_block():
    env = _env("pusht")
    env.reset(seed=0)
    for seed in range(10):
        what = perturb.teleport("pusht", env, np.random.default_rng(seed))
        agent = np.asarray(env.agent.position)
        assert np.hypot(*(agent - perturb._block_cog(env))) >= perturb.PUSHT_CLEARANCE - 1
        assert np.allclose(what["to"][:2], agent, atol=0.5)


def test_block_seeking_policy_touches_the_block_far_more_than_uniform():
    from lewm.envs.policies import RandomPolicy

    def contacts(policy_cls):
        env, total = _env("pusht"), 0
        for ep in range(4):
            env.reset(seed=ep)
            pol = policy_cls(env, ep)
            for _ in range(60):
                env.step(pol(None, None))
                total += env.agent_block_contacts > 0
        return total

    assert contacts(perturb.BlockSeekingPolicy) > 4 * max(1, contacts(RandomPolicy))


def test_twins_are_identical_before_the_event_and_differ_after():
    env = _env("tworoom")
    s = SurpriseSettings(pairs=2, frames=8)
    pair = simulate_pair("tworoom", env, pair_seeds(0, 0), s, frameskip=5)
    base = pair["unperturbed"][0]
    e = s.event_frame
    for kind in ("colour", "teleport"):
        frames, actions = pair[kind][0], pair[kind][1]
        assert frames.shape == base.shape == (8, 32, 32, 3)
        assert np.array_equal(frames[:e], base[:e])
        assert np.array_equal(actions[: (e - 1) * 5], pair["unperturbed"][1][: (e - 1) * 5])
        assert not np.array_equal(frames[e], base[e])
    # colour: the policy does not see colours, so actions stay equal throughout
    assert np.array_equal(pair["colour"][1], pair["unperturbed"][1])
    # re-running gives the same trajectories (seeded), and the colour was restored
    again = simulate("tworoom", env, None, pair_seeds(0, 0), 8, 5, e)
    assert np.array_equal(np.stack(again[0]), base)


def test_reacher_and_unknown_environments_are_refused():
    with pytest.raises(ConfigError, match="reacher has no perturbation"):
        perturb.check_perturbable("reacher")
    with pytest.raises(ConfigError, match="no perturbation hooks"):
        perturb.check_perturbable("maze")


def test_cube_hooks():
    pytest.importorskip("ogbench")
    env = _env("cube")
    try:
        env.reset(seed=0)
        pos = env.record()["privileged_block_0_pos"]
        env.teleport_cube([pos[0] + 0.1, pos[1] - 0.05, 0.02])
        moved = env.record()["privileged_block_0_pos"]
        assert np.allclose(moved, [pos[0] + 0.1, pos[1] - 0.05, 0.02], atol=1e-6)
        colour = env.cube_color()
        what = perturb.change_colour("cube", env, np.random.default_rng(0))
        assert np.allclose(env.cube_color(), what["to"]) and np.allclose(what["from"], colour)
        what = perturb.teleport("cube", env, np.random.default_rng(0))
        assert np.hypot(*(np.subtract(what["to"], what["from"])[:2])) >= perturb.CUBE_MIN_JUMP
        # expert twins are reproducible; the recoloured cube is back to normal after its run
        pair = simulate_pair(
            "cube", env, pair_seeds(0, 1), SurpriseSettings(pairs=2, frames=5, event=3), 2
        )
        assert not np.array_equal(pair["teleport"][0][3], pair["unperturbed"][0][3])
        assert np.allclose(env.cube_color(), colour)
    finally:
        env.close()
