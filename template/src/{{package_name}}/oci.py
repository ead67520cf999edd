"""Container image references, by the OCI distribution grammar: the one definition here.

`reference := [domain "/"] path [":" tag] ["@" digest]`, as the distribution project's
reference package defines it (docker, podman, Kubernetes and Kustomize all parse it so).
The domain is a host name of one or more dot-separated components with an optional
port: `registry:5000/models/x` and `localhost/x` have one, `models/x` has none (the
runtime then means Docker Hub). copier.yml validates the template's `image_repository`
answer with a copy of REPOSITORY, which the template's tests hold equal to this one.
"""

from __future__ import annotations

import re

_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
DOMAIN = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*(?::[0-9]+)?"
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
# A repository: where an image is pushed, without tag or digest.
REPOSITORY = rf"(?:{DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
DIGEST = r"sha256:[0-9a-f]{64}"
# Registries refuse longer repository names.
REPOSITORY_MAX_LENGTH = 255

REPOSITORY_PATTERN = re.compile(REPOSITORY)
TAG_PATTERN = re.compile(TAG)
DIGEST_PATTERN = re.compile(DIGEST)
# A whole reference; the digest part is matched loosely, for a precise error about it.
REFERENCE_PATTERN = re.compile(
    rf"(?P<repository>{REPOSITORY})(?::(?P<tag>{TAG}))?(?:@(?P<digest>[^@]*))?"
)


def is_repository(text: str) -> bool:
    return len(text) <= REPOSITORY_MAX_LENGTH and REPOSITORY_PATTERN.fullmatch(text) is not None


def registry_host(repository: str) -> str:
    """The registry a repository lives in, as a container runtime decides it: the first
    component when it looks like a host (a dot, a port, or `localhost`), else Docker Hub."""
    first, _, rest = repository.partition("/")
    if rest and (first == "localhost" or "." in first or ":" in first):
        return first
    return "docker.io"
