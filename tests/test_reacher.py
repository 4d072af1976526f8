"""DMC Reacher environment (spec §8.4, §7.2, §12 P10/P11); headless backend selection:
``test_mujoco_backend.py``."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest

pytest.importorskip("dm_control")

from lewm.envs.reacher import QPOS_TOLERANCE, ReacherEnv  # noqa: E402


@pytest.fixture(scope="module")
def env():
    e = ReacherEnv(image_size=32)
    yield e
    e.close()


def _rollout(env, seed: int, steps: int, action_seed: int = 0):
    rng = np.random.default_rng(action_seed)
    obs, _ = env.reset(seed=seed)
    rows, frames, observations = [env.record()], [env.render()], [obs]
    actions = rng.uniform(-1, 1, size=(steps, 2)).astype(np.float32)
    for a in actions:
        obs, *_ = env.step(a)
        rows.append(env.record())
        frames.append(env.render())
        observations.append(obs)
    return actions, rows, np.stack(frames), np.stack(observations)


def test_check_env_and_registration(env):
    import gymnasium
    from gymnasium.utils.env_checker import check_env

    import lewm.envs  # noqa: F401  (registers the ids)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(env, skip_render_check=False)
        made = gymnasium.make("lewm/Reacher-v0", image_size=16)
        try:
            obs, info = made.reset(seed=0)
            assert obs.shape == (6,) and isinstance(info["success"], bool)
            assert made.render().shape == (16, 16, 3)
            assert made.unwrapped.task == "qpos_match" and made.unwrapped.profile == "clean"
        finally:
            made.close()


def test_frames_and_columns(env):
    env.reset(seed=1)
    frame = env.render()
    assert frame.shape == (32, 32, 3) and frame.dtype == np.uint8 and frame.std() > 0
    row = env.record()
    shapes = {k: v.shape for k, v in row.items()}
    assert shapes == {
        "observation": (6,),
        "qpos": (2,),
        "qvel": (2,),
        "goal_qpos": (2,),
        "target_pos": (2,),
        "finger_pos": (2,),
    }
    # Observation = position, to_target, velocity (dm_control's order).
    np.testing.assert_array_equal(row["observation"][:2], row["qpos"])
    np.testing.assert_allclose(row["observation"][2:4], row["target_pos"] - row["finger_pos"])
    np.testing.assert_array_equal(row["observation"][4:], row["qvel"])
    assert abs(row["qpos"][1]) <= np.deg2rad(160) + 1e-9


def test_action_repeat_and_time_limit(env):
    env.reset(seed=2)
    env.step(np.zeros(2, np.float32))
    assert env._data.time == pytest.approx(0.04)  # 2 control steps of 0.02 s
    truncated = False
    for i in range(499):
        *_, truncated, _ = env.step(np.zeros(2, np.float32))
        assert truncated == (i == 498)
    assert truncated  # dm_control's 20 s limit = 500 env steps


def test_seeded_determinism(env):
    a1, rows1, frames1, obs1 = _rollout(env, seed=7, steps=6)
    _rollout(env, seed=8, steps=3)  # something else in between
    a2, rows2, frames2, obs2 = _rollout(env, seed=7, steps=6)
    np.testing.assert_array_equal(frames1, frames2)
    np.testing.assert_array_equal(obs1, obs2)
    for r1, r2 in zip(rows1, rows2, strict=True):
        for k in r1:
            np.testing.assert_array_equal(r1[k], r2[k])
    _, rows3, frames3, _ = _rollout(env, seed=9, steps=0)
    assert not np.array_equal(rows3[0]["qpos"], rows1[0]["qpos"])


def test_restore_reproduces_recorded_frame_and_is_history_independent(env):
    actions, rows, frames, _ = _rollout(env, seed=11, steps=8)
    k = 4
    replays = []
    for other_seed in (12, 13):
        _rollout(env, seed=other_seed, steps=3)  # a different history each time
        env.load_state(rows[k])
        np.testing.assert_array_equal(env.render(), frames[k])
        for name in ("qpos", "qvel", "goal_qpos", "target_pos"):
            np.testing.assert_array_equal(env.record()[name], rows[k][name])
        replay = [env.step(a)[0] for a in actions[k:]]
        replays.append((np.stack(replay), env.render()))
    np.testing.assert_array_equal(replays[0][0], replays[1][0])
    np.testing.assert_array_equal(replays[0][1], replays[1][1])
    # The replay follows the recorded trajectory (only the solver warm-start differs).
    np.testing.assert_allclose(replays[0][0][-1], rows[-1]["observation"], atol=1e-6)


def test_qpos_match_success_on_constructed_states(env):
    env.reset(seed=3)
    goal = np.array([0.3, -0.5])
    env.set_target_qpos(goal)
    for offset, expected in (([0.04, -0.04], True), ([0.06, 0.0], False), ([0.0, -0.051], False)):
        env.set_state(goal + offset, np.zeros(2))
        assert env.goal_distance() == pytest.approx(np.max(np.abs(offset)))
        _, _, terminated, _, info = env.step(np.zeros(2, np.float32))  # at rest, no torque: stays
        assert info["success"] is expected and terminated is expected
        assert (
            info["goal_distance"] < QPOS_TOLERANCE
            if expected
            else info["goal_distance"] > QPOS_TOLERANCE
        )


def test_angle_wrapping_clean_vs_reference(env):
    """P10: the same pose 2*pi apart counts as reached under clean only."""
    env.reset(seed=4)
    goal = np.array([3.1, 0.2])
    state = goal + np.array([0.02 - 2 * np.pi, 0.0])
    results = {}
    for profile in ("clean", "reference"):
        env.profile = profile
        env.set_target_qpos(goal)
        env.set_state(state, np.zeros(2))
        results[profile] = (env.goal_distance(), env.step(np.zeros(2, np.float32))[4]["success"])
    env.profile = "clean"
    assert results["clean"][0] == pytest.approx(0.02) and results["clean"][1] is True
    assert (
        results["reference"][0] == pytest.approx(2 * np.pi - 0.02)
        and results["reference"][1] is False
    )


def test_goal_hooks_and_render_goal(env):
    _, rows, frames, _ = _rollout(env, seed=5, steps=6)
    env.load_state(rows[0])
    env.load_goal(rows[6])
    np.testing.assert_array_equal(env.record()["goal_qpos"], rows[6]["qpos"])
    before = env.record()
    goal_frame = env.render_goal()
    after = env.record()
    for k in before:
        np.testing.assert_array_equal(before[k], after[k])
    env.set_state(rows[6]["qpos"], np.zeros(2))
    np.testing.assert_array_equal(goal_frame, env.render())  # the target is invisible: pose only
    assert not np.array_equal(goal_frame, frames[0])


def test_rest_start_zeroes_restored_velocity():
    e = ReacherEnv(image_size=8, rest_start=True, task="hard", render_size=8)
    try:
        e.reset(seed=0)
        e.load_state({"qpos": np.array([0.1, 0.2]), "qvel": np.array([3.0, -2.0])})
        np.testing.assert_array_equal(e.record()["qvel"], np.zeros(2))
        np.testing.assert_array_equal(e.record()["goal_qpos"], [np.nan, np.nan])
        # hard task: success when the finger touches the sphere.
        e.set_target_pos(e.record()["finger_pos"] + [0.02, 0.0])
        assert e.step(np.zeros(2, np.float32))[4]["success"] is True
        e.set_target_pos(e.record()["finger_pos"] + [0.03, 0.0])
        assert e.step(np.zeros(2, np.float32))[4]["success"] is False
    finally:
        e.close()


def test_bad_input(env):
    env.reset(seed=0)
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="finite"):
        env.step(np.array([np.nan, 0.0]))
    with pytest.raises(ValueError, match="qpos"):
        env.load_state({"qvel": np.zeros(2)})
    with pytest.raises(ValueError, match="image_size"):
        ReacherEnv(image_size=0)
    with pytest.raises(ValueError, match="task"):
        ReacherEnv(task="medium")
    with pytest.raises(ValueError, match="profile"):
        ReacherEnv(profile="fast")


def _train_tiny(data, run_dir) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "lewm", "train", "--data", str(data), "--preset", "tiny"]
    cmd += ["--out", str(run_dir), "--steps", "2", "--no-progress"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def test_collect_cli_writes_a_file_that_train_accepts(tmp_path, env):
    from lewm.data.hdf5 import inspect_dataset, open_h5

    out = tmp_path / "reacher.h5"
    cmd = [sys.executable, "-m", "lewm", "collect", "--env", "reacher", "--policy", "random"]
    cmd += ["--episodes", "3", "--image-size", "32", "--seed", "0", "--out", str(out)]
    cmd += ["--max-steps", "24", "--workers", "2", "--no-progress"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    info = inspect_dataset(out)
    assert info.n_episodes == 3 and info.image_size == (32, 32) and info.action_dim == 2
    for name, shape in (("qpos", (2,)), ("qvel", (2,)), ("observation", (6,)), ("goal_qpos", (2,))):
        assert info.columns[name][0][1:] == shape
    with open_h5(out) as f:
        n = int(f["ep_len"][0])
        rows = [{k: f[k][t] for k in ("qpos", "qvel", "goal_qpos", "target_pos")} for t in range(n)]
        actions, pixels = f["action"][:n], f["pixels"][:n]
    # Alignment (spec §5): action[t] applied in state[t] gives state[t+1]; frames are the env's.
    for t in (0, n // 2, n - 2):
        env.load_state(rows[t])
        np.testing.assert_array_equal(env.render(), pixels[t])
        env.step(actions[t])
        np.testing.assert_allclose(env.record()["qpos"], rows[t + 1]["qpos"], atol=1e-7)
    assert np.isnan(actions[-1]).all()
    proc = _train_tiny(out, tmp_path / "run")
    assert proc.returncode == 0, proc.stderr


def test_arm_color_perturbation(env):
    from lewm.envs.reacher import ARM_RGB

    env.reset(seed=6)
    before = env.render()
    env.set_arm_color([0.1, 0.9, 0.1])
    try:
        recoloured = env.render()
        assert np.abs(recoloured.astype(int) - before).sum() > 0
    finally:
        env.set_arm_color(ARM_RGB)
    np.testing.assert_array_equal(env.render(), before)


# --------------------------------------------------------------------------- pinned behaviour

# Frames are pinned for the renderer they were recorded with (Mesa's software EGL here);
# other OpenGL implementations rasterise differently, so only the physics digest is checked there.
PINNED_GL = "llvmpipe (LLVM 15.0.6, 256 bits)"


def _gl_renderer(env) -> str:
    env._renderer._gl_context.make_current()
    from OpenGL import GL

    GL.glGetError()  # clear a flag left by an earlier call
    return GL.glGetString(GL.GL_RENDERER).decode()


def _pin_row(phys, frames, env, obs) -> None:
    phys.update(np.asarray(obs).tobytes())
    frames.update(env.render().tobytes())
    for _, v in sorted(env.record().items()):
        phys.update(np.asarray(v).tobytes())


@pytest.mark.parametrize(
    "kwargs, physics, frames",
    [
        (
            dict(seed=5),
            "b3a88a0f164c6f716ddbecca5948b063d0a01e2349d3ecf0b0b9d9acd5c57cae",
            "81eb156cf662fb38641ecb6eae2176d3f4e330a051363f41619487ff15dc7182",
        ),
        (
            dict(seed=9, task="hard", profile="reference"),
            "f6080631302921c8ba77efc69d6ec45bfa60129bb264ef6319f32f459bc4bb33",
            "ffab955b65b7f1c0a9b323a9e17861555837d5ed0c3286b349724b0d0e1990f2",
        ),
        (
            dict(seed=2, profile="reference", rest_start=True),
            "b72a48ad084221c7daa00773e947072581375029a50307edb4d67df52706b3c4",
            "3587b6bc67361f7ae0b3d2127cb962c1afeafc58e79e234a200188bf1050f12b",
        ),
    ],
)
def test_seeded_rollout_is_pinned(kwargs, physics, frames):
    """Bit-identical behaviour across refactors (pinned before issue 9 moved the shared MuJoCo
    pieces): steps, records, restores, goal loading and renders of a seeded random rollout."""
    import hashlib

    kwargs = dict(kwargs)
    seed = kwargs.pop("seed")
    env = ReacherEnv(image_size=32, **kwargs)
    try:
        phys, frm = hashlib.sha256(), hashlib.sha256()
        rng = np.random.default_rng(seed)
        obs, _ = env.reset(seed=seed)
        _pin_row(phys, frm, env, obs)
        rows = []
        for _ in range(12):
            obs, r, te, tr, _ = env.step(rng.uniform(-1, 1, 2).astype(np.float32))
            _pin_row(phys, frm, env, obs)
            rows.append(env.record())
            phys.update(np.array([r, te, tr], dtype=np.float64).tobytes())
        if env.task == "qpos_match":
            frm.update(env.render_goal().tobytes())
            _pin_row(phys, frm, env, env._obs())
        env.load_state(rows[3])
        _pin_row(phys, frm, env, env._obs())
        env.load_goal(rows[7])
        phys.update(np.float64(env.goal_distance()).tobytes())
        _pin_row(phys, frm, env, env._obs())
        assert phys.hexdigest() == physics
        if _gl_renderer(env) == PINNED_GL:
            assert frm.hexdigest() == frames
    finally:
        env.close()
