"""Exact Mult-Adds on the CNNs and vision transformers edge engineers bring: every torchvision
classification builder, torchvision's segmentation models, and the smallest variant of ~60 timm
families, built with random weights (nothing is downloaded), exported to ONNX with effconv's
exporter, profiled by effconv and checked against an independent counter.

    python benchmarks/corpus_vision.py [--models tv/resnet18,timm/ghostnet_050] [--report profiles/corpus_vision.md]
    python benchmarks/corpus_vision.py --source timm --merge --report profiles/corpus_vision.md
    python benchmarks/corpus_vision.py --list

Needs torchvision and timm beside torch (not effconv's own extras). torchvision does not import beside
the torch 2.13 CPU build, so use a venv of its own: `pip install torch==2.14.1 torchvision==0.29.1`,
`pip install --no-deps timm && pip install pyyaml huggingface_hub safetensors`, then
`pip install -e . --no-deps` and effconv's runtime dependencies (the report was made that way). The oracle, the export and the
comparison are benchmarks/corpus_exact.py's: FlopCounterMode on the torch module (Mult-Adds = FLOPs
/ 2, scaled-dot-product attention on its math path), effconv's TorchScript exporter at opset 17 (18 if
17 fails), `profile_onnx` and `strict=True` in process, parameters against every float constant of
the file. One more oracle setting, for the same reason as SDPA's: nn.MultiheadAttention (torchvision's
ViT) under no_grad takes a fused fast path, `aten._native_multi_head_attention`, that FlopCounterMode
has no formula for (it would count 0 for the attention and its projections), so the oracle runs with
that fast path off (torch.backends.mha), whose composite path is linear + bmm.
Input: the model's published size (timm's pretrained_cfg, 224 for torchvision, 299 for Inception v3);
the largest (RegNetY-128GF, ViT-H/14: 1-2 minutes each on 2 cores) did not need less. A model that does not
build, export or profile is listed with the reason, not dropped. --merge updates the rows of an
existing report (each row names the effconv commit it was measured with).
"""

# size: one benchmark: its corpus lists, oracle settings, the run and the report writer.

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import shutil
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

_HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("effconv_bench_corpus_exact", _HERE / "corpus_exact.py")
ce = sys.modules.get(_spec.name) or importlib.util.module_from_spec(_spec)
if _spec.name not in sys.modules:
    sys.modules[_spec.name] = ce  # dataclasses look their module up while the class is built
    _spec.loader.exec_module(ce)

# The smallest published variant of each timm family (a second one where it exercises other code).
TIMM = (
    "efficientnet_b0 tf_efficientnet_b0 tinynet_e mixnet_s mnasnet_small mobilenetv2_050 "
    "mobilenetv3_small_050 mobilenetv4_conv_small mobilenetv4_hybrid_medium ghostnet_050 ghostnetv2_100 "
    "lcnet_050 rexnet_100 regnetx_002 regnety_002 resnest14d res2net50_14w_8s skresnet18 cspresnet50 "
    "cspdarknet53 dla46_c dpn48b hrnet_w18_small ese_vovnet19b_dw tresnet_m nf_regnet_b0 nfnet_l0 "
    "convnext_atto convmixer_768_32 levit_128s mobilevit_xxs mobilevitv2_050 efficientformer_l1 "
    "efficientformerv2_s0 edgenext_xx_small fastvit_t8 repvgg_a0 mobileone_s0 xception41 inception_v3 "
    "inception_next_atto densenetblur121d coat_lite_tiny coat_tiny pit_ti_224 poolformer_s12 "
    "poolformerv2_s12 deit_tiny_patch16_224 deit_tiny_distilled_patch16_224 crossvit_tiny_240 hgnetv2_b0 "
    "repghostnet_050 selecsls42b gernet_s resnetv2_18 efficientvit_b0 efficientvit_m0 vit_tiny_patch16_224 "
    "cait_xxs24_224 twins_svt_small swin_tiny_patch4_window7_224 maxvit_pico_rw_256 coatnet_nano_rw_224 "
    "nest_tiny gcvit_xxtiny xcit_nano_12_p16_224 sequencer2d_s resmlp_12_224 gmlp_ti16_224 mixer_s16_224 "
    "eva02_tiny_patch14_224 volo_d1_224 tnt_s_patch16_224 visformer_tiny convit_tiny halonet26t "
    "botnet26t_256 lambda_resnet26t starnet_s050 fasternet_t0 mambaout_femto hiera_tiny_224 "
    "tiny_vit_5m_224 davit_tiny focalnet_tiny_srf mvitv2_tiny pvt_v2_b0 caformer_s18 rdnet_tiny "
    # other normalizations, attention and search-space blocks inside families already listed
    "efficientnet_b0_gn resnetv2_50d_evos resnetv2_50d_frn resnet18d ecaresnet26t seresnext26d_32x4d "
    "legacy_seresnet18 gcresnet33ts bat_resnext26ts sebotnet33ts_256 regnetz_b16 cs3darknet_s levit_conv_128s "
    "nasnetalarge pnasnet5large fbnetc_100 mobilenetv1_100 ghostnetv3_050 lcnetv2_small mobilenetv5_300m "
    "vgg11 efficientvit_l1 vit_relpos_small_patch16_224 vit_small_patch16_rope_224 flexivit_small "
    "vit_little_patch16_reg1_gap_256"
).split()
SEGMENTATION = ("fcn_resnet50", "fcn_resnet101", "deeplabv3_resnet50", "deeplabv3_resnet101",
                "deeplabv3_mobilenet_v3_large", "lraspp_mobilenet_v3_large")
# Work FlopCounterMode sees that costs nothing at run time: modules computing from constants only
# (a fixed position encoding, a projection of fixed relative coordinates). effconv finds such nodes
# static (their inputs are constants and folded shapes; ONNX Runtime folds them at load) and counts
# them 0; the oracle's Mult-Adds inside these modules are subtracted, and shown in the table.
FROM_CONSTANTS: dict[str, tuple[str, ...]] = {
    "timm/edgenext_xx_small": ("pos_embd",),  # PositionalEncodingFourier: a 1x1 conv on a fixed grid
    "timm/xcit_nano_12_p16_224": ("pos_embed",),  # the same encoding
    "timm/convit_tiny": ("pos_proj",),  # GPSA: a Linear on the fixed relative-position indices
    "timm/vit_relpos_small_patch16_224": ("rel_pos.mlp",),  # RelPosMlp: an MLP on fixed log-spaced coordinates
    # Swin v2's continuous position bias: an MLP on the fixed relative-coordinates table (the
    # exporter's constant folding computes it once, as in corpus_exact's FOLDED_AT_EXPORT)
    **{f"tv/swin_v2_{v}": ("cpb_mlp",) for v in "tsb"},
}


@dataclass
class VisionRow(ce.Row):
    source: str = ""
    measured_at: str = ""  # the effconv commit of this row
    export_note: str = ""


def corpus() -> list[str]:
    import torchvision

    tv = [f"tv/{n}" for n in torchvision.models.list_models(module=torchvision.models)]
    return tv + [f"tvseg/{n}" for n in SEGMENTATION] + [f"timm/{n}" for n in TIMM]


def input_size(name: str, model) -> int:
    if name.startswith("timm/"):
        return int(model.pretrained_cfg.get("input_size", (3, 224, 224))[-1])
    return 299 if name.endswith("inception_v3") else 224


def wrap(model):
    """One tensor in, every tensor out (dicts of segmentation heads, tuples of distilled heads)."""
    import torch

    class Wrapped(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, x):
            out = self.m(x)
            return tuple(ce._tensors(list(out.values()) if isinstance(out, dict) else out))

    return Wrapped(model).eval()


def build(name: str):
    """(module, input shape, builder) for `name` = source/builder, random weights, eval mode."""
    import torch

    source, builder = name.split("/", 1)
    torch.manual_seed(0)
    if source == "timm":
        import timm

        model = timm.create_model(builder, pretrained=False)
    else:
        import torchvision

        kwargs = {"weights": None}
        if source == "tvseg":
            kwargs["weights_backbone"] = None
        model = torchvision.models.get_model(builder, **kwargs)
    model.eval()
    size = input_size(name, model)
    return wrap(model), (1, 3, size, size), builder


def oracle(module, shape, folded: tuple[str, ...]) -> tuple[int, int, dict[str, int]]:
    """corpus_exact's oracle, with three settings that change what FlopCounterMode can see, not what
    the model computes: nn.MultiheadAttention off its fused fast path; oneDNN off where the model
    has recurrent layers (its fused LSTM kernel has no formula, the composite path is mm + addmm);
    parameters not requiring grad (FlopCounterMode's module tracker raises "Expected gradient
    function to be set" when a Parameter is a module's input under no_grad: PiT, CaiT)."""
    import torch

    module.requires_grad_(False)
    recurrent = any(isinstance(m, torch.nn.RNNBase) for m in module.modules())
    onednn = torch.backends.mkldnn.flags(enabled=False) if recurrent else contextlib.nullcontext()
    with mha_composite(), onednn, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ce.oracle(module, shape, folded)


@contextlib.contextmanager
def mha_composite():
    """nn.MultiheadAttention on its composite path (linear + bmm) instead of the fused kernel."""
    import torch

    before = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(before)


def export(module, path: Path, shape, row) -> int:
    """effconv's export; where it fails on nn.MultiheadAttention's fused kernel (effconv exports under
    no_grad, which turns the fast path on, and the TorchScript exporter has no symbolic for it), once
    more with the fast path off, and the row says so: a finding about the exporter, kept visible."""
    try:
        return ce.export(module, path, shape)
    except RuntimeError as exc:
        if "_native_multi_head_attention" not in str(exc):
            raise
        with mha_composite():
            opset = ce.export(module, path, shape)
        row.export_note = "exported with the MHA fast path off: effconv's exporter fails on " \
                          "aten::_native_multi_head_attention otherwise"
        return opset


def run_one(name: str, out_dir: Path, keep: bool, commit: str) -> VisionRow:
    t0 = time.perf_counter()
    row = VisionRow(name, "", "", source=name.split("/")[0], measured_at=commit)
    path = out_dir / f"{name.replace('/', '_')}.onnx"
    try:
        with ce.quiet():
            module, shape, row.arch = build(name)
            row.input = "x".join(map(str, shape))
            row.oracle, row.oracle_folded, per_op = oracle(module, shape, FROM_CONSTANTS.get(name, ()))
            row.opset = export(module, path, shape, row)
        del module
    except Exception as exc:  # noqa: BLE001 - recorded per model, the corpus goes on
        row.error = f"build/export: {ce._one_line(exc)}"
        row.seconds = round(time.perf_counter() - t0, 1)
        return row
    return ce.profiled(row, path, per_op, keep, t0)


def exact(r) -> bool:
    return r.diff == 0 and r.complete is True and bool(r.params_equal) and r.strict_exit == 0


def environment(commit: str) -> dict:
    import onnx
    import onnxruntime
    import timm
    import torch
    import torchvision

    import effconv

    return {"effconv": f"{effconv.__version__} ({commit})",
            "torch": torch.__version__, "torchvision": torchvision.__version__, "timm": timm.__version__,
            "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__, "threads": torch.get_num_threads()}


def markdown(rows: list, env: dict, machine: str) -> str:
    head = ["model", "input", "opset", "nodes", "oracle Mult-Adds", "from constants*", "effconv Mult-Adds", "diff",
            "params (file)",
            "params equal", "complete", "strict exit", "s"]
    n_exact = sum(exact(r) for r in rows)
    out = [
        "# Exact Mult-Adds on torchvision and timm",
        "",
        "Written by `python benchmarks/corpus_vision.py --report profiles/corpus_vision.md` (a row re-measured",
        "later with `--models ... --merge` names its effconv commit in the JSON's `measured_at`).",
        "Models: every torchvision classification builder, torchvision's segmentation models and the",
        "smallest variant of each listed timm family, random weights (nothing downloaded), exported by effconv",
        "(TorchScript exporter, opset 17, static shapes, batch 1).",
        "Oracle: `torch.utils.flop_counter.FlopCounterMode` on the torch module (Mult-Adds = FLOPs / 2; conv,",
        "matrix products, attention; no bias, norm, softmax, pooling, resize), with scaled-dot-product",
        "attention on its math path and nn.MultiheadAttention's fused fast path off (FlopCounterMode has no",
        "formula for either fused kernel and would count 0); oneDNN off where the model has recurrent layers",
        "(its fused LSTM kernel has no formula either; the composite path is mm + addmm), and parameters not",
        "requiring grad (FlopCounterMode's module tracker raises otherwise when a Parameter is a module's",
        "input, PiT and CaiT). None changes what the model computes. params equal: every float constant of the file",
        "(initializers + Constant nodes) is in effconv's weights + biases + norm_params + other_params once.",
        "diff = effconv - (oracle - from constants*). from constants*: the oracle's Mult-Adds inside modules",
        "that compute from constants only (a fixed Fourier position encoding, an MLP on fixed relative",
        "coordinates): the exporter's constant folding computes them once (the file has no such node), or",
        "effconv finds those nodes static (constant inputs and folded shapes; ONNX Runtime folds them at",
        "load) and counts them 0. Named per model below; exact equality confirms the split.",
        "exact = diff 0, complete, params equal and `--strict` exit 0.",
        "",
        f"**exact: {n_exact} of {len(rows)}**",
        "",
        f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Machine: {machine}.",
        "Environment: " + ", ".join(f"{k} {v}" for k, v in env.items()),
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for r in rows:
        cells = [r.model, r.input, r.opset, r.nodes, r.oracle, r.oracle_folded, r.effconv, r.diff, r.params_onnx,
                 r.params_equal,
                 r.complete, r.strict_exit, r.seconds]
        out.append("| " + " | ".join(ce._fmt(c) for c in cells) + " |")
    notes = [r for r in rows if not exact(r) or r.export_note or r.oracle_folded]
    if notes:
        out += ["", "## Per model notes (rows not exact, work on constants, export changes)", ""]
        for r in notes:
            constants = f"from constants: {r.oracle_folded:,} Mult-Adds in {', '.join(FROM_CONSTANTS[r.model])}" \
                if r.oracle_folded else ""
            out.append(ce.note(r, r.error, r.export_note, constants))
    return "\n".join(out) + "\n"


def _machine() -> str:
    import os

    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    cpu = next((ln.split(":", 1)[1].strip() for ln in cpuinfo.splitlines() if ln.startswith("model name")), "?")
    return f"{os.cpu_count()} CPU cores ({cpu}), shared with other jobs"


def write_report(report: Path, rows: list, merge: bool, names_all: list[str], commit: str) -> list:
    json_path = report.with_suffix(".json")
    if merge and json_path.exists():
        old = {r["model"]: VisionRow(**r) for r in json.loads(json_path.read_text())["rows"]}
        old.update({r.model: r for r in rows})
        rows = [old[n] for n in names_all if n in old] + [r for n, r in old.items() if n not in names_all]
    env = environment(commit)  # the commit the run started at (rows name theirs: measured_at)
    report.parent.mkdir(parents=True, exist_ok=True)
    machine = _machine()
    report.write_text(markdown(rows, env, machine))
    json_path.write_text(json.dumps({"environment": env, "machine": machine, "exact": sum(exact(r) for r in rows),
                                     "total": len(rows), "rows": [asdict(r) for r in rows]}, indent=1) + "\n")
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", help="comma-separated source/builder names (default: all); see --list")
    ap.add_argument("--source", choices=("tv", "tvseg", "timm"), help="only this source")
    ap.add_argument("--out", type=Path, help="folder for the ONNX files (kept); default a temporary one")
    ap.add_argument("--report", type=Path, help="write Markdown here and JSON beside it (.json)")
    ap.add_argument("--merge", action="store_true", help="update the rows of an existing --report")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--debug", action="store_true")
    args = ap.parse_args(argv)
    names_all = corpus()
    if args.list:
        print("\n".join(names_all))
        return 0
    names = args.models.split(",") if args.models else names_all
    names = [n for n in names if args.source is None or n.split("/")[0] == args.source]
    import torch

    import effconv

    torch.set_num_threads(min(2, torch.get_num_threads()))
    commit = ce._commit(Path(effconv.__file__).parent)
    tmp = Path(tempfile.mkdtemp(prefix="effconv-vision-")) if args.out is None else args.out
    tmp.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        for name in names:
            row = run_one(name, tmp, keep=args.out is not None, commit=commit)
            rows.append(row)
            print(f"{name}: oracle {ce._fmt(row.oracle)} effconv {ce._fmt(row.effconv)} diff {ce._fmt(row.diff)} "
                  f"complete {ce._fmt(row.complete)} params {ce._fmt(row.params_equal)} strict "
                  f"{ce._fmt(row.strict_exit)} {row.error} ({row.seconds} s)", flush=True)
            if args.report:  # after every model: a long run stopped half way keeps what it measured
                write_report(args.report, rows, args.merge or len(rows) > 1, names_all, commit)
    finally:
        if args.out is None:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"\nexact: {sum(exact(r) for r in rows)} of {len(rows)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
