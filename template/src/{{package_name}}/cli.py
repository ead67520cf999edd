"""Command line: `python -m <package> <stage> [options]`.

Each stage is one command so that a CI job is one line and runs the same way on a laptop.
Stage modules are imported only when their command runs: `serve` must never pull in
torch, and `--help` must stay instant.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from .errors import StageError

DEFAULT_CONFIG = "configs/default.yaml"


def _add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", "-c", default=DEFAULT_CONFIG, help="profile to run (default: %(default)s)"
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override one config value, e.g. --set train.epochs=1 (repeatable)",
    )


def _load(args: argparse.Namespace):
    from .config import load_config

    return load_config(args.config, args.overrides)


def _cmd_train(args: argparse.Namespace) -> int:
    from . import pipeline

    pipeline.run_train(_load(args))
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from . import evaluate

    evaluate.run(_load(args))
    return 0


def _cmd_accept_champion(args: argparse.Namespace) -> int:
    from . import evaluate

    evaluate.accept_champion(_load(args))
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from . import export

    export.run(_load(args))
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    from . import verify

    verify.run(_load(args))
    return 0


def _cmd_pipeline(args: argparse.Namespace) -> int:
    from . import pipeline

    pipeline.run(_load(args))
    return 0


def _cmd_data_synthesize(args: argparse.Namespace) -> int:
    from . import data

    data.write_synthetic(_load(args), args.out)
    return 0


def _cmd_data_pull(args: argparse.Namespace) -> int:
    from . import datasets

    datasets.run(_load(args))
    return 0


def _cmd_data_download(args: argparse.Namespace) -> int:
    from pathlib import Path

    args.dataset.download(Path(args.out), args.url)
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from .serve import server

    return server.main(args.serve_args)


def _cmd_build_image(args: argparse.Namespace) -> int:
    from . import image

    image.build(args.builder, args.tag)
    return 0


def _cmd_push_image(args: argparse.Namespace) -> int:
    from . import image

    image.push(args.builder, args.tag)
    return 0


def _cmd_gitops(args: argparse.Namespace) -> int:
    from . import gitops

    return gitops.main(args.gitops_args)


def _cmd_ci_setup(args: argparse.Namespace) -> int:
    from . import ci_setup

    return ci_setup.main(args.ci_setup_args)


# Stages with a parser of their own: everything after the stage name goes to them.
PASS_THROUGH = {
    "serve": (_cmd_serve, "serve_args"),
    "gitops": (_cmd_gitops, "gitops_args"),
    "ci-setup": (_cmd_ci_setup, "ci_setup_args"),
}
PASS_THROUGH_HELP = {
    "serve": "serve model.onnx over the Open Inference Protocol (onnxruntime only)",
    "gitops": "set-image / promote / show / seed: the image each environment runs (Argo CD)",
    "ci-setup": "github: protected environments with required reviewers (needs gh)",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"python -m {__package__}",
        description="Model lifecycle stages: train -> evaluate -> export -> verify -> serve.",
    )
    stages = parser.add_subparsers(dest="stage", required=True, metavar="STAGE")

    def stage(name: str, handler: Callable[[argparse.Namespace], int], help_text: str):
        sub = stages.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    for name, handler, help_text in (
        ("train", _cmd_train, "train the model; writes checkpoint, metrics.json and plots"),
        ("evaluate", _cmd_evaluate, "held-out metrics and the quality gate (exit 1 if it fails)"),
        ("export", _cmd_export, "export the checkpoint to ONNX with metadata"),
        (
            "verify",
            _cmd_verify,
            "ONNX vs PyTorch parity at several batch sizes (exit 1 on mismatch)",
        ),
        (
            "pipeline",
            _cmd_pipeline,
            "train -> evaluate -> export -> verify, in order, as CI runs them",
        ),
        (
            "accept-champion",
            _cmd_accept_champion,
            "record the evaluated metrics as the new champion",
        ),
    ):
        _add_config_arguments(stage(name, handler, help_text))

    data = stages.add_parser("data", help="make or fetch datasets")
    data_commands = data.add_subparsers(dest="data_command", required=True, metavar="COMMAND")
    synth = data_commands.add_parser(
        "synthesize", help="write the seeded synthetic dataset as .npz"
    )
    synth.set_defaults(handler=_cmd_data_synthesize)
    _add_config_arguments(synth)
    synth.add_argument("--out", default="data/synthetic.npz")
    pull = data_commands.add_parser(
        "pull", help="fetch the profile's dataset with DVC (or check the local copy)"
    )
    pull.set_defaults(handler=_cmd_data_pull)
    _add_config_arguments(pull)
    from .families import FAMILY_MODULES, get_family

    for family_name in FAMILY_MODULES:
        for dataset in get_family(family_name).public_datasets:
            download = data_commands.add_parser(
                f"download-{dataset.name}",
                help=f"download {dataset.description} (needs internet)",
            )
            download.set_defaults(handler=_cmd_data_download, dataset=dataset)
            download.add_argument("--out", default=dataset.default_out)
            download.add_argument("--url", help="fetch from this mirror instead (checked the same)")

    for name, handler, help_text in (
        ("build-image", _cmd_build_image, "build the serving image (no torch) from artifacts/"),
        ("push-image", _cmd_push_image, "push the image; write its digest to artifacts/"),
    ):
        image_stage = stage(name, handler, help_text)
        image_stage.add_argument(
            "--builder",
            choices=("buildah", "podman", "docker"),
            help="image builder (default: $IMAGE_BUILDER, else buildah, podman, docker on PATH)",
        )
        image_stage.add_argument(
            "--tag", help="image tag (default: the short git commit); give push-image the same"
        )

    # Listed for `--help`; main() hands everything after their name to their own parser.
    for name, (handler, field) in PASS_THROUGH.items():
        sub = stages.add_parser(name, help=PASS_THROUGH_HELP[name], add_help=False)
        sub.set_defaults(handler=handler)
        sub.add_argument(field, nargs=argparse.REMAINDER)
    return parser


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else list(argv)
    if arguments[:1] and arguments[0] in PASS_THROUGH:
        # These stages parse their own flags (`--help` included); argparse.REMAINDER
        # cannot capture arguments that start with "-", so hand them over whole.
        handler, field = PASS_THROUGH[arguments[0]]
        args = argparse.Namespace(handler=handler, **{field: arguments[1:]})
    else:
        args = build_parser().parse_args(arguments)
    try:
        return args.handler(args)
    except StageError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        return 130
