"""PushT environment (spec §8.2): API, determinism, physics, success test, rendering."""

import math

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from PIL import Image, ImageDraw
from platform_pins import UNRECORDED, check_pinned

import lewm.envs  # noqa: F401  (registers the ids)
from lewm.envs.policies import RandomPolicy
from lewm.envs.pusht import (
    LIGHT_SLATE_GRAY,
    ROYAL_BLUE,
    PushTEnv,
    PushTExpert,
    angle_error,
    pusht_success,
)
from lewm.envs.pusht.render import FrameRenderer, draw_agent, draw_block
from lewm.envs.raster import apply_separable, cv2_linear_matrix, pil_bilinear_matrix


def test_check_env_and_make():
    env = gym.make("lewm/PushT-v0", image_size=32)
    check_env(env.unwrapped)
    obs, info = env.reset(seed=0)
    assert obs.shape == (7,) and obs.dtype == np.float64 and "success" in info
    assert env.render().shape == (32, 32, 3)


@pytest.mark.parametrize("size", [0, -1, 3.0])
def test_bad_image_size(size):
    with pytest.raises(ValueError, match="image_size"):
        PushTEnv(image_size=size)


@pytest.mark.parametrize("action", [np.zeros(1), np.array([np.nan, 0.0]), np.array([0.0, -np.inf])])
def test_bad_actions_rejected(action):
    env = PushTEnv(image_size=16)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.step(action)


def test_seeded_determinism():
    def rollout(seed):
        env = PushTEnv(image_size=32)
        obs, _ = env.reset(seed=seed)
        pol = PushTExpert(env, seed=5)
        pol.reset()
        out = [(obs, env.render())]
        for _ in range(25):
            obs, *_ = env.step(pol(obs))
            out.append((obs, env.render()))
        return out

    a, b, c = rollout(3), rollout(3), rollout(4)
    for (oa, fa), (ob, fb) in zip(a, b, strict=True):
        np.testing.assert_array_equal(oa, ob)
        np.testing.assert_array_equal(fa, fb)
    assert not np.array_equal(a[0][0], c[0][0])


def test_reset_distribution():
    env = PushTEnv(image_size=8)
    angles = []
    for seed in range(200):
        s, _ = env.reset(seed=seed)
        g = env.goal_state
        assert (50 <= s[:2]).all() and (s[:2] <= 450).all()
        # The block can be nudged by an overlapping agent during the reset substep.
        assert (95 <= s[2:4]).all() and (s[2:4] <= 405).all()
        assert 0 <= s[4] < 2 * math.pi
        assert (50 <= g[:2]).all() and (g[:2] <= 450).all()
        assert (100 <= g[2:4]).all() and (g[2:4] <= 400).all()
        assert 0 <= g[4] < 2 * math.pi and g[5] == 0 and g[6] == 0
        angles.append(s[4])
    assert np.std(angles) > 1.0  # spread over the circle


def test_success_function_hand_built():
    goal = np.array([100.0, 100.0, 200.0, 200.0, 1.0, 0.0, 0.0])
    ok = goal.copy()
    ok[0] += 19.9
    assert pusht_success(ok, goal)
    bad = goal.copy()
    bad[0] += 12.0
    bad[3] += 16.1  # 4-D norm sqrt(12^2 + 16.1^2) > 20
    assert not pusht_success(bad, goal)
    turned = goal.copy()
    turned[4] += math.pi / 9 - 0.01
    assert pusht_success(turned, goal)
    turned[4] += 0.02
    assert not pusht_success(turned, goal)
    # Angle wrap-around: 0.05 and 2 pi - 0.05 are 0.1 rad apart.
    g2 = goal.copy()
    g2[4] = 0.05
    s2 = goal.copy()
    s2[4] = 2 * math.pi - 0.05
    assert pusht_success(s2, g2)
    s2[4] = math.pi  # the T has no symmetry: half a turn is far
    assert not pusht_success(s2, g2)
    assert angle_error(0.05, 2 * math.pi - 0.05) == pytest.approx(0.1)


def test_success_reported_by_step():
    env = PushTEnv(image_size=8)
    env.reset(seed=0)
    env.set_goal_state([100.0, 100.0, 300.0, 300.0, 2 * math.pi - 0.05])
    env.set_state([100.0, 110.0, 300.0, 300.0, 0.1])  # 10 px and 0.15 rad away
    _, reward, terminated, _, info = env.step(np.zeros(2, np.float32))
    assert terminated and info["success"]
    assert reward == pytest.approx(-np.linalg.norm(env.goal_state - env._state()))
    env.set_state([100.0, 130.0, 300.0, 300.0, 0.1])  # 30 px away
    _, _, terminated, _, info = env.step(np.zeros(2, np.float32))
    assert not terminated and not info["success"]
    assert env.goal_distance() == pytest.approx(30.0, abs=1e-6)


def test_goal_angle_is_wrapped():
    env = PushTEnv(image_size=8)
    env.set_goal_state([1, 2, 3, 4, -1.0])
    assert env.goal_state[4] == pytest.approx(2 * math.pi - 1.0)
    np.testing.assert_array_equal(env.goal_state[5:], [0.0, 0.0])


def test_set_state_is_deterministic_whatever_happened_before():
    state = np.array([200.0, 330.0, 250.0, 300.0, 0.4, 30.0, -20.0])
    actions = np.random.default_rng(0).uniform(-0.5, 0.5, (15, 2)).astype(np.float32)
    runs = []
    for seed, warmup in ((0, 0), (1, 40), (2, 7)):
        env = PushTEnv(image_size=32)
        env.reset(seed=seed)
        rng = np.random.default_rng(seed)
        for _ in range(warmup):  # different histories, including pushes
            env.step(rng.uniform(-1, 1, 2).astype(np.float32))
        env.set_state(state)
        frames, states = [env.render()], [env._state()]
        for a in actions:
            s, *_ = env.step(a)
            frames.append(env.render())
            states.append(s)
        runs.append((frames, states))
    for frames, states in runs[1:]:
        for fa, fb in zip(runs[0][0], frames, strict=True):
            np.testing.assert_array_equal(fa, fb)
        for sa, sb in zip(runs[0][1], states, strict=True):
            np.testing.assert_array_equal(sa, sb)


def test_set_state_render_equals_fresh_render():
    # 5-D state, agent clear of the block: the restore substep moves nothing.
    state = [400.0, 100.0, 200.0, 250.0, 1.2]
    a = PushTEnv(image_size=48)
    a.reset(seed=0)
    for _ in range(10):
        a.step(np.array([0.5, 0.5], np.float32))
    a.set_state(state)
    np.testing.assert_allclose(a._state()[:5], state, atol=1e-9)
    b = PushTEnv(image_size=48)
    b.set_state(state)
    np.testing.assert_array_equal(a.render(), b.render())
    # load_state from a recorded row, and render_goal == render at the goal state.
    row = a.record()
    c = PushTEnv(image_size=48)
    c.reset(seed=5)
    c.load_state(row)
    np.testing.assert_array_equal(c.render(), a.render())
    np.testing.assert_array_equal(c.goal_state, a.goal_state)
    c.load_goal(row)
    np.testing.assert_array_equal(c.render_goal(), a.render())


def test_pushing_into_the_block_moves_it():
    env = PushTEnv(image_size=8)
    env.reset(seed=0)
    env.set_state([150.0, 250.0, 250.0, 235.0, 0.0])  # agent left of the bar, at its height
    x0 = env.block.position.x
    contacts = 0
    for _ in range(15):
        env.step(np.array([0.3, 0.0], np.float32))
        contacts += env.agent_block_contacts
    assert env.block.position.x > x0 + 30
    assert contacts > 0 and env.n_contacts >= 0
    # Far from the block, the agent moves and the block does not.
    env.set_state([100.0, 450.0, 300.0, 150.0, 0.0])
    before = env.block_pose()
    for _ in range(5):
        env.step(np.array([0.5, 0.0], np.float32))
    assert env.block_pose() == before and env.agent_block_contacts == 0


def test_kinematic_agent_follows_the_pd_target():
    env = PushTEnv(image_size=8)
    env.set_state([100.0, 450.0, 300.0, 150.0, 0.0])  # far from the block
    p, v = np.array([100.0, 450.0]), np.zeros(2)
    rng = np.random.default_rng(0)
    for _ in range(20):
        a = rng.uniform(-1, 1, 2).astype(np.float32)
        env.step(a)
        # Spec §8.2: target = p + 100 a; per 0.01 s substep v += (100 (target - p) - 20 v) dt; p += v dt.
        target = p + 100.0 * a.astype(np.float64)
        for _ in range(10):
            v = v + (100.0 * (target - p) - 20.0 * v) * 0.01
            p = p + v * 0.01
    s = env._state()
    np.testing.assert_allclose(s[0:2], p, atol=1e-6)
    np.testing.assert_allclose(s[5:7], v, atol=1e-6)


@pytest.mark.parametrize("size", [64, 224])
def test_windowed_render_equals_full_pipeline(size):
    env = PushTEnv(image_size=size)
    for pose, agent in (((250.0, 300.0, 0.5), (300.0, 200.0)), ((60.0, 480.0, 2.0), (500.0, 20.0))):
        env.set_state([*agent, *pose])
        r = FrameRenderer.get(size)
        canvas = r.static_image.copy()
        draw = ImageDraw.Draw(canvas)
        draw_block(draw, env.block_pose(), LIGHT_SLATE_GRAY)
        draw_agent(draw, tuple(env.agent.position), ROYAL_BLUE)
        m = pil_bilinear_matrix(224, size) @ cv2_linear_matrix(512, 224)
        full = np.clip(np.round(apply_separable(m, np.asarray(canvas))), 0, 255)
        assert np.abs(env.render().astype(int) - full.astype(int)).max() <= 1


def test_small_frames_match_pil_resize_of_224_frames():
    small, big = PushTEnv(image_size=64), PushTEnv(image_size=224)
    for state in ([300.0, 200.0, 250.0, 300.0, 0.5], [120.0, 420.0, 380.0, 150.0, 4.0]):
        small.set_state(state)
        big.set_state(state)
        ref = np.asarray(Image.fromarray(big.render()).resize((64, 64), Image.Resampling.BILINEAR))
        diff = np.abs(small.render().astype(int) - ref.astype(int))
        assert diff.mean() < 0.1 and diff.max() <= 2


def test_colours_and_overlay():
    env = PushTEnv(image_size=224)
    env.set_state([400.0, 100.0, 150.0, 380.0, 0.0])
    frame = env.render()
    # The fixed light-green goal T at (256, 256, pi/4) is always drawn.
    assert (np.abs(frame.astype(int) - [144, 238, 144]).sum(-1) < 10).sum() > 200
    env.set_block_color((255, 0, 0))
    assert ((frame[..., 0] > 240) & (frame[..., 1] < 60)).sum() == 0
    red = env.render()
    assert ((red[..., 0] > 240) & (red[..., 1] < 60)).sum() > 100


def test_expert_pushes_and_random_barely_touches():
    def stats(policy_cls):
        env = PushTEnv(image_size=8)
        contact, moved = 0, []
        for ep in range(3):
            obs, info = env.reset(seed=ep)
            pol = policy_cls(env, seed=ep)
            pol.reset()
            start = np.asarray(env.block_pose()[:2])
            for _ in range(60):
                obs, _, term, _, info = env.step(pol(obs, info))
                contact += env.agent_block_contacts > 0
                if term:
                    break
            moved.append(np.linalg.norm(np.asarray(env.block_pose()[:2]) - start))
        return contact, float(np.mean(moved))

    expert_contact, expert_moved = stats(PushTExpert)
    random_contact, random_moved = stats(RandomPolicy)
    assert expert_contact >= 30 and expert_moved > 40
    assert random_contact < expert_contact / 2 and random_moved < expert_moved / 3


def test_expert_reaches_goals():
    env = PushTEnv(image_size=8)
    wins = 0
    for ep in range(4):
        obs, info = env.reset(seed=100 + ep)
        pol = PushTExpert(env, seed=ep)
        pol.reset()
        for _ in range(200):
            obs, _, term, _, info = env.step(pol(obs, info))
            if term:
                wins += 1
                break
    assert wins >= 2


def _episode_digest(size: int, seed: int, steps: int = 40) -> str:
    """SHA-256 over a seeded expert episode: frames, states, actions, rewards, record() rows,
    the goal frame, and a restore of the last state."""
    import hashlib

    env = PushTEnv(image_size=size)
    h = hashlib.sha256()
    obs, _ = env.reset(seed=seed)
    pol = PushTExpert(env, seed=seed + 1)
    pol.reset()
    h.update(env.render().tobytes())
    h.update(obs.tobytes())
    for _ in range(steps):
        a = pol(obs, None)
        obs, r, _, _, _ = env.step(a)
        h.update(a.tobytes())
        h.update(obs.tobytes())
        h.update(env.render().tobytes())
        for _, v in sorted(env.record().items()):
            h.update(np.asarray(v).tobytes())
        h.update(np.float64(r).tobytes())
    h.update(env.render_goal().tobytes())
    env.load_state({"state": obs})
    h.update(env.render().tobytes())
    h.update(env.record()["state"].tobytes())
    return h.hexdigest()


@pytest.mark.parametrize(
    "size, seed, pins",
    [
        (
            32,
            3,
            {
                UNRECORDED: "6347d6dbd0e32fa97277d31d621d6a2cd6ed84598178a1c0d4df4661bed4b8e4",
                "x86_64 AMD EPYC glibc-2.36": "7bc4c8a0967c79abd3dc6f2a3c425345238a54f497efc359c2c4cbe966d4426e",
            },
        ),
        (
            64,
            11,
            {
                UNRECORDED: "7c81fa91a9e7a581dbc8c1b198ec69ba3dfbb38a44e10b043564f5ebfd211340",
                "x86_64 AMD EPYC glibc-2.36": "0a09a106cddac863407ce69082575e4f4542e831c7822e1ed8146a05ba51685f",
            },
        ),
    ],
)
def test_seeded_expert_episode_is_pinned(size, seed, pins):
    """Bit-identical behaviour across refactors, per platform (tests/platform_pins.py): first
    pinned with the single-module pusht.py of issue 9's start, numpy 2 / pymunk 7 on x86-64.
    A change here changes every PushT dataset."""
    check_pinned(lambda: _episode_digest(size, seed), pins)


def test_in_bounds_tolerates_a_few_px_past_a_wall_but_not_far():
    """Expert PushT episodes leave the agent a few px past a wall; only far-off states warn."""
    from lewm.envs.pusht.geometry import WORLD

    env = PushTEnv(image_size=32)
    env.reset(seed=0)
    state = env.record()["state"].copy()
    state[0] = WORLD + 5.0  # agent x just past the right wall
    env.load_state({"state": state})
    assert env.in_bounds()
    state[0] = 10 * WORLD
    env.load_state({"state": state})
    assert not env.in_bounds()


def test_a_speed_cap_slows_the_expert_and_the_default_is_the_uncapped_one():
    def actions(**kwargs):
        env = PushTEnv(image_size=8)
        obs, info = env.reset(seed=3)
        pol = PushTExpert(env, seed=3, **kwargs)
        pol.reset()
        out = []
        for _ in range(40):
            out.append(pol(obs, info))
            obs, *_, info = env.step(out[-1])
        return np.stack(out)

    full, capped = actions(), actions(max_speed=0.4)
    np.testing.assert_array_equal(actions(max_speed=1.0), full)  # bit for bit: old data stays
    assert np.linalg.norm(full, axis=1).max() > 0.9
    assert np.linalg.norm(capped, axis=1).max() <= 0.4 + 1e-6
    with pytest.raises(ValueError, match="max_speed"):
        PushTExpert(PushTEnv(image_size=8), seed=0, max_speed=0.0)
