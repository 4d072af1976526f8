"""OGBench Cube (spec §8.3): single-cube pick-and-place with a UR5e arm, as a Gymnasium env.

The simulator is the ``ogbench`` package's ``CubeEnv`` (``cube-single`` scene: UR5e +
Robotiq 2F-85 gripper, one 4 cm cube, 25 physics substeps of 2 ms per step) in its
state mode, with the reference's appearance: gripper recoloured OGBench purple,
floor (0.08, 0.11, 0.16)/(0.15, 0.18, 0.25), light 0.7, the front camera
``front_pixels`` and the translucent target cube (alpha 0.2) drawn; the cube is not
recoloured on success.

Action: Box(-1, 1, (5,)) = (dx, dy, dz, dyaw, dgripper), scaled by
(0.05, 0.05, 0.05, 0.3, 1.0) into a target effector pose solved by differential IK
(as in OGBench, actions are not clipped; the target pose is clipped to the workspace).

Reset: the arm's effector at the centre of OGBench's arm box (0.425, 0, 0.275) with a
random yaw (the reference; ``random_arm_start=True`` samples the box as OGBench
does), the cube at a random xy in [[0.3, -0.3], [0.55, 0.3]] with a random yaw, and a
target drawn from the same ranges. Success: the cube within 0.04 m of the target.

Data columns (``record()``): ``observation`` (28), ``qpos`` (21), ``qvel`` (20),
``privileged_block_0_pos`` (3), ``privileged_block_0_quat`` (4, wxyz),
``privileged_block_0_yaw`` (1), ``proprio_*`` (effector, joints, gripper) and the
target: ``goal_privileged_block_0_pos`` (3), ``goal_privileged_block_0_quat`` (4).

``CubeExpert`` is the data-collection policy: OGBench's Markov cube oracle with
per-episode noise.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np

from lewm.envs.cube_sim import simulator_class
from lewm.envs.mesh_detail import coarse_copy
from lewm.envs.mujoco_common import MujocoEnv, check_action, require_columns, vector
from lewm.errors import ConfigError

SUCCESS_DISTANCE = 0.04  # m, cube centre to target centre
CAMERA = "front_pixels"


class CubeEnv(MujocoEnv):
    """OGBench ``cube-single`` with pixels from the front camera.

    Args:
        render_mode: only ``"rgb_array"``.
        image_size: side of the square frames returned by ``render()``.
        terminate_at_goal: end the episode when the cube reaches the target (evaluation);
            data collection uses ``False`` (``CubeExpert`` sets it).
        fast_render: turn shadows off (~3x faster on CPU, but frames differ from the
            reference data; see docs/mujoco.md for the measured cost).
        shadow_size: shadow-map resolution (the model's is 4096); smaller is faster.
        show_target: draw the translucent target cube (alpha 0.2) as the reference does.
        random_arm_start: sample the effector start in OGBench's arm box instead of its centre.
        render_size: MuJoCo render side before the PIL-bilinear resize to ``image_size``
            (:class:`~lewm.envs.mujoco_common.MujocoEnv`); default max(224, ``image_size``).
        mesh_detail: fraction of the arm's visual-mesh triangles the renderer draws
            (:mod:`lewm.envs.mesh_detail`); 1 draws the simulator's meshes. Rendering
            only: the physics is the same at any value.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(
        self,
        render_mode: str | None = "rgb_array",
        image_size: int = 224,
        *,
        terminate_at_goal: bool = True,
        fast_render: bool = False,
        shadow_size: int | None = None,
        show_target: bool = True,
        random_arm_start: bool = False,
        render_size: int | None = None,
        mesh_detail: float = 1.0,
    ):
        self._set_pixel_args(render_mode, image_size, render_size)
        if shadow_size is not None and (
            not isinstance(shadow_size, (int, np.integer)) or shadow_size <= 0
        ):
            raise ConfigError(f"shadow_size must be a positive int, got {shadow_size!r}")
        if not isinstance(mesh_detail, (int, float)) or not 0.0 < mesh_detail <= 1.0:
            raise ConfigError(f"mesh_detail must be in (0, 1], got {mesh_detail!r}")
        self.terminate_at_goal = bool(terminate_at_goal)
        self.fast_render = bool(fast_render)

        from lewm.envs import mujoco_gl

        mujoco_gl.configure()  # before mujoco/dm_control/ogbench are imported
        self._sim = simulator_class()(self.render_size, bool(show_target), bool(random_arm_start))
        self._sim.reset(seed=0)  # compiles the model; every real reset reseeds
        self._model, self._data = self._sim._model, self._sim._data
        if shadow_size is not None:
            self._model.vis.quality.shadowsize = int(shadow_size)
        self.mesh_detail = float(mesh_detail)
        # what the renderer draws: the simulator's model, or a copy with coarser meshes
        self._look = (
            self._model if self.mesh_detail == 1.0 else coarse_copy(self._model, self.mesh_detail)
        )
        self._open_renderer("lewm Cube", self._look)
        self.set_fast_render(self.fast_render)
        self._target_mocap = int(self._sim._cube_target_mocap_ids[0])

        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(5,), dtype=np.float32)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(28,), dtype=np.float64)

    # -- helpers ------------------------------------------------------------------------
    def _cube_qpos(self) -> np.ndarray:
        return self._data.joint("object_joint_0").qpos  # view: xyz (3) + quat wxyz (4)

    def _target(self) -> tuple[np.ndarray, np.ndarray]:
        return self._data.mocap_pos[self._target_mocap].copy(), self._data.mocap_quat[
            self._target_mocap
        ].copy()

    def _is_success(self) -> bool:
        return self.goal_distance() <= SUCCESS_DISTANCE

    def _info(self, success: bool) -> dict[str, Any]:
        return {
            "success": bool(success),
            "goal_distance": self.goal_distance(),
            "qpos": self._data.qpos.copy(),
            "qvel": self._data.qvel.copy(),
        }

    def _refresh(self) -> None:
        """Make every derived quantity consistent with qpos/qvel/mocap.

        ``mj_step`` leaves positions (xpos, sites) one 2 ms substep behind the
        integrated qpos; a forward pass (which changes no dynamics input) makes the
        frame, the observation and the contact forces functions of the recorded state,
        so restoring a row reproduces its frame exactly.
        """
        import mujoco

        mujoco.mj_forward(self._model, self._data)
        mujoco.mj_rnePostConstraint(self._model, self._data)  # contact forces -> gripper_contact
        self._sim.pre_step()  # ogbench's "previous state" bookkeeping
        self._sim.post_step()

    # -- Gymnasium API ----------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Random arm yaw, cube pose and target from ``self.np_random``.

        ``options`` may hold ``qpos``/``qvel`` (a start state) and ``goal_pos``/``goal_quat``.
        """
        super().reset(seed=seed)
        self._sim.np_random = self.np_random  # ogbench draws from our generator
        self._sim.reset()
        self._refresh()
        options = options or {}
        if "goal_pos" in options:
            self.set_target_pos(0, options["goal_pos"], options.get("goal_quat"))
        if "qpos" in options or "qvel" in options:
            self.set_state(
                options.get("qpos", self._data.qpos.copy()), options.get("qvel", np.zeros(20))
            )
        return self._sim.compute_observation(), self._info(self._is_success())

    def step(self, action):
        a = check_action(action, 5, "Cube")
        self._sim.step(a)
        self._refresh()
        success = bool(self._sim._success)
        obs = self._sim.compute_observation()
        return obs, float(success), success and self.terminate_at_goal, False, self._info(success)

    def render(self) -> np.ndarray:
        """uint8 (S, S, 3) frame from the front camera."""
        if self._look is not self._model:  # colours and the target's alpha change at run time
            self._look.geom_rgba[:] = self._model.geom_rgba
        return self._frame(CAMERA, self._sim._scene_option)

    def set_fast_render(self, fast: bool) -> None:
        """Switch shadows off (``True``) or on (``False``) for the following renders."""
        import mujoco

        self.fast_render = bool(fast)
        self._renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = not self.fast_render

    # -- state hooks (spec §7.2) --------------------------------------------------------------
    def set_state(self, qpos, qvel) -> None:
        """Restore qpos (21) and qvel (20); the target is kept.

        The simulator data is reset first (contact warm-start included), so the result
        does not depend on what the env did before.
        """
        qpos = vector("qpos", qpos, self._model.nq)
        qvel = vector("qvel", qvel, self._model.nv)
        target = self._target()
        self._restart(qpos, qvel)
        self._data.mocap_pos[self._target_mocap], self._data.mocap_quat[self._target_mocap] = target
        self._refresh()

    def set_target_pos(self, cube_id: int, pos, quat=None) -> None:
        """Move cube ``cube_id``'s target (only 0 exists) to ``pos`` (3), optionally ``quat`` (4, wxyz)."""
        if cube_id != 0:
            raise ValueError(
                f"cube_id out of range: the single-cube scene has cube 0 only, got {cube_id}"
            )
        self._data.mocap_pos[self._target_mocap] = vector("target position", pos, 3)
        if quat is not None:
            q = vector("target quaternion", quat, 4)
            self._data.mocap_quat[self._target_mocap] = q / np.linalg.norm(q)
        self._refresh()

    def new_random_target(self) -> None:
        """Draw a new random target (data collection: a subtask is done)."""
        self._sim.set_new_target(return_info=False)
        self._refresh()

    def set_cube_color(self, rgb) -> None:
        """Recolour the cube (analysis perturbation, spec §9.2) until the next reset."""
        rgb = np.clip(vector("cube colour", rgb, 3), 0.0, 1.0)
        for gid in self._sim._cube_geom_ids_list[0]:
            self._model.geom_rgba[gid, :3] = rgb

    def cube_color(self) -> np.ndarray:
        """The cube's current RGB in [0, 1] (3,)."""
        return self._model.geom_rgba[self._sim._cube_geom_ids_list[0][0], :3].copy()

    def teleport_cube(self, pos, quat=None) -> None:
        """Move the cube to ``pos`` (3), optionally ``quat`` (4, wxyz), at rest, mid-episode
        (surprise experiments, spec §9.2). The arm, the gripper and the target are kept."""
        qpos = self._cube_qpos()
        qpos[:3] = vector("cube position", pos, 3)
        if quat is not None:
            q = vector("cube quaternion", quat, 4)
            qpos[3:] = q / np.linalg.norm(q)
        self._data.joint("object_joint_0").qvel[:] = 0.0
        self._refresh()

    def oracle_info(self) -> dict[str, Any]:
        """OGBench's info dict (``proprio/*``, ``privileged/*``) that its oracles read."""
        return self._sim.compute_ob_info()

    def record(self) -> dict[str, np.ndarray]:
        """Dataset columns of the current state (one row each)."""
        info = self._sim.compute_ob_info()
        target_pos, target_quat = self._target()
        row = {
            "observation": self._sim.compute_observation(),
            "qpos": self._data.qpos.copy(),
            "qvel": self._data.qvel.copy(),
            "privileged_block_0_pos": info["privileged/block_0_pos"],
            "privileged_block_0_quat": info["privileged/block_0_quat"],
            "privileged_block_0_yaw": info["privileged/block_0_yaw"],
            "goal_privileged_block_0_pos": target_pos,
            "goal_privileged_block_0_quat": target_quat,
        }
        for key in (
            "joint_pos",
            "joint_vel",
            "effector_pos",
            "effector_yaw",
            "gripper_opening",
            "gripper_vel",
            "gripper_contact",
        ):
            row[f"proprio_{key}"] = np.asarray(info[f"proprio/{key}"], dtype=np.float64)
        return row

    def load_state(self, row: Mapping[str, np.ndarray]) -> None:
        """Restore a dataset row: ``qpos``/``qvel``, and the row's target when present."""
        require_columns(row, ("qpos", "qvel"), "Cube load_state")
        if "goal_privileged_block_0_pos" in row:
            self.set_target_pos(
                0, row["goal_privileged_block_0_pos"], row.get("goal_privileged_block_0_quat")
            )
        self.set_state(row["qpos"], row["qvel"])

    def load_goal(self, row: Mapping[str, np.ndarray]) -> None:
        """Target the cube pose of a dataset row (``privileged_block_0_pos``/``_quat``)."""
        if "privileged_block_0_pos" not in row:
            raise ValueError(
                f"Cube load_goal needs column 'privileged_block_0_pos'; the row has {sorted(row)}"
            )
        self.set_target_pos(0, row["privileged_block_0_pos"], row.get("privileged_block_0_quat"))

    def is_success(self) -> bool:
        """Whether the success test holds in the current state (no step taken)."""
        return bool(self._is_success())

    def goal_distance(self) -> float:
        """Distance (m) from the cube centre to its target."""
        return float(
            np.linalg.norm(self._cube_qpos()[:3] - self._data.mocap_pos[self._target_mocap])
        )

    def render_goal(self) -> np.ndarray:
        """Frame with the cube placed at rest on its target, then the state restored (P16)."""
        import mujoco

        with self._state_kept():
            pos, quat = self._target()
            self._cube_qpos()[:] = np.concatenate([pos, quat])
            self._data.joint("object_joint_0").qvel[:] = 0.0
            mujoco.mj_forward(self._model, self._data)
            frame = self.render()
        self._refresh()
        return frame


class CubeExpert:
    """OGBench's Markov cube oracle with per-episode Gaussian noise (spec §8.3).

    Per episode a noise level xi ~ U(0, ``max_noise``) is drawn; each action gets
    N(0, (xi, xi, xi, 3 xi, 10 xi)) noise and is clipped to [-1, 1]. When the oracle
    finishes a subtask, a new random target is drawn. Constructing the expert puts
    the env in data-collection mode (``terminate_at_goal = False``).

    Args:
        env: the (unwrapped) :class:`CubeEnv`.
        seed: seeds the policy's own generator (noise, oracle's final poses).
        max_noise: upper bound of the per-episode noise level (0.1).
        min_norm: the oracle's minimum action norm (0.4).
    """

    def __init__(self, env: CubeEnv, seed: int, *, max_noise: float = 0.1, min_norm: float = 0.4):
        env = getattr(env, "unwrapped", env)
        if not isinstance(env, CubeEnv):
            raise ConfigError(f"CubeExpert drives a lewm CubeEnv, got {type(env).__name__}")
        from ogbench.manipspace.oracles.markov.cube_markov import CubeMarkovOracle

        rng = np.random.default_rng(seed)

        class _SeededOracle(CubeMarkovOracle):
            # OGBench's reset draws the final arm pose from the global numpy RNG; use ours.
            def reset(self, ob, info):
                self._done = False
                self._step = 0
                self._max_step = 200
                self._final_pos = rng.uniform(*self._env._arm_sampling_bounds)
                self._final_yaw = rng.uniform(-np.pi, np.pi)

        self.env = env
        self.rng = rng
        self.max_noise = float(max_noise)
        self.xi = 0.0
        env.terminate_at_goal = False
        self._oracle = _SeededOracle(env=env._sim, min_norm=min_norm)

    def reset(self) -> None:
        self.xi = float(self.rng.uniform(0.0, self.max_noise))
        self._oracle.reset(None, self.env.oracle_info())

    def __call__(self, obs: np.ndarray, info: Mapping[str, Any]) -> np.ndarray:
        action = np.asarray(
            self._oracle.select_action(None, self.env.oracle_info()), dtype=np.float64
        )
        xi = self.xi
        action = action + self.rng.normal(0.0, [xi, xi, xi, 3 * xi, 10 * xi])
        action = np.clip(action, -1.0, 1.0).astype(np.float32)
        if self._oracle.done:  # subtask finished: new target, fresh oracle episode
            self.env.new_random_target()
            self._oracle.reset(None, self.env.oracle_info())
        return action
