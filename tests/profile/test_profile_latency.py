"""`effconv profile` with measured latency: the JSON `latency` section, CSV/Markdown columns, the
per-layer sum against the end-to-end median, plots, budget and option errors.

Oracles: the committed static golden profile (the static part must not change), the static
per-type Mult-Adds (the latency table must carry the same numbers), the statistics' own order
(min <= median <= p90 <= p95 <= p99) and the rule that a per-layer sum outside +-25 % of the
median comes with an explanation.
"""

from __future__ import annotations

import csv
import io
import json
import typing
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "profiles" / "mobilenet_v1_224.json"
# Short timing for tests: speed is for benchmarks/, these check structure and arithmetic.
FAST = ("--backend", "ort-cpu", "--threads", "1", "--warmup-ms", "5", "--duration-s", "0.02", "--iterations", "3")
STAT_KEYS = {"iterations", "min_ms", "median_ms", "mean_ms", "p90_ms", "p95_ms", "p99_ms", "std_ms", "cv", "throughput"}
TYPE_KEYS = {"type", "ms", "pct", "layers", "mult_adds", "mult_adds_pct", "gmacs", "intensity", "bound",
             "pct_of_roofline"}


@pytest.fixture(scope="module")
def mobilenet(tmp_path_factory):
    """`effconv profile mobilenet_v1 --backend ort-cpu` with every report file (short duration)."""
    from effconv.cli import main

    d = tmp_path_factory.mktemp("mbl")
    args = ["profile", "mobilenet_v1", "--backend", "ort-cpu", "--threads", "2", "--warmup-ms", "50",
            "--duration-s", "0.3", "--iterations", "5", "--no-layers", "--json", str(d / "p.json"),
            "--csv", str(d / "p.csv"), "--markdown", str(d / "p.md")]
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, d


def test_mobilenet_static_part_is_the_golden_profile(mobilenet):
    code, d = mobilenet
    assert code == 0
    doc = json.loads((d / "p.json").read_text())
    assert "latency" in doc
    doc.pop("latency")
    golden = json.loads(GOLDEN.read_text())
    for x in (doc, golden):
        x.pop("effconv_version")
    assert doc == golden


def test_mobilenet_latency_section_schema_and_sum_rule(mobilenet):
    _, d = mobilenet
    doc = json.loads((d / "p.json").read_text())
    lat = doc["latency"]
    assert (lat["backend"], lat["precision"], lat["batch"]) == ("ort-cpu", "fp32", 1)
    s = lat["statistics"]
    assert STAT_KEYS <= set(s) and s["iterations"] >= 5
    assert 0 < s["min_ms"] <= s["median_ms"] <= s["p90_ms"] <= s["p95_ms"] <= s["p99_ms"]
    assert s["throughput"] == pytest.approx(1e3 / s["median_ms"])
    pl = lat["per_layer"]
    assert pl["method"] == "ort-profiler" and pl["layers"]
    assert pl["sum_ms"] == pytest.approx(sum(r["ms"] for r in pl["layers"]))
    ratio = pl["sum_ratio"]
    assert ratio == pytest.approx(pl["sum_ms"] / s["median_ms"])
    assert 0.75 <= ratio <= 1.25 or pl["gap_explanation"], ratio  # the rule
    assert lat["environment"]["intra_op_threads"] == 2


def test_mobilenet_latency_types_carry_the_static_mult_adds(mobilenet):
    _, d = mobilenet
    doc = json.loads((d / "p.json").read_text())
    static = {t["type"]: t["mult_adds"] for t in doc["by_type"] if t["mult_adds"]}
    rows = {t["type"]: t for t in doc["latency"]["by_type"]}
    assert all(TYPE_KEYS <= set(r) for r in rows.values())
    for kind, macs in static.items():
        assert rows[kind]["mult_adds"] == macs, kind
        assert rows[kind]["gmacs"] == pytest.approx(macs / (rows[kind]["ms"] / 1e3) / 1e9)
    assert rows["Conv 1x1"]["mult_adds_pct"] == pytest.approx(94.86, abs=0.005)  # the paper's table
    assert sum(r["pct"] for r in rows.values()) == pytest.approx(100.0)


def test_mobilenet_csv_and_markdown_carry_latency(mobilenet):
    _, d = mobilenet
    lat = json.loads((d / "p.json").read_text())["latency"]
    rows = list(csv.DictReader(io.StringIO((d / "p.csv").read_text())))
    assert {"latency_ms", "latency_group"} <= set(rows[0])
    mapped = sum(r["ms"] for r in lat["per_layer"]["layers"] if r["nodes"])
    assert sum(float(r["latency_ms"]) for r in rows if r["latency_ms"]) == pytest.approx(mapped, rel=1e-5)
    heads = {r["latency_group"] for r in rows if r["latency_group"]}
    assert heads == {r["name"] for r in rows if r["latency_ms"]}
    md = (d / "p.md").read_text()
    assert "## Measured latency" in md and f"{lat['statistics']['median_ms']:.3f}" in md
    assert "| Conv 1x1 |" in md.split("## Measured latency")[1]


@pytest.mark.parametrize("budget, code", [("0.000001", 1), ("100000", 0)])
def test_budget_exits_after_writing_the_reports(cli, save, conv_model, tmp_path, budget, code):
    out = tmp_path / "p.json"
    res = cli("profile", save(conv_model), "--batch", "1", *FAST, "--budget-ms", budget, "--json", out, "-q")
    assert res.code == code, res.stderr
    assert json.loads(out.read_text())["latency"]["statistics"]["median_ms"] > 0
    assert ("exceeds the budget" in res.stderr) == (code == 1)


def test_batch_is_the_timed_batch(cli, save, conv_model, tmp_path):
    out = tmp_path / "p.json"
    res = cli("profile", save(conv_model), "--batch", "3", *FAST, "--json", out, "-q")
    assert res.code == 0, res.stderr
    doc = json.loads(out.read_text())
    assert doc["input_shapes"]["x"][0] == 3 and doc["latency"]["batch"] == 3
    s = doc["latency"]["statistics"]
    assert s["throughput"] == pytest.approx(3 * 1e3 / s["median_ms"])


def test_plots_static_and_latency(cli, save, conv_model, tmp_path):
    res = cli("profile", save(conv_model), "--batch", "1", *FAST, "--plot", tmp_path / "p.png", "-q")
    assert res.code == 0, res.stderr
    for name in ("p.png", "p-latency.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    res = cli("profile", save(conv_model), "--batch", "1", *FAST, "--latency-plot", tmp_path / "l.png", "-q")
    assert res.code == 0 and (tmp_path / "l.png").is_file()


@pytest.mark.parametrize("args, needle", [
    (("--no-latency", "--budget-ms", "5"), "drop --no-latency"),
    (("--no-latency", "--latency-plot", "x.png"), "drop --no-latency"),
    (("--backend", "ort-cpu", "--precision", "fp16"), "fp16"),
    (("--backend", "nope"), "unknown backend"),
    ((*FAST, "--per-layer", "none", "--latency-plot", "x.png"), "per-layer"),
])
def test_usage_errors(cli, save, conv_model, tmp_path, args, needle):
    res = cli("profile", save(conv_model), "--batch", "1", *args)
    assert res.code == 2, (res.stdout, res.stderr)
    assert needle in res.stderr and "Traceback" not in res.stderr


def test_no_latency_and_per_layer_none(cli, save, conv_model, tmp_path):
    static, timed = tmp_path / "s.json", tmp_path / "t.json"
    assert cli("profile", save(conv_model), "--batch", "1", "--no-latency", "--json", static, "-q").code == 0
    assert "latency" not in json.loads(static.read_text())
    res = cli("profile", save(conv_model), "--batch", "1", *FAST, "--per-layer", "none", "--json", timed,
              "--plot", tmp_path / "p.png", "-q")
    assert res.code == 0, res.stderr
    lat = json.loads(timed.read_text())["latency"]
    assert lat["per_layer"] is None and lat["by_type"] == []
    assert (tmp_path / "p.png").is_file() and not (tmp_path / "p-latency.png").exists()


SHARED = ("backend", "batch", "precision", "warmup_ms", "duration_s", "iterations", "threads", "include_copies",
          "cuda_graph", "torch_mode", "per_layer", "device_profile", "budget_ms")


def test_latency_options_are_declared_once():
    """`effconv latency` and `effconv profile` use the very same typer.Option objects."""
    from effconv.cli import latency, profile

    lat = typing.get_type_hints(latency.latency_cmd, include_extras=True)
    prof = typing.get_type_hints(profile.profile_cmd, include_extras=True)
    for name in SHARED:
        assert lat[name].__metadata__[0] is prof[name].__metadata__[0], name
    assert lat["plot"].__metadata__[0] is prof["latency_plot"].__metadata__[0]
