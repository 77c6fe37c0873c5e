"""RNN, GRU and LSTM counted as the matrix products they run each step: seq x batch x dirs x
gates*H x (I + H). Oracles: that closed form for all three, and FlopCounterMode where torch
decomposes the layer into matrix products it has formulas for (GRU, RNN; it counts 0 for LSTM)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from effconv.export.onnx import export_onnx
from effconv.profile import profile_onnx

CASES = [(nn.LSTM, 4, False), (nn.GRU, 3, True), (nn.RNN, 1, False)]


class Net(nn.Module):
    def __init__(self, cls, bidirectional):
        super().__init__()
        self.rnn = cls(16, 24, batch_first=True, bidirectional=bidirectional)
        self.fc = nn.Linear(24 * (2 if bidirectional else 1), 5)

    def forward(self, x):
        y, _ = self.rnn(x)
        return self.fc(y[:, -1])


@pytest.mark.parametrize("cls,gates,bidirectional", CASES, ids=[c[0].__name__ for c in CASES])
def test_recurrent_layers(tmp_path, cls, gates, bidirectional):
    from torch.utils.flop_counter import FlopCounterMode

    torch.manual_seed(0)
    model = Net(cls, bidirectional).eval()
    seq, batch, dirs, hidden, inp = 7, 2, 2 if bidirectional else 1, 24, 16
    prof = profile_onnx(export_onnx(model, tmp_path / "m.onnx", (batch, seq, inp)), strict=True)
    fc = batch * 5 * hidden * dirs
    assert prof.totals.mult_adds == seq * batch * dirs * gates * hidden * (inp + hidden) + fc
    assert prof.totals.weights == dirs * gates * hidden * (inp + hidden) + 5 * hidden * dirs
    if cls is not nn.LSTM:
        with FlopCounterMode(display=False) as counter:
            model(torch.zeros(batch, seq, inp))
        assert prof.totals.mult_adds == counter.get_total_flops() // 2
