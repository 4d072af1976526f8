"""Headless MuJoCo backend selection (lewm.envs.mujoco_gl): a bad ``MUJOCO_GL`` is one clear
error, no working backend names the packages to install, and the automatic choice renders
even when ``mujoco`` was imported first. Each case runs in a fresh interpreter, because the
backend is fixed at import."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytest.importorskip("dm_control")


def _run_python(code: str, **env_overrides) -> subprocess.CompletedProcess:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("MUJOCO_GL", "PYOPENGL_PLATFORM", "LEWM_MUJOCO_GL_OK")
    }
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )


def test_bad_backend_is_a_clear_error():
    proc = _run_python(
        "from lewm.envs.reacher import ReacherEnv; ReacherEnv(image_size=8)", MUJOCO_GL="vulkan"
    )
    assert proc.returncode != 0
    assert (
        "RenderBackendError" in proc.stderr
        and "MUJOCO_GL='vulkan' is not a MuJoCo backend" in proc.stderr
    )


def test_cli_reports_a_bad_backend_and_writes_nothing(tmp_path):
    out = tmp_path / "x.h5"
    cmd = [sys.executable, "-m", "lewm", "collect", "--env", "reacher", "--policy", "random"]
    cmd += ["--episodes", "1", "--image-size", "8", "--out", str(out), "--no-progress"]
    env = {
        k: v for k, v in os.environ.items() if k not in ("PYOPENGL_PLATFORM", "LEWM_MUJOCO_GL_OK")
    }
    proc = subprocess.run(
        cmd, env={**env, "MUJOCO_GL": "vulkan"}, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: MUJOCO_GL='vulkan'") and "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_no_working_backend_names_the_packages():
    code = (
        "from lewm.envs import mujoco_gl as g\n"
        "g.probe_backend = lambda name, timeout=0: f'{name} is broken'\n"
        "try:\n"
        "    g.configure()\n"
        "except g.RenderBackendError as e:\n"
        "    print(e)\n"
    )
    proc = _run_python(code)
    assert proc.returncode == 0, proc.stderr
    assert "egl: egl is broken; osmesa: osmesa is broken" in proc.stdout
    assert "libegl1 libegl-mesa0" in proc.stdout and "libosmesa6" in proc.stdout


def test_auto_selection_exports_a_working_backend():
    code = (
        "import os\n"
        "from lewm.envs.reacher import ReacherEnv\n"
        "e = ReacherEnv(image_size=8, render_size=8); e.reset(seed=0); e.render(); e.close()\n"
        "print(os.environ['MUJOCO_GL'])\n"
    )
    proc = _run_python(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() in ("egl", "osmesa")
    assert "Traceback" not in proc.stderr and "EGL_BAD" not in proc.stderr  # clean shutdown


def test_mujoco_imported_first_still_renders_headless():
    """mujoco picks GLFW when imported without MUJOCO_GL; the env switches it to a headless backend."""
    code = (
        "import mujoco\n"
        "from lewm.envs.reacher import ReacherEnv\n"
        "e = ReacherEnv(image_size=8, render_size=8); e.reset(seed=0)\n"
        "assert e.render().std() > 0\n"
        "e.close()\n"
    )
    proc = _run_python(code, DISPLAY="")
    assert proc.returncode == 0, proc.stderr
