"""Method-against-baseline runs at small scale: a CIFAR-10 subset reader, one timed training
loop, and the History it records (accuracy against step and against training wall time).

Wall time is training time only (seconds, host clock, evaluation excluded), on whatever device
and thread count torch uses; accuracy is the fraction of the evaluation subset classified right.
"""

from __future__ import annotations

import math
import tarfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from effconv.errors import InvalidInputError, UsageError

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


@dataclass(frozen=True)
class TensorData:
    """Normalized NCHW float32 images and int64 labels; normalization statistics come from the
    training part only (per channel, 0-1 pixel scale)."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    @property
    def num_classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max())) + 1


@dataclass(frozen=True)
class History:
    """One training run. Per evaluation point: step, training seconds so far, accuracy (0-1) on
    the evaluation set, and mean training loss since the previous point."""

    method: str
    steps: tuple[int, ...]
    seconds: tuple[float, ...]
    accuracy: tuple[float, ...]
    loss: tuple[float, ...]
    eval_size: int
    extra: tuple[tuple[str, float], ...] = ()

    @property
    def final_accuracy(self) -> float:
        return self.accuracy[-1]

    @property
    def seconds_per_step(self) -> float:
        return self.seconds[-1] / max(self.steps[-1], 1)


def load_cifar_subset(archive: str | Path, train_per_class: int, test_per_class: int) -> TensorData:
    """Decode the first K images per class of each split of the CIFAR-10 JPEG archive
    (`<root>/{train,test}/<class>/NNNN.jpg`, .tar.xz). Streams the archive once; nothing is
    extracted to disk."""
    from PIL import Image

    archive = Path(archive)
    if not archive.is_file():
        raise UsageError("CIFAR-10 archive not found", path=archive)
    want = {"train": train_per_class, "test": test_per_class}
    found: dict[str, list[tuple[np.ndarray, int]]] = {"train": [], "test": []}
    counts = {(s, c): 0 for s in want for c in range(len(CLASSES))}
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                key = _member_key(member)
                if key is None or counts[key] >= want[key[0]]:
                    continue
                with tar.extractfile(member) as fh, Image.open(fh) as img:
                    pixels = np.asarray(img.convert("RGB"), dtype=np.uint8)
                if pixels.shape != (32, 32, 3):
                    raise InvalidInputError(f"{member.name} is {pixels.shape}, not 32x32 RGB", path=archive)
                found[key[0]].append((pixels, key[1]))
                counts[key] += 1
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise InvalidInputError(f"cannot read the archive: {exc}", path=archive) from exc
    missing = [k for k, n in counts.items() if n < want[k[0]]]
    if missing:
        raise InvalidInputError(f"too few images for {missing[:3]}", path=archive)
    return arrays_to_data(*_stack(found["train"]), *_stack(found["test"]))


def _member_key(member: tarfile.TarInfo) -> tuple[str, int] | None:
    parts = member.name.split("/")
    if not member.isfile() or len(parts) < 3 or not parts[-1].lower().endswith((".jpg", ".jpeg", ".png")):
        return None
    split, cls = parts[-3], parts[-2]
    if split not in ("train", "test") or cls not in CLASSES:
        return None
    return split, CLASSES.index(cls)


def _stack(items: list[tuple[np.ndarray, int]]) -> tuple[np.ndarray, np.ndarray]:
    return np.stack([p for p, _ in items]), np.array([c for _, c in items], dtype=np.int64)


def arrays_to_data(
    train_images: np.ndarray, train_labels: np.ndarray, test_images: np.ndarray, test_labels: np.ndarray
) -> TensorData:
    """uint8 NHWC arrays -> TensorData, normalized with the training images' per-channel stats."""
    train = torch.from_numpy(train_images).permute(0, 3, 1, 2).float() / 255.0
    test = torch.from_numpy(test_images).permute(0, 3, 1, 2).float() / 255.0
    mean = train.mean(dim=(0, 2, 3), keepdim=True)
    std = train.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)
    return TensorData(
        ((train - mean) / std).contiguous(),
        torch.as_tensor(train_labels, dtype=torch.int64),
        ((test - mean) / std).contiguous(),
        torch.as_tensor(test_labels, dtype=torch.int64),
    )


def batches(data: TensorData, batch_size: int, seed: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless shuffled mini-batches of the training part (a new permutation every epoch)."""
    gen = torch.Generator().manual_seed(seed)
    n = len(data.y_train)
    while True:
        order = torch.randperm(n, generator=gen)
        for start in range(0, n - batch_size + 1, batch_size):
            idx = order[start : start + batch_size]
            yield data.x_train[idx], data.y_train[idx]


@torch.no_grad()
def accuracy(score_fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of `x` whose argmax score equals `y` (batches of 500 to bound memory)."""
    right = 0
    for start in range(0, len(y), 500):
        right += int((score_fn(x[start : start + 500]).argmax(dim=1) == y[start : start + 500]).sum())
    return right / len(y)


def run_loop(
    method: str,
    step_fn: Callable[[int], float],
    eval_fn: Callable[[], float],
    *,
    steps: int,
    eval_every: int,
    eval_size: int,
) -> History:
    """Call `step_fn(step)` (returns the training loss) `steps` times; every `eval_every` steps and
    at the end call `eval_fn()` (returns accuracy) outside the timed region."""
    if steps < 1 or eval_every < 1:
        raise UsageError(f"steps and eval_every must be >= 1 (got {steps}, {eval_every})")
    rec: dict[str, list] = {"steps": [], "seconds": [], "accuracy": [], "loss": []}
    elapsed, losses = 0.0, []
    for step in range(1, steps + 1):
        start = time.perf_counter()
        losses.append(step_fn(step))
        elapsed += time.perf_counter() - start
        if step % eval_every == 0 or step == steps:
            if not all(math.isfinite(v) for v in losses):
                raise UsageError(f"{method}: training loss is not finite at step {step}; lower the learning rate")
            for key, value in zip(rec, (step, elapsed, eval_fn(), sum(losses) / len(losses))):
                rec[key].append(value)
            losses = []
    return History(method, *(tuple(v) for v in rec.values()), eval_size=eval_size)


def train_classifier(
    model: torch.nn.Module,
    data: TensorData,
    *,
    method: str,
    loss_fn: Callable[[torch.nn.Module, torch.Tensor, torch.Tensor], torch.Tensor],
    steps: int,
    batch_size: int = 64,
    lr: float = 1e-3,
    eval_every: int = 50,
    seed: int = 0,
) -> History:
    """Plain backprop with Adam: `loss_fn(model, x, y)` -> scalar loss; accuracy from `model(x)`."""
    stream = batches(data, batch_size, seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)

    def step_fn(_: int) -> float:
        model.train()
        x, y = next(stream)
        loss = loss_fn(model, x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return float(loss.detach())

    def eval_fn() -> float:
        model.eval()
        return accuracy(model, data.x_test, data.y_test)

    return run_loop(method, step_fn, eval_fn, steps=steps, eval_every=eval_every, eval_size=len(data.y_test))
