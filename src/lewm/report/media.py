"""Images as data URIs, shrunk so a report stays small (< ~15 MB for a demo run).

A GIF over ``max_bytes`` or ``max_frames`` is re-encoded keeping every k-th frame
(always the last one: a failure's red border is on it) with durations scaled by k,
then halved in size (nearest neighbour) until it fits. PNGs over ``max_bytes`` are
scaled down the same way.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

GIF_MAX_BYTES = 900_000
GIF_MAX_FRAMES = 60
PNG_MAX_BYTES = 1_500_000


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _frames(path: Path):
    from PIL import Image, ImageSequence

    with Image.open(path) as im:
        frames = [f.convert("RGB") for f in ImageSequence.Iterator(im)]
        durations = [
            f.info.get("duration", im.info.get("duration", 100)) for f in ImageSequence.Iterator(im)
        ]
    return frames, durations


def _encode_gif(frames, durations) -> bytes:
    from PIL import Image

    # Octree quantisation: several times faster than Pillow's default median cut, and exact
    # for the few-colour frames of our episode videos.
    frames = [f.quantize(256, method=Image.Quantize.FASTOCTREE) for f in frames]
    buf = io.BytesIO()
    frames[0].save(
        buf, format="GIF", save_all=True, append_images=frames[1:], duration=durations, loop=0
    )
    return buf.getvalue()


def _halve(frame, scale: int):
    from PIL import Image

    size = (max(1, frame.width // scale), max(1, frame.height // scale))
    return frame.resize(size, Image.NEAREST)


def shrink_gif(
    path: Path, max_bytes: int = GIF_MAX_BYTES, max_frames: int = GIF_MAX_FRAMES
) -> tuple[bytes, str]:
    """GIF bytes within the limits, and a note on what was done ("" if untouched)."""
    raw = path.read_bytes()
    frames, durations = _frames(path)
    n_frames = len(frames)
    if len(raw) <= max_bytes and n_frames <= max_frames:
        return raw, ""
    step = max(1, -(-n_frames // max_frames))  # ceil
    keep = list(range(0, n_frames, step))
    if keep[-1] != n_frames - 1:
        keep.append(n_frames - 1)
    frames = [frames[i] for i in keep]
    durations = [int(durations[i]) * step for i in keep]
    notes = [f"1 frame in {step}"] if step > 1 else []
    # Guess the halvings from the bytes per frame (GIF size ~ pixels), then check by encoding.
    estimate, scale = len(raw) * len(keep) / max(1, n_frames), 1
    while estimate > max_bytes and frames[0].width // (2 * scale) >= 64:
        estimate, scale = estimate / 4, scale * 2
    while True:
        small = [_halve(f, scale) for f in frames] if scale > 1 else frames
        data = _encode_gif(small, durations)
        if len(data) <= max_bytes or frames[0].width // (2 * scale) < 64:
            break
        scale *= 2
    if scale > 1:
        notes.append(f"1/{scale} size")
    return data, ("downsampled: " + ", ".join(notes)) if notes else ""


def gif_uri(path: Path) -> tuple[str, str]:
    """(data URI, downsampling note)."""
    data, note = shrink_gif(path)
    return data_uri(data, "image/gif"), note


def png_uri(path: Path, max_bytes: int = PNG_MAX_BYTES) -> str:
    """A PNG file as a data URI, scaled down (by halves) if it is over ``max_bytes``."""
    from PIL import Image

    data = path.read_bytes()
    with Image.open(path) as im:
        im.verify()  # a damaged file fails here, not as a broken image in the browser
    if len(data) <= max_bytes:
        return data_uri(data, "image/png")
    with Image.open(path) as im:
        im = im.convert("RGBA")
        while len(data) > max_bytes and im.width > 200:
            im = im.resize((im.width // 2, im.height // 2), Image.LANCZOS)
            buf = io.BytesIO()
            im.save(buf, format="PNG", optimize=True)
            data = buf.getvalue()
    return data_uri(data, "image/png")
