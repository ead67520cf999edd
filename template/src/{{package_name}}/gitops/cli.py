"""`python -m <package> gitops`: what each environment runs, changed the GitOps way.

- `set-image --env dev --image REPO@sha256:...` writes an image digest (and the model
  version and metrics digest it carries) into that environment's overlay.
- `promote --from dev --to staging` copies exactly what one environment runs to the next;
  promoting into the last environment (prod) also records the promoted model's evaluation
  as its profile's champion (deploy/champions/<profile>.json), in the same commit, so that
  later runs of that profile are gated against what production runs.
- `show` prints what every environment runs; `seed` fills an empty GitOps config repository
  with this repository's deploy/.

Without --push they edit deploy/ in the current directory (try it, review the diff). With
--push they commit the change to the repository Argo CD reads and push it, rebasing and
retrying when another deploy pushed first (gitops/repo.py). Argo CD then syncs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from .. import MODEL_NAME, artifacts, champion
from ..errors import StageError
from . import build, settings
from .build import Build
from .overlay import (
    NEVER_DEPLOYED,
    ImageReference,
    Overlay,
    OverlayError,
    Release,
    check_environment_name,
    overlay_environments,
)
from .repo import DEPLOY_TRAILER, Workspace, cloned, deploy_commit, publish, worktree

DEFAULT_EXPORT_JSON = f"{artifacts.ARTIFACTS_DIR}/{artifacts.EXPORT}"
DEFAULT_IMAGE_ENV = f"{artifacts.ARTIFACTS_DIR}/{artifacts.IMAGE_DOTENV}"


class GitOpsError(StageError):
    """A deploy or promotion that cannot be done as asked."""


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return args.handler(args)


# --- commands -------------------------------------------------------------------------


def set_image(args: argparse.Namespace) -> int:
    check_environment_name(args.env)
    reference = args.image
    if reference is None:
        reference = _image_from_env_file(Path(args.image_env))
    image = ImageReference.parse(reference)
    if image.digest == NEVER_DEPLOYED:
        raise GitOpsError(
            "the all-zero digest marks an environment that was never deployed: give the digest "
            "push-image wrote"
        )
    model_version, metrics_digest, evaluation = _provenance(args)
    this_build = Build.parse(args.build) if args.build else build.current()
    release = Release(
        image=image,
        model_version=model_version,
        metrics_digest=metrics_digest,
        build=this_build,
        evaluation=evaluation,
    )
    if args.push:
        deployed = deploy_commit(Path.cwd())
        if deployed is not None:
            # A CI system that ignores [skip ci] (Jenkins) built the deploy commit itself: its
            # model is the one the build before deployed. Deploying it again would make
            # another deploy commit, and another build: a loop.
            print(
                f"this build's commit {deployed[:12]} is a deploy commit (it only changed "
                f"{args.deploy_dir}/): nothing new to deploy to {args.env}"
            )
            return 0

    def keep_newer(running: Release) -> str | None:
        if args.allow_older or this_build is None or running.build is None:
            return None
        if not running.build.newer_than(this_build):
            return None
        return (
            f"{args.env} runs {running.image} of build {running.build}, newer than this build "
            f"{this_build}: left as it is (--allow-older deploys an older build on purpose)"
        )

    return _apply(
        args,
        args.env,
        lambda deploy_dir: release,
        lambda written: f"Deploy {MODEL_NAME} {written.model_version} to {args.env}",
        keep_newer,
    )


def promote(args: argparse.Namespace) -> int:
    source, target = args.source, args.target
    order = list(settings.ENVIRONMENTS)
    for environment in (source, target):
        check_environment_name(environment)
        if environment not in order:
            raise GitOpsError(
                f"{environment!r} is not in the promotion order {' -> '.join(order)} "
                "(ENVIRONMENTS in gitops/settings.py)"
            )
    following = order[order.index(source) + 1 : order.index(source) + 2]
    if following != [target]:
        # One step at a time: every environment runs an image before the next one does.
        raise GitOpsError(
            f"promotion moves an image one step along {' -> '.join(order)}, not from {source} "
            f"to {target}: to roll an environment back or fix it by hand, set-image the digest "
            "it should run"
        )

    def release_of_source(deploy_dir: Path) -> Release:
        release = Overlay(deploy_dir, source).read()
        if not release.deployed:
            raise GitOpsError(
                f"{source} has never been deployed (its overlay holds the all-zero digest): "
                f"nothing to promote to {target}"
            )
        return release

    def title(release: Release) -> str:
        return f"Promote {MODEL_NAME} {release.model_version} from {source} to {target}"

    def record_champion(root: Path, release: Release) -> list[Path]:
        """Into the last environment: the promoted model becomes its profile's champion."""
        if target != order[-1] or release.evaluation is None:
            return []
        evaluation = release.evaluation
        path = champion.champion_file(evaluation["profile"], root / args.deploy_dir)
        record = champion.Champion(
            accuracy=float(evaluation["accuracy"]),
            profile=evaluation["profile"],
            family=evaluation["family"],
            data_sha256=evaluation["data_sha256"],
            metrics_digest=release.metrics_digest,
            recorded_by=champion.RECORDED_BY_PROMOTION,
            model_version=release.model_version,
            image=str(release.image),
        )
        if not champion.write(path, record):
            return []
        print(
            f"recorded accuracy {record.accuracy:.4f} as the {record.profile} champion in "
            f"{path.relative_to(root)}"
        )
        return [path.relative_to(root)]

    # A promotion is a person's decision: it copies what the source runs, whatever the target
    # ran before (an older build included, which is how a rollback is promoted).
    return _apply(
        args, target, release_of_source, title, lambda running: None, also=record_champion
    )


def show(args: argparse.Namespace) -> int:
    with _readable_root(args) as root:
        deploy_dir = root / args.deploy_dir
        present = overlay_environments(deploy_dir)
        if not present:
            raise OverlayError(f"no overlays under {deploy_dir / 'overlays'}")
        order = list(settings.ENVIRONMENTS)
        ordered = [env for env in order if env in present]
        ordered += [env for env in present if env not in order]
        rows = [("environment", "image", "model version", "metrics digest")]
        for environment in ordered:
            release = Overlay(deploy_dir, environment).read()
            image = str(release.image) if release.deployed else "(never deployed)"
            rows.append((environment, image, release.model_version, release.metrics_digest))
        widths = [max(len(row[column]) for row in rows) for column in range(3)]
        for *padded, last in rows:
            cells = [cell.ljust(width) for cell, width in zip(padded, widths, strict=True)]
            print("  ".join([*cells, last]))
    return 0


def seed(args: argparse.Namespace) -> int:
    url = args.repo or os.environ.get("GITOPS_REPO_URL") or _config_repo_url()
    if not url:
        raise GitOpsError(
            "seed fills a separate GitOps config repository, and this repository deploys to "
            "itself (GITOPS_MODE same-repo): pass --repo URL to seed one anyway"
        )
    local = Path(args.deploy_dir)
    if not local.is_dir():
        raise GitOpsError(f"{local} does not exist here: run seed from the model repository")

    def copy_deploy_dir(root: Path) -> list[Path]:
        if (root / args.deploy_dir).exists():
            raise GitOpsError(
                f"the config repository already has {args.deploy_dir}/: seed only fills an "
                "empty one; change it with set-image, promote or a reviewed commit"
            )
        shutil.copytree(local, root / args.deploy_dir)
        return [Path(args.deploy_dir)]

    with cloned(url, args.branch) as workspace:
        message = f"Seed {args.deploy_dir}/ of {MODEL_NAME} from its model repository\n"
        commit = publish(workspace, copy_deploy_dir, message, attempts=args.attempts)
        print(f"seeded {args.deploy_dir}/ into {workspace.branch} of {workspace.label}: {commit}")
    return 0


# --- shared steps ---------------------------------------------------------------------


def _apply(
    args: argparse.Namespace,
    environment: str,
    release_for: Callable[[Path], Release],
    title: Callable[[Release], str],
    keep: Callable[[Release], str | None],
    also: Callable[[Path, Release], list[Path]] = lambda root, release: [],
) -> int:
    """Write a release into `environment`'s overlay: here, or committed and pushed.
    `also` writes what goes into the same commit (a champion), relative to the root.

    `release_for` reads what to write from the deploy/ tree being changed, once: a retry
    after a concurrent push writes this same release again and never re-reads a source
    overlay that moved meanwhile. `keep` looks at what the environment runs and gives a
    reason to leave it as it is, or None; after a concurrent push it looks again.
    """
    if not args.push:
        deploy_dir = Path(args.deploy_dir)
        release = release_for(deploy_dir)
        overlay = Overlay(deploy_dir, environment)
        reason = keep(overlay.read())
        if reason:
            print(reason)
            return 0
        changed = overlay.write(release)
        print(f"{environment} {'now runs' if changed else 'already runs'} {release.describe()}")
        also(Path("."), release)
        return 0
    with _pushable_workspace(args) as workspace:
        release = release_for(workspace.root / args.deploy_dir)
        kept: list[str] = []

        def edit(root: Path) -> list[Path]:
            overlay = Overlay(root / args.deploy_dir, environment)
            kept[:] = [reason] if (reason := keep(overlay.read())) else []
            if kept:
                return []
            written = [overlay.path.relative_to(root)] if overlay.write(release) else []
            return written + also(root, release)

        message = _message(title(release), release, environment)
        commit = publish(workspace, edit, message, attempts=args.attempts)
        where = f"{workspace.branch} of {workspace.label}"
        if commit is None:
            unchanged = f"{environment} already runs {release.describe()}: nothing to push"
            print(kept[0] if kept else unchanged)
        else:
            print(f"{environment} now runs {release.describe()}")
            print(f"pushed {commit[:12]} to {where}")
    return 0


def _message(title: str, release: Release, environment: str) -> str:
    lines = [
        title,
        "",
        f"image: {release.image}",
        f"model version: {release.model_version}",
        f"metrics digest: {release.metrics_digest}",
    ]
    if settings.GITOPS_MODE == "same-repo":
        # The deploy commit lands in the model repository itself: it must not start the
        # pipeline that made it (GitHub Actions and GitLab CI honour this marker; Jenkins
        # does not, and set-image recognises the trailer below instead).
        lines += ["", "[skip ci]"]
    return "\n".join([*lines, "", f"{DEPLOY_TRAILER}: {environment}"]) + "\n"


def _config_repo_url() -> str | None:
    if settings.GITOPS_MODE == "config-repo":
        return settings.GITOPS_REPO_URL
    return None


@contextlib.contextmanager
def _pushable_workspace(args: argparse.Namespace) -> Iterator[Workspace]:
    url = args.repo or os.environ.get("GITOPS_REPO_URL") or _config_repo_url()
    if url:
        with cloned(url, args.branch) as workspace:
            yield workspace
    else:
        with worktree(Path.cwd(), args.branch) as workspace:
            yield workspace


@contextlib.contextmanager
def _readable_root(args: argparse.Namespace) -> Iterator[Path]:
    if args.repo:
        with cloned(args.repo, args.branch) as workspace:
            yield workspace.root
    else:
        yield Path.cwd()


def _provenance(args: argparse.Namespace) -> tuple[str, str, dict[str, Any] | None]:
    """Model version, metrics digest and the evaluation: from the flags, else from
    export.json (flags carry no evaluation)."""
    if args.model_version is not None and args.metrics_digest is not None:
        return args.model_version, args.metrics_digest, None
    path = Path(args.export_json)
    if not path.is_file():
        raise GitOpsError(
            f"pass --model-version and --metrics-digest, or run the export stage first "
            f"({path} is missing)"
        )
    try:
        exported = json.loads(path.read_text(encoding="utf-8"))
        model_version = (
            exported["model_version"] if args.model_version is None else args.model_version
        )
        metrics_digest = (
            exported["metrics_digest"] if args.metrics_digest is None else args.metrics_digest
        )
    except (ValueError, KeyError, TypeError) as error:
        raise GitOpsError(
            f"{path} has no model_version and metrics_digest ({error}): run the export stage "
            "again or pass --model-version and --metrics-digest"
        ) from None
    evaluation = exported.get("evaluation")
    if evaluation is not None:
        evaluation = champion.evaluation_facts(evaluation, f"{path}'s evaluation")
    return str(model_version), str(metrics_digest), evaluation


def _image_from_env_file(path: Path) -> str:
    """IMAGE_REF from the dotenv push-image writes (artifacts/image.env)."""
    if not path.is_file():
        raise GitOpsError(
            f"pass --image REPOSITORY@sha256:..., or run push-image first ({path} is missing)"
        )
    for line in path.read_text(encoding="utf-8").splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "IMAGE_REF" and value.strip():
            return value.strip()
    raise GitOpsError(f"{path} has no IMAGE_REF=... line: run push-image again or pass --image")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"python -m {__package__} gitops",
        description="Change which image each environment runs, the GitOps way: edit its "
        "Kustomize overlay and (with --push) commit and push it for Argo CD to sync.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler: Callable[[argparse.Namespace], int], text: str):
        sub = commands.add_parser(name, help=text, description=text)
        sub.set_defaults(handler=handler)
        return sub

    set_image_parser = command(
        "set-image", set_image, "deploy an image, by digest, to one environment"
    )
    set_image_parser.add_argument("--env", required=True, help="environment, e.g. dev")
    set_image_parser.add_argument(
        "--image",
        help=f"REPOSITORY@sha256:<64 hex> (default: IMAGE_REF in {DEFAULT_IMAGE_ENV})",
    )
    set_image_parser.add_argument("--image-env", default=DEFAULT_IMAGE_ENV, help=argparse.SUPPRESS)
    set_image_parser.add_argument(
        "--model-version", help=f"recorded as an annotation (default: from {DEFAULT_EXPORT_JSON})"
    )
    set_image_parser.add_argument(
        "--metrics-digest", help=f"recorded as an annotation (default: from {DEFAULT_EXPORT_JSON})"
    )
    set_image_parser.add_argument(
        "--export-json", default=DEFAULT_EXPORT_JSON, help="written by the export stage"
    )
    set_image_parser.add_argument(
        "--build",
        help="the CI build deploying, SYSTEM-NUMBER (default: read from the CI's own variables)",
    )
    set_image_parser.add_argument(
        "--allow-older",
        action="store_true",
        help="deploy even if the environment runs a newer build (a rollback by hand)",
    )
    _add_target_arguments(set_image_parser)

    promote_parser = command(
        "promote", promote, "give one environment exactly the image another one runs"
    )
    promote_parser.add_argument("--from", dest="source", required=True, help="e.g. dev")
    promote_parser.add_argument("--to", dest="target", required=True, help="e.g. staging")
    _add_target_arguments(promote_parser)

    show_parser = command("show", show, "print the image every environment runs")
    show_parser.add_argument("--repo", help="read a clone of this repository instead of ./")
    _add_location_arguments(show_parser)

    seed_parser = command(
        "seed", seed, "copy deploy/ into an empty GitOps config repository and push it"
    )
    seed_parser.add_argument(
        "--repo", help="config repository URL (default: $GITOPS_REPO_URL, else gitops/settings.py)"
    )
    _add_location_arguments(seed_parser)
    _add_attempts_argument(seed_parser)
    return parser


def _add_location_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--deploy-dir",
        default=settings.DEPLOY_DIR,
        help="the Kustomize tree, relative to the repository root (default: %(default)s)",
    )
    parser.add_argument(
        "--branch",
        default=os.environ.get("GITOPS_BRANCH", settings.GITOPS_BRANCH),
        help="branch Argo CD follows (default: $GITOPS_BRANCH, else %(default)s)",
    )


def _add_attempts_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--attempts",
        type=int,
        default=5,
        help="pushes to try when other deploys keep pushing first (default: %(default)s)",
    )


def _add_target_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--push",
        action="store_true",
        help="commit the change to the repository Argo CD reads and push it (CI deploy jobs); "
        "without it, edit deploy/ here",
    )
    parser.add_argument(
        "--repo",
        help="with --push: clone this URL and push there (default: $GITOPS_REPO_URL, else the "
        "config repository in gitops/settings.py, else this checkout's origin)",
    )
    _add_location_arguments(parser)
    _add_attempts_argument(parser)
