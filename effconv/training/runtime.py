"""Process-level set-up for a training run: device, DDP process group, determinism, Ctrl-C handling."""

from __future__ import annotations

import os
import signal
import threading
from dataclasses import dataclass

import torch

from effconv.data.batches import Shard
from effconv.errors import UsageError
from effconv.training.config import TrainConfig


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    shard: Shard
    distributed: bool

    @property
    def is_main(self) -> bool:
        return self.shard.rank == 0


def setup_runtime(config: TrainConfig) -> Runtime:
    """Pick the device and, under torchrun (WORLD_SIZE > 1), join the process group (nccl on CUDA, gloo on CPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    device = _device(config.device, local if world > 1 else None)
    if world > 1:
        import torch.distributed as dist

        if config.batch_size % world:
            raise UsageError(f"batch size {config.batch_size} does not split evenly over {world} processes")
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo", device_id=device if device.type == "cuda" else None)
    return Runtime(device, Shard(rank, world), world > 1)


def _device(name: str, local_rank: int | None) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError("device cuda requested but torch sees no CUDA GPU")
        if local_rank is not None:
            device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    return device


def teardown_runtime(rt: Runtime) -> None:
    if rt.distributed:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def seed_everything(config: TrainConfig, rank: int) -> tuple[bool, bool]:
    """Seed the global RNGs (dropout draws from torch's) and set the determinism switches.

    Returns the previous (deterministic algorithms, cudnn.benchmark) for `restore_switches`.
    """
    import random

    import numpy as np

    previous = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark)
    torch.manual_seed(config.seed + rank)  # per-rank dropout masks; data order has its own generator
    np.random.seed(config.seed)
    random.seed(config.seed)
    if config.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS needs it for determinism
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    elif torch.cuda.is_available():
        torch.backends.cudnn.benchmark = True  # fixed input shapes: let cuDNN pick the fastest kernels
    return previous


def restore_switches(previous: tuple[bool, bool]) -> None:
    """Put back what seed_everything changed, so one run does not leak settings into the next."""
    torch.use_deterministic_algorithms(previous[0])
    torch.backends.cudnn.benchmark = previous[1]


class StopFlag:
    """Ctrl-C (SIGINT) or SIGTERM sets the flag; the loop checkpoints at the next step and exits 130.

    A second Ctrl-C restores the default handler's behaviour: KeyboardInterrupt at once.
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, object] = {}

    def __enter__(self) -> "StopFlag":
        if threading.current_thread() is threading.main_thread():  # signals only reach the main thread
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
