"""TwoRoom environment (spec §8.1): API, determinism, geometry, success test, rendering."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from PIL import Image

import lewm.envs  # noqa: F401  (registers the ids)
from lewm.envs.policies import RandomPolicy
from lewm.envs.tworoom import WALL_X, TwoRoomEnv, TwoRoomExpert


def test_check_env_and_make():
    env = gym.make("lewm/TwoRoom-v0", image_size=32)
    check_env(env.unwrapped)
    obs, info = env.reset(seed=0)
    assert obs.shape == (10,) and "success" in info
    assert env.render().shape == (32, 32, 3)


@pytest.mark.parametrize("size", [0, -3, 2.5])
def test_bad_image_size(size):
    with pytest.raises(ValueError, match="image_size"):
        TwoRoomEnv(image_size=size)


@pytest.mark.parametrize(
    "action", [np.zeros(3), np.array([np.nan, 0.0]), np.array([0.0, np.inf]), [[0.0, 0.0]]]
)
def test_bad_actions_rejected(action):
    env = TwoRoomEnv(image_size=16)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.step(action)


@pytest.mark.parametrize("size", [16, 64, 224])
def test_render_shape(size):
    env = TwoRoomEnv(image_size=size)
    env.reset(seed=1)
    frame = env.render()
    assert frame.shape == (size, size, 3) and frame.dtype == np.uint8
    # The agent is red: somewhere R stays high while G drops.
    assert ((frame[..., 0] > 200) & (frame[..., 1] < 150)).any()


def _rollout(seed, n=40, size=32):
    env = TwoRoomEnv(image_size=size)
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(123)
    out = [(obs, env.render(), env.record())]
    for _ in range(n):
        obs, *_ = env.step(rng.uniform(-1, 1, 2).astype(np.float32))
        out.append((obs, env.render(), env.record()))
    return out


def test_seeded_determinism():
    a, b, c = _rollout(7), _rollout(7), _rollout(8)
    for (oa, fa, ra), (ob, fb, rb) in zip(a, b, strict=True):
        np.testing.assert_array_equal(oa, ob)
        np.testing.assert_array_equal(fa, fb)
        for k in ra:
            np.testing.assert_array_equal(ra[k], rb[k])
    assert not np.array_equal(a[0][0], c[0][0])


def test_reset_distribution_far_targets():
    env = TwoRoomEnv(image_size=8)
    door = np.array([112.0, 49.0])
    for seed in range(300):
        env.reset(seed=seed)
        a, t = env.agent_pos.astype(float), env.target_pos.astype(float)
        assert (14 <= a).all() and (a <= 209).all() and (14 <= t).all() and (t <= 209).all()
        assert not 100 <= a[0] <= 124
        assert not 100 <= t[0] <= 124
        assert (a[0] < WALL_X) != (t[0] < WALL_X)  # the other room
        assert np.linalg.norm(a - door) + np.linalg.norm(t - door) >= 125.0


def test_reset_distribution_uniform_targets():
    env = TwoRoomEnv(image_size=8, reset_target="uniform")
    same_room = 0
    for seed in range(300):
        env.reset(seed=seed)
        a, t = env.agent_pos, env.target_pos
        assert (14 <= t).all() and (t <= 209).all() and not 100 <= a[0] <= 124
        same_room += (a[0] < WALL_X) == (t[0] < WALL_X)
    assert 50 < same_room < 250
    with pytest.raises(ValueError, match="reset_target"):
        TwoRoomEnv(reset_target="near")


@pytest.mark.parametrize("dist,expected", [(15.9, True), (16.1, False), (0.0, True), (40.0, False)])
def test_success_threshold(dist, expected):
    env = TwoRoomEnv(image_size=8)
    env.reset(seed=0)
    env.set_state([50.0, 150.0])
    env.set_goal_state([50.0 + dist, 150.0])
    _, reward, terminated, truncated, info = env.step(np.zeros(2, np.float32))
    assert terminated is expected and info["success"] is expected and not truncated
    assert reward == 0.0
    assert env.goal_distance() == pytest.approx(dist, abs=1e-4)


def test_action_is_clamped_and_speed_is_5px():
    env = TwoRoomEnv(image_size=8)
    env.reset(seed=0)
    env.set_state([50.0, 150.0])
    env.step(np.array([7.0, 0.0], np.float32))
    np.testing.assert_allclose(env.agent_pos, [55.0, 150.0])
    env.step(np.array([-0.5, 0.5], np.float32))
    np.testing.assert_allclose(env.agent_pos, [52.5, 152.5])


def test_wall_blocks_outside_the_door():
    env = TwoRoomEnv(image_size=8)
    env.reset(seed=0)
    env.set_state([90.0, 150.0])  # left room, far below the door
    for _ in range(10):
        env.step(np.array([1.0, 0.0], np.float32))
    assert env.agent_pos[0] <= 100.0
    env.set_state([135.0, 150.0])  # right room
    for _ in range(10):
        env.step(np.array([-1.0, 0.0], np.float32))
    assert env.agent_pos[0] >= 124.0
    env.set_state([90.0, 49.0])  # in front of the door: crosses
    for _ in range(10):
        env.step(np.array([1.0, 0.0], np.float32))
    assert env.agent_pos[0] > 124.0


def test_random_walk_only_crosses_through_the_door():
    env = TwoRoomEnv(image_size=8)
    env.reset(seed=3)
    rng = np.random.default_rng(0)
    crossings = 0
    for _ in range(20000):
        x0 = float(env.agent_pos[0])
        # Bias toward the wall so the agent hits it often.
        a = rng.uniform(-1, 1, 2) + np.array([np.sign(WALL_X - x0) * 0.5, 0.0])
        env.step(a.astype(np.float32))
        x1, y1 = map(float, env.agent_pos)
        assert 21 <= x1 <= 203 and 21 <= y1 <= 203
        if (x0 < WALL_X) != (x1 < WALL_X):
            crossings += 1
            assert 35 - 1.75 <= y1 <= 63 + 1.75
        if 100 < x1 < 124:  # inside the wall zone: only in the door span
            assert 35 - 1.75 <= y1 <= 63 + 1.75
    assert crossings > 0


def test_set_state_render_equals_fresh_render():
    a = TwoRoomEnv(image_size=48)
    a.reset(seed=11)
    for _ in range(15):
        a.step(np.array([0.3, -0.8], np.float32))
    row = a.record()
    b = TwoRoomEnv(image_size=48)
    b.reset(seed=99)
    b.load_state(row)
    np.testing.assert_array_equal(b.render(), a.render())
    np.testing.assert_array_equal(b.agent_pos, a.agent_pos)
    np.testing.assert_array_equal(b.target_pos, a.target_pos)
    # Same actions afterwards: same trajectory.
    for _ in range(5):
        oa, *_ = a.step(np.array([1.0, 0.2], np.float32))
        ob, *_ = b.step(np.array([1.0, 0.2], np.float32))
        np.testing.assert_array_equal(oa, ob)


def test_load_goal_uses_the_rows_agent_position():
    env = TwoRoomEnv(image_size=16)
    env.reset(seed=0)
    env.load_goal({"proprio": np.array([30.0, 40.0], np.float32)})
    np.testing.assert_array_equal(env.target_pos, [30.0, 40.0])
    env.load_goal({"pos_agent": np.array([31.0, 41.0], np.float32)})
    np.testing.assert_array_equal(env.target_pos, [31.0, 41.0])
    with pytest.raises(KeyError):
        env.load_goal({"qpos": np.zeros(2)})
    # The goal image is the agent drawn at the target.
    goal = env.render_goal()
    env.set_state([31.0, 41.0])
    np.testing.assert_array_equal(goal, env.render())


def test_record_columns():
    env = TwoRoomEnv(image_size=16)
    env.reset(seed=0)
    row = env.record()
    assert set(row) == {
        "proprio",
        "pos_agent",
        "state",
        "observation",
        "goal_state",
        "distance_to_target",
    }
    assert row["proprio"].dtype == np.float32 and row["proprio"].shape == (2,)
    assert row["observation"].dtype == np.float64 and row["observation"].shape == (10,)
    np.testing.assert_array_equal(row["observation"][4:6], [112.0, 49.0])


def test_small_frames_match_pil_resize_of_224_frames():
    small, big = TwoRoomEnv(image_size=64), TwoRoomEnv(image_size=224)
    states = [[21.0, 21.0], [99.5, 150.0], [112.0, 49.0], [150.0, 203.0], [60.0, 90.0]]
    for xy in states:
        small.set_state(xy)
        big.set_state(xy)
        ref = np.asarray(Image.fromarray(big.render()).resize((64, 64), Image.Resampling.BILINEAR))
        diff = np.abs(small.render().astype(int) - ref.astype(int))
        assert diff.mean() < 0.1, (xy, diff.mean())
        assert diff.max() <= 16, (xy, diff.max())


def test_224_frame_blob_matches_formula():
    env = TwoRoomEnv(image_size=224)
    env.set_state([60.0, 150.0])
    frame = env.render().astype(np.float64)
    ys, xs = np.mgrid[0:224, 0:224]
    alpha = np.exp(-((xs - 60.0) ** 2 + (ys - 150.0) ** 2) / (2 * 49.0))
    expected_g = np.floor(255.0 * (1 - alpha))
    region = (slice(120, 180), slice(30, 90))  # white background around the agent
    assert np.abs(frame[region][..., 1] - expected_g[region]).max() <= 1
    assert (frame[region][..., 0] >= 254).all()  # float32 blend then truncation, as the reference


def test_expert_beats_random():
    def success_rate(policy_cls):
        env = TwoRoomEnv(image_size=8)
        wins = 0
        for ep in range(30):
            obs, info = env.reset(seed=ep)
            pol = policy_cls(env, seed=1000 + ep)
            pol.reset()
            for _ in range(100):
                obs, _, term, _, info = env.step(pol(obs, info))
                if term:
                    wins += 1
                    break
        return wins / 30

    expert, random = success_rate(TwoRoomExpert), success_rate(RandomPolicy)
    assert expert >= 0.2 and expert > random + 0.1


def test_expert_action_repeat():
    env = TwoRoomEnv(image_size=8)
    env.reset(seed=0)
    pol = TwoRoomExpert(env, seed=0, action_repeat_prob=1.0)
    pol.reset()
    first = pol()
    assert all(np.array_equal(pol(), first) for _ in range(5))
    pol = TwoRoomExpert(env, seed=0)
    pol.reset()
    acts = np.stack([pol() for _ in range(200)])
    assert (np.abs(acts) <= 1).all() and acts.dtype == np.float32
    assert len(np.unique(acts, axis=0)) > 100
