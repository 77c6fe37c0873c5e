"""Exact Mult-Adds on CNNs from a non-torch exporter: Keras applications converted by tf2onnx.

Every other corpus here is exported from torch. Files from tf2onnx look different: NHWC inputs with
Transposes around (or left in front of) every Conv, Keras's ZeroPadding2D as a Pad before a Conv,
BatchNormalization folded into the Conv or left as Mul/Add, hard-swish as Mul + Clip, ReduceMean
squeeze-and-excite, Reshape targets computed through Shape/Gather/Concat. Two halves, two venvs:

1. export, in a TensorFlow venv (made once; tf2onnx 1.16 pins protobuf ~3.20, which TF 2.15 allows):

       python3.11 -m venv /work/tfvenv
       /work/tfvenv/bin/pip install "tensorflow-cpu==2.15.*" "tf2onnx==1.16.1"
       OMP_NUM_THREADS=1 TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 TF_CPP_MIN_LOG_LEVEL=2 \\
           /work/tfvenv/bin/python benchmarks/corpus_keras.py export --out runs/corpus_keras [--models MobileNet,VGG16]

   Builds each keras.applications model with weights=None (nothing is downloaded), include_top, its
   default input size, batch 1 (a static `keras.Input(batch_size=1)`), converts it with
   `tf2onnx.convert.from_keras` at each --opsets (13 and 17), and writes `<model>_op<opset>.onnx` and
   `<model>.oracle.json` into --out (runs/ is git-ignored: no model file is committed).
2. profile, in effconv's venv:

       python benchmarks/corpus_keras.py profile --out runs/corpus_keras --report profiles/corpus_keras.md

   `profile_onnx` and `strict=True` in process on every file, parameters against every float
   constant of the file (corpus_exact.compare, as corpus_exact.py and corpus_vision.py do).

Oracle, independent of ONNX: the Keras layers' own configs and shapes (every call of every layer,
nested models included). Mult-Adds as effconv's `paper` convention counts them (Conv, ConvTranspose,
Gemm, MatMul, Einsum; one fused multiply-add = 1; no bias, normalization, activation, pooling, resize,
element-wise Multiply of SE blocks or LayerScale): Conv1D/2D/3D output elements x kernel elements x
in-channels / groups; DepthwiseConv output elements x kernel elements; SeparableConv its depthwise
part plus output elements x its depthwise channels; ConvTranspose input elements x kernel elements x
out-channels / groups; Dense output elements x input features (on any rank: ConvNeXt's pointwise
Dense layers on NHWC maps). A layer with weights the oracle does not know, or a matrix product it
cannot see (Attention, Dot, EinsumDense, a tf.linalg/einsum TFOpLambda), stops the model: it is
listed with the reason, never counted 0. Cross-check: TensorFlow's own flop statistics (the formulas
its profiler registers, per node, for Conv2D, Conv3D, DepthwiseConv2dNative, MatMul, BatchMatMul*,
Conv2DBackpropInput; / 2) on the frozen graph of the same batch-1 function must agree with the layer
oracle; the table says whether they do. Grouped Conv2D (ConvNeXt, RegNet): Keras runs it in a
jit-compiled tf.function that tf2onnx leaves as PartitionedCall nodes (not valid ONNX; tf2onnx issue
2099); that plain file is written too (`*_unpatched.onnx`) and what effconv says of it is noted, then
the model is exported with the users' workaround (the same convolution op, not jit-wrapped).
"""

# size: one benchmark, both halves (the TensorFlow side and the effconv side) and the report writer.

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

MODELS = (  # keras.applications builders: the brief's list, then more families and sizes
    "MobileNet MobileNetV2 MobileNetV3Small MobileNetV3Large EfficientNetB0 EfficientNetV2B0 ResNet50 "
    "ResNet50V2 DenseNet121 InceptionV3 Xception NASNetMobile VGG16 ConvNeXtTiny RegNetX002 "
    "RegNetY002 ResNetRS50 InceptionResNetV2 VGG19 ResNet101 DenseNet169 EfficientNetB3 EfficientNetV2S"
).split()
DEFAULT_SIZE = {"InceptionV3": 299, "Xception": 299, "InceptionResNetV2": 299, "EfficientNetB3": 300,
                "EfficientNetV2S": 384, "ResNetRS50": 160}  # the rest: 224 (keras' default_size)
# Layers with weights that do no Mult-Adds in the paper convention (normalization, scaling).
NOT_MULT_ADDS = {"BatchNormalization", "LayerNormalization", "Normalization", "LayerScale", "GroupNormalization"}
HIDDEN_PRODUCTS = {"Attention", "AdditiveAttention", "MultiHeadAttention", "Dot", "EinsumDense"}
TF_COUNTED = ("Conv2D", "Conv3D", "DepthwiseConv2dNative", "MatMul", "BatchMatMul", "BatchMatMulV2",
              "BatchMatMulV3", "Conv2DBackpropInput", "Einsum")


# ---- export half (TensorFlow venv) --------------------------------------------------------------
def _mro(layer) -> set[str]:
    return {c.__name__ for c in type(layer).__mro__}


def _static(shape) -> tuple[int, ...]:
    dims = tuple(shape)
    if any(d is None for d in dims):
        raise ValueError(f"not static: {dims}")
    return tuple(int(d) for d in dims)


def layer_mult_adds(layer, x: tuple[int, ...], y: tuple[int, ...]) -> tuple[str, int]:
    """(kind, Mult-Adds) of one call of `layer` with input shape x and output shape y (channels last)."""
    names, cfg = _mro(layer), layer.get_config()
    if "SeparableConv" in names:
        dw = layer.depthwise_kernel.shape  # (*k, C_in, multiplier)
        k, mid = math.prod(dw[:-2]), int(dw[-2]) * int(dw[-1])
        spatial = math.prod(y[:-1])
        return "SeparableConv", spatial * mid * k + math.prod(y) * mid
    if "DepthwiseConv" in names or "DepthwiseConv2D" in names:
        return "DepthwiseConv", math.prod(y) * math.prod(layer.depthwise_kernel.shape[:-2])
    if any(n.startswith("Conv") and n.endswith("Transpose") for n in names):
        ker = layer.kernel.shape  # (*k, C_out / groups, C_in)
        return "ConvTranspose", math.prod(x) * math.prod(ker[:-1])
    if "Conv" in names:
        ker = layer.kernel.shape  # (*k, C_in / groups, C_out)
        return "Conv", math.prod(y) * math.prod(ker[:-1])
    if "Dense" in names:
        return "Dense", math.prod(y) * int(layer.kernel.shape[0])
    if names & HIDDEN_PRODUCTS:
        raise ValueError(f"{layer.name} ({type(layer).__name__}): a matrix product the oracle does not count")
    fn = str(cfg.get("function", "")) if type(layer).__name__ in ("TFOpLambda", "Lambda") else ""
    if any(w in fn for w in ("matmul", "einsum", "linalg", "tensordot", "conv")):
        raise ValueError(f"{layer.name} ({fn}): a matrix product the oracle does not count")
    if layer.weights and not names & NOT_MULT_ADDS:
        raise ValueError(f"{layer.name} ({type(layer).__name__}): weights the oracle does not know")
    return "", 0


def keras_oracle(model) -> tuple[int, dict[str, int]]:
    """Mult-Adds of every call of every layer (nested models walked), and their split by kind."""
    total, by_kind = 0, {}
    for layer in model.layers:
        if "Functional" in _mro(layer) or "Sequential" in _mro(layer):
            sub, kinds = keras_oracle(layer)
            total += sub
            for k, v in kinds.items():
                by_kind[k] = by_kind.get(k, 0) + v
            continue
        for node in layer.inbound_nodes:
            ins, outs = node.input_shapes, node.output_shapes
            x = _static(ins[0] if isinstance(ins, list) else ins)
            y = _static(outs[0] if isinstance(outs, list) else outs)
            kind, n = layer_mult_adds(layer, x, y)
            if kind:
                total += n
                by_kind[kind] = by_kind.get(kind, 0) + n
    return total, by_kind


def tf_profiler(model, spec) -> int:
    """TensorFlow's own flop statistics (`ops.get_stats_for_node_def(..., "flops")`, the formulas its
    profiler registers) of the matrix-product op types on the frozen batch-1 graph, / 2. Called per
    node: `tf.compat.v1.profiler.profile` on the same graph reported Conv2D only (no depthwise)."""
    import tensorflow as tf
    from tensorflow.python.framework import ops
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    fn = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    graph = convert_variables_to_constants_v2(fn).graph
    left = [n.op for n in graph.as_graph_def().node if n.op in ("PartitionedCall", "StatefulPartitionedCall")]
    if left:
        raise ValueError(f"{len(left)} function calls left in the frozen graph")
    return int(sum(ops.get_stats_for_node_def(graph, n, "flops").value or 0
               for n in graph.as_graph_def().node if n.op in TF_COUNTED)) // 2


def export_one(name: str, out: Path, opsets: list[int]) -> dict:
    import logging

    import tensorflow as tf
    import tf2onnx

    t0 = time.perf_counter()
    size = DEFAULT_SIZE.get(name, 224)
    rec = {"model": name, "input": f"1x{size}x{size}x3", "opsets": {}, "error": ""}
    tf.keras.backend.clear_session()
    try:
        inp = tf.keras.Input(shape=(size, size, 3), batch_size=1, name="input")
        model = getattr(tf.keras.applications, name)(weights=None, input_tensor=inp)
        rec["oracle"], rec["by_kind"] = keras_oracle(model)
        rec["keras_params"] = int(model.count_params())
        spec = tf.TensorSpec((1, size, size, 3), tf.float32, name="input")
        grouped = [la for la in _all_layers(model) if "Conv" in _mro(la) and getattr(la, "groups", 1) > 1]
        if grouped:
            rec["unpatched"] = unpatched(model, spec, out / f"{name}_op{opsets[0]}_unpatched.onnx", opsets[0])
            for la in grouped:  # the workaround of tf2onnx issue 2099: the same convolution, not jit-wrapped
                la._jit_compiled_convolution_op = la.convolution_op
            rec["patched_grouped_convs"] = len(grouped)
        rec["tf_profiler"] = tf_profiler(model, spec)
    except Exception as exc:  # noqa: BLE001 - recorded per model, the corpus goes on
        rec["error"] = f"build/oracle: {_one_line(exc)}"
        return rec
    for opset in opsets:
        t1 = time.perf_counter()
        caught = _Catch()
        logging.getLogger("tf2onnx").addHandler(caught)
        try:
            path = out / f"{name}_op{opset}.onnx"
            tf2onnx.convert.from_keras(model, input_signature=[spec], opset=opset, output_path=str(path))
            rec["opsets"][str(opset)] = {"file": path.name, "seconds": round(time.perf_counter() - t1, 1),
                                         "tf2onnx_errors": caught.lines[:3]}
        except Exception as exc:  # noqa: BLE001
            rec["opsets"][str(opset)] = {"error": f"tf2onnx: {_one_line(exc)}"}
        finally:
            logging.getLogger("tf2onnx").removeHandler(caught)
    rec["seconds"] = round(time.perf_counter() - t0, 1)
    return rec


def _all_layers(model) -> list:
    out = []
    for layer in model.layers:
        sub = "Functional" in _mro(layer) or "Sequential" in _mro(layer)
        out += _all_layers(layer) if sub else [layer]
    return out


def unpatched(model, spec, path: Path, opset: int) -> dict:
    """Keras runs a grouped Conv2D inside `tf.function(jit_compile=True)`; plain `from_keras` leaves
    each as a PartitionedCall node in the ONNX file (tf2onnx issue 2099). What that file holds."""
    import collections

    import tf2onnx

    proto, _ = tf2onnx.convert.from_keras(model, input_signature=[spec], opset=opset, output_path=str(path))
    ops = collections.Counter(n.op_type for n in proto.graph.node)
    return {"file": path.name, "opset": opset, "PartitionedCall": ops.get("PartitionedCall", 0), "nodes": sum(ops.values())}


class _Catch:
    """A logging handler keeping the first line of tf2onnx's ERROR records (a failed optimizer pass
    is logged and the conversion goes on: the file is written without that pass)."""

    level = 40

    def __init__(self):
        self.lines: list[str] = []

    def handle(self, record):
        if record.levelno >= self.level:
            self.lines.append(record.getMessage().splitlines()[0][:200])

    def __getattr__(self, _):  # the rest of logging.Handler's interface, unused
        return lambda *a, **k: None


def export_versions() -> dict:
    import google.protobuf
    import keras
    import onnx
    import tensorflow as tf
    import tf2onnx

    return {"tensorflow": tf.__version__, "keras": keras.__version__, "tf2onnx": tf2onnx.__version__,
            "onnx (export side)": onnx.__version__, "protobuf": google.protobuf.__version__,
            "python (export side)": sys.version.split()[0]}


def export_main(args) -> int:
    args.out.mkdir(parents=True, exist_ok=True)
    versions = export_versions()
    for name in args.models.split(",") if args.models else MODELS:
        rec = export_one(name, args.out, [int(o) for o in args.opsets.split(",")])
        rec["versions"] = versions
        (args.out / f"{name}.oracle.json").write_text(json.dumps(rec, indent=1) + "\n")
        print(f"{name}: oracle {rec.get('oracle')} tf profiler {rec.get('tf_profiler')} "
              f"{rec['error']} {rec['opsets']} ({rec.get('seconds')} s)", flush=True)
    return 0


def _one_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"[:300]


# ---- profile half (effconv's venv) --------------------------------------------------------------
def _corpus_exact():
    spec = importlib.util.spec_from_file_location("effconv_bench_corpus_exact", Path(__file__).parent / "corpus_exact.py")
    if spec.name not in sys.modules:
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod  # dataclasses look their module up while the class is built
        spec.loader.exec_module(mod)
    return sys.modules[spec.name]


ce = _corpus_exact()  # its top level imports the standard library only: loads in either venv


@dataclass
class KerasRow(ce.Row):
    keras_params: int | None = None
    tf_profiler: int | None = None
    tf2onnx_errors: str = ""
    export_note: str = ""
    measured_at: str = ""


def exact(r) -> bool:
    return r.diff == 0 and r.complete is True and bool(r.params_equal) and r.strict_exit == 0


def profile_rows(out: Path, commit: str) -> tuple[list, dict]:
    rows, versions = [], {}
    for oracle_path in sorted(out.glob("*.oracle.json"), key=lambda p: _order(p.name.split(".")[0])):
        rec = json.loads(oracle_path.read_text())
        versions = rec.get("versions", versions)
        opsets = rec.get("opsets") or {"-": {}}
        for opset, exp in opsets.items():
            t0 = time.perf_counter()
            row = KerasRow(rec["model"], rec["model"], rec["input"], opset=int(opset) if opset != "-" else None,
                           oracle=rec.get("oracle"), keras_params=rec.get("keras_params"),
                           tf_profiler=rec.get("tf_profiler"), measured_at=commit,
                           tf2onnx_errors="; ".join(exp.get("tf2onnx_errors", [])))
            row.error = rec["error"] or exp.get("error", "")
            if rec.get("unpatched"):
                row.export_note = unpatched_note(rec, out)
            if not row.error:
                per_op = {k: v for k, v in rec["by_kind"].items()}
                ce.compare(row, out / exp["file"], per_op)
            row.seconds = round(time.perf_counter() - t0, 1)
            rows.append(row)
            print(f"{row.model} op{row.opset}: oracle {ce._fmt(row.oracle)} effconv {ce._fmt(row.effconv)} "
                  f"diff {ce._fmt(row.diff)} complete {ce._fmt(row.complete)} params {ce._fmt(row.params_equal)} "
                  f"strict {ce._fmt(row.strict_exit)} {row.error} ({row.seconds} s)", flush=True)
    return rows, versions


def unpatched_note(rec: dict, out: Path) -> str:
    """What plain `from_keras` gave for a model with grouped convolutions, and what effconv says of it."""
    from effconv.profile import profile_onnx

    up = rec["unpatched"]
    try:
        prof = profile_onnx(out / up["file"])
        says = f"profiled, complete {prof.complete}, unsupported {dict(prof.unsupported)}"
    except Exception as exc:  # noqa: BLE001 - what effconv says is the finding
        says = f"refused ({type(exc).__name__}: {str(exc).split(': ', 1)[-1][:160]})"
    return (f"exported with {rec['patched_grouped_convs']} grouped Conv2D layers un-jit-wrapped (tf2onnx issue "
            f"2099's workaround); plain from_keras (opset {up['opset']}) leaves {up['PartitionedCall']} "
            f"PartitionedCall nodes; effconv on that file: {says}")


def _order(name: str) -> int:
    return MODELS.index(name) if name in MODELS else len(MODELS)


def markdown(rows: list, env: dict, machine: str) -> str:
    head = ["model", "input (NHWC)", "opset", "nodes", "oracle Mult-Adds", "TF agrees", "effconv Mult-Adds",
            "diff", "params (file)", "params equal", "complete", "strict exit", "s"]
    out = [
        "# Exact Mult-Adds on Keras applications converted by tf2onnx",
        "",
        "Written by `python benchmarks/corpus_keras.py profile --out runs/corpus_keras --report "
        "profiles/corpus_keras.md`",
        "after `benchmarks/corpus_keras.py export` in a TensorFlow venv (the script's docstring says how).",
        "Models: keras.applications builders, weights=None (nothing downloaded), include_top, default input",
        "size, batch 1, converted by `tf2onnx.convert.from_keras` at opsets 13 and 17.",
        "Oracle: the Keras layers' configs and shapes, in effconv's `paper` convention (Conv, depthwise,",
        "separable, transposed conv and Dense; no bias, normalization, activation, pooling, element-wise",
        "Multiply). TF agrees: TensorFlow's registered flop statistics / 2 of its conv and matrix-product op",
        "types on the frozen batch-1 graph equal the layer oracle. params equal: every float constant of the",
        "file (initializers + Constant nodes) is in effconv's weights + biases + norm_params + other_params once.",
        "diff = effconv - oracle. exact = diff 0, complete, params equal and `--strict` exit 0.",
        "",
        f"**exact: {sum(exact(r) for r in rows)} of {len(rows)}** files "
        f"({len({r.model for r in rows})} models)",
        "",
        f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Machine: {machine}.",
        "Environment: " + ", ".join(f"{k} {v}" for k, v in env.items()),
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for r in rows:
        agrees = None if r.tf_profiler is None or r.oracle is None else r.tf_profiler == r.oracle
        cells = [r.model, r.input, r.opset, r.nodes, r.oracle, agrees, r.effconv, r.diff, r.params_onnx,
                 r.params_equal, r.complete, r.strict_exit, r.seconds]
        out.append("| " + " | ".join(ce._fmt(c) for c in cells) + " |")
    notes = [r for r in rows if not exact(r) or r.tf2onnx_errors or r.export_note
             or (r.tf_profiler not in (None, r.oracle))]
    if notes:
        out += ["", "## Per file notes (not exact, export workarounds, tf2onnx's logged errors, TF disagreeing)", ""]
        for r in notes:
            tfp = f"TF flop statistics {r.tf_profiler:,}" if r.tf_profiler not in (None, r.oracle) else ""
            log = f"tf2onnx logged (file written): {r.tf2onnx_errors}" if r.tf2onnx_errors else ""
            out.append(ce.note(r, r.error, r.export_note, tfp, log).replace(f"**{r.model}**", f"**{r.model} op{r.opset}**"))
    return "\n".join(out) + "\n"


def profile_main(args) -> int:
    import onnx
    import onnxruntime

    import effconv

    commit = ce._commit(Path(effconv.__file__).parent)
    rows, versions = profile_rows(args.out, commit)
    env = {"effconv": f"{effconv.__version__} ({commit})", "onnx": onnx.__version__,
           "onnxruntime": onnxruntime.__version__, **versions}
    n_exact = sum(exact(r) for r in rows)
    if args.report:
        import os
        import platform

        cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                    if ln.startswith("model name")), platform.processor())
        machine = f"{os.cpu_count()} CPU cores ({cpu}), shared with other jobs"
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(markdown(rows, env, machine))
        args.report.with_suffix(".json").write_text(json.dumps(
            {"environment": env, "machine": machine, "exact": n_exact, "total": len(rows),
             "rows": [asdict(r) for r in rows]}, indent=1) + "\n")
    print(f"\nexact: {n_exact} of {len(rows)}")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("half", choices=("export", "profile", "list"))
    ap.add_argument("--out", type=Path, default=Path("runs/corpus_keras"), help="folder of the files (ignored by git)")
    ap.add_argument("--models", help="comma-separated keras.applications names (export; default: all)")
    ap.add_argument("--opsets", default="13,17", help="tf2onnx opsets (export)")
    ap.add_argument("--report", type=Path, help="profile: write Markdown here and JSON beside it")
    args = ap.parse_args(argv)
    if args.half == "list":
        print("\n".join(MODELS))
        return 0
    return export_main(args) if args.half == "export" else profile_main(args)


if __name__ == "__main__":
    sys.exit(main())
