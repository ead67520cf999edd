#!/usr/bin/env bash
# The test command: set up (idempotent), then run pytest with any arguments given.
# pytest exits 5 when it collected nothing; that fails this script like any other error.
set -euo pipefail
cd "$(dirname "$0")/.."
ci/setup.sh
# The tools the set-up installed come first, so that nothing installed by hand elsewhere
# on this machine is found instead (tests/test_tools.py checks where each one resolves).
PATH="$PWD/.venv/bin:$PWD/.tools/npm/node_modules/.bin:$PATH"
export PATH
exec .venv/bin/python -m pytest "$@"
