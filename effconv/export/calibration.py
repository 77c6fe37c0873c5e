"""Images for int8 calibration and for the int8 accuracy check, preprocessed as the model expects.

Sources: a CIFAR-10 source that effconv.data reads (the JPEG .tar.xz, an ImageFolder tree with
train/ and test/, the official python folder or archive), or any folder of image files (searched
recursively; .jpg .jpeg .png .bmp .webp), resized to the model's input size with bilinear
filtering. Images are picked with a seeded random permutation, never "the first N": effconv's
CIFAR arrays are sorted by class, so the first 256 training images are all airplanes.

Preprocessing is the training run's: uint8 RGB -> x / 255 -> (x - mean) / std per channel (mean and
std on the 0-1 pixel scale, as effconv's metadata stores them) -> float32 NCHW.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from effconv.errors import InvalidInputError, UsageError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
CIFAR_ARCHIVES = (".tar.xz", ".tar.gz", ".tgz")


@dataclass(frozen=True)
class Preprocess:
    """How raw pixels become the model's input: channels, height, width and 0-1 scale mean/std."""

    channels: int
    height: int
    width: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self) -> None:
        if self.channels not in (1, 3):
            raise UsageError(f"int8 calibration reads images with 1 or 3 channels, not {self.channels}")
        for name, values in (("--mean", self.mean), ("--std", self.std)):
            if len(values) != self.channels:
                raise UsageError(f"{name} needs {self.channels} values (one per input channel), got {len(values)}")
        if any(not 0 < s < float("inf") for s in self.std):
            raise UsageError(f"--std values must be finite and > 0, got {list(self.std)}")

    def apply(self, images: np.ndarray) -> np.ndarray:
        """uint8 NHWC -> float32 NCHW, normalized."""
        x = images.astype(np.float32) / 255.0
        x = (x - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))

    def to_dict(self) -> dict:
        return {"input": [self.channels, self.height, self.width], "mean": list(self.mean),
                "std": list(self.std), "scale": "x / 255, then (x - mean) / std per channel"}


@dataclass(frozen=True)
class ImageSet:
    images: np.ndarray  # float32 NCHW, preprocessed
    labels: np.ndarray | None  # int64 class indices (CIFAR-10 only)
    source: str  # what they came from, for the report


def is_cifar_source(path: Path) -> bool:
    """A source effconv.data decodes (archive, ImageFolder tree with train/, official python folder)."""
    name = path.name.lower()
    if path.is_file():
        return name.endswith(CIFAR_ARCHIVES)
    return path.is_dir() and ((path / "train").is_dir() or (path / "data_batch_1").is_file()
                              or any(path.glob("*/train")) or any(path.glob("*/data_batch_1")))


def default_cifar() -> Path | None:
    """effconv.data's default search ($EFFCONV_DATA, ../shared/data, the cache), None if nothing."""
    from effconv.data import resolve_source

    try:
        return resolve_source(None)
    except UsageError:
        return None


def cifar_set(source: Path, split: str, n: int, pre: Preprocess, seed: int) -> ImageSet:
    """`n` seeded-random CIFAR-10 images of `split` (all of them when n >= the split's size)."""
    from effconv.data import load_cifar10

    if (pre.channels, pre.height, pre.width) != (3, 32, 32):
        raise UsageError(f"CIFAR-10 images are 3x32x32; the model takes {pre.channels}x{pre.height}x{pre.width} "
                         "(give --calibration-data a folder of images)", path=source)
    arrays = load_cifar10(source, split)
    pick = _pick(len(arrays.images), n, seed)
    return ImageSet(pre.apply(arrays.images[pick]), np.asarray(arrays.labels)[pick].astype(np.int64),
                    f"{source} ({split}, {len(pick)} of {len(arrays.images)}, seed {seed})")


def folder_set(folder: Path, n: int, pre: Preprocess, seed: int, *, skip: int = 0) -> ImageSet:
    """`n` images of a folder, after skipping the first `skip` of the seeded permutation (the
    calibration images, when the same folder also gives the check set)."""
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise InvalidInputError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) in this folder", path=folder)
    order = np.random.default_rng(seed).permutation(len(files))[skip:skip + n]
    return ImageSet(pre.apply(np.stack([_read_image(files[i], pre) for i in order])) if len(order) else
                    np.zeros((0, pre.channels, pre.height, pre.width), np.float32), None,
                    f"{folder} ({len(order)} of {len(files)} images, seed {seed})")


def _read_image(path: Path, pre: Preprocess) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img = img.convert("RGB" if pre.channels == 3 else "L").resize((pre.width, pre.height), Image.BILINEAR)
            arr = np.asarray(img, dtype=np.uint8)
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise InvalidInputError(f"not a readable image ({exc})", path=path) from exc
    return arr[:, :, None] if arr.ndim == 2 else arr


def _pick(total: int, n: int, seed: int) -> np.ndarray:
    return np.sort(np.random.default_rng(seed).permutation(total)[:min(n, total)])


def calibration_set(data: Path | None, n: int, pre: Preprocess, seed: int) -> ImageSet:
    """The calibration images: CIFAR-10 training images, or images of a folder. Nothing reachable
    is a usage error (exit 2) that says what to pass; a folder without images is invalid input (3)."""
    source = data if data is not None else default_cifar()
    if source is None:
        raise UsageError("int8 export needs calibration images and none were found: pass --calibration-data "
                         "(a folder of images or CIFAR-10), or --data, or set $EFFCONV_DATA")
    source = Path(source)
    if not source.exists():
        raise UsageError("calibration data not found", path=source)
    if is_cifar_source(source):
        return cifar_set(source, "train", n, pre, seed)
    if source.is_dir():
        return folder_set(source, n, pre, seed)
    raise InvalidInputError("calibration data must be a folder of images or a CIFAR-10 source "
                            f"({', '.join(CIFAR_ARCHIVES)} archive or ImageFolder tree)", path=source)


def check_set(data: Path | None, calibration_data: Path | None, n: int, pre: Preprocess, seed: int,
              *, classes: int | None, skip: int = 0) -> ImageSet:
    """Images for the int8 check: labelled CIFAR-10 test images when the model is a 3x32x32,
    10-class model and CIFAR-10 is reachable (--data, the calibration source, the default search);
    else images of the calibration folder after the `skip` that calibration used (agreement only)."""
    cifar_model = (pre.channels, pre.height, pre.width) == (3, 32, 32) and classes in (None, 10)
    for candidate in (data, calibration_data):
        if candidate is not None and cifar_model and is_cifar_source(Path(candidate)):
            return cifar_set(Path(candidate), "test", n, pre, seed)
    if calibration_data is not None and Path(calibration_data).is_dir() and not is_cifar_source(Path(calibration_data)):
        return folder_set(Path(calibration_data), n, pre, seed, skip=skip)
    found = default_cifar() if cifar_model else None
    if found is not None:
        return cifar_set(found, "test", n, pre, seed)
    raise UsageError("int8 check needs real images: pass --data (CIFAR-10) or --calibration-data DIR")

