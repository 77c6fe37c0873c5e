"""Report files (JSON schema, CSV, Markdown, PNG), the `cost` command, and no torch for ONNX files."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest

SCHEMA_KEYS = {"schema_version", "model", "input_shapes", "convention", "totals", "by_type", "layers", "unsupported"}


@pytest.fixture
def written(cli, save, conv_model, tmp_path):
    paths = {k: tmp_path / f"out.{k}" for k in ("json", "csv", "md", "png")}
    res = cli("profile", save(conv_model), "--batch", "2", "--no-latency", "--json", paths["json"], "--csv", paths["csv"],
              "--markdown", paths["md"], "--plot", paths["png"], "-q")
    assert res.code == 0, res.stderr
    assert res.stdout == ""  # --quiet
    return paths


def test_json_schema(written):
    doc = json.loads(written["json"].read_text())
    assert SCHEMA_KEYS <= set(doc) and doc["schema_version"] == 1
    assert doc["input_shapes"] == {"x": [2, 4, 8, 8]} and doc["convention"] == "paper"
    expected = 2 * 8 * 8 * 6 * 4 * 3 * 3  # N * H * W * C_out * C_in * K^2 (pads 1 keep 8x8)
    assert doc["totals"]["mult_adds"] == expected and doc["totals"]["weights"] == 6 * 4 * 9
    (row,) = doc["by_type"]
    assert row == {"type": "Conv 3x3", "mult_adds": expected, "mult_adds_pct": 100.0, "weights": 216,
                   "weights_pct": 100.0, "layers": 1}
    (layer,) = doc["layers"]
    assert {"name", "op_type", "type", "output_shape", "mult_adds", "weights"} <= set(layer)
    assert layer["output_shape"] == [2, 6, 8, 8] and layer["cumulative_pct"] == 100.0


def test_csv_markdown_png(written):
    rows = list(csv.DictReader(written["csv"].open()))
    assert len(rows) == 1 and rows[0]["type"] == "Conv 3x3" and rows[0]["output_shape"] == "2x6x8x8"
    md = written["md"].read_text()
    assert "| Conv 3x3 | 27,648 | 100.00 | 216 | 100.00 |" in md and "`paper`" in md
    assert written["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    leftovers = [p.name for p in written["json"].parent.iterdir() if p.name.startswith(".")]
    assert leftovers == []  # atomic writes leave no temporary file


def test_output_folder_missing_is_usage_error(cli, save, conv_model, tmp_path):
    res = cli("profile", save(conv_model), "--batch", "1", "--no-latency", "--json", tmp_path / "no" / "p.json")
    assert res.code == 2 and "does not exist" in res.stderr


@pytest.mark.parametrize("f,n,m,k", [(14, 512, 512, 3), (112, 32, 64, 3), (7, 1024, 1024, 5)])
def test_cost_command(cli, f, n, m, k):
    res = cli("cost", f, n, m, k)
    assert res.code == 0, res.stderr
    standard, separable = f * f * n * k * k * m, f * f * n * k * k + f * f * n * m  # the paper's formulas
    assert f"{standard:,}" in res.stdout and f"{separable:,}" in res.stdout
    assert f"{separable / standard:.6f}" in res.stdout and f"{1 / m + 1 / k**2:.6f}" in res.stdout


def test_profile_onnx_file_does_not_import_torch(save, conv_model):
    """`effconv profile x.onnx` must stay torch-free (start-up time, end-to-end speed)."""
    code = ("import sys\nfrom effconv.cli import main\ntry:\n    main(['profile', sys.argv[1], '--batch', '1', '--no-latency'])\n"
            "except SystemExit as e:\n    assert not e.code, e.code\n"
            "print('LOADED', 'torch' in sys.modules, 'onnxruntime' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(save(conv_model))], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "LOADED False False" in out.stdout
