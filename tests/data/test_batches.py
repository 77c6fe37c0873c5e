"""Device batches: the batched crop/flip against a per-image numpy oracle, ordering, shards, resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from effconv.data import CIFAR_MEAN, CIFAR_STD, CLASSES, CifarArrays
from effconv.data.batches import PAD, EvalBatches, Normalizer, Shard, TrainBatches, crop_flip


def _arrays(n: int = 64, seed: int = 0) -> CifarArrays:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    return CifarArrays(images, np.arange(n, dtype=np.int64) % 10, CLASSES)


def _oracle(image: np.ndarray, dy: int, dx: int, flip: bool) -> np.ndarray:
    """One CHW image: zero pad, take the 32x32 window at (dy, dx), mirror left-right if asked."""
    padded = np.pad(image, ((0, 0), (PAD, PAD), (PAD, PAD)))
    out = padded[:, dy : dy + 32, dx : dx + 32]
    return out[:, :, ::-1] if flip else out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_crop_flip_matches_per_image_oracle(seed):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (16, 3, 32, 32), dtype=np.uint8)
    dy, dx = rng.integers(0, 2 * PAD + 1, (2, 16))
    flips = rng.random(16) < 0.5
    span = np.arange(32)
    rows = dy[:, None] + span
    cols = dx[:, None] + np.where(flips[:, None], 31 - span, span)
    got = crop_flip(torch.from_numpy(images), torch.from_numpy(rows), torch.from_numpy(cols)).numpy()
    for i in range(16):
        np.testing.assert_array_equal(got[i], _oracle(images[i], dy[i], dx[i], flips[i]))


def test_augmentation_covers_all_offsets_and_flips():
    batches = TrainBatches(_arrays(), 64, torch.device("cpu"), seed=0)
    rows, cols = batches._crop_flip(4000)
    assert sorted(set(rows[:, 0].tolist())) == list(range(2 * PAD + 1))
    flipped = (cols[:, 1] < cols[:, 0]).float().mean().item()
    assert 0.45 < flipped < 0.55


def test_normalizer_matches_mean_and_std():
    x = torch.full((1, 3, 2, 2), 128, dtype=torch.uint8)
    got = Normalizer(torch.device("cpu"))(x)[0, :, 0, 0]
    want = [(128 / 255 - m) / s for m, s in zip(CIFAR_MEAN, CIFAR_STD)]
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-5)


def test_epoch_visits_every_image_once_without_augmentation():
    arrays = _arrays(60)
    batches = TrainBatches(arrays, 20, torch.device("cpu"), seed=3, augment=False)
    seen = torch.cat([batches.next()[0] for _ in range(3)])
    want = Normalizer(torch.device("cpu"))(torch.from_numpy(arrays.images.transpose(0, 3, 1, 2).copy()))
    # every image exactly once: compare as sets of rows
    got_rows = sorted(map(tuple, seen.flatten(1).numpy().round(4).tolist()))
    want_rows = sorted(map(tuple, want.flatten(1).numpy().round(4).tolist()))
    assert got_rows == want_rows
    assert batches.epoch == 0
    batches.next()
    assert batches.epoch == 1


def test_shards_split_the_global_batch():
    arrays, dev = _arrays(), torch.device("cpu")
    full = TrainBatches(arrays, 16, dev, seed=5)
    parts = [TrainBatches(arrays, 16, dev, seed=5, shard=Shard(r, 2)) for r in range(2)]
    for _ in range(6):  # crosses an epoch boundary (64 images / 16)
        x, y = full.next()
        pieces = [p.next() for p in parts]
        torch.testing.assert_close(torch.cat([p[0] for p in pieces]), x, rtol=0, atol=0)
        torch.testing.assert_close(torch.cat([p[1] for p in pieces]), y, rtol=0, atol=0)


def test_state_dict_resumes_the_same_stream():
    arrays, dev = _arrays(), torch.device("cpu")
    a = TrainBatches(arrays, 16, dev, seed=7)
    for _ in range(5):
        a.next()
    b = TrainBatches(arrays, 16, dev, seed=99)
    b.load_state_dict(a.state_dict())
    for _ in range(6):
        torch.testing.assert_close(a.next(), b.next(), rtol=0, atol=0)


def test_eval_batches_shard_the_test_set():
    arrays, dev = _arrays(50), torch.device("cpu")
    whole = torch.cat([y for _, y in EvalBatches(arrays, dev, batch_size=8, limit=30)])
    parts = [torch.cat([y for _, y in EvalBatches(arrays, dev, batch_size=8, shard=Shard(r, 2), limit=30)]) for r in range(2)]
    drawn = np.sort(np.random.default_rng(0).permutation(50)[:30])  # the fixed evaluation draw
    assert whole.tolist() == torch.cat(parts).tolist() == arrays.labels[drawn].tolist()


def test_eval_subset_draws_every_class_from_a_class_sorted_split():
    # Archives list the test split class by class; a limited evaluation must not take the first N.
    labels = np.repeat(np.arange(10), 100)
    images = np.zeros((1000, 32, 32, 3), dtype=np.uint8)
    arrays = CifarArrays(images, labels, tuple(str(i) for i in range(10)))
    first = EvalBatches(arrays, torch.device("cpu"), limit=200)
    second = EvalBatches(arrays, torch.device("cpu"), limit=200)
    seen = torch.cat([y for _, y in first])
    assert len(seen) == 200
    assert set(seen.tolist()) == set(range(10))
    assert torch.equal(seen, torch.cat([y for _, y in second]))  # the same draw every run
