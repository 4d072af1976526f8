"""Headless OpenGL backend selection for the MuJoCo environments (spec §8.5).

MuJoCo (and dm_control) read ``MUJOCO_GL`` once, when they are first imported,
so the backend must be chosen *before* either is imported. :func:`configure`
does that:

1. If ``MUJOCO_GL`` is set by the user, that backend is used (and checked).
2. Otherwise (on Linux) EGL is tried, then OSMesa; the first that can create an
   off-screen context is exported in ``MUJOCO_GL`` (and ``PYOPENGL_PLATFORM``).
   On macOS and Windows mujoco's own default (CGL / WGL) is kept.
3. If none works, :class:`RenderBackendError` says which system packages to
   install.

Each candidate is probed in a child Python process, so a broken driver that
would crash (or print an OpenGL traceback) is reported as a clear error
instead. The verdict is cached in the process and, through the
``LEWM_MUJOCO_GL_OK`` environment variable, in every worker process started
afterwards, so the probe (~1 s) runs once per command. If mujoco was already
imported without ``MUJOCO_GL`` (it then picked GLFW, which needs a display), its
context class is switched to the selected headless one.

:func:`new_renderer` and :func:`resize_frame` are the rendering helpers both
environments share.
"""

from __future__ import annotations

import ctypes.util
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from lewm.errors import LewmError

AUTO_CANDIDATES = ("egl", "osmesa")
# Values MuJoCo accepts for MUJOCO_GL on Linux (mujoco/rendering/classic/gl_context.py).
_VALID = ("egl", "osmesa", "glfw", "glx", "enable", "enabled", "on", "true", "1")
_OK_MARKER = "LEWM_MUJOCO_GL_OK"
_LIBRARIES = {"egl": "EGL", "osmesa": "OSMesa"}  # what each backend dlopens first
_PROBE_TIMEOUT_S = 120.0

INSTALL_HINTS = {
    "egl": "EGL (Mesa, works without a GPU): Debian/Ubuntu `apt-get install libegl1 libegl-mesa0 "
    "libgl1-mesa-dri libopengl0`; Fedora `dnf install mesa-libEGL mesa-dri-drivers`",
    "osmesa": "OSMesa: Debian/Ubuntu `apt-get install libosmesa6`; Fedora `dnf install mesa-libOSMesa`",
    "glfw": "GLFW needs a display (an X server or $DISPLAY); on a headless machine use MUJOCO_GL=egl or osmesa",
}

# A tiny scene rendered off-screen: proves the context *and* the renderer work.
_PROBE_SCRIPT = """
import mujoco
model = mujoco.MjModel.from_xml_string(
    '<mujoco><worldbody><light pos="0 0 1"/><geom type="sphere" size=".1"/></worldbody></mujoco>')
data = mujoco.MjData(model)
mujoco.mj_forward(model, data)
renderer = mujoco.Renderer(model, 16, 16)
renderer.update_scene(data)
pixels = renderer.render()
assert pixels.shape == (16, 16, 3) and pixels.any(), "rendered an empty frame"
renderer.close()
print("ok")
"""

_selected: str | None = None


class RenderBackendError(LewmError, RuntimeError):
    """No usable headless OpenGL backend for MuJoCo rendering."""


def _hints(backends: tuple[str, ...]) -> str:
    return "; ".join(INSTALL_HINTS.get(b, f"backend {b!r}") for b in backends)


def probe_backend(name: str, timeout: float = _PROBE_TIMEOUT_S) -> str | None:
    """Try to render with backend ``name`` in a child process.

    Returns:
        None if it works, otherwise a one-line reason (the child's last error line,
        or the signal that killed it).
    """
    library = _LIBRARIES.get(name)
    if library is not None and ctypes.util.find_library(library) is None:
        return f"system library lib{library} not found"
    env = dict(os.environ, MUJOCO_GL=name)
    if name in ("egl", "osmesa"):
        env["PYOPENGL_PLATFORM"] = name  # mujoco insists that the two agree
    else:
        env.pop("PYOPENGL_PLATFORM", None)
    env.pop(_OK_MARKER, None)
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _PROBE_SCRIPT],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return f"timed out after {timeout:.0f} s"
    if proc.returncode == 0 and proc.stdout.strip().endswith("ok"):
        return None
    if proc.returncode < 0:
        return f"crashed with signal {-proc.returncode}"
    lines = [ln.strip() for ln in proc.stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if "Error" in ln or "error" in ln]
    return (errors or lines or [f"exit code {proc.returncode}"])[-1]


def _export(name: str) -> None:
    os.environ["MUJOCO_GL"] = name
    if name in ("egl", "osmesa"):
        os.environ["PYOPENGL_PLATFORM"] = name
    os.environ[_OK_MARKER] = name


def configure(candidates: tuple[str, ...] = AUTO_CANDIDATES) -> str:
    """Choose the MuJoCo OpenGL backend for this process; idempotent.

    Best run before ``mujoco``/``dm_control``/``ogbench`` are imported (the
    MuJoCo environments call it in their constructors, before importing them).

    Args:
        candidates: backends tried in order when ``MUJOCO_GL`` is not set.

    Returns:
        The backend name now in ``MUJOCO_GL``.

    Raises:
        RenderBackendError: the user's backend does not work, no candidate
            works, or mujoco and PyOpenGL were already set up for another platform.
    """
    global _selected
    if _selected is not None:
        return _selected

    user = os.environ.get("MUJOCO_GL", "").strip().lower()
    if not sys.platform.startswith("linux"):
        # macOS (CGL) and Windows (WGL) render off-screen without a display: mujoco's own choice.
        _selected = user or "default"
        return _selected
    if user:
        if user in ("disable", "disabled", "off", "false", "0"):
            raise RenderBackendError(
                f"MUJOCO_GL={user!r} disables rendering, but the MuJoCo environments render "
                "frames; unset it (auto: EGL, then OSMesa) or set MUJOCO_GL=egl or osmesa"
            )
        if user not in _VALID:
            raise RenderBackendError(
                f"MUJOCO_GL={user!r} is not a MuJoCo backend; use egl or osmesa for headless "
                "rendering (or unset it to choose automatically)"
            )
        if os.environ.get(_OK_MARKER) != user:
            reason = probe_backend(user)
            if reason is not None:
                raise RenderBackendError(
                    f"MUJOCO_GL={user} was requested but cannot render ({reason}). "
                    f"Install: {_hints((user,))}; or unset MUJOCO_GL to try "
                    f"{' then '.join(candidates)} automatically"
                )
            os.environ[_OK_MARKER] = user
        _selected = user
        return user

    reasons = {}
    for name in candidates:
        reason = probe_backend(name)
        if reason is None:
            if "mujoco" in sys.modules:
                _switch_imported_mujoco(name)
            _export(name)
            _selected = name
            return name
        reasons[name] = reason
    tried = "; ".join(f"{k}: {v}" for k, v in reasons.items())
    raise RenderBackendError(
        f"no headless OpenGL backend works for MuJoCo rendering (tried {tried}). "
        f"Install one of: {_hints(tuple(candidates))}. Or set MUJOCO_GL to a backend that works."
    )


def _switch_imported_mujoco(name: str) -> None:
    """Point an already-imported mujoco at a headless context class.

    mujoco picks its ``GLContext`` when first imported (GLFW when ``MUJOCO_GL`` is
    unset, which needs a display). ``mujoco.Renderer`` looks the class up at
    construction time, so replacing it is enough, as long as PyOpenGL has not been
    initialised for another platform yet.
    """
    import importlib

    platform = os.environ.get("PYOPENGL_PLATFORM", "")
    if "OpenGL" in sys.modules and platform.lower() != name:
        raise RenderBackendError(
            f"mujoco and PyOpenGL were imported (PYOPENGL_PLATFORM={platform or '(unset)'}) before lewm "
            f"could select the headless backend {name!r}; set MUJOCO_GL={name} in the environment "
            "before starting Python, or create the lewm environment before importing mujoco"
        )
    os.environ["PYOPENGL_PLATFORM"] = name
    context_class = importlib.import_module(f"mujoco.{name}").GLContext
    gl_context = importlib.import_module("mujoco.rendering.classic.gl_context")
    gl_context.GLContext = context_class
    sys.modules["mujoco"].GLContext = context_class


@contextmanager
def render_errors(what: str) -> Iterator[None]:
    """Turn OpenGL failures while creating a renderer into a :class:`RenderBackendError`."""
    try:
        yield
    except RenderBackendError:
        raise
    except (ValueError, TypeError):
        raise  # our own argument errors (e.g. a frame larger than the buffer)
    except Exception as exc:  # EGLError, AttributeError from PyOpenGL, OSError, ImportError...
        backend = os.environ.get("MUJOCO_GL", "(unset)")
        raise RenderBackendError(
            f"{what}: MuJoCo could not create an OpenGL context with MUJOCO_GL={backend} "
            f"({type(exc).__name__}: {exc}). Install: {_hints((backend,) if backend in INSTALL_HINTS else AUTO_CANDIDATES)}"
        ) from exc


# -- renderers ---------------------------------------------------------------------------

_live_renderers: list = []  # weak references, closed before EGL tears its display down
_atexit_registered = False


def _close_live_renderers() -> None:
    for ref in _live_renderers:
        renderer = ref()
        if renderer is not None:
            try:
                renderer.close()
            except Exception:  # noqa: BLE001 - best effort at interpreter exit
                pass
    _live_renderers.clear()


def new_renderer(model, height: int, width: int, what: str):
    """Create a ``mujoco.Renderer`` with clear errors and a clean shutdown.

    The model's off-screen buffer is grown to fit. The renderer is closed at
    interpreter exit *before* MuJoCo's EGL display is terminated (atexit runs in
    reverse order), which avoids a screen of ``EGL_BAD_DISPLAY`` noise.
    """
    global _atexit_registered
    import atexit
    import weakref

    import mujoco

    configure()
    model.vis.global_.offwidth = max(int(model.vis.global_.offwidth), width)
    model.vis.global_.offheight = max(int(model.vis.global_.offheight), height)
    with render_errors(what):
        renderer = mujoco.Renderer(model, height=height, width=width)
    _live_renderers[:] = [r for r in _live_renderers if r() is not None]
    _live_renderers.append(weakref.ref(renderer))
    if not _atexit_registered:
        atexit.register(_close_live_renderers)  # registered after EGL's own atexit: runs first
        _atexit_registered = True
    return renderer


def resize_frame(frame, size: int):
    """Square uint8 (H, W, 3) frame -> (size, size, 3) with PIL bilinear (antialiased when shrinking).

    This is the reference wrapper's resize (spec §8); a no-op when the size already matches.
    """
    import numpy as np

    if frame.shape[0] == size and frame.shape[1] == size:
        return frame
    from PIL import Image

    return np.asarray(Image.fromarray(frame).resize((size, size), Image.BILINEAR), dtype=np.uint8)
