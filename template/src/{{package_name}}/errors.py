"""Errors a stage reports to its user as one readable line and an exit code."""


class StageError(Exception):
    """A stage could not do its work; the message says what is wrong and how to fix it."""

    exit_code = 2


class DatasetError(StageError):
    """The dataset is missing or malformed."""


class ArtifactError(StageError):
    """An artifact an earlier stage should have written is missing or unreadable."""


class GateFailed(StageError):
    """The model is not good enough to ship: below the thresholds or worse than the champion."""

    exit_code = 1


class ParityError(StageError):
    """The ONNX model does not compute what the PyTorch model computes."""

    exit_code = 1
