#!/usr/bin/env bash
# Create .venv (if missing) and install lewm with every extra. CPU torch first, so pip never
# pulls a multi-GB CUDA build. Override the torch install with TORCH_SPEC (e.g. for a GPU machine).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/pip install --quiet --upgrade pip >/dev/null 2>&1 || true
.venv/bin/pip install --quiet "${TORCH_SPEC:-torch==2.13.0}"
.venv/bin/pip install --quiet -e ".[mujoco,tensorboard,dev]"
