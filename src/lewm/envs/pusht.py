"""PushT: push a T-shaped block to a goal pose with a disc agent (spec §8.2).

Physics (pymunk 7, constants of the reference): a 512 x 512 world, gravity 0,
space damping 0 (bodies keep no velocity between substeps, so pushing is
quasi-static), shape friction 0. The agent is a kinematic disc (r = 15) driven
by a PD controller toward ``agent + 100 * action`` over 10 substeps of 0.01 s;
neither the action nor the target is clipped. The block is a T of mass 1 (bar
120 x 30 over a 30 x 90 stem) whose moment of inertia is twice the bar's (the
reference's quirk, kept). The block position is the body origin, the midpoint
of the bar's top edge; the centre of gravity is at local (0, 45).

Rendering reproduces the reference pipeline (draw a 512 canvas, OpenCV-bilinear
to 224, PIL-bilinear to the requested size) without pygame or OpenCV: shapes
are drawn with PIL at 512 and the two resizes are applied as matrices, only
over the windows the block and the agent cover (see ``lewm.envs.raster``).

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

from lewm.envs.raster import (
    WindowedResampler,
    cv2_linear_matrix,
    merge_boxes,
    pil_bilinear_matrix,
)
from lewm.envs.tworoom import _check_action

WORLD = 512
CANVAS_224 = 224
WALLS = (((5, 506), (5, 5)), ((5, 5), (506, 5)), ((506, 5), (506, 506)), ((5, 506), (506, 506)))
WALL_RADIUS = 2.0
AGENT_RADIUS = 15.0
BAR = ((-60.0, 30.0), (60.0, 30.0), (60.0, 0.0), (-60.0, 0.0))
STEM = ((-15.0, 30.0), (-15.0, 120.0), (15.0, 120.0), (15.0, 30.0))
BLOCK_COG = (0.0, 45.0)  # local centre of gravity: mean of the two boxes' centroids
K_P, K_V = 100.0, 20.0
DT, SUBSTEPS = 0.01, 10
ACTION_SCALE = 100.0
SUCCESS_POS, SUCCESS_ANGLE = 20.0, math.pi / 9
AGENT_BOX, BLOCK_BOX, ANGLE_RANGE = (50.0, 450.0), (100.0, 400.0), (-2 * math.pi, 2 * math.pi)
GOAL_OVERLAY_POSE = (256.0, 256.0, math.pi / 4)  # fixed light-green T, unrelated to the goal
TWO_PI = 2 * math.pi

# pygame colour names used by the reference
WHITE = (255, 255, 255)
LIGHT_GREEN = (144, 238, 144)
LIGHT_GRAY = (211, 211, 211)
ROYAL_BLUE = (65, 105, 225)
LIGHT_SLATE_GRAY = (119, 136, 153)


def lighten(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """The reference's fill colour: 1.2 x the base colour, capped at 255, truncated."""
    return tuple(int(min(np.float32(1.2) * np.float32(c), 255.0)) for c in rgb)


def block_inertia() -> float:
    """2 x the bar polygon's moment about the body origin (the reference's quirk)."""
    import pymunk

    return 2.0 * pymunk.moment_for_poly(1.0, BAR)


def local_to_world(pose, pts) -> np.ndarray:
    """Body-local points -> world, for a pose (x, y, angle). (K, 2) float64."""
    x, y, a = pose
    c, s = math.cos(a), math.sin(a)
    p = np.asarray(pts, dtype=np.float64)
    return np.stack([x + c * p[:, 0] - s * p[:, 1], y + s * p[:, 0] + c * p[:, 1]], axis=1)


def angle_error(a: float, b: float) -> float:
    """|a - b| wrapped to [0, pi] (the T has no rotational symmetry)."""
    d = abs(a - b) % TWO_PI
    return min(d, TWO_PI - d)


def pusht_success(state, goal_state) -> bool:
    """The reference success test: 4-D position error < 20 px and angle error < pi/9."""
    s = np.asarray(state, dtype=np.float64)
    g = np.asarray(goal_state, dtype=np.float64)
    return bool(
        np.linalg.norm(g[:4] - s[:4]) < SUCCESS_POS
        and angle_error(float(g[4]), float(s[4])) < SUCCESS_ANGLE
    )


# -- rendering ----------------------------------------------------------------


def _ipt(p) -> tuple[int, int]:
    """pygame's to_pygame: round to integer pixels."""
    return (round(p[0]), round(p[1]))


def _disk(draw, c, r: float, color) -> None:
    cx, cy = _ipt(c)
    r = round(r)
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=color)


def _fat_segment(draw, a, b, r: float, color) -> None:
    """A segment of width 2r with round caps (pymunk's debug drawing of radius-r segments)."""
    p1, p2 = _ipt(a), _ipt(b)
    draw.line((p1, p2), fill=color, width=round(2 * r))
    dx, dy = p2[0] - p1[0], p2[1] - p1[1]
    n = math.hypot(dx, dy)
    if n > 0:
        ox, oy = round(-dy / n * r), round(dx / n * r)
        draw.polygon(
            [
                (p1[0] - ox, p1[1] - oy),
                (p1[0] + ox, p1[1] + oy),
                (p2[0] + ox, p2[1] + oy),
                (p2[0] - ox, p2[1] - oy),
            ],
            fill=color,
        )
    _disk(draw, p1, r, color)
    _disk(draw, p2, r, color)


def _draw_block(draw, pose, color) -> None:
    """Filled light polygons with a 4-px outline in the base colour."""
    fill = lighten(color)
    for poly in (BAR, STEM):
        pts = local_to_world(pose, poly)
        draw.polygon([_ipt(p) for p in pts], fill=fill)
        for i in range(len(pts)):
            _fat_segment(draw, pts[i], pts[(i + 1) % len(pts)], 2.0, color)


def _draw_agent(draw, xy, color) -> None:
    _disk(draw, xy, AGENT_RADIUS, color)
    _disk(draw, xy, AGENT_RADIUS - 4, lighten(color))


class _Renderer:
    """Reference-pipeline frames of one size: 512 canvas -> cv2 224 -> PIL S."""

    _cache: dict[int, _Renderer] = {}

    def __init__(self, size: int):
        from PIL import Image, ImageDraw

        m = pil_bilinear_matrix(CANVAS_224, size) @ cv2_linear_matrix(WORLD, CANVAS_224)  # (S, 512)
        static = Image.new("RGB", (WORLD, WORLD), WHITE)
        draw = ImageDraw.Draw(static)
        overlay = local_to_world(GOAL_OVERLAY_POSE, BAR), local_to_world(GOAL_OVERLAY_POSE, STEM)
        for pts in overlay:
            draw.polygon([_ipt(p) for p in pts], fill=LIGHT_GREEN)
        for a, b in WALLS:
            _fat_segment(draw, a, b, WALL_RADIUS, LIGHT_GRAY)
        self.static_image = static
        self.resampler = WindowedResampler(np.asarray(static), m)

    @classmethod
    def get(cls, size: int) -> _Renderer:
        if size not in cls._cache:
            cls._cache[size] = cls(size)
        return cls._cache[size]

    def frame(self, agent_xy, block_pose, agent_color, block_color) -> np.ndarray:
        """uint8 (S, S, 3) frame of the agent and the block over the static scene."""
        from PIL import ImageDraw

        canvas = self.static_image.copy()
        draw = ImageDraw.Draw(canvas)
        _draw_block(draw, block_pose, block_color)
        _draw_agent(draw, agent_xy, agent_color)
        verts = np.concatenate([local_to_world(block_pose, BAR), local_to_world(block_pose, STEM)])
        boxes = [_box(verts.min(0) - 4, verts.max(0) + 4)]
        r = AGENT_RADIUS + 2
        boxes.append(_box(np.asarray(agent_xy) - r, np.asarray(agent_xy) + r))
        windows = merge_boxes([b for b in boxes if b is not None])

        def crop(r0, r1, c0, c1):
            return np.asarray(canvas.crop((c0, r0, c1, r1)))

        return self.resampler.render(crop, windows)


def _box(lo, hi) -> tuple[int, int, int, int] | None:
    """(r0, r1, c0, c1) pixel box covering [lo, hi] (x, y), clipped to the canvas."""
    c0, r0 = max(int(math.floor(lo[0])), 0), max(int(math.floor(lo[1])), 0)
    c1, r1 = min(int(math.ceil(hi[0])) + 1, WORLD), min(int(math.ceil(hi[1])) + 1, WORLD)
    if c1 <= c0 or r1 <= r0:
        return None
    return (r0, r1, c0, c1)


# -- environment ----------------------------------------------------------------


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
        self._renderer = _Renderer.get(self.image_size)
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

    def goal_distance(self) -> float:
        """4-D position error ||(agent, block) - goal||, px (success below 20 with the angle test)."""
        return float(np.linalg.norm(self.goal_state[:4] - self._state()[:4]))

    def goal_angle_error(self) -> float:
        """Block angle error to the goal, rad, wrapped to [0, pi] (success below pi/9)."""
        return angle_error(float(self.goal_state[4]), float(self.block.angle % TWO_PI))

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


# -- scripted expert ------------------------------------------------------------


def _contact_candidates(step: float = 7.5) -> tuple[np.ndarray, np.ndarray]:
    """Points on the T's outline the agent disc can touch, with outward normals (local frame)."""
    # Outline of the T (union of bar and stem), with each edge's outward normal.
    edges = [
        ((-60, 0), (60, 0), (0, -1)),  # top of the bar
        ((60, 0), (60, 30), (1, 0)),
        ((60, 30), (15, 30), (0, 1)),  # underside of the bar, right
        ((15, 30), (15, 120), (1, 0)),  # stem, right
        ((15, 120), (-15, 120), (0, 1)),  # stem bottom
        ((-15, 120), (-15, 30), (-1, 0)),
        ((-15, 30), (-60, 30), (0, 1)),
        ((-60, 30), (-60, 0), (-1, 0)),
    ]
    concave = np.array([[15.0, 30.0], [-15.0, 30.0]])
    pts, normals = [], []
    for a, b, n in edges:
        a, b = np.asarray(a, float), np.asarray(b, float)
        length = float(np.linalg.norm(b - a))
        k = max(int(length // step), 1)
        for t in (np.arange(k) + 0.5) / k:
            p = a + t * (b - a)
            # A disc of radius 15 cannot reach an inner corner; skip points it cannot touch.
            if np.min(np.linalg.norm(concave - p, axis=1)) < AGENT_RADIUS + 1:
                continue
            pts.append(p)
            normals.append(n)
    return np.asarray(pts), np.asarray(normals, dtype=float)


class PushTExpert:
    """A scripted pushing expert with noise.

    At every step it scores contact points on the T's outline by how much a
    frictionless push there (along the inward normal) would reduce the pose
    error (squared centre-of-gravity distance plus ``angle_weight`` x squared
    angle error, with the block's real mass and inertia), discounted by the
    travel needed to reach it. It walks around the block to the chosen
    pre-contact point and pushes; once the block is placed it brings the agent
    to the goal's agent position (the success test also checks the agent).
    Gaussian action noise with a per-episode std drawn from ``noise`` keeps the
    data diverse.

    Args:
        env: the unwrapped :class:`PushTEnv` (the expert reads the block pose and goal).
        seed: seed of the policy's generator.
        noise: (low, high) range of the per-episode action-noise std.
        push_speed: how far (px) past the contact point the PD target is placed.
        angle_weight: px^2 per rad^2 in the pose error.
        travel_cost: score discount exp(-travel_cost * travel / 150 px).
        place_tol: block position error (px) under which, with an angle error
            under 0.2 rad, the block counts as placed.
    """

    def __init__(
        self,
        env: PushTEnv,
        seed: int,
        noise: tuple[float, float] = (0.0, 0.1),
        push_speed: float = 30.0,
        angle_weight: float = 3000.0,
        travel_cost: float = 1.0,
        place_tol: float = 10.0,
    ):
        self.env = env
        self.rng = np.random.default_rng(seed)
        self.noise_range = noise
        self.push_speed = float(push_speed)
        self.angle_weight = float(angle_weight)
        self.travel_cost = float(travel_cost)
        self.place_tol = float(place_tol)
        self.points, self.normals = _contact_candidates()
        self.inertia = block_inertia()
        self.current: int | None = None
        self.noise = 0.0

    def reset(self) -> None:
        self.current = None
        self.noise = float(self.rng.uniform(*self.noise_range))

    def __call__(self, obs=None, info=None) -> np.ndarray:
        env = self.env
        agent = np.asarray(env.agent.position, dtype=np.float64)
        pose = env.block_pose()
        goal = env.goal_state
        rot = _rotation(pose[2])
        cog = np.asarray(pose[:2]) + rot @ np.asarray(BLOCK_COG)
        goal_cog = goal[2:4] + _rotation(goal[4]) @ np.asarray(BLOCK_COG)
        d_pos = goal_cog - cog  # (2,)
        d_ang = (goal[4] - pose[2] + math.pi) % TWO_PI - math.pi

        block_err = float(np.linalg.norm(goal[2:4] - np.asarray(pose[:2])))
        if block_err < self.place_tol and abs(d_ang) < 0.2:
            # Block placed: bring the agent to its goal position, around the block.
            aim = self._approach(agent, goal[0:2], pose)
            self.current = None
            return self._act(aim, agent, gain=2.0)

        world = pose[:2] + self.points @ rot.T  # (K, 2) contact points
        push = -(self.normals @ rot.T)  # (K, 2) inward push directions
        lever = world - cog
        torque = lever[:, 0] * push[:, 1] - lever[:, 1] * push[:, 0]  # (K,) lever x push
        k = torque / self.inertia  # rad per unit impulse
        # An impulse J along `push` moves the CoG by J * push and turns the block by J * k.
        w = self.angle_weight
        num = push @ d_pos + w * k * d_ang
        den = 1.0 + w * k * k
        j = np.clip(num / den, 0.0, 80.0)
        gain = j * (2 * num - j * den)  # reduction of |d_pos|^2 + w * d_ang^2
        pre = world - push * (AGENT_RADIUS + 3.0)  # agent centre just before contact
        travel = np.linalg.norm(pre - agent, axis=1)
        score = gain * np.exp(-self.travel_cost * travel / 150.0)
        best = int(np.argmax(score))
        cur = self.current
        if cur is None or score[cur] < 0.7 * score[best] or gain[cur] <= 1.0:
            self.current = cur = best

        contact_pos = world[cur] - push[cur] * AGENT_RADIUS
        if np.linalg.norm(agent - contact_pos) < 10.0:
            depth = float(np.clip(j[cur], 5.0, self.push_speed))
            return self._act(contact_pos + push[cur] * depth, agent, gain=1.0)
        return self._act(self._approach(agent, pre[cur], pose), agent, gain=2.0)

    def _act(self, aim: np.ndarray, agent: np.ndarray, gain: float) -> np.ndarray:
        action = gain * (aim - agent) / ACTION_SCALE
        action = action + self.rng.normal(0.0, self.noise, size=2)
        norm = float(np.linalg.norm(action))
        if norm > 1.0:
            action = action / norm
        return action.astype(np.float32)

    def _approach(self, agent: np.ndarray, target: np.ndarray, pose) -> np.ndarray:
        """Next waypoint toward ``target``, walking around the block when the straight path hits it."""
        if _clearance(pose, agent, target) > AGENT_RADIUS + 1.0:
            return target
        cog = np.asarray(pose[:2]) + _rotation(pose[2]) @ np.asarray(BLOCK_COG)
        safe = 100.0  # the T fits in a disc of radius 77 about its CoG, plus the agent radius
        ra = agent - cog
        dist = float(np.linalg.norm(ra))
        if dist < safe - 15.0:
            return cog + ra / max(dist, 1e-6) * safe  # step away from the block first
        a0 = math.atan2(ra[1], ra[0])
        rt = target - cog
        da = (math.atan2(rt[1], rt[0]) - a0 + math.pi) % TWO_PI - math.pi
        if abs(da) < 0.25:
            return target
        a = a0 + max(-0.5, min(0.5, da))
        return cog + safe * np.array([math.cos(a), math.sin(a)])


def _rotation(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s], [s, c]])


def _clearance(pose, a: np.ndarray, b: np.ndarray, n: int = 16) -> float:
    """Smallest distance from the segment a -> b (sampled, end excluded) to the T, px."""
    t = np.linspace(0.0, 1.0, n, endpoint=False)[:, None]
    pts = a + t * (b - a)  # (n, 2)
    local = (pts - np.asarray(pose[:2])) @ _rotation(pose[2])  # world -> body frame
    best = np.full(n, np.inf)
    for (x0, x1), (y0, y1) in (((-60.0, 60.0), (0.0, 30.0)), ((-15.0, 15.0), (30.0, 120.0))):
        dx = np.maximum(np.maximum(x0 - local[:, 0], local[:, 0] - x1), 0.0)
        dy = np.maximum(np.maximum(y0 - local[:, 1], local[:, 1] - y1), 0.0)
        best = np.minimum(best, np.hypot(dx, dy))
    return float(best.min())
