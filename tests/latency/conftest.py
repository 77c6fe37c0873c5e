"""A tiny conv net exported to ONNX once per session (conv-bn-relu, depthwise, 1x1, pool, fc)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory):
    import torch.nn as nn

    from effconv.export.onnx import export_onnx

    def cbr(cin, cout, k, groups=1):
        return [nn.Conv2d(cin, cout, k, padding=k // 2, groups=groups), nn.BatchNorm2d(cout), nn.ReLU()]

    model = nn.Sequential(*cbr(3, 16, 3), *cbr(16, 16, 3, groups=16), *cbr(16, 32, 1),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10)).eval()
    path = tmp_path_factory.mktemp("tiny") / "tiny.onnx"
    return export_onnx(model, path, (1, 3, 16, 16))
