"""PushT geometry: the arena, the T block, poses and the success test (spec §8.2).

World units are pixels of the reference's 512 x 512 canvas, origin top left.
The block position is the body origin, the midpoint of the bar's top edge; the
centre of gravity is at local (0, 45).
"""

from __future__ import annotations

import math

import numpy as np

WORLD = 512
WALLS = (((5, 506), (5, 5)), ((5, 5), (506, 5)), ((506, 5), (506, 506)), ((5, 506), (506, 506)))
WALL_RADIUS = 2.0
AGENT_RADIUS = 15.0
BAR = ((-60.0, 30.0), (60.0, 30.0), (60.0, 0.0), (-60.0, 0.0))
STEM = ((-15.0, 30.0), (-15.0, 120.0), (15.0, 120.0), (15.0, 30.0))
BLOCK_COG = (0.0, 45.0)  # local centre of gravity: mean of the two boxes' centroids
SUCCESS_POS, SUCCESS_ANGLE = 20.0, math.pi / 9
TWO_PI = 2 * math.pi


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


def rotation(angle: float) -> np.ndarray:
    """(2, 2) matrix turning body-frame vectors by ``angle`` into the world frame."""
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s], [s, c]])


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
