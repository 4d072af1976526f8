#!/usr/bin/env bash
# Set up (idempotent) and run the whole test suite on the CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
.venv/bin/ruff check src tests benchmarks
.venv/bin/python -m pytest tests "$@"
