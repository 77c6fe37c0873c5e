"""Shared helpers of the safety tests: small ONNX builders and the sandbox target module."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.fixture
def targets(monkeypatch):
    """tests/safety/sandbox_targets.py, importable by name here and in spawned children (spawn
    passes the parent's sys.path to the child)."""
    monkeypatch.syspath_prepend(str(HERE))
    import sandbox_targets

    return sandbox_targets


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Decoded data caches go to the test's folder, never to ~/.cache."""
    monkeypatch.setenv("EFFCONV_CACHE", str(tmp_path / "cache"))


