"""`effconv models`: the table and the JSON list agree with the specs and the parameter counter."""

from __future__ import annotations

import json
import subprocess
import sys

from effconv.specs import MODELS_DIR


def test_models_json(cli):
    res = cli("models", "--json")
    assert res.code == 0, res.stderr
    rows = json.loads(res.stdout)
    names = [r["name"] for r in rows]
    assert names == sorted(p.stem for p in MODELS_DIR.glob("*.toml"))
    by_name = {r["name"]: r for r in rows}
    mobilenet = by_name["mobilenet_v1"]
    # 4,209,088 conv + FC weights, 2 x 10,944 batchnorm parameters, 1,000 FC biases
    assert mobilenet["parameters"] == 4_209_088 + 2 * 10_944 + 1000
    assert (mobilenet["family"], mobilenet["input_size"], mobilenet["num_classes"]) == ("mobilenet", 224, 1000)
    assert set(mobilenet) == {"name", "family", "input_size", "in_channels", "num_classes", "parameters",
                              "size_mb", "description"}
    assert mobilenet["size_mb"] == round(mobilenet["parameters"] * 4 / 1e6, 2) == 16.93


def test_models_table(cli):
    res = cli("models")
    assert res.code == 0, res.stderr
    assert "resnet20" in res.stdout and "269,722" in res.stdout


def test_help_has_example(cli):
    res = cli("models", "--help")
    assert res.code == 0 and "effconv models --json" in res.stdout


def test_cli_import_does_not_import_torch():
    code = "import sys, effconv.cli; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
