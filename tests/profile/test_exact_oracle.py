"""Exact Mult-Adds on the graph patterns real-world models export, against an independent counter.

Oracle: torch.utils.flop_counter.FlopCounterMode on the source nn.Module, same input; its FLOPs
count a multiply-add as 2 (conv, mm, addmm, bmm, baddbmm, attention), so Mult-Adds = FLOPs / 2.
It counts no bias adds, normalization or softmax: the `paper` convention's set exactly.
Caveat found while writing these: on CPU, torch 2.13 runs F.scaled_dot_product_attention with
`_scaled_dot_product_flash_attention_for_cpu`, which FlopCounterMode has no formula for (it counts
0). The oracle therefore runs under `sdpa_kernel(SDPBackend.MATH)`, whose composite path is bmm.

Exports: effconv's own exporter settings (TorchScript exporter, dynamo=False, opset 17, constant
folding, eval mode), static or with dynamic axes; dynamic files are profiled with explicit shapes.
Parameters: every float constant the graph holds (initializers and Constant-node tensors, read by
a node) is in exactly one of weights / biases / norm_params / other_params (core.py's convention).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from effconv.profile import profile_onnx  # noqa: E402

FLOAT_TYPES = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE,
               onnx.TensorProto.BFLOAT16}


# Oracle ------------------------------------------------------------------------------------------
def oracle_mult_adds(module: nn.Module, shape: tuple[int, ...]) -> int:
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    module = module.eval()
    with torch.no_grad(), sdpa_kernel([SDPBackend.MATH]), FlopCounterMode(display=False) as counter:
        module(torch.randn(*shape))
    flops = counter.get_total_flops()
    assert flops % 2 == 0
    return flops // 2


def float_constant_elements(path: Path) -> tuple[int, int]:
    """(elements of float initializers, elements of float Constant-node tensors) in the file."""
    m = onnx.load(str(path))
    inits = sum(int(np.prod(t.dims)) for t in m.graph.initializer if t.data_type in FLOAT_TYPES)
    consts = 0
    for node in m.graph.node:
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value" and a.t.data_type in FLOAT_TYPES:
                    consts += int(np.prod(a.t.dims))
    return inits, consts


def export(module: nn.Module, path: Path, shape, dynamic_axes=None, opset=17) -> Path:
    """torch.onnx.export exactly as effconv.export.onnx does (names, folding, eval mode)."""
    from effconv.export.onnx import INPUT_NAME, OUTPUT_NAME, export_onnx

    if dynamic_axes is None or dynamic_axes == {0: "batch"}:
        return export_onnx(module, path, shape, opset=opset, dynamic_batch=dynamic_axes is not None)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module.eval(), (torch.zeros(*shape),), str(path), dynamo=False, opset_version=opset,
            input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: dynamic_axes, OUTPUT_NAME: {0: "batch"}},
            do_constant_folding=True, training=torch.onnx.TrainingMode.EVAL,
        )
    return path


# Models: one per pattern --------------------------------------------------------------------------
def conv_bn(c_in, c_out, k=1, s=1, groups=1):
    return nn.Sequential(nn.Conv2d(c_in, c_out, k, s, k // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU())


class ShuffleNetLike(nn.Module):
    """ShuffleNet v2 units: x.chunk(2, 1), a 1x1 / DW 3x3 / 1x1 branch on one half, concat, shuffle."""

    def __init__(self, c=32, units=2, classes=10):
        super().__init__()
        self.stem = conv_bn(3, c, 3, 2)
        self.branches = nn.ModuleList(
            nn.Sequential(conv_bn(c // 2, c // 2), nn.Conv2d(c // 2, c // 2, 3, 1, 1, groups=c // 2, bias=False),
                          nn.BatchNorm2d(c // 2), conv_bn(c // 2, c // 2))
            for _ in range(units))
        self.fc = nn.Linear(c, classes)

    def forward(self, x):
        x = self.stem(x)
        for branch in self.branches:
            a, b = x.chunk(2, 1)
            x = torch.cat([a, branch(b)], 1)
            n, c, h, w = x.shape
            x = x.view(n, 2, c // 2, h, w).transpose(1, 2).reshape(n, c, h, w)  # channel shuffle
        return self.fc(x.mean((2, 3)))


class SwinLike(nn.Module):
    """Swin block: pad H, W up to a multiple of the window (from x.shape: Shape-Gather-Mod-Sub-Pad),
    window partition by view/permute, multi-head attention with matmul + softmax, window merge, crop."""

    def __init__(self, dim=32, heads=2, window=4, classes=10):
        super().__init__()
        self.heads, self.window = heads, window
        self.embed = nn.Conv2d(3, dim, 4, 4)
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.fc = nn.Linear(dim, classes)

    def forward(self, x):
        x = self.embed(x).permute(0, 2, 3, 1)  # B H W C
        b, h, w, c = x.shape
        ws = self.window
        pad_b, pad_r = (ws - h % ws) % ws, (ws - w % ws) % ws
        x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
        hp, wp = x.shape[1], x.shape[2]
        t = x.view(b, hp // ws, ws, wp // ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, ws * ws, c)
        t = self.norm(t)
        n_win, n_tok = t.shape[0], t.shape[1]
        qkv = self.qkv(t).reshape(n_win, n_tok, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q * (c // self.heads) ** -0.5) @ k.transpose(-2, -1)
        t = (attn.softmax(-1) @ v).transpose(1, 2).reshape(n_win, n_tok, c)
        t = self.proj(t)
        x = t.view(b, hp // ws, wp // ws, ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(b, hp, wp, c)
        x = x[:, :h, :w, :].contiguous()
        return self.fc(x.mean((1, 2)))


class _Tokens(nn.Module):
    """Patch embedding to [B, T, C] and q, k, v as [B, heads, T, C / heads]."""

    def __init__(self, dim=32, heads=4, classes=10):
        super().__init__()
        self.heads = heads
        self.embed = nn.Conv2d(3, dim, 4, 4)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.fc = nn.Linear(dim, classes)

    def qkv_heads(self, x):
        t = self.embed(x).flatten(2).transpose(1, 2)
        b, n, c = t.shape
        q, k, v = self.qkv(t).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        return q, k, v, (b, n, c)

    def finish(self, o, bnc):
        b, n, c = bnc
        return self.fc(self.proj(o.transpose(1, 2).reshape(b, n, c)).mean(1))


class EinsumAttention(_Tokens):
    def forward(self, x):
        q, k, v, bnc = self.qkv_heads(x)
        attn = torch.einsum("bhqd,bhkd->bhqk", q, k) * q.shape[-1] ** -0.5
        return self.finish(torch.einsum("bhqk,bhkd->bhqd", attn.softmax(-1), v), bnc)


class SdpaAttention(_Tokens):
    def forward(self, x):
        q, k, v, bnc = self.qkv_heads(x)
        return self.finish(F.scaled_dot_product_attention(q, k, v), bnc)


class PlainConvNet(nn.Module):
    """Stem 3x3, depthwise-separable, grouped 3x3, 5x5, max pool, FC: the sanity case."""

    def __init__(self, classes=10):
        super().__init__()
        self.features = nn.Sequential(
            conv_bn(3, 16, 3, 2), conv_bn(16, 16, 3, 1, groups=16), conv_bn(16, 32), nn.MaxPool2d(2),
            conv_bn(32, 32, 3, 1, groups=4), conv_bn(32, 24, 5), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(24, classes)

    def forward(self, x):
        return self.fc(self.features(x))


class StdConv(nn.Conv2d):
    """BiT's weight-standardized conv: the weight is normalized at run time by batch_norm on its
    reshape, then reshaped back (reshape_as: the target shape is a constant the exporter shares
    between equal-shaped weights through Identity nodes)."""

    def forward(self, x):
        w = F.batch_norm(self.weight.reshape(1, self.out_channels, -1), None, None, training=True,
                         momentum=0.0, eps=1e-8).reshape_as(self.weight)
        return F.conv2d(x, w, self.bias, self.stride, self.padding, self.dilation, self.groups)


class WeightStandardizedNet(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.features = nn.Sequential(StdConv(3, 16, 3, 2, 1, bias=False), nn.ReLU(),
                                      StdConv(16, 16, 3, 1, 1, bias=False), nn.ReLU(),
                                      StdConv(16, 16, 3, 1, 1, bias=False), nn.ReLU(),
                                      StdConv(16, 32, 1, bias=False), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(32, classes)

    def forward(self, x):
        return self.fc(self.features(x))


@dataclass(frozen=True)
class Case:
    build: type
    export_shape: tuple[int, ...]
    dynamic_axes: dict | None = None
    profile_shapes: tuple[tuple[int, ...], ...] = field(default=())  # () -> the export shape

    def shapes(self):
        return self.profile_shapes or (self.export_shape,)


BATCH = {0: "batch"}
CASES = {
    "shufflenet_split": Case(ShuffleNetLike, (1, 3, 32, 32)),
    "shufflenet_split_dynbatch": Case(ShuffleNetLike, (1, 3, 32, 32), BATCH, ((2, 3, 32, 32),)),
    "swin_window_pad": Case(SwinLike, (1, 3, 56, 56)),  # 14x14 tokens, window 4: padded to 16x16
    "swin_window_pad_dynamic_hw": Case(SwinLike, (1, 3, 56, 56), {0: "batch", 2: "h", 3: "w"},
                                       ((1, 3, 56, 56), (2, 3, 72, 40))),
    "einsum_attention": Case(EinsumAttention, (1, 3, 32, 32)),
    "einsum_attention_dynbatch": Case(EinsumAttention, (1, 3, 32, 32), BATCH, ((3, 3, 32, 32),)),
    "sdpa_attention": Case(SdpaAttention, (1, 3, 32, 32)),
    "sdpa_attention_dynbatch": Case(SdpaAttention, (1, 3, 32, 32), BATCH, ((2, 3, 32, 32),)),
    "plain_convnet": Case(PlainConvNet, (1, 3, 32, 32)),
    "weight_standardized_conv": Case(WeightStandardizedNet, (1, 3, 32, 32)),
    "dynamic_batch_1_and_4": Case(PlainConvNet, (1, 3, 32, 32), BATCH, ((1, 3, 32, 32), (4, 3, 32, 32))),
}


def _profile(path, case: Case, shape, strict=False):
    if case.dynamic_axes is None:
        return profile_onnx(path, strict=strict)
    if set(case.dynamic_axes) == {0}:
        return profile_onnx(path, batch=shape[0], strict=strict)
    return profile_onnx(path, input_shapes={"input": shape}, strict=strict)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """name -> (module, ONNX path): each case built (seeded) and exported once per module."""
    cache = {}

    def get(name):
        if name not in cache:
            torch.manual_seed(0)
            case = CASES[name]
            module = case.build().eval()
            path = export(module, tmp_path_factory.mktemp(name) / f"{name}.onnx", case.export_shape,
                          case.dynamic_axes)
            cache[name] = module, path
        return cache[name]

    return get


@pytest.mark.parametrize("name", list(CASES))
def test_mult_adds_equal_flop_counter(exported, name):
    case = CASES[name]
    module, path = exported(name)
    for shape in case.shapes():
        prof = _profile(path, case, shape)
        want = oracle_mult_adds(module, shape)
        assert (prof.totals.mult_adds, shape) == (want, shape), (prof.unsupported, getattr(prof, "uncounted", "n/a"))
        assert prof.complete is True, prof.uncounted
        assert prof.uncounted == ()
        _profile(path, case, shape, strict=True)  # must not raise


@pytest.mark.parametrize("name", list(CASES))
def test_every_float_constant_counted_once(exported, name):
    case = CASES[name]
    _, path = exported(name)
    t = _profile(path, case, case.shapes()[0]).totals
    inits, consts = float_constant_elements(path)
    assert t.weights + t.biases + t.norm_params + t.other_params == inits + consts, (inits, consts)


def test_dynamic_batch_scales_linearly(exported):
    case = CASES["dynamic_batch_1_and_4"]
    _, path = exported("dynamic_batch_1_and_4")
    one, four = (_profile(path, case, s).totals for s in case.shapes())
    assert four.mult_adds == 4 * one.mult_adds
    assert (four.weights, four.biases) == (one.weights, one.biases)


def test_oracle_sees_sdpa_only_on_the_math_path():
    """Why the oracle forces SDPBackend.MATH: the CPU flash kernel has no FlopCounterMode formula."""
    from torch.utils.flop_counter import FlopCounterMode

    q = torch.randn(1, 2, 16, 8)
    with FlopCounterMode(display=False) as counter:
        F.scaled_dot_product_attention(q, q, q)
    default = counter.get_total_flops()
    assert oracle_mult_adds(_Sdpa(), (1, 2, 16, 8)) == 2 * 2 * 16 * 16 * 8  # QK^T and AV
    assert default in (0, 2 * 2 * 2 * 16 * 16 * 8)  # 0 on torch 2.13 CPU; right if a formula lands


class _Sdpa(nn.Module):
    def forward(self, q):
        return F.scaled_dot_product_attention(q, q, q)


def test_einsum_is_typed_and_counted_as_its_contraction(exported):
    """'bhqd,bhkd->bhqk' costs b*h*q*k*d: the product of all distinct index sizes."""
    _, path = exported("einsum_attention")
    prof = profile_onnx(path)
    einsums = [lc for lc in prof.layers if lc.op_type == "Einsum"]
    assert len(einsums) == 2
    b, h, n, d = 1, 4, 64, 8  # 32x32 input, 4x4 patches: 64 tokens; 32 channels / 4 heads
    assert [lc.mult_adds for lc in einsums] == [b * h * n * n * d] * 2
