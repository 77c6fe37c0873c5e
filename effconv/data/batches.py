"""The train and test sets as tensors on the training device, batched and augmented there.

Augmentation (random crop after 4-pixel zero padding, horizontal flip) is one gather per batch:
no per-image Python loop. All randomness (epoch order, crop offsets, flips) comes from one CPU
torch.Generator whose state, with the current order and position, is saved in checkpoints, so a
resumed run sees exactly the batches an uninterrupted run would. Under DDP every rank draws the
same global batch and keeps its own contiguous slice of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from effconv.data.format import CIFAR_MEAN, CIFAR_STD, CifarArrays

PAD = 4  # pixels of zero padding before the random 32x32 crop


@dataclass(frozen=True)
class Shard:
    rank: int = 0
    world: int = 1


def to_device_uint8(arrays: CifarArrays, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 NCHW images and int64 labels on `device` (uint8 keeps 50,000 images at 150 MiB)."""
    images = torch.from_numpy(np.ascontiguousarray(arrays.images.transpose(0, 3, 1, 2)))
    return images.to(device), torch.from_numpy(arrays.labels).to(device)


class Normalizer:
    """uint8 NCHW -> float, minus mean, over std; optionally channels_last."""

    def __init__(self, device: torch.device, channels_last: bool = False) -> None:
        self.mean = torch.tensor(CIFAR_MEAN, device=device).view(1, 3, 1, 1) * 255.0
        self.inv_std = 1.0 / (torch.tensor(CIFAR_STD, device=device).view(1, 3, 1, 1) * 255.0)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        out = (images.float() - self.mean) * self.inv_std
        return out.contiguous(memory_format=self.memory_format)


class TrainBatches:
    """Endless augmented batches of `batch_size` (the global batch) over epochs of the train set."""

    def __init__(
        self,
        arrays: CifarArrays,
        batch_size: int,
        device: torch.device,
        *,
        seed: int,
        shard: Shard = Shard(),
        channels_last: bool = False,
        augment: bool = True,
    ) -> None:
        if len(arrays) < batch_size:
            raise ValueError(f"batch size {batch_size} is larger than the train set ({len(arrays)} images)")
        self.images, self.labels = to_device_uint8(arrays, device)
        self.batch_size, self.device, self.shard, self.augment = batch_size, device, shard, augment
        self.normalize = Normalizer(device, channels_last)
        self.generator = torch.Generator().manual_seed(seed)
        self.epoch, self.pos = 0, 0
        self.order = torch.randperm(len(arrays), generator=self.generator)
        self._span = torch.arange(32)

    @property
    def steps_per_epoch(self) -> int:
        return len(self.order) // self.batch_size  # the last partial batch is dropped

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        """This rank's slice of the next global batch: (normalized float images, labels)."""
        if self.pos + self.batch_size > len(self.order):
            self.order = torch.randperm(len(self.order), generator=self.generator)
            self.epoch, self.pos = self.epoch + 1, 0
        idx = self.order[self.pos : self.pos + self.batch_size]
        self.pos += self.batch_size
        rows, cols = self._crop_flip(len(idx)) if self.augment else (None, None)
        lo, hi = self._local_range()
        idx = idx[lo:hi].to(self.device, non_blocking=True)
        images = self.images[idx]
        if rows is not None:
            images = crop_flip(images, rows[lo:hi].to(self.device), cols[lo:hi].to(self.device))
        return self.normalize(images), self.labels[idx]

    def _local_range(self) -> tuple[int, int]:
        per_rank = self.batch_size // self.shard.world
        return self.shard.rank * per_rank, (self.shard.rank + 1) * per_rank

    def _crop_flip(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Row and column source indices into the padded image, [n, 32] each (flip folded into cols)."""
        offsets = torch.randint(0, 2 * PAD + 1, (2, n, 1), generator=self.generator)
        flip = torch.rand(n, 1, generator=self.generator) < 0.5
        rows = offsets[0] + self._span
        cols = offsets[1] + torch.where(flip, 31 - self._span, self._span)
        return rows, cols

    def state_dict(self) -> dict:
        return {"order": self.order, "pos": self.pos, "epoch": self.epoch, "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        if len(state["order"]) != len(self.order):
            raise ValueError("the checkpoint was trained on a different number of images")
        self.order, self.pos, self.epoch = state["order"].clone(), int(state["pos"]), int(state["epoch"])
        self.generator.set_state(state["generator"])


def crop_flip(images: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """Zero-pad uint8 NCHW images by PAD and gather out[n, c, i, j] = padded[n, c, rows[n, i], cols[n, j]]."""
    padded = torch.nn.functional.pad(images, (PAD, PAD, PAD, PAD))
    n, c = images.shape[:2]
    batch = torch.arange(n, device=images.device).view(n, 1, 1, 1)
    chan = torch.arange(c, device=images.device).view(1, c, 1, 1)
    return padded[batch, chan, rows.view(n, 1, -1, 1), cols.view(n, 1, 1, -1)]


class EvalBatches:
    """This rank's share of `limit` test images, normalized, in fixed order; re-iterable.

    The `limit` images are a fixed random draw (seed 0, the same for every run so that runs compare
    on the same images), not the first ones: archives list the test split class by class, and the
    first N images would all be airplanes.
    """

    def __init__(
        self, arrays: CifarArrays, device: torch.device, *, batch_size: int = 1000, shard: Shard = Shard(),
        channels_last: bool = False, limit: int | None = None,
    ) -> None:
        n = min(len(arrays), limit or len(arrays))
        if n < len(arrays):
            keep = np.sort(np.random.default_rng(0).permutation(len(arrays))[:n])
            arrays = CifarArrays(arrays.images[keep], arrays.labels[keep], arrays.classes)
        lo, hi = shard.rank * n // shard.world, (shard.rank + 1) * n // shard.world
        part = CifarArrays(arrays.images[lo:hi], arrays.labels[lo:hi], arrays.classes)
        self.images, self.labels = to_device_uint8(part, device)
        self.normalize, self.batch_size = Normalizer(device, channels_last), batch_size

    def __iter__(self):
        for start in range(0, len(self.labels), self.batch_size):
            end = start + self.batch_size
            yield self.normalize(self.images[start:end]), self.labels[start:end]
