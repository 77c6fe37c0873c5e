"""Exact Mult-Adds on real architectures: a corpus of HuggingFace `transformers` vision models, built
here from their config classes with random weights (nothing is downloaded), exported to ONNX with
effconv's exporter, profiled by effconv, and checked against an independent counter.

    python benchmarks/corpus_exact.py [--models resnet,vit] [--out DIR] [--report profiles/corpus.md]
    python benchmarks/corpus_exact.py --dynamic-batch 2   # dynamic batch axis, profiled at batch 2
    python benchmarks/corpus_exact.py --list

Needs the `bench` extra (transformers). Per model:
- oracle: torch.utils.flop_counter.FlopCounterMode on the torch module, same input; Mult-Adds =
  FLOPs / 2. It counts conv (plain, grouped, transposed), mm, addmm, bmm, baddbmm and attention:
  the `paper` convention's set (Conv, ConvTranspose, Gemm, MatMul, Einsum). Neither counts bias adds,
  normalization, softmax, pooling or interpolation. One difference is handled, not ignored: on CPU,
  torch 2.13 runs F.scaled_dot_product_attention with a flash kernel that FlopCounterMode has no
  formula for (it counts 0), so the oracle runs under sdpa_kernel(SDPBackend.MATH), whose composite
  path is two bmm. The `by op` note lists what each side counted, so a difference can be placed.
- effconv: `profile_onnx` on the exported file (diff = effconv - oracle), `complete`, unsupported ops,
  and whether `strict=True` passes (exit 0) or refuses (exit 3).
- params: every float constant of the file (initializer elements + Constant-node tensor elements)
  against effconv's weights + biases + norm_params + other_params.
Export: TorchScript exporter, dynamo=False, opset 17 (18 if 17 fails), static shapes, batch 1. A model
that does not build or export is listed with the reason, not dropped.
Writes the table to stdout and, with --report, Markdown there and JSON beside it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import sys
import tempfile
import time
import traceback
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

# name -> (config class, model class, config kwargs, input H = W). Small-but-real configs: the
# published default where it is cheap, else the family's smallest published variant (DeiT-tiny
# widths for ViT-like models, the -tiny/-b0/-xxs configs), fewer blocks only where noted.
TINY_VIT = dict(hidden_size=192, num_hidden_layers=12, num_attention_heads=3, intermediate_size=768)
CORPUS: dict[str, tuple[str, str, dict, int]] = {
    "resnet50": ("ResNetConfig", "ResNetForImageClassification", {}, 224),
    "resnet18": ("ResNetConfig", "ResNetForImageClassification",
                 dict(layer_type="basic", depths=[2, 2, 2, 2], hidden_sizes=[64, 128, 256, 512]), 224),
    "convnext_tiny": ("ConvNextConfig", "ConvNextForImageClassification", {}, 224),
    "convnextv2_atto": ("ConvNextV2Config", "ConvNextV2ForImageClassification",
                        dict(depths=[2, 2, 6, 2], hidden_sizes=[40, 80, 160, 320]), 224),
    "mobilenet_v1": ("MobileNetV1Config", "MobileNetV1ForImageClassification", {}, 224),
    "mobilenet_v2": ("MobileNetV2Config", "MobileNetV2ForImageClassification", {}, 224),
    "efficientnet_b0": ("EfficientNetConfig", "EfficientNetForImageClassification",  # the default is B7
                        dict(width_coefficient=1.0, depth_coefficient=1.0, hidden_dim=1280), 224),
    "regnet_y040": ("RegNetConfig", "RegNetForImageClassification", {}, 224),
    "vit_tiny": ("ViTConfig", "ViTForImageClassification", TINY_VIT, 224),
    "deit_tiny": ("DeiTConfig", "DeiTForImageClassification", TINY_VIT, 224),
    "beit_tiny": ("BeitConfig", "BeitForImageClassification", dict(TINY_VIT, use_relative_position_bias=True), 224),
    "data2vec_vision_tiny": ("Data2VecVisionConfig", "Data2VecVisionForImageClassification",
                             dict(TINY_VIT, use_relative_position_bias=True), 224),
    "dinov2_tiny": ("Dinov2Config", "Dinov2ForImageClassification",
                    dict(TINY_VIT, patch_size=14, image_size=224), 224),
    "swin_tiny": ("SwinConfig", "SwinForImageClassification", {}, 224),
    "swin_tiny_pad": ("SwinConfig", "SwinForImageClassification", {}, 200),  # 50x50 tokens: Swin pads windows
    "swin_mini_pad": ("SwinConfig", "SwinForImageClassification",  # narrow and shallow, for CI: same code paths
                      dict(embed_dim=48, depths=[2, 2, 2, 2], num_heads=[3, 6, 12, 24]), 200),
    "swinv2_tiny": ("Swinv2Config", "Swinv2ForImageClassification", {}, 256),
    "mobilevit_xxs": ("MobileViTConfig", "MobileViTForImageClassification",
                      dict(hidden_sizes=[64, 80, 96], neck_hidden_sizes=[16, 16, 24, 48, 64, 80, 320]), 256),
    "mobilevitv2_050": ("MobileViTV2Config", "MobileViTV2ForImageClassification", dict(width_multiplier=0.5), 256),
    "levit_128s": ("LevitConfig", "LevitForImageClassification", {}, 224),
    "poolformer_s12": ("PoolFormerConfig", "PoolFormerForImageClassification", {}, 224),
    "segformer_b0": ("SegformerConfig", "SegformerForImageClassification", {}, 224),
    "cvt_13": ("CvtConfig", "CvtForImageClassification", {}, 224),
    "vitmae_tiny_encoder": ("ViTMAEConfig", "ViTMAEModel", dict(TINY_VIT, mask_ratio=0.0), 224),
    "bit_resnetv2_50": ("BitConfig", "BitForImageClassification", {}, 224),
    "focalnet_tiny": ("FocalNetConfig", "FocalNetForImageClassification", {}, 224),
    "pvt_tiny": ("PvtConfig", "PvtForImageClassification", {}, 224),
    "pvt_v2_b0": ("PvtV2Config", "PvtV2ForImageClassification", {}, 224),
    "yolos_tiny": ("YolosConfig", "YolosModel", dict(TINY_VIT, image_size=[224, 224]), 224),
    "dpt_tiny": ("DPTConfig", "DPTModel", dict(TINY_VIT, image_size=224, num_hidden_layers=4,
                                               backbone_out_indices=[0, 1, 2, 3]), 224),
    "dpt_tiny_depth": ("DPTConfig", "DPTForDepthEstimation",  # neck: ConvTranspose reassembly, Resize fusion
                       dict(TINY_VIT, image_size=224, num_hidden_layers=4, backbone_out_indices=[0, 1, 2, 3]), 224),
    "segformer_b0_seg": ("SegformerConfig", "SegformerForSemanticSegmentation", {}, 224),  # all-MLP decoder
    "yolos_tiny_detect": ("YolosConfig", "YolosForObjectDetection", dict(TINY_VIT, image_size=[224, 224]), 224),
    "swiftformer_xs": ("SwiftFormerConfig", "SwiftFormerForImageClassification", {}, 224),
    "hiera_base": ("HieraConfig", "HieraForImageClassification", dict(image_size=[224, 224]), 224),
    "dinat_mini": ("DinatConfig", "DinatForImageClassification", {}, 224),
}
# Work FlopCounterMode sees that the exported graph does not hold: computed from constants only, so
# the exporter's constant folding does it once at export time. Subtracted from the oracle, by the
# names of the modules that do it, and said in the table (effconv is right about the file).
FOLDED_AT_EXPORT = {
    "swinv2_tiny": ("continuous_position_bias_mlp",),  # an MLP on the fixed relative-coordinates table
}
SMALL = ("mobilenet_v2", "deit_tiny", "swin_mini_pad")  # the CI-sized subset (tests/profile/test_corpus_small.py)


@dataclass
class Row:
    model: str
    arch: str
    input: str
    opset: int | None = None
    nodes: int | None = None
    oracle: int | None = None
    oracle_folded: int = 0  # of `oracle`: done on constants, folded by the exporter (FOLDED_AT_EXPORT)
    effconv: int | None = None
    diff: int | None = None
    complete: bool | str | None = None
    params_onnx: int | None = None
    params_effconv: int | None = None
    params_equal: bool | None = None
    strict_exit: int | None = None
    unsupported: dict = field(default_factory=dict)
    uncounted: list = field(default_factory=list)
    by_op: str = ""
    error: str = ""
    seconds: float = 0.0


def _tensors(out) -> list:
    import torch

    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _tensors(o)]
    return []


def wrap(model):
    """One tensor in (pixel_values); every tensor the model returns out, flattened. All outputs, not
    only the first: the exporter drops what no output needs (a ViT pooler when only the hidden states
    are returned), while FlopCounterMode counts everything that ran."""
    import torch

    class Wrapped(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, x):
            return tuple(_tensors(self.m(pixel_values=x, return_dict=False)))

    return Wrapped(model)


def build(name: str):
    import torch
    import transformers

    cfg_name, model_name, kwargs, size = CORPUS[name]
    cfg = getattr(transformers, cfg_name)(**kwargs)
    if hasattr(cfg, "image_size") and "image_size" not in kwargs:
        cfg.image_size = size
    torch.manual_seed(0)
    model = getattr(transformers, model_name)(cfg).eval()
    return wrap(model).eval(), (1, 3, size, size), model_name


def oracle(module, shape, folded: tuple[str, ...] = ()) -> tuple[int, int, dict[str, int]]:
    """FlopCounterMode Mult-Adds (FLOPs / 2), the part done inside modules whose name ends with one
    of `folded`, and the per-aten-op split; SDPA on its math path."""
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    torch.manual_seed(0)
    x = torch.randn(*shape)
    with torch.no_grad(), sdpa_kernel([SDPBackend.MATH]), FlopCounterMode(display=False, depth=64) as counter:
        module(x)
    counts = counter.get_flop_counts()
    per_op = {str(k).replace("aten.", ""): v // 2 for k, v in counts.get("Global", {}).items()}
    inside = sum(sum(v.values()) for k, v in counts.items()
                 if any(k.endswith(f) for f in folded) and not any(f in k.rsplit(".", 1)[0] for f in folded))
    return counter.get_total_flops() // 2, inside // 2, per_op


def float_constant_elements(path: Path) -> int:
    import onnx

    floats = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE, onnx.TensorProto.BFLOAT16}
    m = onnx.load(str(path), load_external_data=False)
    n = sum(math.prod(t.dims) for t in m.graph.initializer if t.data_type in floats)
    for node in m.graph.node:
        if node.op_type == "Constant":
            n += sum(math.prod(a.t.dims) for a in node.attribute if a.name == "value" and a.t.data_type in floats)
    return n


EXPORTER = {"name": "torchscript"}  # --exporter dynamo: torch.onnx's dynamo exporter (needs onnxscript)


def export(module, path: Path, shape, dynamic_batch: bool = False) -> int:
    if EXPORTER["name"] == "dynamo":
        return export_dynamo(module, path, shape, dynamic_batch)
    from effconv.export.onnx import export_onnx

    errors = []
    for opset in (17, 18):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                export_onnx(module, path, shape, opset=opset, dynamic_batch=dynamic_batch)
            return opset
        except Exception as exc:  # noqa: BLE001 - recorded per model, the corpus goes on
            errors.append(f"opset {opset}: {_one_line(exc)}")
    raise RuntimeError("; ".join(errors))


def _exporter_text() -> str:
    if EXPORTER["name"] == "dynamo":
        return "exported by torch.onnx.export(dynamo=True) (torch's default exporter; opset 18, else 23"
    return "exported by effconv (TorchScript exporter, opset 17"


def export_dynamo(module, path: Path, shape, dynamic_batch: bool) -> int:
    """torch.onnx.export(dynamo=True), the default exporter of current torch, at opset 18 (then 23):
    what most users' files now come from (Attention, LayerNormalization and Split-18 nodes, its own
    constant folding and shape arithmetic)."""
    import torch

    errors = []
    x = torch.zeros(shape)
    dims = ({0: torch.export.Dim("batch", min=1, max=64)},) if dynamic_batch else None
    for opset in (18, 23):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(module.eval(), (x,), str(path), dynamo=True, opset_version=opset,
                                  dynamic_shapes=dims, verbose=False)
            return opset
        except Exception as exc:  # noqa: BLE001 - recorded per model, the corpus goes on
            errors.append(f"opset {opset}: {_one_line(exc)}")
    raise RuntimeError("; ".join(errors))


@contextlib.contextmanager
def quiet():
    """Silence file descriptors 1 and 2 (the exporter prints whole TorchScript graphs on errors)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def _one_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"[:300]


def _effconv_by_op(prof) -> dict[str, int]:
    acc: dict[str, int] = {}
    for lc in prof.layers:
        if lc.mult_adds:
            acc[lc.op_type] = acc.get(lc.op_type, 0) + lc.mult_adds
    return acc


def run_one(name: str, out_dir: Path, keep: bool, batch: int | None = None) -> Row:
    """One corpus row. `batch`: export with a dynamic batch axis (traced at batch 1) and profile the
    file with --batch `batch`, against the oracle at that batch (the usual shape of a deployed file)."""
    t0 = time.perf_counter()
    cfg_name, model_name, _, size = CORPUS[name]
    row = Row(name, model_name, f"{batch or 1}x3x{size}x{size}" + (" (dynamic)" if batch else ""))
    path = out_dir / f"{name}.onnx"
    try:
        with quiet():
            module, shape, _ = build(name)
            run_shape = (batch, *shape[1:]) if batch else shape
            row.oracle, row.oracle_folded, per_op = oracle(module, run_shape, FOLDED_AT_EXPORT.get(name, ()))
            row.opset = export(module, path, shape, dynamic_batch=batch is not None)
        del module
    except Exception as exc:  # noqa: BLE001
        row.error = f"build/export: {_one_line(exc)}"
        row.seconds = round(time.perf_counter() - t0, 1)
        return row
    return profiled(row, path, per_op, keep, t0, batch)


def profiled(row: Row, path: Path, per_op: dict[str, int], keep: bool, t0: float, batch: int | None = None) -> Row:
    """compare(), then the file (and its external data) removed unless `keep`; the row timed from t0."""
    try:
        compare(row, path, per_op, batch)
    finally:
        if not keep:
            for p in path.parent.glob(f"{path.name}*"):
                p.unlink()
    row.seconds = round(time.perf_counter() - t0, 1)
    return row


def compare(row: Row, path: Path, per_op: dict[str, int], batch: int | None = None) -> None:
    """Profile `path` with effconv into `row`, whose `oracle` (and `oracle_folded`) are set: Mult-Adds
    and their diff, `complete`, unsupported and uncounted nodes, parameters against the file's float
    constants, the per-op split of both sides, and the exit of a `strict=True` run. A failure of the
    profile is recorded in `row.error`, not raised."""
    from effconv.errors import EffconvError
    from effconv.profile import profile_onnx

    try:
        prof = profile_onnx(path, batch=batch)
        row.nodes = prof.totals.nodes
        row.effconv = prof.totals.mult_adds
        row.diff = row.effconv - (row.oracle - row.oracle_folded)
        row.complete = getattr(prof, "complete", "n/a")
        row.unsupported = dict(prof.unsupported)
        row.uncounted = [f"{u.node} ({u.op_type}): {u.reason}" for u in getattr(prof, "uncounted", ())][:5]
        t = prof.totals
        row.params_effconv = t.weights + t.biases + t.norm_params + t.other_params
        row.params_onnx = float_constant_elements(path)
        row.params_equal = row.params_onnx == row.params_effconv
        ours = _effconv_by_op(prof)
        row.by_op = "oracle " + ", ".join(f"{k} {v:,}" for k, v in sorted(per_op.items())) + \
                    " | effconv " + ", ".join(f"{k} {v:,}" for k, v in sorted(ours.items()))
        try:
            profile_onnx(path, strict=True, batch=batch)
            row.strict_exit = 0
        except EffconvError as exc:
            row.strict_exit = exc.exit_code
    except Exception as exc:  # noqa: BLE001
        row.error = f"profile: {_one_line(exc)}"
        if "--debug" in sys.argv:
            traceback.print_exc()


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "NO"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


COLUMNS = ("model", "arch", "input", "nodes", "oracle", "oracle_folded", "effconv", "diff", "complete",
           "params_equal", "strict_exit")


def table(rows: list[Row]) -> str:
    head = ["model", "HF class", "input", "nodes", "oracle Mult-Adds", "folded*", "effconv Mult-Adds", "diff",
            "complete", "params equal", "strict exit"]
    body = [[_fmt(getattr(r, c)) for c in COLUMNS] for r in rows]
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(b, widths)) for b in body]
    return "\n".join(lines)


def markdown(rows: list[Row], env: dict, batch: int | None = None) -> str:
    shapes = (f"a dynamic batch axis traced at batch 1, profiled with --batch {batch}, oracle at batch {batch}"
              if batch else "static shapes, batch 1")
    command = "python benchmarks/corpus_exact.py" + (f" --dynamic-batch {batch}" if batch else "")
    head = ["model", "HF class", "input", "opset", "nodes", "oracle Mult-Adds", "folded*", "effconv Mult-Adds",
            "diff", "complete", "params equal", "strict exit", "s"]
    out = [
        "# Exact Mult-Adds on a corpus of real architectures",
        "",
        f"Written by `{command} --report <this file>`. Models: HuggingFace",
        "`transformers` vision architectures built from their config classes with random weights",
        f"(nothing downloaded), {_exporter_text()}, {shapes}).",
        "Oracle: `torch.utils.flop_counter.FlopCounterMode` on the torch module (Mult-Adds = FLOPs / 2),",
        "with scaled-dot-product attention on its math path (torch 2.13's CPU flash kernel has no",
        "FlopCounterMode formula: it would count 0). Both sides count the same operations (conv incl.",
        "grouped and transposed, matrix products, attention; no bias, norm, softmax, pooling, resize).",
        "params equal: every float constant of the ONNX file (initializers + Constant nodes) is in",
        "effconv's weights + biases + norm_params + other_params exactly once.",
        "diff = effconv - (oracle - folded*). folded*: Mult-Adds the oracle counts inside modules that",
        "compute from constants only, which the exporter's constant folding does once at export time, so",
        "the ONNX file holds no such node (Swin v2's continuous position bias MLP on its fixed coordinate",
        "table). A convention difference of the oracle, not a miss of effconv: it is named per model below.",
        "",
        "Environment: " + ", ".join(f"{k} {v}" for k, v in env.items()),
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for r in rows:
        cells = [r.model, r.arch, r.input, _fmt(r.opset), _fmt(r.nodes), _fmt(r.oracle), _fmt(r.oracle_folded),
                 _fmt(r.effconv),
                 _fmt(r.diff), _fmt(r.complete), _fmt(r.params_equal), _fmt(r.strict_exit), f"{r.seconds}"]
        out.append("| " + " | ".join(cells) + " |")
    notes = [r for r in rows if r.error or r.unsupported or r.uncounted or r.diff or r.oracle_folded
             or r.params_equal is False]
    if notes:
        out += ["", "## Per model notes", ""]
        for r in notes:
            folded = f"folded at export: {r.oracle_folded:,} Mult-Adds in {', '.join(FOLDED_AT_EXPORT[r.model])}" \
                if r.oracle_folded else ""
            out.append(note(r, r.error, folded))
    return "\n".join(out) + "\n"


def note(r: Row, *first: str) -> str:
    """A per-model note line: `first` (the error, what the oracle counted on constants...), then
    parameters that differ, unsupported and uncounted nodes, and the per-op split where Mult-Adds differ."""
    return f"- **{r.model}**: " + "; ".join(x for x in (
        *first,
        f"params: file {r.params_onnx:,}, effconv {r.params_effconv:,}" if r.params_equal is False else "",
        f"unsupported {r.unsupported}" if r.unsupported else "",
        f"uncounted {r.uncounted}" if r.uncounted else "",
        r.by_op if r.diff else "",
    ) if x)


def _commit(package: Path) -> str:
    """The git commit of the effconv being measured (EFFCONV_COMMIT overrides: a copy without .git)."""
    import subprocess

    if os.environ.get("EFFCONV_COMMIT"):
        return os.environ["EFFCONV_COMMIT"]
    try:
        out = subprocess.run(["git", "-C", str(package), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(package), "status", "--porcelain", "--", "."], capture_output=True,
                               text=True, timeout=10).stdout.strip()
        return (out.stdout.strip() + (" + uncommitted changes" if dirty else "")) or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def environment() -> dict:
    import onnx
    import onnxruntime
    import torch
    import transformers

    import effconv

    return {"effconv": f"{effconv.__version__} ({_commit(Path(effconv.__file__).parent)})",
            "torch": torch.__version__, "transformers": transformers.__version__, "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__, "threads": torch.get_num_threads()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", help="comma-separated names (default: all); see --list")
    ap.add_argument("--out", type=Path, help="folder for the ONNX files (kept); default a temporary one")
    ap.add_argument("--report", type=Path, help="write Markdown here and JSON beside it (.json)")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--dynamic-batch", type=int, metavar="N",
                    help="export with a dynamic batch axis and profile at batch N (oracle at N)")
    ap.add_argument("--exporter", choices=("torchscript", "dynamo"), default="torchscript",
                    help="dynamo: torch.onnx's dynamo exporter at opset 18 (needs onnxscript)")
    ap.add_argument("--debug", action="store_true")
    args = ap.parse_args(argv)
    EXPORTER["name"] = args.exporter
    if args.list:
        print("\n".join(f"{k}: {v[1]} {v[3]}x{v[3]}" for k, v in CORPUS.items()))
        return 0
    names = args.models.split(",") if args.models else list(CORPUS)
    unknown = [n for n in names if n not in CORPUS]
    if unknown:
        ap.error(f"unknown model(s) {unknown}; see --list")
    import torch

    torch.set_num_threads(min(2, torch.get_num_threads()))
    tmp = Path(tempfile.mkdtemp(prefix="effconv-corpus-")) if args.out is None else args.out
    tmp.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        for name in names:
            row = run_one(name, tmp, keep=args.out is not None, batch=args.dynamic_batch)
            rows.append(row)
            print(f"{name}: oracle {_fmt(row.oracle)} effconv {_fmt(row.effconv)} diff {_fmt(row.diff)} "
                  f"complete {_fmt(row.complete)} {row.error} ({row.seconds} s)", flush=True)
    finally:
        if args.out is None:
            shutil.rmtree(tmp, ignore_errors=True)
    print()
    print(table(rows))
    if args.report:
        env = environment()
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(markdown(rows, env, args.dynamic_batch))
        args.report.with_suffix(".json").write_text(
            json.dumps({"environment": env, "rows": [asdict(r) for r in rows]}, indent=1) + "\n")
    exact = sum(1 for r in rows if r.diff == 0 and r.complete is True and r.params_equal and r.strict_exit == 0)
    print(f"\nexact and complete: {exact} of {len(rows)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
