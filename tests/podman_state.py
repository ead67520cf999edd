"""Leave podman's storage as the test session found it.

The container and CI-engine tests build images (serving, training, each engine's push),
and gitlab-ci-local runs every job in containers with two volumes each. One run of
tests/test_ci_engines.py leaves about 16 GB behind: the images, 25 exited containers and
18 volumes. gitlab-ci-local means to remove its own, but it asks `podman rm -vf` for all
of a job's containers at once, and podman 4.3 (Debian bookworm) then removes none of them
when one is already gone, still exiting 0. A machine that runs the suite a few times
fills its disk, and CI runs on such a machine.

So the session records what is in podman's storage when it starts and removes what was
added when it ends: containers first (they hold volumes and images), then volumes, then
images, children before parents. Only the controlling process does this (not pytest-xdist
workers), once every worker is done, so that no test loses an image while it runs.
A session that was killed cleans up nothing; the next one first removes what such a
session leaves and nothing else makes: gitlab-ci-local's `gcl-*` volumes with their
stopped containers, and images tagged for a registry on 127.0.0.1 (the tests' own,
tests/registry.py, which lives only as long as its session).
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
from pathlib import Path

from ci_tools import tool

SETTINGS = Path(__file__).resolve().parent / "container"
# Our podman settings (tests/container/): every podman the tests start reads them.
PODMAN_ENV = {
    "CONTAINERS_CONF": str(SETTINGS / "containers.conf"),
    "CONTAINERS_STORAGE_CONF": str(SETTINGS / "storage.conf"),
}
# Removing a few hundred objects one at a time takes seconds; a stuck podman must not
# hold up the end of the session for long.
PODMAN_TIMEOUT_S = 120


def _podman() -> str | None:
    """podman where ci/tools.txt says it is installed, or None on a machine without it."""
    try:
        return tool("podman")
    except AssertionError:
        return None


def _run(podman: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [podman, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **PODMAN_ENV},
        timeout=PODMAN_TIMEOUT_S,
        check=False,
    )


def _ids(podman: str, *args: str) -> list[str]:
    result = _run(podman, *args)
    return result.stdout.split() if result.returncode == 0 else []


def _image_ids(podman: str) -> list[str]:
    return _ids(podman, "images", "--all", "--no-trunc", "--format", "{{.ID}}")


@dataclasses.dataclass(frozen=True)
class PodmanState:
    """The full ids of the containers, volumes and images in podman's storage."""

    containers: frozenset[str]
    volumes: frozenset[str]
    images: frozenset[str]

    @classmethod
    def now(cls, podman: str) -> PodmanState:
        return cls(
            containers=frozenset(_ids(podman, "ps", "--all", "--no-trunc", "--quiet")),
            volumes=frozenset(_ids(podman, "volume", "ls", "--quiet")),
            images=frozenset(_image_ids(podman)),
        )


def record() -> PodmanState | None:
    """What podman holds now, after removing what killed sessions left; None where podman
    is not installed."""
    podman = _podman()
    if podman is None:
        return None
    _remove_left_by_killed_sessions(podman)
    return PodmanState.now(podman)


def _remove_left_by_killed_sessions(podman: str) -> None:
    volumes = _ids(podman, "volume", "ls", "--quiet", "--filter", "name=^gcl-")
    for volume in volumes:
        for container in _ids(podman, "ps", "--all", "--quiet", "--filter", f"volume={volume}"):
            _run(podman, "rm", "--volumes", container)  # not --force: a running one stays
        _run(podman, "volume", "rm", volume)
    tagged = _ids(podman, "images", "--format", "{{.ID}} {{.Repository}}")
    loopback = {
        image
        for image, repository in zip(tagged[::2], tagged[1::2], strict=True)
        if repository.startswith("127.0.0.1:")
    }
    for image in sorted(loopback):
        _run(podman, "rmi", image)
    if loopback:  # the builder stages of those images, now dangling
        _run(podman, "image", "prune", "--force")


def remove_added_since(before: PodmanState) -> list[str]:
    """Remove what was added since `before`; return what could not be removed."""
    podman = _podman()
    if podman is None:
        return []
    after = PodmanState.now(podman)
    leftovers = []
    # One container per call: with several, podman 4.3 removes none if one is missing.
    for container in sorted(after.containers - before.containers):
        if _run(podman, "rm", "--force", "--volumes", container).returncode != 0:
            leftovers.append(f"container {container}")
    for volume in sorted(after.volumes - before.volumes):
        if _run(podman, "volume", "rm", "--force", volume).returncode != 0:
            leftovers.append(f"volume {volume}")
    leftovers += _remove_images(podman, after.images - before.images)
    return leftovers


def _remove_images(podman: str, added: frozenset[str]) -> list[str]:
    """Remove `added` images. One with children cannot go before them (and removing a
    child may take its untagged parents along), so each round tries every image left,
    until nothing is left or a round removes nothing."""
    remaining = set(added)
    while remaining:
        for image in sorted(remaining):
            _run(podman, "rmi", "--force", image)
        still_there = remaining.intersection(_image_ids(podman))
        if still_there == remaining:
            break
        remaining = still_there
    return [f"image {image}" for image in sorted(remaining)]
