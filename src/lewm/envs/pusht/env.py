"""PushT: push a T-shaped block to a goal pose with a disc agent (spec §8.2), Gymnasium API.

Physics (pymunk 7, constants of the reference): a 512 x 512 world, gravity 0,
space damping 0 (bodies keep no velocity between substeps, so pushing is
quasi-static), shape friction 0. The agent is a kinematic disc (r = 15) driven
by a PD controller toward ``agent + 100 * action`` over 10 substeps of 0.01 s;
neither the action nor the target is clipped. The block is a T of mass 1 (bar
120 x 30 over a 30 x 90 stem) whose moment of inertia is twice the bar's (the
reference's quirk, kept).

Differences from the reference (documented in docs/environments.md):
``set_state`` rebuilds the physics space before restoring, so a restore is
fully deterministic (the reference keeps the block velocity and the solver's
cached contacts); goal angles are stored wrapped to [0, 2 pi).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from lewm.envs.pusht.geometry import (
    AGENT_RADIUS,
    BAR,
    BLOCK_COG,
    STEM,
    TWO_PI,
    WALL_RADIUS,
    WALLS,
    WORLD,
    block_inertia,
    pusht_success,
)
from lewm.envs.pusht.render import LIGHT_SLATE_GRAY, ROYAL_BLUE, FrameRenderer
from lewm.envs.tworoom import OUT_OF_BOUNDS_MARGIN, _check_action

K_P, K_V = 100.0, 20.0
DT, SUBSTEPS = 0.01, 10
ACTION_SCALE = 100.0
AGENT_BOX, BLOCK_BOX, ANGLE_RANGE = (50.0, 450.0), (100.0, 400.0), (-2 * math.pi, 2 * math.pi)


class PushTEnv(gym.Env):
    """PushT with relative actions (spec §8.2), Gymnasium API.

    Args:
        render_mode: only ``"rgb_array"``.
        image_size: side of the square frames (default 224, the reference size).
        agent_color, block_color: RGB (for colour-change perturbations, spec §9.2).

    Observation: float64 (7,) ``state`` = agent x, y; block x, y (body origin);
    block angle mod 2 pi; agent vx, vy. Action: Box(-1, 1, (2,)), the PD target
    is ``agent + 100 * action`` (not clipped). Reward: -||goal_state - state||.
    Hooks: ``set_state(state5or7)``, ``set_goal_state(state5or7)``,
    ``load_state(row)``, ``load_goal(row)``, ``record()``, ``render_goal()``,
    ``goal_distance()``.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(
        self,
        render_mode: str = "rgb_array",
        image_size: int = 224,
        agent_color: tuple[int, int, int] = ROYAL_BLUE,
        block_color: tuple[int, int, int] = LIGHT_SLATE_GRAY,
    ):
        if render_mode != "rgb_array":
            raise ValueError(f"PushTEnv: render_mode must be 'rgb_array', got {render_mode!r}")
        if not isinstance(image_size, (int, np.integer)) or image_size <= 0:
            raise ValueError(f"PushTEnv: image_size must be a positive int, got {image_size!r}")
        self.render_mode = render_mode
        self.image_size = int(image_size)
        self.agent_color = tuple(int(c) for c in agent_color)
        self.block_color = tuple(int(c) for c in block_color)
        # Loose finite bounds: the agent is kinematic and its PD target is not
        # clipped, so it can leave the 512-px arena.
        big = 1e4
        self.observation_space = spaces.Box(
            low=np.array([-big, -big, -big, -big, 0.0, -big, -big]),
            high=np.array([big, big, big, big, TWO_PI, big, big]),
            dtype=np.float64,
        )
        self.action_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self._renderer = FrameRenderer.get(self.image_size)
        self._inertia = block_inertia()
        self.goal_state = np.array([256.0, 256.0, 256.0, 256.0, math.pi / 4, 0.0, 0.0])
        self.n_contacts = 0  # contact points per substep (rounded up), last step
        self.agent_block_contacts = 0  # agent-block contact points summed over the last step
        self._build()
        self.set_state([256.0, 400.0, 256.0, 300.0, 0.0])

    # -- physics -------------------------------------------------------------
    def _build(self) -> None:
        """A fresh space: no velocities, no cached contacts."""
        import pymunk

        space = pymunk.Space()
        space.gravity = (0.0, 0.0)
        space.damping = 0.0
        for a, b in WALLS:
            space.add(pymunk.Segment(space.static_body, a, b, WALL_RADIUS))
        agent = pymunk.Body(body_type=pymunk.Body.KINEMATIC)
        agent_shape = pymunk.Circle(agent, AGENT_RADIUS)
        space.add(agent, agent_shape)
        block = pymunk.Body(1.0, self._inertia)
        bar, stem = pymunk.Poly(block, BAR), pymunk.Poly(block, STEM)
        block.center_of_gravity = BLOCK_COG
        space.add(block, bar, stem)
        space.on_collision(None, None, post_solve=self._on_contact)
        self.space, self.agent, self.block, self._agent_shape = space, agent, block, agent_shape
        self._points = 0
        self._agent_points = 0

    def _on_contact(self, arbiter, space, data) -> None:
        n = len(arbiter.contact_point_set.points)
        self._points += n
        if self._agent_shape in arbiter.shapes:
            self._agent_points += n

    # -- Gymnasium API -------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        options = options or {}
        goal = options.get("goal_state")
        self.set_goal_state(self._sample_state() if goal is None else goal)
        state = options.get("state")
        self.set_state(self._sample_state() if state is None else state)
        self.n_contacts = 0
        self.agent_block_contacts = 0
        state = self._state()
        return state, self._info(state)

    def step(self, action):
        a = _check_action(action, (2,), "PushTEnv")
        px, py = self.agent.position
        tx, ty = px + ACTION_SCALE * float(a[0]), py + ACTION_SCALE * float(a[1])
        self._points = 0
        self._agent_points = 0
        agent, space = self.agent, self.space
        for _ in range(SUBSTEPS):
            (px, py), (vx, vy) = agent.position, agent.velocity
            agent.velocity = (
                vx + (K_P * (tx - px) - K_V * vx) * DT,
                vy + (K_P * (ty - py) - K_V * vy) * DT,
            )
            space.step(DT)
        self.n_contacts = math.ceil(self._points / SUBSTEPS)
        self.agent_block_contacts = self._agent_points
        state = self._state()
        info = self._info(state)
        reward = -float(np.linalg.norm(self.goal_state - state))
        return state, reward, info["success"], False, info

    def render(self) -> np.ndarray:
        """uint8 (S, S, 3)."""
        return self._renderer.frame(
            tuple(self.agent.position), self.block_pose(), self.agent_color, self.block_color
        )

    # -- evaluation hooks (spec §7.2) ----------------------------------------
    def set_state(self, state) -> None:
        """Restore a 5-D or 7-D state (velocity 0 if 5-D) and take one 0.01 s substep.

        Unlike the reference, the space is rebuilt first, so the result does not
        depend on anything the environment did before.
        """
        s = _state_vector(state, "set_state")
        self._build()
        self.agent.velocity = (float(s[5]), float(s[6])) if len(s) == 7 else (0.0, 0.0)
        self.agent.position = (float(s[0]), float(s[1]))
        self.block.angle = float(s[4])  # angle before position: the angle turns about the CoG
        self.block.position = (float(s[2]), float(s[3]))
        self.space.step(DT)

    def set_goal_state(self, goal_state) -> None:
        """Set the success test's goal from a 5-D or 7-D state (angle wrapped, velocity 0)."""
        g = _state_vector(goal_state, "set_goal_state")
        self.goal_state = np.array([g[0], g[1], g[2], g[3], g[4] % TWO_PI, 0.0, 0.0])

    def set_agent_color(self, rgb) -> None:
        self.agent_color = tuple(int(c) for c in rgb)

    def teleport(self, agent_xy=None, block_xy=None) -> None:
        """Move the agent and/or the block mid-episode (surprise experiments, spec §9.2).

        The block angle, the agent velocity and the goal are kept. The move is a
        :meth:`set_state` of the modified 7-D state (fresh physics space, one substep).
        """
        s = self._state()
        for value, dims, what in (
            (agent_xy, slice(0, 2), "agent_xy"),
            (block_xy, slice(2, 4), "block_xy"),
        ):
            if value is not None:
                xy = np.asarray(value, dtype=np.float64).reshape(-1)
                if xy.shape != (2,) or not np.isfinite(xy).all():
                    raise ValueError(
                        f"PushTEnv.teleport: {what} must be 2 finite values, got {value!r}"
                    )
                s[dims] = xy
        self.set_state(s)

    def set_block_color(self, rgb) -> None:
        self.block_color = tuple(int(c) for c in rgb)

    def record(self) -> dict[str, np.ndarray]:
        """Dataset columns describing the current state (one row)."""
        state = self._state()
        g = self.goal_state
        return {
            "state": state,
            "proprio": state[[0, 1, 5, 6]],
            "pos_agent": state[0:2].copy(),
            "vel_agent": state[5:7].copy(),
            "block_pose": np.array([*self.block.position, self.block.angle], dtype=np.float64),
            "goal_state": g.copy(),
            "goal_proprio": g[[0, 1, 5, 6]],
            "n_contacts": np.int64(self.n_contacts),
        }

    def load_state(self, row: Mapping[str, Any]) -> None:
        """Restore ``row['state']`` (5-D or 7-D) and, if present, ``row['goal_state']``."""
        if "state" not in row:
            raise KeyError(f"PushTEnv.load_state: row has no 'state' column; got {sorted(row)}")
        if "goal_state" in row:
            self.set_goal_state(row["goal_state"])
        self.set_state(row["state"])

    def load_goal(self, row: Mapping[str, Any]) -> None:
        """Goal := the row's state (agent and block pose)."""
        if "state" not in row:
            raise KeyError(f"PushTEnv.load_goal: row has no 'state' column; got {sorted(row)}")
        self.set_goal_state(row["state"])

    def is_success(self) -> bool:
        """Whether the success test holds in the current state (no step taken)."""
        return bool(self._info(self._state())["success"])

    def in_bounds(self) -> bool:
        """Whether agent, block and goal positions lie inside the arena (a restored dataset
        state may not: evaluation then warns instead of trusting the success test)."""
        points = np.concatenate([self._state()[:4], self.goal_state[:4]])  # agent, block x2
        # "Far" outside: the expert's own episodes push the agent a few px past the walls.
        margin = OUT_OF_BOUNDS_MARGIN * WORLD
        return bool(((points >= -margin) & (points <= WORLD + margin)).all())

    def goal_distance(self) -> float:
        """4-D position error ||(agent, block) - goal||, px (success below 20 with the angle test)."""
        return float(np.linalg.norm(self.goal_state[:4] - self._state()[:4]))

    def render_goal(self) -> np.ndarray:
        """The frame at the goal state (agent and block at the goal)."""
        g = self.goal_state
        return self._renderer.frame(
            (g[0], g[1]), (g[2], g[3], g[4]), self.agent_color, self.block_color
        )

    # -- helpers ---------------------------------------------------------------
    def block_pose(self) -> tuple[float, float, float]:
        x, y = self.block.position
        return (x, y, self.block.angle)

    def _state(self) -> np.ndarray:
        (ax, ay), (bx, by), (vx, vy) = self.agent.position, self.block.position, self.agent.velocity
        return np.array([ax, ay, bx, by, self.block.angle % TWO_PI, vx, vy], dtype=np.float64)

    def _info(self, state: np.ndarray) -> dict:
        return {
            "success": pusht_success(state, self.goal_state),
            "n_contacts": self.n_contacts,
        }

    def _sample_state(self) -> np.ndarray:
        r = self.np_random
        agent = r.uniform(*AGENT_BOX, size=2)
        block = r.uniform(*BLOCK_BOX, size=2)
        angle = r.uniform(*ANGLE_RANGE)
        return np.array([agent[0], agent[1], block[0], block[1], angle])


def _state_vector(state, where: str) -> np.ndarray:
    s = np.asarray(state, dtype=np.float64).reshape(-1)
    if s.shape not in ((5,), (7,)) or not np.isfinite(s).all():
        raise ValueError(
            f"PushTEnv.{where}: expected 5 or 7 finite values "
            f"(agent x, y, block x, y, angle[, agent vx, vy]), got shape {s.shape}"
        )
    return s
