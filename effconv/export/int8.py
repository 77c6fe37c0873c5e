"""int8 ONNX: static post-training quantization with onnxruntime.quantization, checked on real images.

What the file holds (QDQ format): every Conv/Gemm/MatMul (and the ops ORT quantizes around them)
gets QuantizeLinear -> DequantizeLinear pairs on its activations and a DequantizeLinear on its
weight, so the file stays a valid float graph that any ONNX runtime can execute, and the runtime
fuses each pattern into an integer kernel.

Types (why these): weights int8, symmetric, one scale per output channel; activations uint8,
asymmetric (a zero point). x86 CPUs with VNNI multiply u8 x s8 in one instruction (vpdpbusd), and
both runtimes here run exactly that: ONNX Runtime's MLAS kernels take U8S8 as their native x86
case, and OpenVINO's low-precision transformations map a u8 QDQ activation and an i8 weight onto
its int8 convolution kernels. Per-channel weights keep depthwise convolutions (MobileNet), whose
channels have very different ranges, from losing their small channels to one per-tensor scale.
Calibration: MinMax over N real training images (the range a calibration set actually reaches);
the images are preprocessed exactly as the run's metadata says (effconv.export.calibration).

The check (exit 1 when it fails; no file is written): the int8 file against the fp32 file on real
test images on ONNX Runtime CPU: top-1 agreement and, with labels, both accuracies. It passes
when the accuracy drop (fp32 - int8, in points) is at most `max_accuracy_drop`; without labels the
disagreement rate (in points) stands in for the drop, which it bounds from above.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from effconv.errors import CheckFailedError, InvalidInputError, UsageError
from effconv.export.calibration import ImageSet, Preprocess, calibration_set, check_set

CALIBRATION_IMAGES = 256  # MinMax ranges settle after a few hundred images of a 10-class set
CHECK_IMAGES = 1000  # real test images for the int8 check (a 1-point tolerance needs hundreds)
MAX_ACCURACY_DROP = 1.0  # points of top-1 accuracy
CALIBRATION_BATCH = 32  # images per calibration run when the batch is dynamic
ACTIVATIONS, WEIGHTS = "uint8", "int8"


@dataclass(frozen=True)
class Int8Check:
    runtime: str
    images: int
    image_source: str
    labelled: bool
    top1_agreement: float  # 0-1
    fp32_accuracy: float | None  # 0-1, None without labels
    int8_accuracy: float | None
    max_accuracy_drop: float  # points
    calibration_images: int
    calibration_source: str

    @property
    def drop_points(self) -> float:
        """fp32 minus int8 accuracy in points; without labels the disagreement in points."""
        if self.labelled:
            return 100.0 * (self.fp32_accuracy - self.int8_accuracy)
        return 100.0 * (1.0 - self.top1_agreement)

    @property
    def passed(self) -> bool:
        return self.images > 0 and self.drop_points <= self.max_accuracy_drop

    def to_dict(self) -> dict:
        return {**asdict(self), "drop_points": self.drop_points, "passed": self.passed}


class Int8CheckError(CheckFailedError):
    """The int8 file lost more accuracy than allowed (exit 1); `check` holds the numbers."""

    def __init__(self, message: str, check: Int8Check, *, path=None) -> None:
        super().__init__(message, path=path)
        self.check = check


class _Reader:
    """onnxruntime.quantization.CalibrationDataReader over preprocessed images."""

    def __init__(self, name: str, images: np.ndarray, batch: int) -> None:
        self._chunks = iter([images[i:i + batch] for i in range(0, len(images), batch)])
        self._name = name

    def get_next(self):
        chunk = next(self._chunks, None)
        return None if chunk is None else {self._name: chunk}


def quantize(fp32_path: Path, int8_path: Path, images: np.ndarray, *, fixed_batch: int | None) -> None:
    """QDQ int8 copy of `fp32_path` at `int8_path` (see the module docstring for the types)."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    import onnx

    prepared = int8_path.with_name(int8_path.stem + ".prepared.onnx")  # inside the stage: removed with it
    model = onnx.load(str(fp32_path))
    constants_to_initializers(model)
    onnx.save_model(model, str(prepared))
    name = model.graph.input[0].name
    batch = fixed_batch or CALIBRATION_BATCH
    if fixed_batch and len(images) % fixed_batch:
        images = images[:len(images) - len(images) % fixed_batch]  # whole batches only
    quiet = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)  # ORT logs "consider pre-processing" per call
    try:
        quantize_static(str(prepared), str(int8_path), _Reader(name, images, batch),
                        quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
                        extra_options={"ActivationSymmetric": False, "WeightSymmetric": True})
    except (UsageError, InvalidInputError):
        raise
    except Exception as exc:  # noqa: BLE001 - ORT raises its own types for graphs it cannot quantize
        raise InvalidInputError(f"ONNX Runtime cannot quantize this model ({type(exc).__name__}: {exc})",
                                path=fp32_path) from exc
    finally:
        logging.getLogger().setLevel(quiet)
        prepared.unlink(missing_ok=True)


def constants_to_initializers(model) -> int:
    """Turn Constant nodes, and Identity nodes of an initializer, into initializers (in place);
    return how many. Why: torch's exporter gives the BN-folded convolution biases as Identity
    outputs, and ORT's quantizer then leaves those biases in float ("Expected bias ... to be an
    initializer"), so ONNX Runtime cannot fuse the Conv into QLinearConv and runs 16 of ResNet-20's
    19 convolutions in float between Dequantize/Quantize pairs (2.4x slower than fp32)."""
    from onnx import numpy_helper

    graph, moved = model.graph, 0
    while True:
        inits = {t.name: t for t in graph.initializer}
        keep, new = [], []
        for node in graph.node:
            tensor = None
            if node.op_type == "Constant" and len(node.attribute) == 1 and node.attribute[0].name == "value":
                tensor = node.attribute[0].t
            elif node.op_type == "Identity" and node.input[0] in inits:
                tensor = inits[node.input[0]]
            if tensor is None or node.output[0] in {o.name for o in graph.output}:
                keep.append(node)
                continue
            new.append(numpy_helper.from_array(numpy_helper.to_array(tensor), node.output[0]))
        if not new:
            return moved
        moved += len(new)
        del graph.node[:]
        graph.node.extend(keep)
        graph.initializer.extend(new)


def quantization_metadata(calib: ImageSet, pre: Preprocess, seed: int) -> dict[str, str]:
    """effconv.* keys that say how the int8 file was made."""
    info = {"format": "QDQ", "activations": f"{ACTIVATIONS} asymmetric per tensor",
            "weights": f"{WEIGHTS} symmetric per output channel", "calibration_method": "minmax",
            "calibration_images": len(calib.images), "calibration_source": calib.source, "seed": seed,
            "preprocess": pre.to_dict()}
    return {"effconv.precision": "int8", "effconv.quantization": json.dumps(info, sort_keys=True)}


def finish_file(int8_path: Path, meta: dict[str, str], threshold: int) -> tuple[Path, ...]:
    """Attach metadata and save (external data over `threshold` bytes); return the files written."""
    import onnx

    from effconv.export.metadata import set_metadata
    from effconv.export.staging import save_onnx

    model = onnx.load(str(int8_path))
    set_metadata(model, meta)
    int8_path.unlink()
    return save_onnx(model, int8_path, threshold)


def check_int8(fp32_path: Path, int8_path: Path, check: ImageSet, *, max_drop: float, calib: ImageSet) -> Int8Check:
    """Run both files on ORT CPU over the check images; raise Int8CheckError beyond `max_drop`."""
    from effconv.export.parity import ort_runner

    run32, runtime = ort_runner(fp32_path)
    run8, _ = ort_runner(int8_path)
    p32, p8 = run32(check.images).argmax(1), run8(check.images).argmax(1)
    labels = check.labels
    result = Int8Check(
        runtime=runtime, images=len(check.images), image_source=check.source, labelled=labels is not None,
        top1_agreement=float(np.mean(p32 == p8)) if len(p8) else 0.0,
        fp32_accuracy=float(np.mean(p32 == labels)) if labels is not None else None,
        int8_accuracy=float(np.mean(p8 == labels)) if labels is not None else None,
        max_accuracy_drop=max_drop, calibration_images=len(calib.images), calibration_source=calib.source,
    )
    if not result.passed:
        what = (f"accuracy {result.int8_accuracy:.2%} against fp32 {result.fp32_accuracy:.2%}" if result.labelled
                else f"top-1 agreement with fp32 {result.top1_agreement:.2%}")
        raise Int8CheckError(f"int8 check failed on {runtime}: {what} on {result.images} real images, a drop of "
                             f"{result.drop_points:.2f} points > --max-accuracy-drop {max_drop:g}; file not written",
                             result, path=int8_path)
    return result


def stage_int8(fp32_path: Path, int8_path: Path, pre: Preprocess, meta: dict[str, str], options, *,
               data_for_run: Path | None = None, classes: int | None = None) -> tuple[tuple[Path, ...], Int8Check | None]:
    """Calibrate, quantize and check inside the stage; return (the int8 files written, the check).

    Calibration source: --calibration-data, else --data, else the run's own data, else the
    default search. The check's images are the next ones (see calibration.check_set)."""
    calib_source = options.calibration_data or options.data or data_for_run
    calib = calibration_set(calib_source, options.calibration_images, pre, options.seed)
    quantize(fp32_path, int8_path, calib.images, fixed_batch=_fixed_batch(fp32_path))
    files = finish_file(int8_path, {**meta, **quantization_metadata(calib, pre, options.seed)},
                        options.external_data_threshold)
    if not options.parity:
        return files, None
    n = options.parity_images if options.parity_images is not None else CHECK_IMAGES
    test = check_set(options.data or data_for_run, calib_source, n, pre, options.seed, classes=classes,
                     skip=len(calib.images))
    return files, check_int8(fp32_path, int8_path, test, max_drop=options.max_accuracy_drop, calib=calib)


def _fixed_batch(path: Path) -> int | None:
    import onnx

    dim = onnx.load(str(path), load_external_data=False).graph.input[0].type.tensor_type.shape.dim
    return dim[0].dim_value if dim and dim[0].HasField("dim_value") else None


def parse_floats(flag: str, text: str | None) -> tuple[float, ...] | None:
    """"0.485,0.456,0.406" -> (0.485, 0.456, 0.406); a bad list is a usage error naming `flag`."""
    if text is None:
        return None
    try:
        values = tuple(float(v) for v in text.replace(" ", "").split(",") if v)
    except ValueError:
        values = ()
    if not values or any(v != v or abs(v) == float("inf") for v in values):
        raise UsageError(f"{flag} {text!r}: expected finite numbers separated by commas, e.g. 0.485,0.456,0.406")
    return values
