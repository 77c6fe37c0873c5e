"""Three real architectures from HuggingFace `transformers` (built from their configs, random weights,
nothing downloaded) profile exactly: benchmarks/corpus_exact.py's SMALL subset, one row each.
Skipped without transformers (the `bench` extra). Oracle: FlopCounterMode on the torch module."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "corpus_exact.py"


def _corpus():
    name = "effconv_bench_corpus_exact"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, BENCH)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while the class is built
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.mark.parametrize("name", _corpus().SMALL)
def test_real_architecture_is_exact(tmp_path, name):
    row = _corpus().run_one(name, tmp_path, keep=False)
    assert row.error == "", row.error
    assert row.oracle and row.effconv == row.oracle - row.oracle_folded, row.by_op
    assert row.diff == 0
    assert row.complete is True, row.uncounted
    assert row.unsupported == {}
    assert row.params_equal, (row.params_onnx, row.params_effconv)
    assert row.strict_exit == 0
