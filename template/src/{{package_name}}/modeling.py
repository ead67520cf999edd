"""The PyTorch side shared by the stages: device, seeding, checkpoint, batched inference."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from . import artifacts
from .config import Config, ConfigError, ModelConfig
from .errors import ArtifactError
from .families import InputEncoder, get_family

CHECKPOINT_FORMAT = 1


def resolve_device(requested: str) -> torch.device:
    """`auto` takes CUDA when there is a GPU; asking for `cuda` without one is an error."""
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device is 'cuda' but no CUDA GPU is available: use auto or cpu")
    return torch.device(requested)


def make_deterministic(seed: int) -> None:
    """Same seed and data -> same numbers: seed torch and forbid nondeterministic kernels."""
    # cuBLAS needs this set before its first use to be deterministic (PyTorch docs,
    # "Reproducibility"); harmless on CPU.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    model: nn.Module
    model_config: ModelConfig
    class_names: tuple[str, ...]
    # What turns stored examples into this model's input (a text model's tokenizer).
    encoder: InputEncoder


def checkpoint_path(config: Config) -> Path:
    return config.artifacts / artifacts.CHECKPOINT


def save_checkpoint(
    path: Path,
    model: nn.Module,
    model_config: ModelConfig,
    class_names: tuple[str, ...],
    encoder: InputEncoder,
) -> None:
    """Weights plus everything needed to rebuild the model, and its encoder, without the
    config file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "format": CHECKPOINT_FORMAT,
            "model_config": dataclasses.asdict(model_config),
            "class_names": list(class_names),
            "encoder_state": encoder.state(),
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        },
        path,
    )


def load_checkpoint(config: Config, needed_by: str) -> Checkpoint:
    """The trained model in eval mode on CPU; checks it was trained for `config.model`."""
    path = checkpoint_path(config)
    artifacts.require(path, needed_by, "train", config.source)
    try:
        # weights_only: a checkpoint holds tensors and plain data, never code to run.
        saved: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
        model_config = ModelConfig(
            family=saved["model_config"]["family"],
            input_shape=tuple(saved["model_config"]["input_shape"]),
            num_classes=saved["model_config"]["num_classes"],
            # Checkpoints of earlier releases have no arch: the family's default.
            arch=saved["model_config"].get("arch"),
            hparams=dict(saved["model_config"]["hparams"]),
        )
        class_names = tuple(saved["class_names"])
        encoder_state = saved.get("encoder_state")
        state_dict = saved["state_dict"]
    except (OSError, RuntimeError, KeyError, TypeError, ValueError) as error:
        raise ArtifactError(
            f"{path} is not a readable checkpoint ({error}): train again"
        ) from error
    if dataclasses.asdict(model_config) != dataclasses.asdict(config.model):
        raise ArtifactError(
            f"{path} was trained for model {dataclasses.asdict(model_config)}, but "
            f"{config.source} describes {dataclasses.asdict(config.model)}: train again"
        )
    family = get_family(model_config.family)
    encoder = family.restore_encoder(encoder_state, model_config)
    model = family.build_model(model_config, encoder, None)
    model.load_state_dict(state_dict)
    model.eval()
    return Checkpoint(model, model_config, class_names, encoder)


@torch.no_grad()
def predict_logits(
    model: nn.Module,
    x: np.ndarray,
    encoder: InputEncoder,
    device: torch.device,
    batch_size: int = 256,
) -> np.ndarray:
    """Logits (N, num_classes) for stored examples `x`, in eval mode, batch by batch."""
    model.eval()
    outputs = []
    for start in range(0, len(x), batch_size):
        batch = torch.from_numpy(encoder.encode(x[start : start + batch_size])).to(device)
        outputs.append(model(batch).float().cpu().numpy())
    return np.concatenate(outputs)
