"""TwoRoom: 2-D navigation between two rooms joined by one door (spec §8.1).

World: a 224 x 224 canvas (origin top left, x right, y down). Border walls
4 px thick at [10, 14) and [210, 214); a vertical central wall x in [107, 117]
with one invisible door y in [35, 63]. The agent is a point drawn as a red
Gaussian blob (sigma 7 px); it moves 5 px per step in the direction of the
clamped action. Success: agent within 16 px of the (undrawn) target.

Frames at any size S are computed directly as PIL-bilinear(224 frame), which is
how the reference's collection wrapper resizes (spec §8): the static walls are
resized once, the separable blob is resized per axis with PIL's own weights.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from lewm.envs.raster import pil_bilinear_matrix

WORLD = 224
# in_bounds() tolerance, as a fraction of the arena: dataset states this far past a wall are
# not from this environment (evaluation warns); a few px past one is ordinary physics.
OUT_OF_BOUNDS_MARGIN = 0.1
BORDER_OUTER, BORDER_INNER = 10, 14  # border walls occupy [10, 14) and [210, 214)
WALL_X, WALL_HALF = 112.0, 5  # central wall x in [107, 117]
DOOR_Y, DOOR_HALF = 49.0, 14.0  # door opening y in [35, 63]
DOOR_MARGIN = 1.75  # the door test accepts the agent centre 1.75 px beyond the opening
RADIUS = 7.0  # agent radius = Gaussian sigma, px
SPEED = 5.0  # px per step at |action| = 1
SUCCESS_RADIUS = 16.0
DOOR_REACH_TOL = 10.5  # expert: door "reached" within this distance
MOVE_LO, MOVE_HI = BORDER_INNER + RADIUS, WORLD - BORDER_INNER - RADIUS  # [21, 203]
WALL_ZONE = (WALL_X - WALL_HALF - RADIUS, WALL_X + WALL_HALF + RADIUS)  # [100, 124]
RESET_LO, RESET_HI = 14.0, 209.0
MIN_PATH = 125.0  # far-target reset: path agent -> door -> target >= 25 steps x 5 px
AGENT_COLOR = (255, 0, 0)
TARGET_COLOR = (0, 255, 0)
RESET_TARGETS = ("far", "uniform")


def _static_frame_224() -> np.ndarray:
    """White canvas with black border and central wall (door left open). uint8 (224, 224, 3)."""
    img = np.full((WORLD, WORLD, 3), 255, dtype=np.uint8)
    for a, b in ((BORDER_OUTER, BORDER_INNER), (WORLD - BORDER_INNER, WORLD - BORDER_OUTER)):
        img[a:b, :] = 0
        img[:, a:b] = 0
    wall = np.zeros((WORLD, WORLD), dtype=bool)
    wall[:, int(WALL_X) - WALL_HALF : int(WALL_X) + WALL_HALF + 1] = True
    ys = np.arange(WORLD)
    door = (ys >= DOOR_Y - DOOR_HALF) & (ys <= DOOR_Y + DOOR_HALF)
    wall[door, :] = False
    img[wall] = 0
    return img


class _Renderer:
    """Frames of one size: the static background once, the blob per frame."""

    _cache: dict[int, _Renderer] = {}

    def __init__(self, size: int):
        from PIL import Image

        self.size = size
        self.m = pil_bilinear_matrix(WORLD, size)  # (S, 224)
        static = _static_frame_224()
        if size != WORLD:
            static = np.asarray(
                Image.fromarray(static).resize((size, size), Image.Resampling.BILINEAR)
            )
        self.background_u8 = np.ascontiguousarray(static)  # (S, S, 3)
        self.grid = np.arange(WORLD, dtype=np.float32)

    @classmethod
    def get(cls, size: int) -> _Renderer:
        if size not in cls._cache:
            cls._cache[size] = cls(size)
        return cls._cache[size]

    def window(self, xy, sigma: float) -> tuple[slice, slice]:
        """Output rows/cols the blob can change.

        Beyond 6 sigma, alpha < 3e-8 and a float32 blend followed by truncation
        returns the background unchanged, so the rest of the frame is skipped.
        The resize filter reaches ``224 / S`` source pixels further.
        """
        reach = 6.0 * sigma + WORLD / self.size + 1.0
        scale = self.size / WORLD

        def span(c: float) -> slice:
            lo = max(int(np.floor((c - reach) * scale)), 0)
            hi = min(int(np.ceil((c + reach) * scale)) + 1, self.size)
            return slice(lo, max(hi, lo))

        return span(float(xy[1])), span(float(xy[0]))

    def alpha(self, xy, sigma: float, rows: slice, cols: slice) -> np.ndarray:
        """Resized Gaussian alpha of a blob at ``xy`` (224-px units) over a window. (h, w)."""
        inv = np.float32(-0.5 / (sigma * sigma))
        gx = np.exp((self.grid - np.float32(xy[0])) ** 2 * inv)
        gy = np.exp((self.grid - np.float32(xy[1])) ** 2 * inv)
        gx /= gx.max()  # peak normalised to 1 over the pixel grid, as the reference does
        gy /= gy.max()
        # Resize each axis profile; an elementwise product-sum keeps BLAS (and its
        # threads) out of this small product.
        ax = (self.m[cols] * gx).sum(axis=1)  # (w,)
        ay = (self.m[rows] * gy).sum(axis=1)  # (h,)
        return np.multiply.outer(ay, ax)

    def frame(self, blobs: list[tuple[np.ndarray, tuple[int, int, int], float]]) -> np.ndarray:
        """Alpha-blend blobs over the background, truncating to uint8 like the reference."""
        img = self.background_u8.copy()
        for xy, color, sigma in blobs:
            rows, cols = self.window(xy, sigma)
            a = self.alpha(xy, sigma, rows, cols)[..., None]  # (h, w, 1)
            win = img[rows, cols].astype(np.float32)
            win = win * (np.float32(1.0) - a) + np.asarray(color, dtype=np.float32) * a
            img[rows, cols] = win.astype(np.uint8)  # truncation, as the reference
        return img


class TwoRoomEnv(gym.Env):
    """TwoRoom navigation (spec §8.1), Gymnasium API.

    Args:
        render_mode: only ``"rgb_array"``.
        image_size: side of the square frames (default 224, the reference size).
        reset_target: ``"far"`` (default; the likely data-collection
            distribution: target in the other room, outside the wall zone, with
            path agent -> door -> target >= 125 px) or ``"uniform"`` (the
            environment's plain reset: target uniform in [14, 209]^2).
        render_target: also draw the target (green blob). Off in the reference.
        agent_color: RGB of the agent blob (for colour-change perturbations).

    Observation: float32 (10,) = agent (2), target (2), door centre (112, 49), zeros (4).
    Action: Box(-1, 1, (2,)); clamped; position += 5 px x action.
    Hooks: ``set_state(xy)``, ``set_goal_state(xy)``, ``load_state(row)``,
    ``load_goal(row)``, ``record()``, ``render_goal()``, ``goal_distance()``.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(
        self,
        render_mode: str = "rgb_array",
        image_size: int = 224,
        reset_target: str = "far",
        render_target: bool = False,
        agent_color: tuple[int, int, int] = AGENT_COLOR,
    ):
        if render_mode != "rgb_array":
            raise ValueError(f"TwoRoomEnv: render_mode must be 'rgb_array', got {render_mode!r}")
        if not isinstance(image_size, (int, np.integer)) or image_size <= 0:
            raise ValueError(f"TwoRoomEnv: image_size must be a positive int, got {image_size!r}")
        if reset_target not in RESET_TARGETS:
            raise ValueError(
                f"TwoRoomEnv: reset_target must be one of {RESET_TARGETS}, got {reset_target!r}"
            )
        self.render_mode = render_mode
        self.image_size = int(image_size)
        self.reset_target = reset_target
        self.render_target = bool(render_target)
        self.agent_color = tuple(int(c) for c in agent_color)
        self.observation_space = spaces.Box(0.0, float(WORLD), shape=(10,), dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self._renderer = _Renderer.get(self.image_size)
        self.agent_pos = np.array([56.0, 112.0], dtype=np.float32)
        self.target_pos = np.array([168.0, 112.0], dtype=np.float32)

    # -- Gymnasium API -------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        options = options or {}
        agent = self._sample_agent() if "state" not in options else options["state"]
        self.agent_pos = _xy(agent, "options['state']")
        if "goal_state" in options:
            self.target_pos = _xy(options["goal_state"], "options['goal_state']")
        else:
            self.target_pos = self._sample_target(self.agent_pos)
        return self._obs(), self._info()

    def step(self, action):
        a = _check_action(action, (2,), "TwoRoomEnv")
        a = np.clip(a, -1.0, 1.0).astype(np.float32)
        start_x = float(self.agent_pos[0])
        new = self.agent_pos + a * np.float32(SPEED)  # float32, as the reference
        x = min(max(float(new[0]), MOVE_LO), MOVE_HI)
        y = min(max(float(new[1]), MOVE_LO), MOVE_HI)
        in_door = DOOR_Y - DOOR_HALF - DOOR_MARGIN <= y <= DOOR_Y + DOOR_HALF + DOOR_MARGIN
        if not in_door:
            if start_x < WALL_X and x > WALL_ZONE[0]:
                x = WALL_ZONE[0] - 0.5
            elif start_x >= WALL_X and x < WALL_ZONE[1]:
                x = WALL_ZONE[1] + 0.5
        self.agent_pos = np.array([x, y], dtype=np.float32)
        info = self._info()
        return self._obs(), 0.0, info["success"], False, info

    def render(self) -> np.ndarray:
        """uint8 (S, S, 3)."""
        return self._render_at(self.agent_pos)

    # -- evaluation hooks (spec §7.2) ----------------------------------------
    def set_state(self, xy) -> None:
        """Teleport the agent to ``xy`` (224-px canvas units)."""
        self.agent_pos = _xy(xy, "set_state")

    def set_goal_state(self, xy) -> None:
        """Set the target (the success test's goal) to ``xy``."""
        self.target_pos = _xy(xy, "set_goal_state")

    def set_agent_color(self, rgb) -> None:
        """Change the agent colour (surprise experiments, spec §9.2)."""
        self.agent_color = tuple(int(c) for c in rgb)

    def record(self) -> dict[str, np.ndarray]:
        """Dataset columns describing the current state (one row)."""
        agent = self.agent_pos.copy()
        return {
            "proprio": agent,
            "pos_agent": agent.copy(),
            "state": agent.copy(),
            "observation": self._obs().astype(np.float64),
            "goal_state": self.target_pos.copy(),
            "distance_to_target": np.float32(self.goal_distance()),
        }

    def load_state(self, row: Mapping[str, Any]) -> None:
        """Restore the agent (``proprio``, ``pos_agent`` or ``state``) and, when the row
        holds it (``goal_state`` or ``observation[2:4]``), the episode's target."""
        self.set_state(_row_xy(row, ("proprio", "pos_agent", "state")))
        if "goal_state" in row:
            self.set_goal_state(row["goal_state"])
        elif "observation" in row:
            self.set_goal_state(np.asarray(row["observation"])[2:4])

    def load_goal(self, row: Mapping[str, Any]) -> None:
        """Target := the agent position of ``row`` (the goal frame's state)."""
        self.set_goal_state(_row_xy(row, ("proprio", "pos_agent", "state")))

    def is_success(self) -> bool:
        """Whether the success test holds in the current state (no step taken)."""
        return bool(self._info()["success"])

    def in_bounds(self) -> bool:
        """Whether the agent and the target lie inside the arena (a restored dataset state
        may not: evaluation then warns instead of trusting the success test)."""
        points = np.stack([self.agent_pos, self.target_pos])  # (2, 2)
        margin = OUT_OF_BOUNDS_MARGIN * WORLD  # "far" outside, not a px past a wall
        return bool(((points >= -margin) & (points <= WORLD + margin)).all())

    def goal_distance(self) -> float:
        """Euclidean agent-target distance, px (success below 16)."""
        return float(np.hypot(*(self.agent_pos - self.target_pos).astype(np.float64)))

    def render_goal(self) -> np.ndarray:
        """The frame with the agent at the target: what the goal looks like."""
        return self._render_at(self.target_pos)

    # -- internals -----------------------------------------------------------
    def _render_at(self, agent_xy: np.ndarray) -> np.ndarray:
        blobs = []
        if self.render_target:
            blobs.append((self.target_pos, TARGET_COLOR, RADIUS))
        blobs.append((agent_xy, self.agent_color, RADIUS))
        return self._renderer.frame(blobs)

    def _obs(self) -> np.ndarray:
        obs = np.zeros(10, dtype=np.float32)
        obs[0:2] = self.agent_pos
        obs[2:4] = self.target_pos
        obs[4:6] = (WALL_X, DOOR_Y)
        return obs

    def _info(self) -> dict:
        dist = self.goal_distance()
        return {"success": bool(dist < SUCCESS_RADIUS), "distance_to_target": dist}

    def _sample_agent(self) -> np.ndarray:
        while True:
            xy = self.np_random.uniform(RESET_LO, RESET_HI, size=2).astype(np.float32)
            if not WALL_ZONE[0] <= xy[0] <= WALL_ZONE[1]:
                return xy

    def _sample_target(self, agent: np.ndarray) -> np.ndarray:
        if self.reset_target == "uniform":
            return self.np_random.uniform(RESET_LO, RESET_HI, size=2).astype(np.float32)
        agent_left = agent[0] < WALL_X
        door = np.array([WALL_X, DOOR_Y])
        to_door = float(np.hypot(*(agent - door)))
        while True:
            t = self.np_random.uniform(RESET_LO, RESET_HI, size=2).astype(np.float32)
            if (t[0] < WALL_X) == agent_left or WALL_ZONE[0] <= t[0] <= WALL_ZONE[1]:
                continue
            if to_door + float(np.hypot(*(t - door))) >= MIN_PATH:
                return t


class TwoRoomExpert:
    """The reference's noisy door-seeking expert (spec §8.1).

    Heads for the door centre while the target is in the other room and the
    door is farther than 10.5 px, else for the target; action = unit direction +
    N(0, noise^2) per component, clipped to [-1, 1]. With probability
    ``action_repeat_prob`` the previous action is repeated instead (the
    reference configures 0.05 but never applies it; 0 reproduces its data).
    """

    def __init__(
        self, env: TwoRoomEnv, seed: int, noise: float = 2.0, action_repeat_prob: float = 0.0
    ):
        self.env = env
        self.noise = float(noise)
        self.action_repeat_prob = float(action_repeat_prob)
        self.rng = np.random.default_rng(seed)
        self._last: np.ndarray | None = None

    def reset(self) -> None:
        self._last = None

    def __call__(self, obs=None, info=None) -> np.ndarray:
        env = self.env
        agent = env.agent_pos.astype(np.float64)
        target = env.target_pos.astype(np.float64)
        waypoint = target
        if (agent[0] > WALL_X) != (target[0] > WALL_X):
            door = np.array([WALL_X, DOOR_Y])
            if np.hypot(*(door - agent)) > DOOR_REACH_TOL:
                waypoint = door
        d = waypoint - agent
        n = float(np.hypot(*d))
        direction = d / n if n > 1e-8 else np.zeros(2)
        action = direction + self.rng.normal(0.0, self.noise, size=2)
        if (
            self._last is not None
            and self.action_repeat_prob > 0
            and self.rng.uniform() < self.action_repeat_prob
        ):
            action = self._last
        action = np.clip(action, -1.0, 1.0).astype(np.float32)
        self._last = action
        return action


def _xy(value, where: str) -> np.ndarray:
    a = np.asarray(value, dtype=np.float64).reshape(-1)
    if a.shape != (2,) or not np.isfinite(a).all():
        raise ValueError(f"TwoRoomEnv.{where}: expected 2 finite values (x, y), got {value!r}")
    return a.astype(np.float32)


def _row_xy(row: Mapping[str, Any], keys: tuple[str, ...]) -> np.ndarray:
    for k in keys:
        if k in row:
            return np.asarray(row[k])
    raise KeyError(f"TwoRoomEnv: row has none of the columns {list(keys)}; got {sorted(row)}")


def _check_action(action, shape: tuple[int, ...], name: str) -> np.ndarray:
    """Reject actions of the wrong shape or with NaN/inf (shared by the 2-D envs)."""
    try:
        a = np.asarray(action, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}.step: action must be a float array of shape {shape}") from exc
    if a.shape != shape:
        raise ValueError(f"{name}.step: action must have shape {shape}, got {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name}.step: action must be finite, got {a.tolist()}")
    return a
