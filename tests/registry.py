"""A plain-HTTP container registry on loopback, for tests that push and pull by digest.

Debian's docker-registry (ci/tools.txt) runs with its storage in a temporary folder on a
free port of 127.0.0.1, and is stopped when the test session ends, also when a test fails
or the run is interrupted: nothing is left listening afterwards.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import yaml

from modelyard.probe import free_port

from ci_tools import tool, tool_env
from podman_state import PODMAN_ENV

MANIFEST_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json, "
    "application/vnd.oci.image.manifest.v1+json"
)
START_TIMEOUT_S = 15


@dataclasses.dataclass(frozen=True)
class Registry:
    address: str  # HOST:PORT, the registry part of an image reference

    def _manifest_request(
        self, repository: str, digest: str, method: str
    ) -> urllib.request.Request:
        name = repository.removeprefix(f"{self.address}/")
        return urllib.request.Request(
            f"http://{self.address}/v2/{name}/manifests/{digest}",
            method=method,
            headers={"Accept": MANIFEST_TYPES},
        )

    def has(self, repository: str, digest: str) -> bool:
        """Whether the registry serves manifest `digest` of `repository` (a pull by digest)."""
        try:
            with urllib.request.urlopen(
                self._manifest_request(repository, digest, "HEAD"), timeout=10
            ) as reply:
                return reply.status == 200
        except urllib.error.HTTPError:
            return False

    def manifest_digest(self, repository: str, digest: str) -> str:
        """The digest the registry itself reports for the manifest (its hash is checked)."""
        request = self._manifest_request(repository, digest, "GET")
        with urllib.request.urlopen(request, timeout=10) as reply:
            body = reply.read()
            header = reply.headers["Docker-Content-Digest"]
        assert header == "sha256:" + hashlib.sha256(body).hexdigest()
        return header

    def push_local(self, image: str, name: str) -> None:
        """Copy `image` from this machine's podman storage to `name` here (a base image a
        build inside a CI job pulls through a docker.io mirror pointed at this registry)."""
        subprocess.run(
            [tool("podman"), "push", "--quiet", "--tls-verify=false", image,
             f"{self.address}/{name}"],
            check=True,
            env={**tool_env(), **PODMAN_ENV},
            capture_output=True,
        )  # fmt: skip

    def answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.address}/v2/", timeout=2) as reply:
                return reply.status == 200
        except OSError:
            return False


@contextlib.contextmanager
def running_registry(folder: Path) -> Iterator[Registry]:
    """Start docker-registry with its storage under `folder`; stop it on the way out."""
    registry = Registry(f"127.0.0.1:{free_port()}")
    config = folder / "registry.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "version": 0.1,
                "log": {"level": "warn"},
                "storage": {"filesystem": {"rootdirectory": str(folder / "storage")}},
                "http": {"addr": registry.address},
            }
        )
    )
    log = (folder / "registry.log").open("w")
    process = subprocess.Popen(
        [tool("docker-registry"), "serve", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not registry.answers():
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"docker-registry did not answer on {registry.address}:\n"
                    + (folder / "registry.log").read_text()
                )
            time.sleep(0.1)
        yield registry
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
