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

# Stand-ins for the images the generated .gitlab-ci.yml declares, under their exact names,
# so that gitlab-ci-local runs each job in its own image as a GitLab docker runner does
# (tests/README.md lists them). Built from Debian bookworm and uv's PyPI wheel; what the
# real image has and a job relies on must be here too, and nothing more:
# - the uv image (Debian's full bookworm with python3.11, git and uv): every job's image;
# - gitlab-ci-local's helper image, which copies artifacts in and out (bash, rsync).
uv_image="ghcr.io/astral-sh/uv:python3.11-bookworm"
helper_image="docker.io/firecow/gitlab-ci-local-util:latest"
uv_binary="$here/../../.venv/bin/uv"

# debian_image NAME PACKAGES [mmdebstrap options...]: a minbase bookworm with PACKAGES.
debian_image() {
    local name="$1" packages="$2"
    shift 2
    if podman image exists "$name"; then
        log "$name already built"
        return
    fi
    log "building $name from Debian bookworm packages"
    local build_log
    build_log="$(mktemp)"
    if ! mmdebstrap --variant=minbase --quiet \
        --aptopt='APT::Install-Recommends "false"' \
        --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
        --dpkgopt='path-exclude=/usr/share/doc/*' \
        --dpkgopt='path-exclude=/usr/share/man/*' \
        --dpkgopt='path-exclude=/usr/share/locale/*' \
        --include="$packages" "$@" \
        bookworm - \
        'deb http://deb.debian.org/debian bookworm main' \
        'deb http://deb.debian.org/debian bookworm-updates main' \
        'deb http://deb.debian.org/debian-security bookworm-security main' \
        2>"$build_log" \
        | podman import --quiet \
            --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            --change 'ENV LANG=C.UTF-8' \
            --change 'CMD ["/bin/sh"]' \
            --message "Debian bookworm ($packages): stand-in for $name" \
            - "$name" >/dev/null; then
        cat "$build_log" >&2
        log "could not build $name (mmdebstrap output above)"
        exit 1
    fi
    rm -f "$build_log"
    log "built $name"
}

build_gitlab_images() {
    if [[ ! -x "$uv_binary" ]]; then
        log "$uv_binary is missing: run ci/setup.sh (it installs the test extra first)"
        exit 1
    fi
    # shellcheck disable=SC2016
    debian_image "$uv_image" python3,python3-venv,git,ca-certificates,openssh-client,curl \
        --customize-hook="copy-in $uv_binary /usr/local/bin" \
        --customize-hook='rm -f "$1"/usr/lib/python3.*/EXTERNALLY-MANAGED'
    debian_image "$helper_image" bash,rsync
}

require_tools
# The same layout as the official python:3.11-slim where our Dockerfile relies on it:
# `python` on PATH, pip allowed to install (no EXTERNALLY-MANAGED), no docs. The
# merged-usr hook lays out /usr the way Debian 12 does without installing the usrmerge
# package (and 45 MB of perl it pulls in). The customize hooks get the root folder as $1,
# so they are single-quoted on purpose.
# shellcheck disable=SC2016
debian_image "$base_image" python3,python3-venv,python3-pip,ca-certificates \
    --customize-hook='ln -sf python3 "$1/usr/bin/python"' \
    --customize-hook='rm -f "$1"/usr/lib/python3.*/EXTERNALLY-MANAGED'
build_gitlab_images
# The official python:3.12-slim cannot be pulled here and bookworm ships only Python 3.11,
# so the 3.12 build is not exercised; its Dockerfile is still linted with hadolint.
log "ready: CONTAINERS_CONF=$CONTAINERS_CONF CONTAINERS_STORAGE_CONF=$CONTAINERS_STORAGE_CONF"
