"""Perturbations for the surprise experiments (spec §9.2): per environment, the policy that
drives the trajectories, the colour change and the teleport, all through public env hooks.

| env | policy | colour change | teleport |
|---|---|---|---|
| tworoom | expert | agent (``set_agent_color``) | agent (``set_state``) |
| pusht | random, biased towards the block (:class:`BlockSeekingPolicy`) | block (``set_block_color``) | agent and block (``teleport``) |
| cube | expert | cube (``set_cube_color``) | cube (``teleport_cube``) |

Reacher has no perturbation in the paper, so it is refused. New colours are drawn from a
palette of saturated colours far from the current one; teleport targets are uniform over
the positions an episode can start from, at a minimum distance from where the object was,
so every teleport is a visible jump.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lewm.errors import ConfigError

PERTURBABLE = ("tworoom", "pusht", "cube")
OBJECTS = {  # env -> (policy, colour-changed object, teleported object(s))
    "tworoom": ("expert", "agent", "agent"),
    "pusht": ("random, biased towards the block", "block", "agent and block"),
    "cube": ("expert", "cube", "cube"),
}
PALETTE = ((0, 0, 255), (0, 170, 0), (255, 140, 0), (160, 0, 220), (0, 180, 180), (220, 20, 60), (255, 215, 0))  # fmt: skip
MIN_COLOUR_DISTANCE = 150.0  # RGB (0-255) distance of a new colour from the current one
TWOROOM_MIN_JUMP = 50.0  # px of the 224 canvas
PUSHT_MIN_JUMP, PUSHT_CLEARANCE = 60.0, 100.0  # px; agent to block centre of gravity
CUBE_BOX, CUBE_MIN_JUMP, CUBE_REST_Z = ((0.3, -0.3), (0.55, 0.3)), 0.1, 0.02  # m


def check_perturbable(env: str) -> None:
    if env == "reacher":
        raise ConfigError(
            "reacher has no perturbation hook: the paper runs the surprise test on tworoom, "
            "pusht and cube only (spec §9.2); choose one of those"
        )
    if env not in PERTURBABLE:
        raise ConfigError(
            f"no perturbation hooks for environment {env!r}; choose one of {PERTURBABLE}"
        )


class BlockSeekingPolicy:
    """PushT: a random policy biased towards touching the block (the paper gives no details).

    With probability ``seek`` per step the action points at the block's centre of gravity
    with a random length in [0.3, 1] plus N(0, ``noise``^2) per component; otherwise it is
    uniform in [-1, 1]^2. Actions are clipped to [-1, 1].
    """

    def __init__(self, env: Any, seed: int, seek: float = 0.7, noise: float = 0.3):
        self.env, self.seek, self.noise = env, float(seek), float(noise)
        self.rng = np.random.default_rng(seed)

    def reset(self) -> None:
        pass

    def __call__(self, obs=None, info=None) -> np.ndarray:
        if self.rng.uniform() >= self.seek:
            return self.rng.uniform(-1.0, 1.0, size=2).astype(np.float32)
        agent = np.asarray(self.env.agent.position, dtype=np.float64)
        d = _block_cog(self.env) - agent
        n = float(np.hypot(*d))
        direction = d / n if n > 1e-6 else np.zeros(2)
        action = direction * self.rng.uniform(0.3, 1.0) + self.rng.normal(0.0, self.noise, 2)
        return np.clip(action, -1.0, 1.0).astype(np.float32)


def _block_cog(env: Any, block_xy=None) -> np.ndarray:
    """World position of the PushT block's centre of gravity (at ``block_xy`` if given)."""
    from lewm.envs.pusht.geometry import BLOCK_COG

    x, y, angle = env.block_pose()
    if block_xy is not None:
        x, y = block_xy
    c, s = np.cos(angle), np.sin(angle)
    return np.array(
        [x + c * BLOCK_COG[0] - s * BLOCK_COG[1], y + s * BLOCK_COG[0] + c * BLOCK_COG[1]]
    )


def make_policy(env_name: str, env: Any, seed: int):
    if env_name == "pusht":
        return BlockSeekingPolicy(env, seed)
    if env_name == "tworoom":
        from lewm.envs.tworoom import TwoRoomExpert

        return TwoRoomExpert(env, seed)
    from lewm.envs.cube import CubeExpert

    return CubeExpert(env, seed)


def _new_colour(current, rng: np.random.Generator, scale: float = 1.0) -> tuple:
    cur = np.asarray(current, dtype=np.float64) * (255.0 / scale)
    far = [c for c in PALETTE if np.linalg.norm(np.asarray(c) - cur) >= MIN_COLOUR_DISTANCE]
    pick = far[int(rng.integers(len(far)))]
    return tuple(v * scale / 255.0 for v in pick) if scale != 255.0 else pick


def set_colour(env_name: str, env: Any, rgb) -> None:
    """Colour of the environment's perturbed object (0-255 for the 2-D envs, [0, 1] for cube)."""
    if env_name == "tworoom":
        env.set_agent_color(rgb)
    elif env_name == "pusht":
        env.set_block_color(rgb)
    else:
        env.set_cube_color(rgb)


def colour(env_name: str, env: Any) -> tuple:
    if env_name == "tworoom":
        return tuple(env.agent_color)
    if env_name == "pusht":
        return tuple(env.block_color)
    return tuple(float(v) for v in env.cube_color())


def change_colour(env_name: str, env: Any, rng: np.random.Generator) -> dict[str, Any]:
    """Recolour the environment's object; returns what changed (``from`` restores it)."""
    old = colour(env_name, env)
    new = _new_colour(old, rng, 1.0 if env_name == "cube" else 255.0)
    set_colour(env_name, env, new)
    return {"object": OBJECTS[env_name][1], "from": list(old), "to": list(new)}


def teleport(env_name: str, env: Any, rng: np.random.Generator) -> dict[str, Any]:
    """Teleport the environment's object(s) to a random position; returns where."""
    if env_name == "tworoom":
        return _teleport_tworoom(env, rng)
    if env_name == "pusht":
        return _teleport_pusht(env, rng)
    return _teleport_cube(env, rng)


def _teleport_tworoom(env: Any, rng: np.random.Generator) -> dict[str, Any]:
    from lewm.envs.tworoom import RESET_HI, RESET_LO, WALL_ZONE

    old = env.agent_pos.astype(np.float64)
    while True:
        xy = rng.uniform(RESET_LO, RESET_HI, size=2)
        if not WALL_ZONE[0] <= xy[0] <= WALL_ZONE[1] and np.hypot(*(xy - old)) >= TWOROOM_MIN_JUMP:
            break
    env.set_state(xy)
    return {"object": "agent", "from": old.tolist(), "to": xy.tolist()}


def _teleport_pusht(env: Any, rng: np.random.Generator) -> dict[str, Any]:
    from lewm.envs.pusht.env import AGENT_BOX, BLOCK_BOX

    agent_old = np.asarray(env.agent.position, dtype=np.float64)
    block_old = np.asarray(env.block_pose()[:2], dtype=np.float64)
    for _ in range(10_000):
        agent = rng.uniform(*AGENT_BOX, size=2)
        block = rng.uniform(*BLOCK_BOX, size=2)
        moved = min(np.hypot(*(agent - agent_old)), np.hypot(*(block - block_old)))
        if (
            moved >= PUSHT_MIN_JUMP
            and np.hypot(*(agent - _block_cog(env, block))) >= PUSHT_CLEARANCE
        ):
            break
    env.teleport(agent_xy=agent, block_xy=block)
    return {"object": "agent and block", "from": [*agent_old, *block_old], "to": [*agent, *block]}


def _teleport_cube(env: Any, rng: np.random.Generator) -> dict[str, Any]:
    old = np.asarray(env.record()["privileged_block_0_pos"], dtype=np.float64)
    lo, hi = np.asarray(CUBE_BOX[0]), np.asarray(CUBE_BOX[1])
    while True:
        xy = rng.uniform(lo, hi)
        if np.hypot(*(xy - old[:2])) >= CUBE_MIN_JUMP:
            break
    pos = np.array([xy[0], xy[1], CUBE_REST_Z])
    env.teleport_cube(pos)
    return {"object": "cube", "from": old.tolist(), "to": pos.tolist()}
