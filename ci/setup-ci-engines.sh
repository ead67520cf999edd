#!/usr/bin/env bash
# Install the external tools of ci/tools.txt that pip does not: Debian packages (apt, as
# root) and npm packages (into .tools/npm, never globally). pip's tools come with the
# `test` extra into .venv (ci/setup.sh). ci/test.sh puts .venv/bin and .tools/npm's bin
# folder first on PATH; tests/ci_tools.py resolves every tool from exactly these places.
# Idempotent: every step checks first, so a second run takes a second or two.
set -euo pipefail

cd "$(dirname "$0")/.."

manifest=ci/tools.txt
npm_prefix=.tools/npm

log() { printf 'setup-ci-engines: %s\n' "$*" >&2; }

packages_from() {  # the PACKAGE column of the manifest's rows with SOURCE $1
    awk -v source="$1" '!/^#/ && NF == 3 && $2 == source { print $3 }' "$manifest"
}

install_apt_packages() {
    local missing=() package
    while read -r package; do
        if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$package")
        fi
    done < <(packages_from apt)
    if ((${#missing[@]} == 0)); then
        log "apt packages already installed"
        return
    fi
    if [[ "$(id -u)" != 0 ]]; then
        log "not root: cannot apt-get install ${missing[*]}; the tests that run them will fail"
        return
    fi
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    # policy-rc.d 101: packages must not start their services (docker-registry would);
    # the tests start the registry they need themselves and stop it again.
    local policy=/usr/sbin/policy-rc.d created_policy=0
    if [[ ! -e "$policy" ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        created_policy=1
    fi
    apt-get install -y -q --no-install-recommends "${missing[@]}"
    if ((created_policy)); then
        rm -f "$policy"
    fi
}

install_npm_packages() {
    local missing=() spec name version
    while read -r spec; do
        name="${spec%@*}"
        version="${spec##*@}"
        local installed="$npm_prefix/node_modules/$name/package.json"
        if [[ ! -f "$installed" ]] || ! grep -q "\"version\": \"$version\"" "$installed"; then
            missing+=("$spec")
        fi
    done < <(packages_from npm)
    if ((${#missing[@]} == 0)); then
        log "npm packages already installed in $npm_prefix"
        return
    fi
    if ! command -v npm >/dev/null; then
        log "npm is missing: cannot install ${missing[*]}; the tests that run them will fail"
        return
    fi
    log "installing ${missing[*]} into $npm_prefix"
    mkdir -p "$npm_prefix"
    npm install --prefix "$npm_prefix" --no-save --no-fund --no-audit --loglevel=error \
        "${missing[@]}"
}

install_apt_packages
install_npm_packages
