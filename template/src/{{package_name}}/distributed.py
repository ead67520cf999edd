"""Data-parallel training under torchrun: who this process is and how ranks talk.

`torchrun --nproc-per-node N -m <package> train ...` (or Kubeflow Trainer, whose
torch-distributed runtime runs torchrun with `PET_NNODES`, `PET_NODE_RANK`, ... set)
starts one process per device and gives each `RANK`, `LOCAL_RANK` and `WORLD_SIZE`. A
plain `python -m <package> train` has none of them and trains in one process, exactly
as before: no process group, no wrapper.
"""

from __future__ import annotations

import dataclasses
import datetime
import gc
import os

import torch
import torch.distributed as dist

from .errors import StageError

# Long enough for a slow rank to load its data, short enough that a dead peer fails the
# CI job instead of holding it until the job timeout.
_COLLECTIVE_TIMEOUT = datetime.timedelta(minutes=10)


class DistributedError(StageError):
    """The torchrun environment is incomplete or the process group could not start."""


@dataclasses.dataclass(frozen=True)
class World:
    rank: int
    local_rank: int
    size: int
    # "gloo" on CPU, "nccl" on CUDA, set by start(); None until then and in one process.
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        """Rank 0 alone writes the checkpoint, metrics and plots, and prints progress."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        # torchrun with one process (WORLD_SIZE=1) trains exactly like a plain run.
        return self.size > 1


SINGLE_PROCESS = World(rank=0, local_rank=0, size=1)


def from_environment(environ: dict[str, str] | None = None) -> World:
    """The world torchrun describes, or one process when there is no torchrun."""
    environ = dict(os.environ if environ is None else environ)
    if "WORLD_SIZE" not in environ:
        return SINGLE_PROCESS
    try:
        rank = int(environ["RANK"])
        local_rank = int(environ.get("LOCAL_RANK", environ["RANK"]))
        size = int(environ["WORLD_SIZE"])
    except (KeyError, ValueError) as error:
        raise DistributedError(
            f"WORLD_SIZE is set but RANK/LOCAL_RANK are missing or not integers ({error}): "
            "start distributed training with torchrun"
        ) from error
    if not 0 <= rank < size:
        raise DistributedError(f"RANK {rank} is outside WORLD_SIZE {size}")
    return World(rank=rank, local_rank=local_rank, size=size)


def start(world: World, device: torch.device) -> tuple[World, torch.device]:
    """Join the process group; return the world with its backend and this rank's device.

    NCCL needs one GPU per process, chosen by LOCAL_RANK; gloo runs the same code on CPU.
    """
    if not world.distributed:
        return world, device
    if device.type == "cuda":
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        backend = "gloo"
    dist.init_process_group(
        backend=backend,
        rank=world.rank,
        world_size=world.size,
        timeout=_COLLECTIVE_TIMEOUT,
        device_id=device if backend == "nccl" else None,
    )
    return dataclasses.replace(world, backend=backend), device


def stop(world: World) -> None:
    """Leave the process group once training is done (or has failed) on this rank."""
    if world.distributed and dist.is_initialized():
        # DistributedDataParallel keeps the group alive through reference cycles; left to
        # interpreter shutdown, gloo's worker threads can be torn down mid-flight and abort
        # the process (SIGABRT after a finished run). Collect them while Python still runs.
        gc.collect()
        dist.destroy_process_group()


def sum_across_ranks(values: list[float], world: World, device: torch.device) -> list[float]:
    """Element-wise sum of `values` over every rank (the values themselves in one process)."""
    if not world.distributed:
        return values
    # float64: sums of per-rank loss totals must not lose the digits metrics.json keeps.
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.tolist()


def barrier(world: World) -> None:
    if world.distributed:
        dist.barrier()
