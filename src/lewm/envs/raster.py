"""Resampling as matrices, so a whole render pipeline can be applied in one pass.

The reference environments draw a large frame and resize it (PushT: OpenCV
bilinear 512 -> 224, then PIL bilinear 224 -> S; TwoRoom: PIL bilinear
224 -> S). Both resizes are separable linear maps, ``out = M @ img @ M.T`` per
channel, with ``M`` of shape (S, N). Expressing them as matrices lets the
environments compute a frame at the target size directly and exactly (up to
the reference's intermediate uint8 rounding), and lets PushT update only the
rows and columns a moving object touches.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=32)
def pil_bilinear_matrix(n_in: int, n_out: int) -> np.ndarray:
    """PIL's ``Image.resize(..., BILINEAR)`` along one axis, as a matrix.

    PIL widens the triangle filter by the downscale ratio (it antialiases), so
    this is not a 2-tap interpolation. The weights are read off PIL itself by
    resizing an identity image in float mode.

    Returns:
        float32 (n_out, n_in), rows summing to 1; the identity when n_in == n_out.
    """
    if n_in == n_out:
        return np.eye(n_in, dtype=np.float32)
    from PIL import Image

    eye = Image.fromarray(np.eye(n_in, dtype=np.float32), mode="F")
    # Resizing only the width maps column j of the identity to row j of M.T.
    m = np.asarray(eye.resize((n_out, n_in), Image.Resampling.BILINEAR), dtype=np.float32).T
    m.setflags(write=False)
    return m


@lru_cache(maxsize=32)
def cv2_linear_matrix(n_in: int, n_out: int) -> np.ndarray:
    """OpenCV's ``cv2.resize(..., INTER_LINEAR)`` along one axis, as a matrix.

    OpenCV samples the source at ``(i + 0.5) * n_in / n_out - 0.5`` with two
    taps (no antialiasing when shrinking) and quantises the fractional weight
    to 1/2048; samples beyond the last pixel repeat the edge.

    Returns:
        float32 (n_out, n_in).
    """
    scale = n_in / n_out
    src = (np.arange(n_out) + 0.5) * scale - 0.5
    x0 = np.floor(src).astype(np.int64)
    frac = np.round((src - x0) * 2048.0) / 2048.0
    frac = np.where(x0 < 0, 0.0, frac)
    x0 = np.clip(x0, 0, n_in - 1)
    x1 = np.minimum(x0 + 1, n_in - 1)
    m = np.zeros((n_out, n_in), dtype=np.float64)
    rows = np.arange(n_out)
    np.add.at(m, (rows, x0), 1.0 - frac)
    np.add.at(m, (rows, x1), frac)
    m = m.astype(np.float32)
    m.setflags(write=False)
    return m


def column_bands(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each input index j, the output rows ``[lo[j], hi[j])`` where ``m[:, j] != 0``.

    Used to restrict a windowed update to the output rows it can change.
    """
    nz = m != 0
    any_nz = nz.any(axis=0)
    lo = np.where(any_nz, nz.argmax(axis=0), 0)
    hi = np.where(any_nz, m.shape[0] - nz[::-1].argmax(axis=0), 0)
    return lo.astype(np.int64), hi.astype(np.int64)


# OpenBLAS hands a product to all its threads once m*n*k exceeds ~2.6e5. For
# the small products of a render that is slower, and catastrophic when the
# cores are shared (collection workers, a busy machine: 10x measured), because
# its threads spin. Products are split so every BLAS call stays below that.
_SINGLE_THREAD_MNK = 1 << 17


def matmul_1t(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` (2-D) in column blocks small enough for single-threaded BLAS."""
    m, k = a.shape
    n = b.shape[1]
    per = max(8, _SINGLE_THREAD_MNK // max(m * k, 1))
    if per >= n:
        return a @ b
    out = np.empty((m, n), dtype=np.result_type(a, b))
    for j in range(0, n, per):
        out[:, j : j + per] = a @ b[:, j : j + per]
    return out


def apply_separable(m: np.ndarray, img: np.ndarray) -> np.ndarray:
    """``m @ img @ m.T`` on every channel of an (N, N, C) image.

    Returns:
        float32 (S, S, C).
    """
    h, w, c = img.shape
    x = img.astype(np.float32, copy=False)
    rows = (m @ x.reshape(h, w * c)).reshape(m.shape[0], w, c)  # (S, N, C)
    out = np.matmul(rows.transpose(0, 2, 1), m.T)  # (S, C, S)
    return out.transpose(0, 2, 1)


class WindowedResampler:
    """Apply ``m @ canvas @ m.T`` to a canvas that differs from a fixed one in small windows.

    The static canvas (background, walls, fixed overlays) is resampled once.
    Each frame then only pays for the windows where moving objects were drawn:
    ``out = base + m[:, rows] @ (canvas - static)[rows, cols] @ m[:, cols].T``,
    restricted to the output rows/columns those windows can reach.

    Args:
        static: uint8 (N, N, 3) canvas without the moving objects.
        m: float32 (S, N) resampling matrix (see the functions above).
    """

    def __init__(self, static: np.ndarray, m: np.ndarray):
        self.static = np.ascontiguousarray(static)
        self.m = np.ascontiguousarray(m, dtype=np.float32)
        self.base = apply_separable(self.m, self.static)  # (S, S, 3) float32
        self.lo, self.hi = column_bands(self.m)

    def render(self, canvas: np.ndarray, windows: list[tuple[int, int, int, int]]) -> np.ndarray:
        """Resample ``canvas`` given that it equals ``static`` outside ``windows``.

        Args:
            canvas: uint8 (N, N, 3), or a callable ``(r0, r1, c0, c1) -> uint8 (h, w, 3)``
                returning the canvas crop of a window.
            windows: disjoint ``(r0, r1, c0, c1)`` half-open index boxes.

        Returns:
            uint8 (S, S, 3), rounded.
        """
        out = self.base.copy()
        for r0, r1, c0, c1 in windows:
            if r1 <= r0 or c1 <= c0:
                continue
            crop = canvas(r0, r1, c0, c1) if callable(canvas) else canvas[r0:r1, c0:c1]
            delta = crop.astype(np.float32) - self.static[r0:r1, c0:c1]  # (h, w, 3)
            y0, y1 = int(self.lo[r0:r1].min()), int(self.hi[r0:r1].max())
            x0, x1 = int(self.lo[c0:c1].min()), int(self.hi[c0:c1].max())
            h, w = r1 - r0, c1 - c0
            my = self.m[y0:y1, r0:r1]  # (sy, h)
            mx = self.m[x0:x1, c0:c1]  # (sx, w)
            sy, sx = y1 - y0, x1 - x0
            rows = matmul_1t(my, delta.reshape(h, w * 3))  # (sy, w * 3)
            rows = rows.reshape(sy, w, 3).transpose(1, 0, 2).reshape(w, sy * 3)  # (w, sy * 3)
            upd = matmul_1t(mx, rows).reshape(sx, sy, 3)  # (sx, sy, 3)
            out[y0:y1, x0:x1] += upd.transpose(1, 0, 2)
        np.clip(out, 0.0, 255.0, out=out)
        return (out + 0.5).astype(np.uint8)


def merge_boxes(
    boxes: list[tuple[int, int, int, int]],
) -> list[tuple[int, int, int, int]]:
    """Merge overlapping ``(r0, r1, c0, c1)`` boxes until all are disjoint."""
    boxes = [b for b in boxes if b[1] > b[0] and b[3] > b[2]]
    merged = True
    while merged and len(boxes) > 1:
        merged = False
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                a, b = boxes[i], boxes[j]
                if a[0] < b[1] and b[0] < a[1] and a[2] < b[3] and b[2] < a[3]:
                    boxes[i] = (min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3]))
                    del boxes[j]
                    merged = True
                    break
            if merged:
                break
    return boxes
