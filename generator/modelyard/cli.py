"""The `modelyard` command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .new import GenerationError, generate, parse_data


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelyard",
        description="Generate and maintain model repositories from the modelyard template.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    new = commands.add_parser("new", help="generate a new model repository")
    new.add_argument("destination", type=Path)
    new.add_argument(
        "--data", "-d", action="append", default=[], metavar="QUESTION=VALUE",
        help="answer a question (repeatable); see the README's table of questions",
    )
    new.add_argument(
        "--defaults", action="store_true",
        help="use the default answer of every question not given with --data",
    )
    new.add_argument("--template", help="template path or git URL (default: this checkout)")
    new.add_argument("--vcs-ref", help="template git ref to render (default: latest tag or HEAD)")
    new.set_defaults(handler=_cmd_new)
    return parser


def _cmd_new(args: argparse.Namespace) -> int:
    answers = parse_data(args.data)
    destination = generate(
        args.destination,
        answers,
        template=args.template,
        vcs_ref=args.vcs_ref,
        defaults=args.defaults,
        quiet=False,
    )
    print(f"generated {destination}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (GenerationError, FileNotFoundError) as error:
        print(f"modelyard: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
