"""External data for models over the threshold, and all-or-nothing staging."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from effconv.export.onnx import check_onnx, export_onnx
from effconv.export.parity import check_onnx_parity, random_inputs
from effconv.export.staging import commit, save_onnx, staging_dir, tensor_bytes


def _synthetic() -> nn.Module:
    torch.manual_seed(0)  # 3*8*8*64 + 64 weights + 64*10 + 10: 13,002 floats = 52,008 bytes
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 64), nn.ReLU(), nn.Linear(64, 10)).eval()


def test_tensor_bytes_is_four_bytes_per_float(tmp_path):
    path = export_onnx(_synthetic(), tmp_path / "m.onnx", (1, 3, 8, 8))
    assert tensor_bytes(onnx.load(str(path))) == 4 * (192 * 64 + 64 + 64 * 10 + 10)


@pytest.mark.parametrize("threshold, external", [(100_000, False), (1000, True)])
def test_external_data_over_threshold(tmp_path, threshold, external):
    model = _synthetic()
    out = tmp_path / "m.onnx"
    export_onnx(model, out, (1, 3, 8, 8), external_data_threshold=threshold)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == (["m.onnx", "m.onnx.data"] if external else ["m.onnx"])  # no staging left behind
    check = check_onnx(out)
    assert check.external_data is external
    skeleton = onnx.load(str(out), load_external_data=False)
    locations = {e.value for t in skeleton.graph.initializer for e in t.external_data if e.key == "location"}
    assert locations == ({"m.onnx.data"} if external else set())  # relative, inside the folder
    if external:
        assert out.stat().st_size < 10_000 < (tmp_path / "m.onnx.data").stat().st_size
    result = check_onnx_parity(model, out, [("random", random_inputs(4, (3, 8, 8)))], precision="fp32")
    assert result.passed and result.sets[0].max_abs_err < 1e-5


def test_external_pair_survives_a_move(tmp_path):
    export_onnx(_synthetic(), tmp_path / "m.onnx", (1, 3, 8, 8), external_data_threshold=0)
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    for name in ("m.onnx", "m.onnx.data"):
        (tmp_path / name).rename(moved / name)
    assert check_onnx(moved / "m.onnx").external_data


def test_staging_removed_on_failure_and_nothing_committed(tmp_path):
    with pytest.raises(RuntimeError), staging_dir(tmp_path) as stage:
        save_onnx(onnx.load(str(export_onnx(_synthetic(), stage / "a.onnx", (1, 3, 8, 8)))), stage / "b.onnx", 0)
        raise RuntimeError("a check failed")
    assert list(tmp_path.iterdir()) == []


def test_commit_moves_in_order(tmp_path):
    with staging_dir(tmp_path) as stage:
        (stage / "x.data").write_bytes(b"1")
        (stage / "x.onnx").write_bytes(b"2")
        placed = commit([stage / "x.data", stage / "x.onnx"], tmp_path)
    assert [p.name for p in placed] == ["x.data", "x.onnx"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.data", "x.onnx"]


def test_missing_output_folder_is_usage_error(tmp_path):
    from effconv.errors import UsageError

    with pytest.raises(UsageError, match="does not exist"):
        export_onnx(_synthetic(), tmp_path / "no" / "m.onnx", (1, 3, 8, 8))


def test_export_signature_still_takes_positional_shape(tmp_path):
    """The profile helper calls export_onnx(model, path, shape, opset=, dynamic_batch=)."""
    out = export_onnx(_synthetic(), str(tmp_path / "d.onnx"), (2, 3, 8, 8), opset=13, dynamic_batch=True)
    check = check_onnx(out)
    assert isinstance(out, Path) and check.opset == 13 and check.inputs["input"][0] == "batch"
    assert np.array_equal(np.asarray(check.inputs["input"][1:]), [3, 8, 8])


def test_large_model_path_exports_through_a_file(tmp_path, monkeypatch):
    """Over IN_MEMORY_EXPORT_BYTES the raw export goes through a file inside the staging folder."""
    import effconv.export.onnx as onnx_mod

    monkeypatch.setattr(onnx_mod, "IN_MEMORY_EXPORT_BYTES", 0)
    model = _synthetic()
    out = export_onnx(model, tmp_path / "m.onnx", (1, 3, 8, 8), external_data_threshold=1000)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "m.onnx.data"]
    assert check_onnx_parity(model, out, [("random", random_inputs(2, (3, 8, 8)))], precision="fp32").passed
