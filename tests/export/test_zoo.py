"""Every zoo spec exports with fresh weights, passes the full ONNX check, and matches PyTorch.

The oracle is the PyTorch model itself, on seeded random inputs and (where the data is present and
the model is a 32x32 CIFAR model) real CIFAR-10 test images. Measured fp32 errors are ~1e-7
relative, so the bound below is 100x tighter than the default tolerance and still far from flaky.
"""

from __future__ import annotations

import json

import pytest

from effconv.export.api import ExportOptions, export_model
from effconv.export.metadata import read_metadata
from effconv.specs import list_specs

SPECS = [s.name for s in list_specs()]
# One cheap CIFAR model per kind of graph: LRN (an If subgraph), residual adds, depthwise, capsules.
FP16_SPECS = [n for n in ("alexnet_cifar", "resnet20", "mobilenet_v1_cifar", "capsnet_cifar") if n in SPECS]
PARITY_IMAGES = 2  # per input set: the PyTorch reference dominates the run time (GMACs per image)


@pytest.mark.parametrize("name", SPECS)
def test_zoo_spec_exports_checks_and_matches(name, tmp_path, real_data):
    spec = next(s for s in list_specs() if s.name == name)
    out = tmp_path / f"{name}.onnx"
    result = export_model(name, out, ExportOptions(parity_images=PARITY_IMAGES))
    assert result.files == (out,) and sorted(p.name for p in tmp_path.iterdir()) == [out.name]
    assert result.check.opset == 17
    assert result.check.inputs["input"] == spec.input_shape(1)
    assert result.check.outputs["logits"][-1] == spec.num_classes
    (parity,) = result.parity
    names = [s.name for s in parity.sets]
    cifar = real_data and (spec.input_size, spec.in_channels) == (32, 3) and spec.num_classes == 10
    assert names == (["random", "cifar10-test"] if cifar else ["random"])
    assert parity.passed and all(s.max_rel_err < 1e-5 for s in parity.sets), parity
    meta = read_metadata(out)
    assert json.loads(meta["effconv.spec"])["name"] == name and meta["effconv.run_id"] == ""
    assert meta["effconv.input_size"] == str(spec.input_size) and meta["effconv.precision"] == "fp32"


@pytest.mark.parametrize("name", FP16_SPECS)
def test_fp16_export_within_documented_tolerance(name, tmp_path, real_data):
    out = tmp_path / f"{name}.onnx"
    result = export_model(name, out, ExportOptions(precision="fp16", parity_images=PARITY_IMAGES))
    (parity,) = result.parity
    assert parity.precision == "fp16" and parity.rtol == 1e-2 and parity.passed
    # float16 really happened: errors are far above fp32's ~1e-7, yet well inside the tolerance.
    assert all(1e-5 < s.max_rel_err < 2e-3 for s in parity.sets), parity
    assert read_metadata(out)["effconv.io_dtype"] == "float32"
