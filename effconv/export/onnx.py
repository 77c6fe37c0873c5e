"""PyTorch -> ONNX, then the ONNX checks every export must pass.

Exporter: torch.onnx's TorchScript exporter (`dynamo=False`) at opset 17. Why: the dynamo exporter
emits opset 18 natively and its down-conversion to 17 fails on Reduce* nodes, and it takes seconds
per model where the TorchScript exporter takes a fraction of one (0.2 s against 5.4 s for a small
CNN, torch 2.13 on the 2-core machine), which matters because `effconv profile <zoo name>` exports
on the fly. Batch normalization is folded into the convolutions (eval mode, training=EVAL, with
constant folding).

After the raw export the graph is post-processed in memory: effconv metadata is attached, float16
conversion runs if asked (effconv.export.fp16), and the model is saved with external data when its
weights pass the threshold (effconv.export.staging). All of it happens in a staging folder; the
files move into place together at the end.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from effconv.errors import CheckFailedError, UsageError
from effconv.export.staging import DEFAULT_EXTERNAL_DATA_THRESHOLD, commit, save_onnx, staging_dir

if TYPE_CHECKING:
    import torch

DEFAULT_OPSET = 17
INPUT_NAME = "input"
OUTPUT_NAME = "logits"
PRECISIONS = ("fp32", "fp16")
# Below this many bytes of parameters the raw export stays in memory (protobuf's limit is 2 GiB).
IN_MEMORY_EXPORT_BYTES = 1 << 30
SKELETON_MIN_BYTES = 1024  # smaller tensors keep their values: they may be shapes that data_prop reads


@dataclass(frozen=True)
class OnnxCheck:
    """What the checker and shape inference saw; shapes use the symbol name for dynamic dims."""

    opset: int
    nodes: int
    inputs: Mapping[str, tuple[int | str, ...]]
    outputs: Mapping[str, tuple[int | str, ...]]
    external_data: bool


def export_onnx(
    model: "torch.nn.Module",
    path: str | Path,
    input_shape: tuple[int, ...],
    *,
    opset: int = DEFAULT_OPSET,
    dynamic_batch: bool = False,
    metadata: Mapping[str, str] | None = None,
    precision: str = "fp32",
    keep_io_fp32: bool = True,
    external_data_threshold: int = DEFAULT_EXTERNAL_DATA_THRESHOLD,
) -> Path:
    """Export `model` (put in eval mode) to `path` atomically; return the path.

    `input_shape` is the full NCHW shape of the example input, batch included. Weights over
    `external_data_threshold` bytes go to `<path>.data` beside the model.
    """
    path = Path(path)
    with staging_dir(path.parent if str(path.parent) else Path(".")) as stage:
        files = stage_onnx(model, stage / path.name, input_shape, opset=opset,
                           dynamic_batch=dynamic_batch, metadata=metadata, precision=precision,
                           keep_io_fp32=keep_io_fp32, external_data_threshold=external_data_threshold)
        commit(files, path.parent if str(path.parent) else Path("."))
    return path


def stage_onnx(model, path: Path, input_shape, *, opset=DEFAULT_OPSET, dynamic_batch=False,
               metadata=None, precision="fp32", keep_io_fp32=True,
               external_data_threshold=DEFAULT_EXTERNAL_DATA_THRESHOLD) -> tuple[Path, ...]:
    """Export into `path` (inside a staging folder); return the files written, model last."""
    import onnx

    from effconv.export.fp16 import convert_to_fp16
    from effconv.export.metadata import set_metadata

    if precision not in PRECISIONS:
        raise UsageError(f"ONNX precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if _param_bytes(model) < IN_MEMORY_EXPORT_BYTES:  # skips writing and re-reading every weight
        buffer = io.BytesIO()
        _torch_export(model, buffer, input_shape, opset=opset, dynamic_batch=dynamic_batch)
        proto = onnx.load_from_string(buffer.getvalue())
    else:  # torch then writes weights as external files of its own: keep them inside the stage
        raw_dir = path.parent / "torch-export"
        raw_dir.mkdir()
        _torch_export(model, raw_dir / "raw.onnx", input_shape, opset=opset, dynamic_batch=dynamic_batch)
        proto = onnx.load(str(raw_dir / "raw.onnx"))
    if metadata:
        set_metadata(proto, metadata)
    if precision == "fp16":
        proto = convert_to_fp16(proto, keep_io_fp32=keep_io_fp32)
    return save_onnx(proto, path, external_data_threshold)


def _param_bytes(model) -> int:
    return sum(t.numel() * t.element_size() for t in list(model.parameters()) + list(model.buffers()))


def _torch_export(model, path, input_shape, *, opset: int, dynamic_batch: bool) -> None:
    import torch

    model = model.eval()
    example = torch.zeros(*input_shape)
    dynamic_axes = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}} if dynamic_batch else None
    # nn.MultiheadAttention / TransformerEncoder take a fused kernel under no_grad in eval mode, which
    # the TorchScript exporter cannot export: their composite path is exported instead (same outputs).
    fastpath = torch.backends.mha.get_fastpath_enabled()
    with warnings.catch_warnings(), torch.no_grad(), contextlib.ExitStack() as restore:
        torch.backends.mha.set_fastpath_enabled(False)
        restore.callback(torch.backends.mha.set_fastpath_enabled, fastpath)
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (example,),
            path if isinstance(path, io.BytesIO) else str(path),
            dynamo=False,
            opset_version=opset,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes=dynamic_axes,
            do_constant_folding=True,
            training=torch.onnx.TrainingMode.EVAL,
        )


def check_onnx(path: str | Path) -> OnnxCheck:
    """onnx.checker with full_check (it runs strict shape inference itself), then a shape-inference
    pass of our own (check_type, strict_mode, data_prop) on the weight-free skeleton whose outputs
    must all come out with a known rank; raise CheckFailedError naming the file otherwise."""
    import onnx

    path = Path(path)
    try:
        onnx.checker.check_model(str(path), full_check=True)  # by path: works past 2 GiB too
        loaded = onnx.load(str(path), load_external_data=False)
        external = any(t.data_location == onnx.TensorProto.EXTERNAL for t in loaded.graph.initializer)
        proto = onnx.shape_inference.infer_shapes(_skeleton(loaded), check_type=True, strict_mode=True, data_prop=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise CheckFailedError(f"ONNX check failed: {str(exc).splitlines()[0]}", path=path) from exc
    outputs = {v.name: _shape(v) for v in proto.graph.output}
    if any(shape is None for shape in outputs.values()):
        raise CheckFailedError("shape inference left an output without a shape", path=path)
    return OnnxCheck(
        opset=max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=0),
        nodes=len(proto.graph.node),
        inputs={v.name: _shape(v) for v in proto.graph.input},
        outputs=outputs,
        external_data=external,
    )


def _skeleton(proto):
    """`proto` with the bytes of large initializers dropped (dims and types kept): shape inference
    needs only those, and it then runs in milliseconds instead of re-serializing every weight."""
    import onnx

    for init in proto.graph.initializer:
        if len(init.raw_data) > SKELETON_MIN_BYTES and init.data_location != onnx.TensorProto.EXTERNAL:
            init.ClearField("raw_data")
            init.data_location = onnx.TensorProto.EXTERNAL
            entry = init.external_data.add()
            entry.key, entry.value = "location", "weights-not-loaded"
    return proto


def _shape(value) -> tuple[int | str, ...] | None:
    tensor = value.type.tensor_type
    if not tensor.HasField("shape"):
        return None
    return tuple(d.dim_param if d.dim_param else d.dim_value for d in tensor.shape.dim)
