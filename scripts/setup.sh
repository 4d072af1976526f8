#!/usr/bin/env bash
# Create .venv (if missing) and install lewm with every extra. CPU torch first, so pip never
# pulls a multi-GB CUDA build. Override the torch install with TORCH_SPEC (e.g. for a GPU machine).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/pip install --quiet "${TORCH_SPEC:-torch==2.13.0}"
.venv/bin/pip install --quiet -e ".[mujoco,tensorboard,dev]"
# Debian packages below are installed only when missing, as root; `apt-get update` runs once first.
APT_UPDATED=0
apt_install() {
  if [ "$APT_UPDATED" = 0 ]; then apt-get update -qq >/dev/null && APT_UPDATED=1; fi
  apt-get install -y -qq "$@" >/dev/null
}
# Headless MuJoCo rendering needs Mesa's EGL (or OSMesa). Install it when missing and we can.
if ! ldconfig -p 2>/dev/null | grep -q "libEGL_mesa.so\|libOSMesa.so"; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt_install libegl1 libegl-mesa0 libgl1-mesa-dri libopengl0 || \
      echo "warning: could not install Mesa EGL; Reacher/Cube rendering will report what is missing" >&2
  else
    echo "note: Mesa EGL/OSMesa not found; install libegl1 libegl-mesa0 (or libosmesa6) for Reacher/Cube" >&2
  fi
fi
# The report's browser test renders pages in the system Chromium (Debian's `chromium`); Playwright
# only drives it and never downloads a browser. Install it when missing and we can.
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt_install chromium || \
      echo "warning: could not install chromium; tests/test_report_browser.py will be skipped" >&2
  else
    echo "note: /usr/bin/chromium not found; install Debian's chromium for the report's browser test" >&2
  fi
fi
