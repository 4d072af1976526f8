"""PushT frames: the reference's drawing pipeline without pygame or OpenCV.

The reference draws a 512 canvas with pygame, resizes it with OpenCV-bilinear
to 224 and then with PIL-bilinear to the requested size. Here shapes are drawn
with PIL at 512 and the two resizes are applied as one (S x 512) matrix, only
over the windows the block and the agent cover (see ``lewm.envs.raster``).
"""

from __future__ import annotations

import math

import numpy as np

from lewm.envs.pusht.geometry import (
    AGENT_RADIUS,
    BAR,
    STEM,
    WALL_RADIUS,
    WALLS,
    WORLD,
    local_to_world,
)
from lewm.envs.raster import (
    WindowedResampler,
    cv2_linear_matrix,
    merge_boxes,
    pil_bilinear_matrix,
)

CANVAS_224 = 224
GOAL_OVERLAY_POSE = (256.0, 256.0, math.pi / 4)  # fixed light-green T, unrelated to the goal

# pygame colour names used by the reference
WHITE = (255, 255, 255)
LIGHT_GREEN = (144, 238, 144)
LIGHT_GRAY = (211, 211, 211)
ROYAL_BLUE = (65, 105, 225)
LIGHT_SLATE_GRAY = (119, 136, 153)


def lighten(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """The reference's fill colour: 1.2 x the base colour, capped at 255, truncated."""
    return tuple(int(min(np.float32(1.2) * np.float32(c), 255.0)) for c in rgb)


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


def draw_block(draw, pose, color) -> None:
    """Filled light polygons with a 4-px outline in the base colour."""
    fill = lighten(color)
    for poly in (BAR, STEM):
        pts = local_to_world(pose, poly)
        draw.polygon([_ipt(p) for p in pts], fill=fill)
        for i in range(len(pts)):
            _fat_segment(draw, pts[i], pts[(i + 1) % len(pts)], 2.0, color)


def draw_agent(draw, xy, color) -> None:
    _disk(draw, xy, AGENT_RADIUS, color)
    _disk(draw, xy, AGENT_RADIUS - 4, lighten(color))


class FrameRenderer:
    """Reference-pipeline frames of one size: 512 canvas -> cv2 224 -> PIL S."""

    _cache: dict[int, FrameRenderer] = {}

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
    def get(cls, size: int) -> FrameRenderer:
        if size not in cls._cache:
            cls._cache[size] = cls(size)
        return cls._cache[size]

    def frame(self, agent_xy, block_pose, agent_color, block_color) -> np.ndarray:
        """uint8 (S, S, 3) frame of the agent and the block over the static scene."""
        from PIL import ImageDraw

        canvas = self.static_image.copy()
        draw = ImageDraw.Draw(canvas)
        draw_block(draw, block_pose, block_color)
        draw_agent(draw, agent_xy, agent_color)
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
