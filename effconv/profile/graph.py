"""Load an ONNX file, validate it and infer every tensor shape, without reading its weight data.

Why a "skeleton": shape inference and the checker only need the *dims* of large initializers, not
their bytes. Large initializers are moved to typed graph inputs in a small copy of the model, so
the checker and shape inference (run once, with data propagation) serialize kilobytes, not the
whole file; external weight data is checked for safety and size but never loaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import onnx
from onnx import TensorProto

from effconv.errors import InvalidInputError, ResourceLimitError, UsageError
from effconv.profile.fold import fold_constants
from effconv.profile.model import Dim, Shape, parse_input_shape  # noqa: F401 (re-exported)
from effconv.profile.wire import Malformed, strip_weights
from effconv.safety import check_external_data, is_lfs_pointer, tensor_byte_size

STRIP_MIN_FILE = 1 << 20  # bytes: smaller files are read whole (the wire walk would not pay off)
SMALL_INIT = 1024  # elements: initializers up to this size stay in the skeleton (Reshape shapes...)
FLOAT_TYPES = frozenset(
    {TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE, TensorProto.BFLOAT16}
)
SUBGRAPH_OPS = frozenset({"If", "Loop", "Scan"})


@dataclass(frozen=True)
class Param:
    """A constant tensor (initializer or Constant node): dims and ONNX element type, no data."""

    name: str
    dims: tuple[int, ...]
    dtype: int

    @property
    def size(self) -> int:
        n = 1
        for d in self.dims:
            n *= d
        return n

    @property
    def is_float(self) -> bool:
        return self.dtype in FLOAT_TYPES


@dataclass(frozen=True)
class Graph:
    """A validated, shape-inferred ONNX graph: what the handlers read."""

    path: Path
    nodes: tuple[onnx.NodeProto, ...]
    params: Mapping[str, Param]  # initializers and Constant outputs, by tensor name
    shapes: Mapping[str, Shape]  # every tensor whose shape is known, by name
    aliases: Mapping[str, str]  # Identity output -> the tensor it forwards (resolved to the root)
    inputs: Mapping[str, tuple[int, ...]]  # real graph inputs (initializers excluded), static dims

    def root(self, name: str) -> str:
        return self.aliases.get(name, name)

    def param(self, name: str) -> Param | None:
        return self.params.get(self.root(name))

    def shape(self, name: str) -> Shape | None:
        p = self.param(name)
        return p.dims if p is not None else self.shapes.get(name)


def load_graph(
    path: str | Path,
    input_shapes: Mapping[str, tuple[int, ...]] | None = None,
    batch: int | None = None,
) -> Graph:
    """Read, check and shape-infer `path`. Errors: InvalidInputError (exit 3), UsageError (exit 2)."""
    path = Path(path)
    model, raw_lengths = _read_model(path)
    _check_versions(model, path)
    try:
        return _load_checked(model, path, input_shapes, batch, raw_lengths)
    except UnicodeDecodeError as exc:  # a string field that parsed but is not UTF-8
        raise InvalidInputError("not an ONNX model (a name or string is not valid UTF-8)", path=path) from exc


def _load_checked(
    model: onnx.ModelProto,
    path: Path,
    input_shapes: Mapping[str, tuple[int, ...]] | None,
    batch: int | None,
    raw_lengths: Mapping[int, int],
) -> Graph:
    _check_external_data(model, path)
    _check_initializers(model, path, raw_lengths)
    skeleton = _skeleton(model)
    fold_constants(skeleton.graph)  # static pads/shapes for the one inference pass (see fold.py)
    init_names = {t.name for t in model.graph.initializer}
    real_names = [i.name for i in model.graph.input if i.name not in init_names]
    real_inputs = _set_input_shapes(skeleton, real_names, dict(input_shapes or {}), batch, path)
    try:
        onnx.checker.check_model(skeleton)
        inferred = onnx.shape_inference.infer_shapes(skeleton, strict_mode=True, data_prop=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise InvalidInputError(f"not a valid ONNX model: {_first_line(exc)}", path=path) from exc
    except MemoryError as exc:  # std::bad_alloc in the checker or inference: dims asking for too much
        raise ResourceLimitError(f"out of memory while checking and inferring shapes ({_first_line(exc)})",
                                 path=path) from exc
    params = _params(model)
    return Graph(
        path=path,
        nodes=tuple(model.graph.node),
        params=params,
        shapes=_shapes(inferred.graph),
        aliases=_aliases(model.graph.node),
        inputs=real_inputs,
    )


def _first_line(exc: Exception) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return lines[0] if lines else type(exc).__name__


def _read_model(path: Path) -> tuple[onnx.ModelProto, Mapping[int, int]]:
    """The parsed model and {initializer index: raw_data length} for the weights left unread
    (effconv.profile.wire). Small files, and any file the wire walk does not understand, are read
    and parsed whole, which also gives the usual error for a broken one."""
    try:
        big = path.is_file() and path.stat().st_size > STRIP_MIN_FILE
    except OSError:
        big = False
    if big and not _lfs_head(path):
        try:
            data, lengths = strip_weights(path)
            return _parse(data, path), lengths
        except (Malformed, OSError, ValueError, InvalidInputError):
            pass
    return _parse(_read_bytes(path), path), {}


def _lfs_head(path: Path) -> bool:
    with open(path, "rb") as fh:
        return is_lfs_pointer(fh.read(64))


def _read_bytes(path: Path) -> bytes:
    if not path.exists():
        raise InvalidInputError("no such file", path=path)
    if not path.is_file():
        raise InvalidInputError("is a directory, not an ONNX file", path=path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"cannot read: {exc.strerror}", path=path) from exc
    if is_lfs_pointer(data):
        raise InvalidInputError("is a Git LFS pointer, not the model: run `git lfs pull`", path=path)
    if not data:
        raise InvalidInputError("is empty, not an ONNX model", path=path)
    return data


def _parse(data: bytes, path: Path) -> onnx.ModelProto:
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception as exc:  # protobuf's DecodeError, whatever the backend
        raise InvalidInputError("not an ONNX model (protobuf does not parse; truncated?)", path=path) from exc
    if model.ir_version <= 0 or not model.HasField("graph") or not model.opset_import:
        raise InvalidInputError("not an ONNX model (no IR version, graph or opset)", path=path)
    return model


def _check_versions(model: onnx.ModelProto, path: Path) -> None:
    if model.ir_version > onnx.IR_VERSION:
        raise InvalidInputError(
            f"IR version {model.ir_version} is newer than this onnx {onnx.__version__} supports "
            f"({onnx.IR_VERSION}); upgrade onnx",
            path=path,
        )
    newest = onnx.defs.onnx_opset_version()
    for op in model.opset_import:
        if op.domain in ("", "ai.onnx") and op.version > newest:
            raise InvalidInputError(
                f"opset {op.version} is newer than this onnx {onnx.__version__} supports ({newest}); upgrade onnx",
                path=path,
            )


def _external_tensors(model: onnx.ModelProto):
    for t in model.graph.initializer:
        if t.data_location == TensorProto.EXTERNAL:
            yield t
    for node in model.graph.node:
        for a in node.attribute:
            if a.type == onnx.AttributeProto.TENSOR and a.t.data_location == TensorProto.EXTERNAL:
                yield a.t


def _check_external_data(model: onnx.ModelProto, path: Path) -> None:
    """External data must be a plain file inside the model's folder, each range within it
    (effconv.safety.check_external_data; it reads file sizes only, never the data)."""
    check_external_data(model, path)


def _check_initializers(model: onnx.ModelProto, path: Path, raw_lengths: Mapping[int, int]) -> None:
    """Embedded initializers must hold exactly dims x item size bytes, with no negative dim.
    `raw_lengths`: the byte counts of the weights that were never read (by initializer index)."""
    for i, t in enumerate(model.graph.initializer):
        if any(d < 0 for d in t.dims):
            raise InvalidInputError(f"initializer {t.name!r} has a negative dimension {list(t.dims)}", path=path)
        if t.data_location == TensorProto.EXTERNAL:
            continue
        have = raw_lengths[i] if i in raw_lengths else len(t.raw_data)
        need = tensor_byte_size(t) if have else None
        if need is not None and have != need:
            raise InvalidInputError(
                f"initializer {t.name!r} holds {have} bytes where its shape {list(t.dims)} needs {need}",
                path=path,
            )


def _elements(t: onnx.TensorProto) -> int:
    n = 1
    for d in t.dims:
        n *= d
    return n


def _skeleton(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of `model` whose large initializers are typed graph inputs (dims only, no bytes)."""
    sk = onnx.ModelProto()
    sk.ir_version = model.ir_version
    sk.opset_import.extend(model.opset_import)
    sk.functions.extend(model.functions)
    g, src = sk.graph, model.graph
    g.name = src.name or "graph"
    g.node.extend(src.node)
    g.input.extend(src.input)
    g.output.extend(src.output)
    g.value_info.extend(src.value_info)
    listed = {i.name for i in src.input}
    for t in src.initializer:
        if _elements(t) <= SMALL_INIT and t.data_location != TensorProto.EXTERNAL:
            g.initializer.append(t)
        elif t.name not in listed:  # typed input with the initializer's dims (built by hand: fast)
            vi = g.input.add()
            vi.name = t.name
            tt = vi.type.tensor_type
            tt.elem_type = t.data_type
            shape = tt.shape
            for d in t.dims:
                shape.dim.add().dim_value = d
    g.sparse_initializer.extend(src.sparse_initializer)
    return sk


def _dims(vi: onnx.ValueInfoProto) -> Shape | None:
    tt = vi.type.tensor_type
    if not vi.type.HasField("tensor_type") or not tt.HasField("shape"):
        return None
    # dim_value 0 means "not set" here: a zero-sized dim is not a shape a CNN profile can use
    return tuple(d.dim_value or d.dim_param or None for d in tt.shape.dim)


def _set_input_shapes(
    sk: onnx.ModelProto,
    real_names: list[str],
    shapes: dict[str, tuple[int, ...]],
    batch: int | None,
    path: Path,
) -> dict[str, tuple[int, ...]]:
    """Apply --input-shape / --batch to the real inputs; refuse symbolic dims that remain."""
    wanted = set(real_names)
    real = [vi for vi in sk.graph.input if vi.name in wanted]
    unknown = set(shapes) - {vi.name for vi in real}
    if unknown:
        names = ", ".join(vi.name for vi in real) or "none"
        raise UsageError(f"--input-shape names unknown input(s) {sorted(unknown)}; inputs are: {names}", path=path)
    out, missing = {}, []
    for vi in real:
        declared = _dims(vi)
        dims = list(declared or ())
        if declared is None and vi.name not in shapes:
            missing.append(f"{vi.name}[?] (no shape)")
        if vi.name in shapes:
            if dims and len(dims) != len(shapes[vi.name]):
                raise UsageError(f"--input-shape {vi.name}: model input has rank {len(dims)}", path=path)
            dims = list(shapes[vi.name])
        elif batch is not None and dims:
            dims[0] = batch
        missing += [f"{vi.name}[{i}]={d or '?'}" for i, d in enumerate(dims) if not isinstance(d, int) or d <= 0]
        if vi.type.tensor_type.HasField("shape") or vi.name in shapes:
            _write_dims(vi, dims)
        out[vi.name] = tuple(dims)
    if missing:
        raise UsageError(
            f"symbolic input dimensions {', '.join(missing)}: set them with --input-shape NAME=1x3x224x224 or --batch N",
            path=path,
        )
    return out


def _write_dims(vi: onnx.ValueInfoProto, dims: list) -> None:
    shape = vi.type.tensor_type.shape
    shape.ClearField("dim")
    for d in dims:
        dim = shape.dim.add()
        if isinstance(d, int) and d > 0:
            dim.dim_value = d
        elif d:
            dim.dim_param = str(d)


def _shapes(graph: onnx.GraphProto) -> dict[str, Shape]:
    out: dict[str, Shape] = {}
    for vi in (*graph.input, *graph.value_info, *graph.output):
        dims = _dims(vi)
        if dims is not None:
            out[vi.name] = dims
    return out


def _params(model: onnx.ModelProto) -> dict[str, Param]:
    params = {t.name: Param(t.name, tuple(t.dims), t.data_type) for t in model.graph.initializer}
    for st in model.graph.sparse_initializer:
        params[st.values.name] = Param(st.values.name, tuple(st.dims), st.values.data_type)
    for node in model.graph.node:
        if node.op_type == "Constant" and node.output:
            for a in node.attribute:
                if a.name == "value" and a.type == onnx.AttributeProto.TENSOR:
                    params[node.output[0]] = Param(node.output[0], tuple(a.t.dims), a.t.data_type)
    return params


def _aliases(nodes) -> dict[str, str]:
    """Identity chains: each Identity output maps to the first tensor of its chain."""
    aliases: dict[str, str] = {}
    for node in nodes:  # ONNX nodes are topologically sorted, so one pass resolves chains
        if node.op_type == "Identity" and node.input and node.output:
            aliases[node.output[0]] = aliases.get(node.input[0], node.input[0])
    return aliases
