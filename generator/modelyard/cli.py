"""The `modelyard` command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .demo import DemoError, run_demo
from .docs import StaleDocsError, update_readme
from .new import GenerationError, generate, parse_data
from .paths import checkout_root
from .pipeline import PipelineError
from .release import describe
from .render_ci import StaleCIError, render_ci
from .update import UpdateError, update
from .venv import InstallError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelyard",
        description="Generate and maintain model repositories from the modelyard template.",
        # Keeps the --version line whole.
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version",
        action="version",
        version=describe(),
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    new = commands.add_parser("new", help="generate a new model repository")
    new.add_argument("destination", type=Path)
    _add_answer_arguments(new)
    new.add_argument(
        "--defaults",
        action="store_true",
        help="use the default answer of every question not given with --data",
    )
    new.add_argument(
        "--vcs-ref",
        help="template git ref to render (default: the bundled release; from a wheel, another "
        "ref is fetched from the template's URL)",
    )
    new.set_defaults(handler=_cmd_new)

    demo = commands.add_parser(
        "demo",
        help="generate a repo with default answers, install it in its own venv and run its "
        "local pipeline, tests and one HTTP inference",
    )
    demo.add_argument("destination", type=Path, nargs="?", default=Path("build/fraud-detector"))
    _add_answer_arguments(demo)
    demo.set_defaults(handler=_cmd_demo)

    upgrade = commands.add_parser(
        "update",
        help="copier update a generated repository; exit 1 if it left conflicts to resolve",
    )
    upgrade.add_argument("destination", type=Path, nargs="?", default=Path("."))
    upgrade.add_argument("--vcs-ref", help="template git ref to update to (default: latest tag)")
    upgrade.add_argument(
        "--trust",
        action="store_true",
        help="run the template's _migrations (Copier's --trust); needed for updates across a "
        "release that renames or moves files",
    )
    upgrade.set_defaults(handler=_cmd_update)

    docs = commands.add_parser("docs", help="regenerate the README's table of questions")
    docs.add_argument("--check", action="store_true", help="exit 1 when the table is stale")
    docs.set_defaults(handler=_cmd_docs)

    ci = commands.add_parser(
        "render-ci", help="emit the CI pipelines in template/ from ci/pipeline.yml"
    )
    ci.add_argument("--check", action="store_true", help="exit 1 when they are stale")
    ci.set_defaults(handler=_cmd_render_ci)
    return parser


def _add_answer_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        "-d",
        action="append",
        default=[],
        metavar="QUESTION=VALUE",
        help="answer a question (repeatable); see the README's table of questions",
    )
    parser.add_argument(
        "--template",
        help="template path or git URL (default: the template bundled with this modelyard, "
        "whose URL and release tag are recorded for updates; in a checkout, the checkout)",
    )


def _cmd_new(args: argparse.Namespace) -> int:
    destination = generate(
        args.destination,
        parse_data(args.data),
        template=args.template,
        vcs_ref=args.vcs_ref,
        defaults=args.defaults,
        quiet=False,
    )
    print(f"generated {destination}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    answers = {"project_name": "Fraud Detector", **parse_data(args.data)}
    run_demo(args.destination, answers, template=args.template)
    return 0


def _cmd_update(args: argparse.Namespace) -> int:
    try:
        update(args.destination, vcs_ref=args.vcs_ref, trust=args.trust)
    except UpdateError as error:
        print(f"modelyard: {error}", file=sys.stderr)
        return 1
    print(f"updated {args.destination}")
    return 0


def _cmd_docs(args: argparse.Namespace) -> int:
    try:
        stale = update_readme(check=args.check)
    except StaleDocsError as error:
        print(f"modelyard: {error}", file=sys.stderr)
        return 1
    print("README table of questions " + ("updated" if stale else "is up to date"))
    return 0


def _cmd_render_ci(args: argparse.Namespace) -> int:
    checkout_root("render-ci")
    try:
        stale = render_ci(check=args.check)
    except (StaleCIError, PipelineError) as error:
        print(f"modelyard: {error}", file=sys.stderr)
        return 1
    print(f"CI files: {len(stale)} rewritten" if stale else "CI files are up to date")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (GenerationError, FileNotFoundError, InstallError, DemoError) as error:
        print(f"modelyard: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
