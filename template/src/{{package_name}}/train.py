"""Train the model: seeded, reproducible, on CUDA when available, data-parallel under torchrun.

Writes to `config.artifacts`: `model.pt` (weights plus what rebuilds the model),
`metrics.json` (per-epoch history, final validation accuracy, run facts) and
`plots/{loss,accuracy,confusion_matrix}.png`. The same seed, data and world size give the
same metrics.json on the same machine, bar `duration_seconds`.

Under `torchrun --nproc-per-node N` every rank trains on its shard of each epoch
(DistributedSampler) and DistributedDataParallel averages the gradients; `batch_size` stays
the global batch, split across the ranks, so a profile means the same run at any world
size. Rank 0 alone validates and writes the artifacts.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    DistributedSampler,
    RandomSampler,
    Sampler,
    TensorDataset,
)
from tqdm import tqdm

from . import artifacts, data, distributed, modeling, plots
from .config import Config
from .families import Examples, InputEncoder, get_family
from .metrics import confusion_matrix


def run(config: Config) -> dict[str, Any]:
    """Train with `config` in this process, write the artifacts, return the metrics written
    (on every rank). `pipeline.run_train` sends `train.launcher: cluster` elsewhere."""
    world = distributed.from_environment()
    world, device = distributed.start(world, modeling.resolve_device(config.train.device))
    metrics = _run(config, world, device)
    # Only after success: a rank that failed leaves its peers blocked in a collective, and
    # leaving the group then could hang; torchrun stops them when this rank exits non-zero.
    distributed.stop(world)
    return metrics


def _run(config: Config, world: distributed.World, device: torch.device) -> dict[str, Any]:
    started = time.perf_counter()
    modeling.make_deterministic(config.seed)
    splits = data.load_splits(config)
    if world.is_main:
        artifacts.discard_later_outputs("train", config.artifacts)
        processes = f" x {world.size} processes ({world.backend})" if world.distributed else ""
        print(
            f"training {config.model.family} on {len(splits.train)} examples "
            f"(validation {len(splits.validation)}, test {len(splits.test)}) on {device}"
            f"{processes}"
        )

    # Every rank fits the same encoder and builds the same initial weights from the same
    # seed (DDP also broadcasts rank 0's); afterwards each rank draws its own dropout masks.
    family = get_family(config.model.family)
    encoder = family.fit_encoder(splits.train, config.model)
    model = family.build_model(config.model, encoder, splits.train).to(device)
    trained_model: nn.Module = model
    if world.distributed:
        torch.manual_seed(config.seed + world.rank)
        trained_model = DistributedDataParallel(
            model, device_ids=[device] if device.type == "cuda" else None
        )
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.train.learning_rate, weight_decay=config.train.weight_decay
    )
    loader, sampler = _train_loader(
        encoder.compact(splits.train.x), splits.train.y, config.train.batch_size, config.seed, world
    )

    history = []
    predictions = np.zeros(0, dtype=np.int64)
    for epoch in range(1, config.train.epochs + 1):
        if isinstance(sampler, DistributedSampler):
            sampler.set_epoch(epoch)
        train_loss, train_accuracy = _train_one_epoch(
            trained_model,
            loader,
            optimizer,
            device,
            world,
            f"epoch {epoch}/{config.train.epochs}",
        )
        if not world.is_main:
            continue
        validation_loss, validation_accuracy, predictions = _evaluate(
            model, splits.validation, encoder, device
        )
        history.append(
            {
                "epoch": epoch,
                "train_loss": _round(train_loss),
                "train_accuracy": _round(train_accuracy),
                "validation_loss": _round(validation_loss),
                "validation_accuracy": _round(validation_accuracy),
            }
        )
        print(
            f"epoch {epoch}/{config.train.epochs}: train loss {train_loss:.4f} "
            f"accuracy {train_accuracy:.4f} | validation loss {validation_loss:.4f} "
            f"accuracy {validation_accuracy:.4f}"
        )

    if not world.is_main:
        # The other ranks' work is in rank 0's weights; they wait so that the job ends
        # when the artifacts exist, not before.
        distributed.barrier(world)
        return {}
    # The last epoch's validation predictions are the final model's.
    confusion = confusion_matrix(splits.validation.y, predictions, config.model.num_classes)
    out = config.artifacts
    modeling.save_checkpoint(
        modeling.checkpoint_path(config), model, config.model, splits.train.class_names, encoder
    )
    plot_paths = plots.write_training_plots(
        history, confusion, splits.train.class_names, out / artifacts.PLOTS
    )
    metrics = {
        "seed": config.seed,
        "device": device.type,
        "world_size": world.size,
        "distributed_backend": world.backend,
        "torch_version": torch.__version__,
        "profile": config.profile,
        "family": config.model.family,
        "data_source": config.data.source,
        "data_path": config.data.path,
        "data_sha256": splits.data_sha256,
        "split_sizes": {
            "train": len(splits.train),
            "validation": len(splits.validation),
            "test": len(splits.test),
        },
        "class_names": list(splits.train.class_names),
        "history": history,
        "final_validation_accuracy": history[-1]["validation_accuracy"],
        "validation_confusion_matrix": confusion.tolist(),
        "duration_seconds": round(time.perf_counter() - started, 3),
    }
    (out / artifacts.METRICS).write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    print(
        f"final validation accuracy {metrics['final_validation_accuracy']:.4f}; wrote "
        f"{modeling.checkpoint_path(config)}, {out / artifacts.METRICS}, "
        f"{', '.join(str(path) for path in plot_paths)}"
    )
    distributed.barrier(world)
    return metrics


def _train_loader(
    x: np.ndarray, y: np.ndarray, batch_size: int, seed: int, world: distributed.World
) -> tuple[DataLoader, Sampler]:
    """Shuffled batches of `x` (the encoder's compact form) and labels `y` from a seeded
    sampler; whole batches are indexed at once.

    Under torchrun each rank gets its shard of the epoch's permutation and an equal share
    of the global batch (rounded up), so every rank runs the same number of steps.
    """
    dataset = TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
    sampler: Sampler
    if world.distributed:
        sampler = DistributedSampler(
            dataset, num_replicas=world.size, rank=world.rank, shuffle=True, seed=seed
        )
        batch_size = -(-batch_size // world.size)
    else:
        sampler = RandomSampler(dataset, generator=torch.Generator().manual_seed(seed))
    batches = BatchSampler(sampler, batch_size=batch_size, drop_last=False)
    # batch_size=None: the sampler already yields index lists, and a TensorDataset indexed
    # with a list returns the whole batch, which is much faster than collating one by one.
    return DataLoader(dataset, sampler=batches, batch_size=None, num_workers=0), sampler


def _train_one_epoch(
    model: nn.Module,
    loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    device: torch.device,
    world: distributed.World,
    description: str,
) -> tuple[float, float]:
    """Mean training loss and accuracy over the epoch and every rank (with dropout active)."""
    model.train()
    total_loss, correct, seen = 0.0, 0, 0
    progress = tqdm(
        loader,
        desc=description,
        file=sys.stderr,
        leave=False,
        disable=not (world.is_main and sys.stderr.isatty()),
    )
    for x, y in progress:
        inputs = _as_float(x).to(device)
        targets = y.to(device)
        optimizer.zero_grad(set_to_none=True)
        logits = model(inputs)
        loss = cross_entropy(logits, targets)
        loss.backward()
        optimizer.step()
        total_loss += loss.item() * len(targets)
        correct += int((logits.argmax(dim=1) == targets).sum())
        seen += len(targets)
        progress.set_postfix(loss=f"{total_loss / seen:.4f}")
    total_loss, correct, seen = distributed.sum_across_ranks(
        [total_loss, correct, seen], world, device
    )
    return total_loss / seen, correct / seen


def _evaluate(
    model: nn.Module, examples: Examples, encoder: InputEncoder, device: torch.device
) -> tuple[float, float, np.ndarray]:
    """Loss, accuracy and predictions on `examples` in eval mode."""
    logits = modeling.predict_logits(model, examples.x, encoder, device)
    loss = cross_entropy(torch.from_numpy(logits), torch.from_numpy(examples.y))
    predictions = logits.argmax(axis=1)
    return float(loss), float((predictions == examples.y).mean()), predictions


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy, computed against one-hot targets.

    The same number as with class-index targets, but without nll_loss, which has no
    deterministic CUDA kernel and so fails under torch.use_deterministic_algorithms.
    """
    targets = nn.functional.one_hot(labels, logits.shape[1]).to(logits.dtype)
    return nn.functional.cross_entropy(logits, targets)


def _as_float(x: torch.Tensor) -> torch.Tensor:
    return x.float() / 255 if x.dtype == torch.uint8 else x


def _round(value: float) -> float:
    return round(float(value), 6)
