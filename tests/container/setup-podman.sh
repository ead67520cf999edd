#!/usr/bin/env bash
# Prepare this machine for the container tests (tests/test_container.py), as root:
#   1. install podman and its helpers, mmdebstrap and Debian's docker-registry (apt-get);
#   2. build the base image localhost/python:3.11-slim from Debian's packages, because no
#      registry can be pulled from here;
#   3. start a plain-HTTP registry on 127.0.0.1:5000 for the push / pull-by-digest test.
# Idempotent: each step checks whether it is already done, so a second run takes seconds.
# podman reads our own settings through CONTAINERS_CONF / CONTAINERS_STORAGE_CONF; the
# tests point at the same files (see tests/container/).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export CONTAINERS_CONF="$here/containers.conf"
export CONTAINERS_STORAGE_CONF="$here/storage.conf"

base_image="localhost/python:3.11-slim"
registry_address="127.0.0.1:5000"
registry_log="/var/log/modelyard-registry.log"
packages=(podman runc netavark aardvark-dns catatonit iptables mmdebstrap skopeo docker-registry)

log() { printf 'setup-podman: %s\n' "$*" >&2; }

if [[ "$(id -u)" != 0 ]]; then
    log "run me as root (apt-get, rootful podman and the registry need it)"
    exit 1
fi

install_packages() {
    local missing=()
    local package
    for package in "${packages[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$package")
        fi
    done
    if ((${#missing[@]} == 0)); then
        log "packages already installed"
        return
    fi
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    # policy-rc.d 101: packages must not start their services; we start the registry
    # ourselves, with our own configuration, below.
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

registry_answers() {
    python3 - "$registry_address" <<'PY'
import sys
import urllib.request

try:
    urllib.request.urlopen(f"http://{sys.argv[1]}/v2/", timeout=2)
except Exception:
    sys.exit(1)
PY
}

start_registry() {
    if registry_answers; then
        log "registry already answers on $registry_address"
        return
    fi
    log "starting docker-registry on $registry_address (log: $registry_log)"
    mkdir -p /var/lib/modelyard-registry
    setsid docker-registry serve "$here/registry.yml" >>"$registry_log" 2>&1 </dev/null &
    for _ in $(seq 50); do
        if registry_answers; then
            log "registry is up"
            return
        fi
        sleep 0.2
    done
    log "docker-registry did not answer on $registry_address after 10 s; see $registry_log"
    exit 1
}

install_packages
build_base_image
start_registry
# The official python:3.12-slim cannot be pulled here and bookworm ships only Python 3.11,
# so the 3.12 build is not exercised; its Dockerfile is still linted with hadolint.
log "ready: CONTAINERS_CONF=$CONTAINERS_CONF CONTAINERS_STORAGE_CONF=$CONTAINERS_STORAGE_CONF"
