"""The files a deployment matrix times, and the images it scores them on: the fp32 file (the
source itself, or exported from the run) and the int8 QDQ file (effconv export --precision int8),
in the work folder (a temporary one unless --work-dir); accuracy images from the real test set
(runs) or, for plain files, the check set of the int8 export (agreement only without labels)."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from effconv.deploy.plan import DeployOptions
from effconv.errors import EffconvError, UsageError

@dataclass(frozen=True)
class Files:
    fp32: Path
    int8: Path | None
    int8_reason: str | None
    pre: Any  # effconv.export.calibration.Preprocess
    classes: int | None
    kind: str
    data: Path | None  # the run's data


@contextlib.contextmanager
def prepared(source: str | Path, options: DeployOptions) -> Iterator[Files]:
    """The fp32 and int8 files in the work folder (a temporary one unless --work-dir)."""
    if options.work_dir is not None:
        options.work_dir.mkdir(parents=True, exist_ok=True)
        yield _make_files(source, options.work_dir, options)
        return
    with tempfile.TemporaryDirectory(prefix="effconv-deploy-") as tmp:
        yield _make_files(source, Path(tmp), options)


def _make_files(source, work: Path, options: DeployOptions) -> Files:
    from effconv.export.api import ExportOptions, _run_data, export_model
    from effconv.export.calibration import Preprocess
    from effconv.export.onnx_file import onnx_file_preprocess

    path = Path(str(source))
    int8_opts = ExportOptions(precision="int8", batch=options.batch, parity=False, data=options.data,
                              calibration_data=options.calibration_data, seed=options.seed,
                              calibration_images=options.calibration_images, mean=options.mean, std=options.std,
                              input_shape=options.input_shape, input_name=options.input_name)
    reason = None
    if path.suffix == ".onnx":
        fp32, kind, data = path, "onnx", None
        try:
            pre, classes = onnx_file_preprocess(path, int8_opts)
        except UsageError as exc:  # no normalization known: time it, but no int8 and no accuracy
            pre, classes, reason = None, None, str(exc)
    else:
        from effconv.export.source import load_source

        src = load_source(source)
        name = src.spec.name
        fp32 = export_model(source, work / f"{name}.fp32.onnx", ExportOptions(batch=options.batch, parity=False)).onnx_path
        kind, data, classes = "run", _run_data(source), src.spec.num_classes
        c, h, w = src.input_shape(1)[1:]
        pre = Preprocess(c, h, w, tuple(src.mean), tuple(src.std)) if src.mean is not None else None
        reason = None if pre is not None else "the model's normalization is unknown"
    int8 = None
    if "int8" in options.precisions and pre is not None:
        try:
            int8 = export_model(source if kind == "run" else path, work / f"{fp32.name.split('.')[0]}.int8.onnx",
                                replace(int8_opts, data=options.data or data)).onnx_path
        except EffconvError as exc:  # no calibration images, a graph ORT cannot quantize: say so in the cell
            reason = f"int8 export failed: {exc}"
    return Files(fp32, int8, reason, pre, classes, kind, data)


def eval_images(files: Files, options: DeployOptions, notes: list[str]):
    """(images, labels or None, their source, notes) for accuracy; images None when not measured."""
    from effconv.export.calibration import check_set, cifar_set, default_cifar, is_cifar_source

    if not options.accuracy:
        return None, None, None, [*notes, "accuracy not measured (--no-accuracy)"]
    if files.pre is None:
        return None, None, None, [*notes, "accuracy not measured: the model's normalization is unknown"]
    try:
        if files.kind == "run":
            data = options.data or files.data or default_cifar()
            if data is None or not is_cifar_source(Path(data)):
                raise UsageError("no CIFAR-10 test set found (pass --data)")
            found = cifar_set(Path(data), "test", options.test_images or 10_000, files.pre, options.seed)
        else:
            found = check_set(options.data, options.calibration_data, options.test_images or 1000, files.pre,
                              options.seed, classes=files.classes, skip=options.calibration_images)
    except EffconvError as exc:
        return None, None, None, [*notes, f"accuracy not measured: {exc}"]
    return found.images, found.labels, found.source, notes
