"""`modelyard render-ci`: write the CI files emitted from ci/pipeline.yml into template/.

Each file's name carries a Copier condition so that a generated repository gets only the
CI systems its `ci_systems` answer names. `--check` compares instead of writing and fails
when a committed file differs from a fresh emit (someone edited the output, or the spec
changed without a re-render).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from . import emit_approvals, emit_github, emit_gitlab, emit_jenkins
from .paths import TEMPLATE_DIR
from .pipeline import PIPELINE_SPEC, Pipeline, load_pipeline

GITHUB_DIR = "{% if 'github' in ci_systems %}.github{% endif %}/workflows"

# template-relative path -> emitter
TARGETS: dict[str, Callable[[Pipeline], str]] = {
    f"{GITHUB_DIR}/ci.yml.jinja": emit_github.emit_ci,
    f"{GITHUB_DIR}/release.yml.jinja": emit_github.emit_release,
    # No promotion workflow when dev is the only environment.
    f"{GITHUB_DIR}/{{% if environments | length > 1 %}}promote.yml{{% endif %}}.jinja": (
        emit_github.emit_promote
    ),
    "{% if 'gitlab' in ci_systems %}.gitlab-ci.yml{% endif %}.jinja": emit_gitlab.emit,
    "{% if 'jenkins' in ci_systems %}Jenkinsfile{% endif %}.jinja": emit_jenkins.emit,
    # Plain Python, copied as it is (no .jinja suffix).
    "src/{{package_name}}/approvals.py": emit_approvals.emit,
}


class StaleCIError(Exception):
    """The CI files in template/ differ from a fresh emit of ci/pipeline.yml."""


def emitted_files(pipeline: Pipeline) -> dict[str, str]:
    return {path: emit(pipeline) for path, emit in TARGETS.items()}


def render_ci(
    check: bool = False, spec: Path = PIPELINE_SPEC, template_dir: Path = TEMPLATE_DIR
) -> list[str]:
    """Write (or with check, compare) every emitted file; return the stale ones' paths."""
    stale = []
    for relative, text in emitted_files(load_pipeline(spec)).items():
        target = template_dir / relative
        current = target.read_text(encoding="utf-8") if target.is_file() else None
        if current == text:
            continue
        stale.append(relative)
        if not check:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
    if stale and check:
        raise StaleCIError(
            f"{len(stale)} CI file(s) in {template_dir.name}/ differ from {spec.name}: "
            f"{', '.join(stale)}; run `modelyard render-ci` and commit the result"
        )
    return stale
