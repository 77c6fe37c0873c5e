"""CIFAR-10 readers: official python format, ImageFolder trees, tar archives, verified download, cache.

Oracle: arrays made in the test and written losslessly (pickle, PNG) must come back bit-exact;
the real JPEG archive must have the published split sizes and per-channel statistics.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import random
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from effconv import data as D
from effconv.data import api as data_api
from effconv.errors import InvalidInputError, UsageError

N_TRAIN, N_TEST = 20, 10  # tiny: 2 train images and 1 test image per class


def _arrays(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), np.arange(n, dtype=np.int64) % 10


@pytest.fixture(scope="module")
def truth():
    return {"train": _arrays(N_TRAIN, 1), "test": _arrays(N_TEST, 2)}


def _write_python_release(folder: Path, truth) -> Path:
    """The official layout: 5 train batches + test_batch, dicts of a CHW-planar uint8 array and labels."""
    folder.mkdir(parents=True)
    chunks = np.array_split(np.arange(N_TRAIN), 5)
    batches = {f"data_batch_{i + 1}": idx for i, idx in enumerate(chunks)}
    for name, (split, idx) in {**{k: ("train", v) for k, v in batches.items()}, "test_batch": ("test", np.arange(N_TEST))}.items():
        images, labels = truth[split]
        planar = images[idx].transpose(0, 3, 1, 2).reshape(len(idx), -1)
        (folder / name).write_bytes(pickle.dumps({b"data": planar, b"labels": labels[idx].tolist()}, protocol=2))
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": [c.encode() for c in D.CLASSES]}))
    return folder


def _write_image_tree(root: Path, truth, suffix: str = ".png") -> Path:
    for split, (images, labels) in truth.items():
        for i, (img, lab) in enumerate(zip(images, labels)):
            folder = root / split / D.CLASSES[lab]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(folder / f"{i:04d}{suffix}")
    return root


def _tar(source: Path, target: Path, mode: str, *, shuffle: bool = False) -> Path:
    files = sorted(p for p in source.rglob("*") if p.is_file())
    if shuffle:
        random.Random(0).shuffle(files)
    with tarfile.open(target, mode) as tar:
        for f in files:
            tar.add(f, arcname=str(Path(source.name) / f.relative_to(source)))
    return target


def _check(source: Path, truth, cache: Path) -> None:
    for split in ("train", "test"):
        got = D.load_cifar10(source, split, cache_dir=cache)
        images, labels = truth[split]
        order = np.argsort(labels, kind="stable")  # readers sort by (class, file name)
        if source.name.startswith(("py", "cifar-10-python")):
            order = np.arange(len(labels))  # the python release keeps its own order
        assert got.classes == D.CLASSES
        np.testing.assert_array_equal(got.labels, labels[order])
        np.testing.assert_array_equal(got.images, images[order])


def test_python_folder(tmp_path, truth):
    _check(_write_python_release(tmp_path / "py-release", truth), truth, tmp_path / "cache")


def test_python_tar_gz(tmp_path, truth):
    folder = _write_python_release(tmp_path / "cifar-10-batches-py", truth)
    archive = _tar(folder, tmp_path / "py.tar.gz", "w:gz")
    _check(archive, truth, tmp_path / "cache")


@pytest.mark.parametrize("mode,name", [("w:xz", "tree.tar.xz"), ("w:gz", "tree.tar.gz")])
def test_image_tar_any_member_order(tmp_path, truth, mode, name):
    tree = _write_image_tree(tmp_path / "cifar10-png", truth)
    _check(_tar(tree, tmp_path / name, mode, shuffle=True), truth, tmp_path / "cache")


def test_image_folder_png(tmp_path, truth):
    _check(_write_image_tree(tmp_path / "pngs", truth), truth, tmp_path / "cache")


def test_image_folder_jpeg_matches_pillow(tmp_path, truth):
    tree = _write_image_tree(tmp_path / "jpgs", truth, ".jpg")
    got = D.load_cifar10(tree, "test", cache_dir=tmp_path / "cache")
    first = sorted((tree / "test" / "airplane").iterdir())[0]
    np.testing.assert_array_equal(got.images[0], np.asarray(Image.open(first).convert("RGB")))


def test_hostile_pickle_is_refused(tmp_path, truth):
    class Evil:
        def __reduce__(self):
            return (os.getcwd, ())  # harmless here, but any callable is refused

    folder = _write_python_release(tmp_path / "py-release", truth)
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": Evil(), b"labels": []}))
    with pytest.raises(InvalidInputError, match="getcwd is not allowed"):
        D.load_cifar10(folder, "test", cache_dir=tmp_path / "cache")


def test_wrong_image_size_is_invalid(tmp_path, truth):
    tree = _write_image_tree(tmp_path / "pngs", truth)
    Image.new("RGB", (40, 30)).save(next((tree / "test" / "cat").iterdir()))
    with pytest.raises(InvalidInputError, match="40x30, not 32x32"):
        D.load_cifar10(tree, "test", cache_dir=tmp_path / "cache")


def test_cache_is_reused_and_invalidated(tmp_path, truth, monkeypatch):
    folder = _write_python_release(tmp_path / "py-release", truth)
    cache = tmp_path / "cache"
    D.load_cifar10(folder, "test", cache_dir=cache)
    assert len(list(cache.glob("*.npz"))) == 1

    def boom(path):
        raise AssertionError("decoded again")

    monkeypatch.setattr(data_api, "decode_source", boom)
    D.load_cifar10(folder, "train", cache_dir=cache)  # served from the cache
    batch = folder / "test_batch"
    os.utime(batch, ns=(batch.stat().st_atime_ns, batch.stat().st_mtime_ns + 10**9))
    with pytest.raises(AssertionError, match="decoded again"):
        D.load_cifar10(folder, "test", cache_dir=cache)


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_download_file_url_then_checksum_mismatch(tmp_path, truth):
    folder = _write_python_release(tmp_path / "cifar-10-batches-py", truth)
    archive = _tar(folder, tmp_path / "served.tar.gz", "w:gz")
    cache = tmp_path / "cache"
    got = D.download_cifar10(cache, url=archive.as_uri(), md5=_md5(archive))
    assert got == cache / D.DOWNLOAD_NAME and _md5(got) == _md5(archive)
    _check(got, truth, cache)
    got.unlink()
    with pytest.raises(InvalidInputError, match="md5 checksum mismatch"):
        D.download_cifar10(cache, url=archive.as_uri(), md5="0" * 32)
    assert list(cache.glob("*.tar.gz*")) == [] and list(cache.glob(".*")) == []


def test_download_with_injected_fetch_and_sha256(tmp_path):
    payload = b"not really an archive"

    def fetch(url, dest):
        assert url == "https://example.invalid/c.tgz"
        Path(dest).write_bytes(payload)

    good = hashlib.sha256(payload).hexdigest()
    path = D.download_cifar10(tmp_path, url="https://example.invalid/c.tgz", md5=None, sha256=good, fetch=fetch)
    assert path.read_bytes() == payload
    with pytest.raises(InvalidInputError, match="sha256 checksum mismatch"):
        D.download_cifar10(tmp_path, url="https://example.invalid/c.tgz", md5=None, sha256="f" * 64, fetch=fetch)
    assert path.read_bytes() == payload  # the earlier good download is untouched


def test_no_data_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("EFFCONV_DATA", str(tmp_path / "nowhere"))
    monkeypatch.setattr(data_api, "candidate_sources", lambda data, cache_dir=None: [tmp_path / "nowhere", tmp_path / "c.tgz"])
    with pytest.raises(UsageError) as err:
        D.load_cifar10(None, "train", cache_dir=tmp_path)
    text = str(err.value)
    assert str(tmp_path / "nowhere") in text and "--data" in text and "EFFCONV_DATA" in text
    assert err.value.exit_code == 2


def test_default_search_order(tmp_path, monkeypatch):
    monkeypatch.setenv("EFFCONV_DATA", "/env/path")
    found = D.candidate_sources(None, tmp_path)
    assert found[0] == Path("/env/path")
    assert found[1].parts[-3:] == ("shared", "data", "cifar10-jpg.tar.xz")
    assert found[2] == tmp_path / D.DOWNLOAD_NAME
    assert D.candidate_sources("/given", tmp_path) == [Path("/given")]


def test_real_jpeg_archive(cifar10):
    """The real archive: 50,000/10,000 images, 5,000/1,000 per class, statistics near CIFAR_MEAN/STD."""
    for split, per_class in (("train", 5000), ("test", 1000)):
        arrays = getattr(cifar10, split)
        assert arrays.images.shape == (10 * per_class, 32, 32, 3) and arrays.images.dtype == np.uint8
        assert np.bincount(arrays.labels).tolist() == [per_class] * 10
        assert arrays.classes == D.CLASSES
    pixels = cifar10.train.images[::10].reshape(-1, 3) / 255.0
    np.testing.assert_allclose(pixels.mean(0), D.CIFAR_MEAN, atol=0.005)  # JPEG shifts them slightly
    np.testing.assert_allclose(pixels.std(0), D.CIFAR_STD, atol=0.005)
