"""DMC Reacher (spec §8.4): dm_control's two-link planar arm on MuJoCo, as a Gymnasium env.

The physics is dm_control's ``reacher`` model, recompiled at load time with the
reference's visual settings: checker floor (0.1, 0.2, 0.3)/(0.2, 0.3, 0.4), arm
(0.7, 0.5, 0.3), light diffuse 0.7 and the target sphere (0.6, 0.3, 0.3) with
alpha 0 (invisible) unless ``show_target=True``; the goal is conveyed by a goal
image. Frames come from the fixed top-down camera (camera 0).

One environment step applies the action for 2 control steps of 0.02 s (action
repeat 2); the episode is truncated after dm_control's 20 s time limit.

Tasks:
    ``qpos_match`` (default; evaluation): the goal is a joint configuration; success when
        **every** joint is within 0.05 rad of it, checked after each of the 2 control steps.
        Profile ``clean`` wraps the difference to (-pi, pi] (the shoulder is unlimited,
        spec §12 P10); ``reference`` compares raw angles as the authors' code does.
        The (invisible) target sphere sits at the goal's fingertip, so the
        ``to_target`` observation stays meaningful.
    ``hard`` / ``easy`` (stock dm_control; ``hard`` was used for the released data): a
        target sphere of radius 0.015 / 0.05 at a random position; success when the
        finger touches it (dm_control's reward is 1).

Data columns (``record()``): ``observation`` (6: position 2, to_target 2, velocity 2),
``qpos`` (2), ``qvel`` (2), ``goal_qpos`` (2; NaN for ``hard``/``easy``),
``target_pos`` (2, the sphere's xy) and ``finger_pos`` (2).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np

from lewm.envs.mujoco_common import MujocoEnv, check_action, require_columns, vector
from lewm.errors import ConfigError

TASKS = {"easy": 0.05, "hard": 0.015, "qpos_match": 0.015}  # task -> target sphere radius (m)
PROFILES = ("clean", "reference")
QPOS_TOLERANCE = 0.05  # rad, every joint (spec §7.2)
ACTION_REPEAT = 2
CONTROL_DT = 0.02  # s, the model's timestep; one env step = 0.04 s
TIME_LIMIT_S = 20.0

FLOOR_RGB = ((0.1, 0.2, 0.3), (0.2, 0.3, 0.4))
ARM_RGB = (0.7, 0.5, 0.3)
LIGHT_DIFFUSE = 0.7
TARGET_RGB = (0.6, 0.3, 0.3)

_xml_cache: dict[bool, str] = {}


def wrap_angle(x: np.ndarray) -> np.ndarray:
    """Map angles to (-pi, pi]."""
    return np.pi - np.mod(np.pi - x, 2 * np.pi)


def _model_xml(show_target: bool) -> str:
    """dm_control's reacher XML with the reference's visual settings (cached)."""
    if show_target not in _xml_cache:
        import os

        from dm_control import mjcf
        from dm_control.suite import reacher

        xml, assets = reacher.get_model_and_assets()
        root = mjcf.from_xml_string(xml, model_dir=os.path.dirname(reacher.__file__), assets=assets)
        texture = root.find("texture", "grid")
        texture.rgb1, texture.rgb2 = FLOOR_RGB
        root.find("material", "self").rgba = (*ARM_RGB, 1.0)
        root.find("light", "light").diffuse = (LIGHT_DIFFUSE,) * 3
        root.find("material", "target").rgba = (*TARGET_RGB, 1.0 if show_target else 0.0)
        root.find("geom", "target").type = "sphere"
        if root.get_assets():
            raise RuntimeError("reacher model unexpectedly needs file assets")
        _xml_cache[show_target] = root.to_xml_string()
    return _xml_cache[show_target]


class ReacherEnv(MujocoEnv):
    """dm_control Reacher with the paper's ``qpos_match`` task, pixels from the top camera.

    Args:
        render_mode: only ``"rgb_array"``.
        image_size: side of the square frames returned by ``render()``.
        task: ``"qpos_match"`` (default), ``"hard"`` or ``"easy"``.
        profile: ``"clean"`` (wrap joint differences in the success test) or ``"reference"``.
        show_target: draw the target sphere (alpha 1) instead of hiding it (alpha 0).
        rest_start: restore states at rest (qvel = 0) in ``set_state``/``load_state``
            (spec §12 P11; off by default, like the reference).
        terminate_at_goal: end the episode (``terminated``) when the success test fires.
            Data collection uses ``False`` (the released data never terminates).
        render_size: side of the MuJoCo render before the PIL-bilinear resize to
            ``image_size``; default 224 (the reference pipeline) or ``image_size`` if larger.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 25}

    def __init__(
        self,
        render_mode: str | None = "rgb_array",
        image_size: int = 224,
        *,
        task: str = "qpos_match",
        profile: str = "clean",
        show_target: bool = False,
        rest_start: bool = False,
        terminate_at_goal: bool = True,
        render_size: int | None = None,
    ):
        self._set_pixel_args(render_mode, image_size, render_size)
        if task not in TASKS:
            raise ConfigError(f"task must be one of {sorted(TASKS)}, got {task!r}")
        if profile not in PROFILES:
            raise ConfigError(f"profile must be one of {PROFILES}, got {profile!r}")
        self.task = task
        self.profile = profile
        self.show_target = bool(show_target)
        self.rest_start = bool(rest_start)
        self.terminate_at_goal = bool(terminate_at_goal)
        self.target_size = TASKS[task]

        from lewm.envs import mujoco_gl

        mujoco_gl.configure()  # before dm_control/mujoco are imported
        from dm_control.suite import reacher

        self._physics = reacher.Physics.from_xml_string(_model_xml(self.show_target))
        self._model = self._physics.model.ptr  # raw mujoco.MjModel / MjData
        self._data = self._physics.data.ptr
        self._target_id, self._finger_id = self._geom("target"), self._geom("finger")
        self._model.geom_size[self._target_id, 0] = self.target_size
        self._finger_size = float(self._model.geom_size[self._finger_id, 0])
        self._wrist_range = self._model.jnt_range[1].copy()  # (-160, 160) deg in rad
        self._open_renderer("lewm Reacher")

        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(6,), dtype=np.float64)
        self._goal_qpos = np.full(2, np.nan)
        self._elapsed_steps = 0
        self._max_steps = round(TIME_LIMIT_S / (ACTION_REPEAT * CONTROL_DT))  # 500

    # -- helpers ------------------------------------------------------------------------
    def _geom(self, name: str) -> int:
        import mujoco

        return mujoco.mj_name2id(self._model, mujoco.mjtObj.mjOBJ_GEOM, name)

    def _forward(self) -> None:
        self._physics.forward()

    def _sample_qpos(self) -> np.ndarray:
        # dm_control's randomizer: unlimited hinge U(-pi, pi), limited hinge U(range).
        shoulder = self.np_random.uniform(-np.pi, np.pi)
        wrist = self.np_random.uniform(*self._wrist_range)
        return np.array([shoulder, wrist])

    def _fingertip(self, qpos: np.ndarray) -> np.ndarray:
        """Finger xy for a joint configuration (forward kinematics, state untouched)."""
        import mujoco

        saved = self._data.qpos.copy()
        self._data.qpos[:] = qpos
        mujoco.mj_kinematics(self._model, self._data)
        xy = self._data.geom_xpos[self._finger_id, :2].copy()
        self._data.qpos[:] = saved
        mujoco.mj_kinematics(self._model, self._data)
        return xy

    def _set_target_xy(self, xy: np.ndarray) -> None:
        self._model.geom_pos[self._target_id, :2] = xy

    def _qpos_error(self) -> np.ndarray:
        diff = self._data.qpos - self._goal_qpos
        return np.abs(wrap_angle(diff) if self.profile == "clean" else diff)

    def _finger_to_target(self) -> np.ndarray:
        g = self._data.geom_xpos
        return g[self._target_id, :2] - g[self._finger_id, :2]

    def _reward(self) -> float:
        # dm_control: tolerance(distance, bounds=(0, target + finger radius)) with margin 0.
        return float(
            np.linalg.norm(self._finger_to_target()) <= self.target_size + self._finger_size
        )

    def _is_success(self) -> bool:
        if self.task == "qpos_match":
            return bool(np.all(self._qpos_error() < QPOS_TOLERANCE))
        return self._reward() >= 1.0

    def _obs(self) -> np.ndarray:
        return np.concatenate([self._data.qpos, self._finger_to_target(), self._data.qvel]).astype(
            np.float64
        )

    def _info(self, success: bool) -> dict[str, Any]:
        return {
            "success": bool(success),
            "qpos": self._data.qpos.copy(),
            "qvel": self._data.qvel.copy(),
            "target_pos": self._model.geom_pos[self._target_id, :2].copy(),
            "finger_pos": self._data.geom_xpos[self._finger_id, :2].copy(),
            "goal_distance": self.goal_distance(),
        }

    # -- Gymnasium API ----------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Random arm pose and goal from ``self.np_random``.

        ``options`` may hold ``qpos``, ``qvel`` (a start state) and ``goal_qpos``.
        """
        import mujoco

        super().reset(seed=seed)
        mujoco.mj_resetData(self._model, self._data)
        self._data.qpos[:] = self._sample_qpos()
        if self.task == "qpos_match":
            self._goal_qpos = self._sample_qpos()
            self._set_target_xy(self._fingertip(self._goal_qpos))
        else:
            angle = self.np_random.uniform(0, 2 * np.pi)
            radius = self.np_random.uniform(0.05, 0.20)
            self._goal_qpos = np.full(2, np.nan)
            self._set_target_xy(np.array([radius * np.sin(angle), radius * np.cos(angle)]))
        options = options or {}
        if "qpos" in options or "qvel" in options:
            self.set_state(
                options.get("qpos", self._data.qpos.copy()), options.get("qvel", np.zeros(2))
            )
        if "goal_qpos" in options:
            self.set_target_qpos(options["goal_qpos"])
        self._forward()
        self._elapsed_steps = 0
        return self._obs(), self._info(self._is_success())

    def step(self, action):
        a = check_action(action, 2, "Reacher")
        # The motors' ctrlrange is [-1, 1] and clamped by MuJoCo: clipping here is the same.
        self._data.ctrl[:] = np.clip(a, -1.0, 1.0)
        success, reward = False, 0.0
        for _ in range(ACTION_REPEAT):
            self._physics.step()
            reward += self._reward()
            if self._is_success():
                success = True
                if self.terminate_at_goal:
                    break
        self._elapsed_steps += 1
        terminated = success and self.terminate_at_goal
        truncated = self._elapsed_steps >= self._max_steps
        return self._obs(), reward, terminated, truncated, self._info(success)

    def render(self) -> np.ndarray:
        """uint8 (S, S, 3) frame from the fixed top-down camera."""
        return self._frame(camera=0)

    # -- state hooks (spec §7.2) --------------------------------------------------------------
    def set_state(self, qpos, qvel) -> None:
        """Restore joint positions and velocities (qvel is zeroed when ``rest_start``).

        The simulator data is reset first (solver warm-start included), so the
        result does not depend on what the env did before.
        """
        qpos = vector("qpos", qpos, 2)
        qvel = np.zeros(2) if self.rest_start else vector("qvel", qvel, 2)
        self._restart(qpos, qvel)
        self._forward()

    def set_target_qpos(self, qpos) -> None:
        """Set the goal joint configuration (``qpos_match``); the sphere moves to its fingertip."""
        if self.task != "qpos_match":
            raise ConfigError(
                f"set_target_qpos needs task='qpos_match', this env has task={self.task!r}"
            )
        self._goal_qpos = vector("goal qpos", qpos, 2)
        self._set_target_xy(self._fingertip(self._goal_qpos))
        self._forward()

    def set_target_pos(self, xy) -> None:
        """Move the target sphere (the goal of ``hard``/``easy``) to ``xy`` (m)."""
        self._set_target_xy(vector("target position", xy, 2))
        self._forward()

    def set_arm_color(self, rgb) -> None:
        """Recolour the arm (analysis perturbation, spec §9.2); persists across resets."""
        import mujoco

        material = mujoco.mj_name2id(self._model, mujoco.mjtObj.mjOBJ_MATERIAL, "self")
        self._model.mat_rgba[material, :3] = np.clip(vector("arm colour", rgb, 3), 0.0, 1.0)

    def record(self) -> dict[str, np.ndarray]:
        """Dataset columns of the current state (one row each)."""
        return {
            "observation": self._obs(),
            "qpos": self._data.qpos.copy(),
            "qvel": self._data.qvel.copy(),
            "goal_qpos": self._goal_qpos.copy(),
            "target_pos": self._model.geom_pos[self._target_id, :2].copy(),
            "finger_pos": self._data.geom_xpos[self._finger_id, :2].copy(),
        }

    def load_state(self, row: Mapping[str, np.ndarray]) -> None:
        """Restore the state of a dataset row: ``qpos``/``qvel``, and the row's target when present."""
        require_columns(row, ("qpos", "qvel"), "Reacher load_state")
        if "target_pos" in row:
            self._set_target_xy(vector("target_pos", row["target_pos"], 2))
        goal = np.asarray(row.get("goal_qpos", np.full(2, np.nan)), dtype=np.float64).reshape(-1)
        if self.task == "qpos_match" and goal.shape == (2,) and np.isfinite(goal).all():
            self._goal_qpos = goal.copy()
        self.set_state(row["qpos"], row["qvel"])

    def load_goal(self, row: Mapping[str, np.ndarray]) -> None:
        """Target the state of a dataset row: its ``qpos`` (``qpos_match``) or its finger position."""
        if self.task == "qpos_match":
            if "qpos" not in row:
                raise ValueError(
                    f"Reacher load_goal needs column 'qpos'; the row has {sorted(row)}"
                )
            self.set_target_qpos(row["qpos"])
        else:
            if "finger_pos" in row:
                self.set_target_pos(row["finger_pos"])
            elif "qpos" in row:
                self.set_target_pos(self._fingertip(vector("qpos", row["qpos"], 2)))
            else:
                raise ValueError(
                    f"Reacher load_goal needs 'finger_pos' or 'qpos'; the row has {sorted(row)}"
                )

    def is_success(self) -> bool:
        """Whether the success test holds in the current state (no step taken)."""
        return bool(self._is_success())

    def goal_distance(self) -> float:
        """Max-abs joint error to the goal (rad) for ``qpos_match``; finger-target distance (m) otherwise."""
        if self.task == "qpos_match":
            return float(np.max(self._qpos_error()))
        return float(np.linalg.norm(self._finger_to_target()))

    def render_goal(self) -> np.ndarray:
        """Frame of the goal pose (``qpos_match``), rendered and then the state restored (P16)."""
        if self.task != "qpos_match":
            raise ConfigError(
                "render_goal needs task='qpos_match' (hard/easy goals are positions, not poses)"
            )
        with self._state_kept():
            self._data.qpos[:] = self._goal_qpos
            self._data.qvel[:] = 0.0
            self._forward()
            frame = self.render()
        self._forward()
        return frame
