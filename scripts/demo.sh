#!/usr/bin/env bash
# Set up (idempotent) and run the one-command demo. Extra arguments go to `lewm demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec .venv/bin/lewm demo "$@"
