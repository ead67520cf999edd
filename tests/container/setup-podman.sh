#!/usr/bin/env bash
# Prepare this machine for the container tests (tests/test_container.py), as root: build
# the base image localhost/python:3.11-slim from Debian's packages, because no registry
# can be pulled from here. podman, mmdebstrap and Debian's docker-registry come from
# ci/tools.txt (ci/setup-ci-engines.sh); the tests start and stop the registry they push
# to themselves (tests/registry.py). Idempotent: a second run takes a second.
# podman reads our own settings through CONTAINERS_CONF / CONTAINERS_STORAGE_CONF; the
# tests point at the same files (see tests/container/).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export CONTAINERS_CONF="$here/containers.conf"
export CONTAINERS_STORAGE_CONF="$here/storage.conf"

base_image="localhost/python:3.11-slim"

log() { printf 'setup-podman: %s\n' "$*" >&2; }

if [[ "$(id -u)" != 0 ]]; then
    log "run me as root (rootful podman needs it)"
    exit 1
fi

require_tools() {
    local name
    for name in podman mmdebstrap; do
        if ! command -v "$name" >/dev/null; then
            log "$name is missing: run ci/setup-ci-engines.sh as root first (ci/setup.sh does)"
            exit 1
        fi
    done
}

build_base_image() {
    if podman image exists "$base_image"; then
        log "$base_image already built"
        return
    fi
    log "building $base_image from Debian bookworm packages"
    # The same layout as the official python:3.11-slim where our Dockerfile relies on it:
    # `python` on PATH, pip allowed to install (no EXTERNALLY-MANAGED), no docs.
    # The merged-usr hook lays out /usr the way Debian 12 does without installing the
    # usrmerge package (and 45 MB of perl it pulls in). The customize hooks get the root
    # folder as $1, so they are single-quoted on purpose.
    local build_log
    build_log="$(mktemp)"
    # shellcheck disable=SC2016
    if ! mmdebstrap --variant=minbase --quiet \
        --aptopt='APT::Install-Recommends "false"' \
        --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
        --dpkgopt='path-exclude=/usr/share/doc/*' \
        --dpkgopt='path-exclude=/usr/share/man/*' \
        --dpkgopt='path-exclude=/usr/share/locale/*' \
        --include=python3,python3-venv,python3-pip,ca-certificates \
        --customize-hook='ln -sf python3 "$1/usr/bin/python"' \
        --customize-hook='rm -f "$1"/usr/lib/python3.*/EXTERNALLY-MANAGED' \
        bookworm - \
        'deb http://deb.debian.org/debian bookworm main' \
        'deb http://deb.debian.org/debian bookworm-updates main' \
        'deb http://deb.debian.org/debian-security bookworm-security main' \
        2>"$build_log" \
        | podman import --quiet \
            --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            --change 'ENV LANG=C.UTF-8' \
            --change 'CMD ["python3"]' \
            --message "Debian bookworm python3 (mmdebstrap), stand-in for python:3.11-slim" \
            - "$base_image" >/dev/null; then
        cat "$build_log" >&2
        log "could not build $base_image (mmdebstrap output above)"
        exit 1
    fi
    rm -f "$build_log"
    log "built $base_image"
}

require_tools
build_base_image
# The official python:3.12-slim cannot be pulled here and bookworm ships only Python 3.11,
# so the 3.12 build is not exercised; its Dockerfile is still linted with hadolint.
log "ready: CONTAINERS_CONF=$CONTAINERS_CONF CONTAINERS_STORAGE_CONF=$CONTAINERS_STORAGE_CONF"
