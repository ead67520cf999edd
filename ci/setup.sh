#!/usr/bin/env bash
# Install everything the tests need, on a fresh machine or again on a prepared one.
# Python tools go into .venv (the `test` extra), npm tools into .tools/npm, Debian
# packages (podman, groovy, rsync, ...) need root. ci/tools.txt lists every tool and
# where it must come from.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv .venv
.venv/bin/python -m pip install --disable-pip-version-check -q --upgrade pip
.venv/bin/python -m pip install --disable-pip-version-check -q -e '.[test]'

# The interpreter the CI-engine tests' jobs build their venvs on (see the file's header).
python3 -m pip install --disable-pip-version-check -q -r ci/engine-job-requirements.txt

bash ci/setup-ci-engines.sh

if [ "$(id -u)" = 0 ]; then
    bash tests/container/setup-podman.sh
else
    echo "ci/setup.sh: not root: skipping the podman base image; container tests will fail" >&2
fi
