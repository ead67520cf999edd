#!/usr/bin/env bash
# The test command: set up (idempotent), then run pytest with any arguments given.
# pytest exits 5 when it collected nothing; that fails this script like any other error.
set -euo pipefail
cd "$(dirname "$0")/.."
ci/setup.sh
exec .venv/bin/python -m pytest "$@"
