"""What the two MuJoCo environments (Reacher, Cube) share: pixels, argument checks, state restore.

:class:`MujocoEnv` is the base of :class:`~lewm.envs.reacher.ReacherEnv` and
:class:`~lewm.envs.cube.CubeEnv`. A subclass sets ``self._model`` /
``self._data`` (raw ``mujoco.MjModel`` / ``MjData``) and calls
:meth:`MujocoEnv._open_renderer`; it then gets square frames through the
reference pipeline (MuJoCo render at ``render_size``, PIL-bilinear resize to
``image_size``), ``close()``, a simulator reset that restores ``qpos``/``qvel``,
and a context manager that renders something else and puts the state back.
The OpenGL backend itself is chosen in :mod:`lewm.envs.mujoco_gl`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import gymnasium as gym
import numpy as np

from lewm.errors import ConfigError

REFERENCE_RENDER_SIZE = 224  # the reference renders at 224, then resizes to the data size


def check_pixel_args(render_mode: str | None, image_size: Any, render_size: Any) -> tuple[int, int]:
    """Validated (image_size, render_size); ``render_size`` defaults to max(224, image_size)."""
    if render_mode not in (None, "rgb_array"):
        raise ConfigError(f"render_mode must be 'rgb_array', got {render_mode!r}")
    if not isinstance(image_size, (int, np.integer)) or image_size <= 0:
        raise ConfigError(f"image_size must be a positive int, got {image_size!r}")
    if render_size is None:
        render_size = max(REFERENCE_RENDER_SIZE, int(image_size))
    if not isinstance(render_size, (int, np.integer)) or render_size <= 0:
        raise ConfigError(f"render_size must be a positive int, got {render_size!r}")
    return int(image_size), int(render_size)


def vector(name: str, value: Any, size: int) -> np.ndarray:
    """``value`` as a finite float64 (size,) array, or a ValueError naming ``name``."""
    arr = np.asarray(value, dtype=np.float64).reshape(-1)
    if arr.shape != (size,):
        raise ValueError(f"{name} must have shape ({size},), got {np.shape(value)}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite, got {arr}")
    return arr


def check_action(action: Any, size: int, env: str) -> np.ndarray:
    """The action as float64 (size,), rejecting other shapes and NaN/inf."""
    a = np.asarray(action, dtype=np.float64)
    if a.shape != (size,):
        raise ValueError(f"{env} action must have shape ({size},), got {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{env} action must be finite, got {a}")
    return a


def require_columns(row: Mapping[str, Any], keys: Iterable[str], what: str) -> None:
    """Fail with the row's columns when any of ``keys`` is missing."""
    missing = [k for k in keys if k not in row]
    if missing:
        raise ValueError(f"{what} needs columns {missing}; the row has {sorted(row)}")


class MujocoEnv(gym.Env):
    """Base of the MuJoCo environments: rendering, closing and state restore (see module doc)."""

    _model: Any  # mujoco.MjModel
    _data: Any  # mujoco.MjData
    _renderer: Any = None  # mujoco.Renderer

    def _set_pixel_args(self, render_mode, image_size, render_size) -> None:
        self.image_size, self.render_size = check_pixel_args(render_mode, image_size, render_size)
        self.render_mode = "rgb_array"

    def _open_renderer(self, what: str, model: Any = None) -> None:
        """Open the renderer of ``model`` (default: the simulator's own ``_model``)."""
        from lewm.envs import mujoco_gl

        self._renderer = mujoco_gl.new_renderer(
            self._model if model is None else model, self.render_size, self.render_size, what
        )

    def _frame(self, camera: int | str, scene_option: Any = None) -> np.ndarray:
        """uint8 (S, S, 3): the camera's render at ``render_size``, resized to ``image_size``."""
        from lewm.envs.mujoco_gl import resize_frame

        # scene_option=None is mujoco's own default (the renderer's MjvOption)
        self._renderer.update_scene(self._data, camera=camera, scene_option=scene_option)
        return resize_frame(self._renderer.render(), self.image_size)

    def close(self) -> None:
        renderer, self._renderer = getattr(self, "_renderer", None), None
        if renderer is not None:
            renderer.close()

    def _restart(self, qpos: np.ndarray, qvel: np.ndarray) -> None:
        """Reset the simulator data (solver warm-start included), then set qpos and qvel.

        After this the state no longer depends on anything the environment did before.
        """
        import mujoco

        mujoco.mj_resetData(self._model, self._data)
        self._data.qpos[:] = qpos
        self._data.qvel[:] = qvel

    @contextmanager
    def _state_kept(self) -> Iterator[None]:
        """Save the integration state, run the block, restore it (the caller re-derives the rest)."""
        import mujoco

        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        saved = np.empty(mujoco.mj_stateSize(self._model, spec))
        mujoco.mj_getState(self._model, self._data, saved, spec)
        try:
            yield
        finally:
            mujoco.mj_setState(self._model, self._data, saved, spec)
