"""effconv's exporter writes models built on nn.MultiheadAttention (whose fused eval-mode kernel the
TorchScript exporter cannot export), and the file computes what the module does."""

from __future__ import annotations

import numpy as np
import torch

from effconv.export.onnx import export_onnx


def test_transformer_encoder_exports_and_matches(tmp_path):
    import onnxruntime as ort

    torch.manual_seed(0)
    model = torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(32, 4, 64, batch_first=True), 2).eval()
    path = export_onnx(model, tmp_path / "enc.onnx", (1, 8, 32))
    assert torch.backends.mha.get_fastpath_enabled()  # restored after the export
    x = torch.randn(1, 8, 32)
    with torch.no_grad():
        expected = model(x).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
