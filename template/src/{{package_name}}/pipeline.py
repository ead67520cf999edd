"""data -> train -> evaluate -> export -> verify, in order, as CI runs them, stopping at a
failure (`data` pulls the profile's dataset with DVC, datasets.py).

A failed quality gate stops the pipeline before export, so an ungated model never becomes
an ONNX file. Prints each stage's name and wall time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from .config import Config
from .errors import StageError

Stage = tuple[str, Callable[[Config], Any]]


def run_train(config: Config) -> dict[str, Any]:
    """The train stage: here (or under torchrun), or, with `train.launcher: cluster`, as a
    Kubeflow Trainer TrainJob whose output lands in the same artifacts folder. Launching
    imports no torch: a CI job that only launches may install none."""
    if config.train.launcher == "cluster":
        from . import trainjob

        return trainjob.run(config)
    from . import train

    return train.run(config)


def stages() -> list[Stage]:
    """The local pipeline; imported here so `python -m <package> --help` stays fast."""
    from . import datasets, evaluate, export, verify

    return [
        ("data", datasets.run),
        ("train", run_train),
        ("evaluate", evaluate.run),
        ("export", export.run),
        ("verify", verify.run),
    ]


def run(config: Config) -> list[tuple[str, float]]:
    return run_stages(config, stages())


def run_stages(config: Config, pipeline: Sequence[Stage]) -> list[tuple[str, float]]:
    """Run the stages in order; re-raise the first StageError after saying where it stopped."""
    timings: list[tuple[str, float]] = []
    for name, stage in pipeline:
        print(f"==> {name}", flush=True)
        started = time.perf_counter()
        try:
            stage(config)
        except StageError:
            elapsed = time.perf_counter() - started
            remaining = [later for later, _ in pipeline[len(timings) + 1 :]]
            print(
                f"<== {name} FAILED after {elapsed:.1f} s; not run: "
                f"{', '.join(remaining) or 'nothing'}",
                flush=True,
            )
            raise
        timings.append((name, time.perf_counter() - started))
        print(f"<== {name} done in {timings[-1][1]:.1f} s", flush=True)
    print("pipeline passed: " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in timings))
    print(f"total {sum(seconds for _, seconds in timings):.1f} s")
    return timings
