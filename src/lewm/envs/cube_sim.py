"""OGBench's ``cube-single`` simulator with the reference's appearance and task logic.

Built lazily (``ogbench`` and MuJoCo are heavy imports, and the OpenGL backend
must be chosen before MuJoCo is imported): :func:`simulator_class` defines the
subclass on first use. Appearance (spec §8.3): gripper recoloured OGBench purple,
floor (0.08, 0.11, 0.16)/(0.15, 0.18, 0.25), light 0.7, the translucent target
cube (alpha 0.2) drawn; the cube is not recoloured on success.
"""

from __future__ import annotations

import numpy as np

AGENT_RGB = (0.61, 0.28, 0.82)  # OGBench purple
FLOOR_RGB = ((0.08, 0.11, 0.16), (0.15, 0.18, 0.25))
LIGHT_DIFFUSE = 0.7
TARGET_ALPHA = 0.2

_sim_class = None


def simulator_class():
    """``ogbench``'s CubeEnv with the reference's appearance (built lazily: heavy import)."""
    global _sim_class
    if _sim_class is not None:
        return _sim_class
    import mujoco
    from ogbench.manipspace import lie
    from ogbench.manipspace.envs.cube_env import CubeEnv as OGBenchCubeEnv

    class _CubeSim(OGBenchCubeEnv):
        """Single cube, state mode, data-collection task logic (random targets), no termination."""

        def __init__(self, render_size: int, show_target: bool, random_arm_start: bool):
            self.show_target = show_target
            self.random_arm_start = random_arm_start
            super().__init__(
                env_type="single",
                ob_type="states",
                mode="data_collection",
                terminate_at_goal=False,
                visualize_info=True,
                width=render_size,
                height=render_size,
            )

        def build_mjcf_model(self):
            root = super().build_mjcf_model()
            for name in ("ur5e/robotiq/black", "ur5e/robotiq/pad_gray"):
                material = root.find("material", name)
                material.rgba = (*AGENT_RGB, material.rgba[3])
            texture = root.find("texture", "grid")
            texture.rgb1, texture.rgb2 = FLOOR_RGB
            root.find("light", "global").diffuse = (LIGHT_DIFFUSE,) * 3
            return root

        def initialize_arm(self):
            if self.random_arm_start:
                return super().initialize_arm()
            # Reference: effector at the centre of the arm box, random yaw, pointing down.
            eff_pos = self._arm_sampling_bounds.mean(axis=0)
            yaw = self.np_random.uniform(-np.pi, np.pi)
            eff_ori = lie.SO3.from_z_radians(yaw) @ self._effector_down_rotation
            attach = lie.SE3.from_rotation_and_translation(eff_ori, eff_pos) @ self._T_pa
            self._data.qpos[self._arm_joint_ids] = self._ik.solve(
                pos=attach.translation(), quat=attach.rotation().wxyz, curr_qpos=self._home_qpos
            )
            mujoco.mj_forward(self._model, self._data)

        def post_step(self):
            # Success of the (single) target cube; the target marker's alpha; no success recolouring.
            self._success = bool(self._compute_successes()[self._target_block])
            alpha = TARGET_ALPHA if self.show_target else 0.0
            for gid in self._cube_target_geom_ids_list[0]:
                self._model.geom(gid).rgba[3] = alpha

        def set_new_target(self, return_info=True, p_stack=0.5):
            out = super().set_new_target(return_info=return_info, p_stack=p_stack)
            self.post_step()  # keep the marker alpha and the success flag in sync
            return out

    _sim_class = _CubeSim
    return _sim_class
