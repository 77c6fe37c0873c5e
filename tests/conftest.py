"""Shared fixtures: run the CLI in-process and capture its output and exit code."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
CIFAR_JPG = SHARED_DATA / "cifar10-jpg.tar.xz"


@dataclass(frozen=True)
class CliResult:
    code: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(capsys):
    """Call `effconv` in-process: `cli("profile", "m.onnx")` -> CliResult(code, stdout, stderr)."""
    from effconv.cli import main

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out = capsys.readouterr()
        return CliResult(code, out.out, out.err)

    return run


@pytest.fixture(scope="session")
def cifar_tar() -> Path:
    """The real CIFAR-10 JPEG archive beside the checkout; skip cleanly when it is absent."""
    if not CIFAR_JPG.is_file():
        pytest.skip(f"real CIFAR-10 not found at {CIFAR_JPG} (see ../shared/data/README.md)")
    return CIFAR_JPG


@pytest.fixture(scope="session")
def cifar10(cifar_tar, request, tmp_path_factory):
    """Both splits of the real CIFAR-10 (TrainData), decoded once; the cache lives in .pytest_cache
    (or a temporary folder when pytest's cache is disabled)."""
    from effconv.training.api import load_train_data

    store = getattr(request.config, "cache", None)
    cache = store.mkdir("effconv-cifar10") if store is not None else tmp_path_factory.mktemp("effconv-cifar10")
    return load_train_data(cifar_tar, cache)


def pytest_collection_modifyitems(config, items):
    """Tests marked slow run only when asked: `-m slow` (any marker expression naming slow) or
    EFFCONV_SLOW=1; otherwise they are skipped with the reason, so CI stays fast."""
    import os

    if "slow" in (config.option.markexpr or "") or os.environ.get("EFFCONV_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow: run with -m slow or EFFCONV_SLOW=1")
    for item in items:
        if item.get_closest_marker("slow"):
            item.add_marker(skip)
