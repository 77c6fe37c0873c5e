"""Structured fuzzing of `effconv profile` in CI: 250 valid-by-construction models
(tests/fuzz/structured.py) through the CLI in a worker process, with the coverage hooks and the
ONNX Runtime shape oracle of tests/fuzz/oracles.py.

Per input: an exit code 0-5, no traceback, out.json only on success, no worker death or hang, no
fold over its cap, and every Conv/Gemm/MatMul/Einsum output shape ORT could check equal to the
profile's. Over the run: at least half the inputs reach the counting code. The long run is
`python benchmarks/fuzz_profile.py --structured --examples 10000`.
"""

from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent

EXAMPLES = 250
TIMEOUT_S = 30



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
structured = _load("structured")
SEEDS = _load("fuzz_mutate").corpus()


@pytest.fixture(scope="module")
def worker():
    w = harness.Worker()
    yield w
    w.close()


def test_structured_inputs_keep_the_contract_and_agree_with_onnxruntime(worker):
    reached, compared, broken = 0, 0, []
    for i in range(EXAMPLES):
        r = random.Random(f"ci:{i}")
        data, tags, ort_ok = structured.generate(r, SEEDS)
        o = worker.run(data, harness.cli_args(r), timeout_s=TIMEOUT_S, opts={"hooks": True, "ort": ort_ok})
        e = o.extra
        reached += bool(e.get("reached"))
        ort = e.get("ort") or {}
        compared += ort.get("status") == "compared"
        problems = [what for what, bad in (
            ("exit code", o.code not in harness.ALLOWED_CODES), ("traceback", o.traceback),
            ("out.json", o.json_wrong), ("internal error", o.internal),
            ("fold over its cap", bool(e.get("fold_findings"))), ("shape mismatch", bool(ort.get("mismatch"))),
        ) if bad]
        if problems:
            broken.append((i, problems, tags, o.line, e.get("fold_findings"), ort.get("mismatch")))
    assert not broken, broken
    assert reached >= EXAMPLES // 2, f"only {reached} of {EXAMPLES} inputs reached the counting code"
    assert compared >= EXAMPLES // 5, f"ONNX Runtime compared only {compared} inputs"


def test_structured_inputs_are_deterministic():
    a = structured.generate(random.Random("ci:7"), SEEDS)
    b = structured.generate(random.Random("ci:7"), SEEDS)
    assert a == b


def test_oracle_can_fail(worker, tmp_path):
    """A profile whose Conv shape is wrong is reported as a mismatch (the oracle is not vacuous)."""
    import json

    oracles = _load("oracles")
    r = random.Random("oracle")
    c = structured.Case(opset=13, tags=[])
    x = c.input([1, 2, 5, 5])
    c.output(c.one("Conv", x, c.const(structured._w(r, 3, 2, 3, 3), stem="w")))
    data = c.model().SerializeToString()
    out = worker.run(data, ("--quiet",), opts={"hooks": True, "ort": True})
    assert out.code == 0 and out.extra["reached"] and "Conv" in out.extra["handlers"]
    assert out.extra["ort"]["status"] == "compared" and out.extra["ort"]["agree"] == 1
    doc = {"input_shapes": {x: [1, 2, 5, 5]},
           "layers": [{"name": "conv", "op_type": "Conv", "outputs": [c.nodes[0].output[0]],
                       "output_shape": [1, 3, 4, 4]}]}
    (tmp_path / "out.json").write_text(json.dumps(doc))
    res = oracles.ort_check(data, tmp_path / "out.json")
    assert res["mismatch"] == [("Conv", "conv", [1, 3, 4, 4], [1, 3, 3, 3])]
