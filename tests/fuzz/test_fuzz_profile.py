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


def _conv_model(nodes, inits):
    """x[1,2,5,5] -> NODES -> y[1,2,3,3] (a 3x3 Conv of weights `w` closes the graph)."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    inits = [numpy_helper.from_array(np.ones((2, 2, 3, 3), np.float32), "w"), *inits]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 5, 5])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 3, 3])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m.SerializeToString()


def _unknown_dtype() -> bytes:
    """Found by the 10,000-input run (seed 0, input 8342): an initializer of data_type 37119.
    (Input 1324, std::bad_alloc in shape inference, is tests/safety/test_profile_isolation.py's
    huge-pads model.)"""
    from onnx import TensorProto, helper

    bad = TensorProto(name="z", data_type=37119, dims=[1], raw_data=b"\0" * 4)
    return _conv_model([helper.make_node("Conv", ["x", "w"], ["y"])], [bad])


def test_unknown_data_type_found_by_the_long_run(worker):
    """Before the fix: KeyError in constant folding, exit 5 with "rerun with --debug" (internal).
    The unused initializer is left alone now; the Conv is profiled."""
    out = worker.run(_unknown_dtype(), ("--quiet",))
    assert out.code == 0 and not out.internal and out.ok, out
