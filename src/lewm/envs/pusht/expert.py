"""PushT's scripted expert: frictionless push scoring over the T's outline (data collection)."""

from __future__ import annotations

import math

import numpy as np

from lewm.envs.pusht.env import ACTION_SCALE, PushTEnv
from lewm.envs.pusht.geometry import AGENT_RADIUS, BLOCK_COG, TWO_PI, block_inertia, rotation


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
        max_speed: largest action norm (1 = the action box's edge, a PD target 100 px
            away); a smaller cap makes a slower expert with longer episodes (the
            reference PushT data's actions have std about 0.20, spec §8.2).
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
        max_speed: float = 1.0,
    ):
        if not 0.0 < max_speed <= 1.0:
            raise ValueError(f"PushTExpert: max_speed must be in (0, 1], got {max_speed!r}")
        self.env = env
        self.rng = np.random.default_rng(seed)
        self.noise_range = noise
        self.push_speed = float(push_speed)
        self.angle_weight = float(angle_weight)
        self.travel_cost = float(travel_cost)
        self.place_tol = float(place_tol)
        self.max_speed = float(max_speed)
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
        rot = rotation(pose[2])
        cog = np.asarray(pose[:2]) + rot @ np.asarray(BLOCK_COG)
        goal_cog = goal[2:4] + rotation(goal[4]) @ np.asarray(BLOCK_COG)
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
        if norm > self.max_speed:
            action = action / norm * self.max_speed  # exactly action / norm at the default 1
        return action.astype(np.float32)

    def _approach(self, agent: np.ndarray, target: np.ndarray, pose) -> np.ndarray:
        """Next waypoint toward ``target``, walking around the block when the straight path hits it."""
        if _clearance(pose, agent, target) > AGENT_RADIUS + 1.0:
            return target
        cog = np.asarray(pose[:2]) + rotation(pose[2]) @ np.asarray(BLOCK_COG)
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


def _clearance(pose, a: np.ndarray, b: np.ndarray, n: int = 16) -> float:
    """Smallest distance from the segment a -> b (sampled, end excluded) to the T, px."""
    t = np.linspace(0.0, 1.0, n, endpoint=False)[:, None]
    pts = a + t * (b - a)  # (n, 2)
    local = (pts - np.asarray(pose[:2])) @ rotation(pose[2])  # world -> body frame
    best = np.full(n, np.inf)
    for (x0, x1), (y0, y1) in (((-60.0, 60.0), (0.0, 30.0)), ((-15.0, 15.0), (30.0, 120.0))):
        dx = np.maximum(np.maximum(x0 - local[:, 0], local[:, 0] - x1), 0.0)
        dy = np.maximum(np.maximum(y0 - local[:, 1], local[:, 1] - y1), 0.0)
        best = np.minimum(best, np.hypot(dx, dy))
    return float(best.min())
