"""MobileNet v1 against the paper's Table 2, the committed golden profile, and fvcore as an
independent oracle on every zoo model (a representative subset runs by default; the rest is slow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "profiles" / "mobilenet_v1_224.json"
# The paper's Table 2 (Mult-Adds %, parameters %), except Conv 3x3: the paper prints 1.19, the
# arithmetic gives 10,838,016 / 568,740,352 = 1.91 % (the printed column sums to 99.29 %).
PAPER = {"Conv 1x1": (94.86, 74.59), "Conv DW 3x3": (3.06, 1.06), "Conv 3x3": (1.91, 0.02),
         "Fully Connected": (0.18, 24.33)}
FAST = ("alexnet_cifar", "mobilenet_v1_cifar", "resnet20", "vgg14_mixed", "xception_cifar")


def _zoo_names() -> list[str]:
    try:
        from effconv.specs import list_specs

        return [s.name for s in list_specs()]
    except Exception:  # zoo not installed: the parametrized test is then skipped (empty list)
        return []


@pytest.fixture(scope="module")
def mobilenet_run(tmp_path_factory):
    """`effconv profile --crosscheck --json` with no model argument: the built-in mobilenet_v1."""
    from effconv.cli import main

    out = tmp_path_factory.mktemp("mb") / "p.json"
    try:
        main(["profile", "--crosscheck", "--json", str(out), "--no-layers", "--no-latency"])
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, json.loads(out.read_text()) if out.exists() else None


def test_mobilenet_matches_paper_table(mobilenet_run):
    code, doc = mobilenet_run
    assert code == 0
    assert doc["model"] == "mobilenet_v1" and doc["input_shapes"] == {"input": [1, 3, 224, 224]}
    assert (doc["totals"]["mult_adds"], doc["totals"]["weights"]) == (568_740_352, 4_209_088)
    rows = {r["type"]: r for r in doc["by_type"] if r["mult_adds"] or r["weights"]}
    assert set(rows) == set(PAPER)
    for t, (ma, w) in PAPER.items():
        assert (round(rows[t]["mult_adds_pct"], 2), round(rows[t]["weights_pct"], 2)) == (ma, w), t
    assert rows["Conv 3x3"]["mult_adds"] == 10_838_016
    assert any("1.19%" in n and "99.29%" in n for n in doc["notes"])


def test_golden_profile_is_current(mobilenet_run):
    _, doc = mobilenet_run
    golden = json.loads(GOLDEN.read_text())
    for d in (doc, golden):
        d.pop("effconv_version")
    assert doc == golden
    md = GOLDEN.with_suffix(".md").read_text()
    assert "| Conv 3x3 | 10,838,016 | 1.91 | 864 | 0.02 |" in md and "1.19%" in md


@pytest.mark.parametrize(
    "name", [n if n in FAST else pytest.param(n, marks=pytest.mark.slow) for n in _zoo_names()]
)
def test_onnx_count_equals_fvcore(name):
    """ONNX Conv+Gemm+MatMul Mult-Adds == fvcore conv + linear (+ matmul) on the source module."""
    from effconv.profile import onnx_source, profile_source
    from effconv.profile.crosscheck import crosscheck

    with onnx_source(name) as src:
        check = crosscheck(src.path, src.module, src.input_shape, src.model)
        prof = profile_source(src)
    assert check.ok, (check.onnx_mult_adds, check.fvcore_matched)
    assert check.fvcore_matched > 0
    assert prof.unsupported == {}
    assert prof.totals.mult_adds == check.onnx_mult_adds
