"""What every command-line value must be, as data: one table, checked before any work.

`effconv.cli.validate` looks each parsed option up here (by command and flag, else by flag) and
checks it before the command's body runs: before a model is loaded, a child forked or a step
trained. A failed check is one line naming the option, exit 2 (exit 4 for an output folder with no
free space). Every option of every command must have an entry (tests/test_contract.py walks the
Typer app and fails on a missing one); switches (--quiet, --strict, ...) need none.

Numbers are finite and inside [low, high] (`low_open`: low itself excluded). The upper bounds are
sanity limits, far above any real use, that keep an absurd value (1e20 seconds, 10^20 images)
from hanging or overflowing the run. The rules are NamedTuples, not dataclasses: this module loads
with every command, and six dataclasses cost ~10 ms of start-up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import NamedTuple

INT32_MAX = 2**31 - 1


class Num(NamedTuple):
    low: float
    high: float
    low_open: bool = False  # True: low itself is refused (a rate, a scale)
    meaning: str = ""  # what a special value means, for the error line ("0: none")

    def accepts(self, value: float) -> bool:
        import math

        if not math.isfinite(value):
            return False
        above = value > self.low if self.low_open else value >= self.low
        return above and value <= self.high

    def describe(self) -> str:
        low = f"> {self.low:g}" if self.low_open else f">= {self.low:g}"
        return f"a finite number {low} and <= {self.high:g}" + (f" ({self.meaning})" if self.meaning else "")

    def example(self, tmp) -> str:
        return f"{self.high if self.low_open else self.low:g}"


class Choice(NamedTuple):
    """One of the names a registry knows; `names` is called at check time (registries are lazy)."""

    names: Callable[[], Iterable[str]]
    what: str = "value"
    pattern: str | None = None  # a regular expression also accepted (cuda:N)

    def example(self, tmp) -> str:
        return next(iter(self.names()))


class Text(NamedTuple):
    max_len: int = 500
    nonempty: bool = False
    safe_name: bool = False  # letters, digits, . _ - only (a name written into files)

    def example(self, tmp) -> str:
        return "x"


class PathC(NamedTuple):
    """in_file / in_dir / in_any: must exist (file, folder, either). out_file: its folder must
    exist and be writable, itself not a folder. out_dir: a folder, or creatable under a writable
    one. cache_file: read if it exists, written after (an out_file that may be there)."""

    role: str

    @property
    def output(self) -> bool:
        return self.role in ("out_file", "out_dir", "cache_file")

    def example(self, tmp) -> str:
        if self.role == "in_file":
            path = tmp / "input.bin"
            path.write_bytes(b"x")
            return str(path)
        return str(tmp if self.role in ("in_dir", "in_any") else tmp / ("out" if self.role == "out_dir" else "out.txt"))


class ModelRef(NamedTuple):
    """A model source: an existing file or folder (of the kinds `what` names), or a zoo spec name."""

    what: str
    missing_exit: int = 2  # `effconv profile` has always called a missing model file invalid input (3)

    def example(self, tmp) -> str:
        return "resnet20"


class Shapes(NamedTuple):
    """--input-shape NAME=DxD...: each dimension an integer in [1, INT32_MAX], at most 2^34 elements."""

    max_elements: int = 2**34

    def example(self, tmp) -> str:
        return "input=1x3x32x32"


Constraint = Num | Choice | Text | PathC | ModelRef | Shapes


# Registries, looked up only when an option is given --------------------------------------------------
def _backends() -> Iterable[str]:
    from effconv.latency.backends import BACKENDS

    return BACKENDS


def _per_layer() -> Iterable[str]:
    from effconv.latency.layerwise import METHODS

    return ("auto", "none", *METHODS)


def _devices() -> Iterable[str]:
    from effconv.latency.roofline import list_device_names

    return list_device_names()


def _experiments() -> Iterable[str]:
    from effconv.experiments.studies import EXPERIMENTS

    return EXPERIMENTS


def _experiments_or_all() -> Iterable[str]:
    return (*_experiments(), "all")


def _optimizers() -> Iterable[str]:
    from effconv.training.config import OPTIMIZERS

    return OPTIMIZERS


def _zoo_names(registry: str) -> list[str]:
    """The names of a registry in effconv/zoo/blocks.py (ACTIVATIONS, NORMS), read from its source:
    importing it imports torch (1-6 s on a busy machine), and `train --activation bogus` must fail at
    once. Falls back to the import if the registry is no longer a dict literal there;
    tests/test_contract.py checks that both ways give the same names."""
    import ast
    from pathlib import Path

    source = Path(__file__).resolve().parents[1] / "zoo" / "blocks.py"
    try:
        for node in ast.parse(source.read_text(encoding="utf-8")).body:
            target = getattr(node, "target", None) or (node.targets[0] if isinstance(node, ast.Assign) else None)
            if isinstance(target, ast.Name) and target.id == registry and isinstance(node.value, ast.Dict):
                names = [k.value for k in node.value.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)]
                if names:
                    return names
    except (OSError, SyntaxError, UnicodeDecodeError):
        pass
    import importlib

    return list(getattr(importlib.import_module("effconv.zoo.blocks"), registry))


def _activations() -> Iterable[str]:
    return _zoo_names("ACTIVATIONS")


def _norms() -> Iterable[str]:
    return _zoo_names("NORMS")


def _fixed(*names: str) -> Callable[[], Iterable[str]]:
    return lambda: names


OUT_FILE, OUT_DIR = PathC("out_file"), PathC("out_dir")
SECONDS = Num(0, 7 * 86400)  # a week: longer is a typo
THREADS = Num(1, 1024)

# By flag (or argument name), for every command that has it ------------------------------------------
SHARED: dict[str, Constraint] = {
    "--json": OUT_FILE, "--csv": OUT_FILE, "--markdown": OUT_FILE, "--plot": OUT_FILE,
    "--latency-plot": OUT_FILE, "--output": OUT_FILE,
    "--batch": Num(1, 65536), "--seed": Num(0, 2**32 - 1), "--threads": THREADS,
    "--backend": Choice(_backends, "backend"), "--per-layer": Choice(_per_layer, "per-layer method"),
    "--torch-mode": Choice(_fixed("eager", "compile"), "torch mode"),
    "--device-profile": Choice(_devices, "device profile"),  # or a .toml path (validate.py)
    "--warmup-ms": Num(0, 600_000), "--duration-s": Num(0, 86400), "--iterations": Num(1, 10_000_000),
    "--budget-ms": Num(0, 86_400_000, low_open=True),
    "--ram-budget-mb": Num(0, 1e9, low_open=True), "--flash-budget-mb": Num(0, 1e9, low_open=True),
    "--memory-plot": OUT_FILE,
    "--mem-limit-mb": Num(0, 2**40, meaning="0: no limit"), "--timeout-s": Num(0, 7 * 86400, meaning="0: no limit"),
    "--data": PathC("in_any"), "--input-shape": Shapes(), "--top": Num(0, 1_000_000, meaning="0: all"),
    "--convention": Choice(_fixed("paper", "all"), "convention"),
    "--ov-device": Choice(_fixed("CPU", "GPU", "NPU"), "OpenVINO device"),  # present or not: the runner says
}

# Where a flag means something else in one command ------------------------------------------------
BY_COMMAND: dict[tuple[str, str], Constraint] = {
    ("profile", "source"): ModelRef("ONNX file or spec .toml", missing_exit=3),
    ("profile", "--precision"): Choice(_fixed("fp32", "fp16", "bf16"), "precision"),
    ("latency", "model"): ModelRef("ONNX file, spec .toml or run folder"),
    ("latency", "--precision"): Choice(_fixed("fp32", "fp16", "bf16"), "precision"),
    ("latency", "--mode"): Choice(_fixed("latency", "throughput"), "mode"), ("latency", "--streams"): Num(1, 1024),
    ("cost", "f"): Num(1, 1_000_000), ("cost", "n"): Num(1, 1_000_000),
    ("cost", "m"): Num(1, 1_000_000), ("cost", "k"): Num(1, 10_000),
    ("export", "source"): ModelRef("run folder, checkpoint, spec .toml or ONNX file"),
    ("export", "--format"): Choice(_fixed("onnx", "tensorrt"), "format"),
    ("export", "--opset"): Num(9, 20),  # torch's TorchScript exporter writes opsets 7-20; < 9 lacks common ops
    ("export", "--precision"): Choice(_fixed("fp32", "fp16", "int8"), "precision"),
    ("export", "--rtol"): Num(0, 1e3), ("export", "--atol"): Num(0, 1e6),
    ("export", "--parity-images"): Num(0, 100_000, meaning="0 needs --no-parity"),
    ("export", "--external-data-threshold"): Num(0, 2**40), ("export", "--timing-cache"): PathC("cache_file"),
    ("export", "--workspace-mib"): Num(1, 1 << 20),
    ("export", "--calibration-images"): Num(1, 1_000_000), ("export", "--calibration-data"): PathC("in_any"),
    ("export", "--max-accuracy-drop"): Num(0, 100), ("export", "--mean"): Text(200, nonempty=True),
    ("export", "--std"): Text(200, nonempty=True),
    ("deploy", "source"): ModelRef("run folder, checkpoint or ONNX file"),
    ("deploy", "--precision"): Choice(_fixed("fp32", "fp16", "bf16", "int8"), "precision"),
    ("deploy", "--test-images"): Num(1, 10_000_000), ("deploy", "--max-accuracy-drop"): Num(0, 100),
    ("deploy", "--calibration-images"): Num(1, 1_000_000), ("deploy", "--calibration-data"): PathC("in_any"),
    ("deploy", "--mean"): Text(200, nonempty=True), ("deploy", "--std"): Text(200, nonempty=True),
    ("deploy", "--work-dir"): OUT_DIR,
    ("train", "spec"): ModelRef("spec .toml"), ("train", "--out"): OUT_DIR,
    ("train", "--steps"): Num(1, 100_000_000), ("train", "--batch-size"): Num(1, 65536),
    ("train", "--lr"): Num(0, 100, low_open=True), ("train", "--optimizer"): Choice(_optimizers, "optimizer"),
    ("train", "--activation"): Choice(_activations, "activation"), ("train", "--norm"): Choice(_norms, "norm"),
    ("train", "--precision"): Choice(_fixed("fp32", "bf16", "fp16"), "precision"),
    ("train", "--resume"): PathC("in_dir"), ("train", "--eval-every"): Num(1, 100_000_000),
    ("train", "--subset"): Num(1, 100_000_000), ("train", "--target-acc"): Num(0, 100, low_open=True),
    ("compare", "runs"): PathC("in_dir"), ("compare", "--target"): Num(0, 100, low_open=True),
    ("compare", "--latency-s"): Num(0, 3600, low_open=True), ("compare", "--plots"): OUT_DIR,
    ("device calibrate", "--out"): OUT_FILE, ("device calibrate", "--name"): Text(100, nonempty=True, safe_name=True),
    ("device calibrate", "--matmul-n"): Num(64, 32768), ("device calibrate", "--copy-mib"): Num(1, 65536),
    ("experiment run", "name"): Choice(_experiments_or_all, "experiment"),
    ("experiment run", "--scale"): Num(0, 1, low_open=True), ("experiment run", "--out"): OUT_DIR,
    ("experiment run", "--device"): Choice(_fixed("auto", "cpu", "cuda"), "device", pattern=r"cuda:\d{1,3}"),
    ("experiment run", "--width-mult"): Num(0, 1, low_open=True),
    ("experiment run", "--batch-size"): Num(1, 65536), ("experiment run", "--evals"): Num(1, 100_000),
    ("experiment run", "--eval-images"): Num(1, 10_000),
    ("experiment run", "--precision"): Choice(_fixed("fp32", "bf16", "fp16"), "precision"),
    ("experiment run", "--pack"): Num(1, 256), ("experiment run", "--budget-s"): Num(0, 7 * 86400, low_open=True),
    ("experiment run", "--probe-s"): Num(0, 600, low_open=True),
    ("experiment report", "name"): Choice(_experiments, "experiment"),
    ("experiment report", "--out"): PathC("in_dir"), ("experiment report", "--report-dir"): OUT_DIR,
    ("experiment report", "--note"): Text(2000),
}


BY_COMMAND.update({("experiment plan", key): rule for (cmd, key), rule in list(BY_COMMAND.items()) if cmd == "experiment run"})


def constraint_for(command: str, key: str) -> Constraint | None:
    """The entry for `key` (a flag such as "--lr", or an argument's name) in `command` ("device
    calibrate"); None when there is none (switches)."""
    if (command, key) in BY_COMMAND:
        return BY_COMMAND[(command, key)]
    return SHARED.get(key)
