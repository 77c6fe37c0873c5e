"""Fuzz `effconv profile` with mutated ONNX files (bytes and protobuf fields): every input ends in
an exit code 0-5, with no traceback, out.json only on success, and the harness process survives
(a native crash would kill the worker, and is reported as a failure here).

Bounded for CI (about a minute on 2 cores); `python benchmarks/fuzz_profile.py --examples 10000`
runs the long version.
"""

from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

HERE = Path(__file__).resolve().parent
EXAMPLES = 250


def _load(name: str):
    """Import tests/fuzz/<name>.py by name (spawned workers re-import it through sys.path)."""
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


harness = _load("fuzz_harness")
mutate = _load("fuzz_mutate")
SEEDS = mutate.corpus()


@pytest.fixture(scope="module")
def worker():
    w = harness.Worker()
    yield w
    w.close()


def test_corpus_is_small_valid_and_profiles(worker):
    """The seed corpus itself profiles cleanly (exit 0): the mutations start from valid models."""
    assert 6 <= len(SEEDS) and sum(map(len, SEEDS.values())) < 1_000_000
    for name, data in SEEDS.items():
        out = worker.run(data)
        assert out.code == 0 and out.ok, (name, out)


def test_corpus_script_is_deterministic(tmp_path):
    make = _load("make_corpus")
    for path in make.write_corpus(tmp_path):
        assert path.read_bytes() == (HERE / "corpus" / path.name).read_bytes(), path.name


def test_harness_detects_a_worker_crash(worker):
    """The oracle can fail: a worker killed by a signal is reported, and the next input still runs."""
    import os
    import signal

    os.kill(worker.proc.pid, signal.SIGSEGV)
    worker.proc.join(5)
    crashed = worker.run(SEEDS["conv_bn_relu_fc.onnx"])
    assert crashed.code is None and not crashed.ok
    assert worker.run(SEEDS["conv_bn_relu_fc.onnx"]).code == 0


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(r=st.randoms(use_true_random=False))
def test_mutated_models_never_break_the_contract(worker, r: random.Random):
    data, applied = mutate.mutate(r, SEEDS)
    out = worker.run(data, harness.cli_args(r))
    assert out.code in harness.ALLOWED_CODES, (applied, out)
    assert not out.traceback, (applied, out)
    assert not out.json_wrong, (applied, out)
