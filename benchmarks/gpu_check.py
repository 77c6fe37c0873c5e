"""One prepared GPU visit: every GPU claim effconv makes, measured by one command (issue 18).

    python3 benchmarks/gpu_check.py --out "$OUT"          # on the GPU machine (at most 9 minutes)
    python benchmarks/gpu_check.py --dry-run --out /tmp/g  # the same functions on CPU, tiny sizes (< 2 minutes)
    (the packed full-scale studies of issue 19 are a visit of their own: benchmarks/gpu_studies.sh)

Writes <out>/<device>-<date>.json and .md (default out: profiles/gpu), rewritten after every part so
a run cut short still leaves what it measured, and prints a short table last. The parts, in order:

  backends      `python3 -m effconv backends --json` as the machine sees it
  torch         MobileNet v1 224, batch 1 and 64, fp32 and fp16: effconv torch-cuda eager and CUDA graph,
                each beside a plain loop written here (CUDA events per iteration), same process; the ratio
  ort           effconv ort-cuda with IO binding, without and with CUDA graphs, and ort-cpu, each beside
                a plain InferenceSession loop
  per-layer     effconv's own per-layer methods (effconv.latency.layerwise): torch-profiler kernel times
                on torch-cuda and isolate on ort-cuda, their sums against the end-to-end medians
  isolated      effconv's sandboxed child timing the ONNX file on ort-cuda, forked and spawned, against
                the same measurement in-process: the overhead
  fp16-export   `python3 -m effconv export --precision fp16` (its own ORT CPU parity), then the file's
                parity on ort-cuda and the fp16 torch module's on CUDA, against fp32 PyTorch
  train-speed   benchmarks/train_speed.py for the paper's VGG-19 recipe (Adam, batch 128; bf16 autocast)
  pytest-gpu    `pytest -m gpu` on the files that hold GPU-marked tests
  torch-compile torch.compile (effconv --torch-mode compile) beside a plain compiled loop; last, as it
                takes whatever time is left

Each part has a time cap (SIGALRM in this process, a timeout for subprocesses), clamped to what is
left of the 9-minute total; a watchdog thread writes the results and exits at the total, whatever
a native call is doing. A failing part is recorded with its error (one line and the exception type)
and the next part runs. The dry run goes through the same functions: the device is the CPU,
torch-cpu and ort-cpu stand in for torch-cuda and ort-cuda, MobileNet v1 shrinks to alpha 0.25 at
32x32, batches are 1 and 2, loops a few iterations, and what cannot run on a CPU (CUDA graphs, fp16,
GPU tests) is recorded as "skipped: <reason>", never as ok. torch.compile in the dry run uses the
"aot_eager" backend: inductor's C++ code generation alone takes about 85 s on 2 shared cores.

Needs only what the GPU image has (torch, onnx, onnxruntime(-gpu), numpy, pytest; the project on
PYTHONPATH, which this script also arranges): nothing here imports at module level beyond the
standard library, so `--isolation-driver` can start a child without torch (effconv then forks).
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from anywhere without installing the project
    sys.path.insert(0, str(ROOT))

SCHEMA = "effconv-gpu-check/1"
RESERVE_S = 12.0  # kept back from the total for writing the results
MAX_TOTAL_S = 540.0  # 9 minutes: the device call that runs this has 10 (set-up and transfers included)
GRAPH_TOLERANCE = 0.10  # effconv's CUDA-graph median within 10% of the plain loop's
LAYER_SUM_TOLERANCE = 0.15  # per-layer sums within +-15% of end to end


# Configuration ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Config:
    dry_run: bool
    device: str  # "cuda" | "cpu": where the "GPU" work runs
    spec_overrides: dict[str, Any]  # applied to models/mobilenet_v1.toml (the dry run's tiny size)
    batches: tuple[int, ...]
    precisions: tuple[str, ...]
    compile_batches: tuple[int, ...]
    layer_batches: tuple[int, ...]  # the per-layer part's batches
    warmup_ms: float
    duration_s: float
    iterations: int
    torch_backend: str  # torch-cuda, or torch-cpu standing in
    ort_backend: str  # ort-cuda, or ort-cpu standing in
    compile_backend: str | None  # None: torch.compile's default (inductor)
    threads: int | None  # CPU intra-op threads (effconv's --threads and the plain loops); None: the runtime's
    parity_images: int
    train_args: tuple[str, ...]
    total_s: float
    caps: dict[str, float]


GPU = Config(
    dry_run=False, device="cuda", spec_overrides={}, batches=(1, 64), precisions=("fp32", "fp16"),
    compile_batches=(1, 64), layer_batches=(1, 64), warmup_ms=200.0, duration_s=1.0, iterations=20,
    torch_backend="torch-cuda",
    ort_backend="ort-cuda", compile_backend=None, threads=None, parity_images=16,
    train_args=("--spec", "vgg19_3x3", "--batch-size", "128", "--precision", "bf16", "--steps", "200",
                "--warmup", "10", "--rounds", "2", "--log-every", "50"),
    total_s=510.0,
    caps={"backends": 45, "torch": 90, "ort": 120, "per-layer": 120, "isolated": 60, "fp16-export": 90,
          "train-speed": 120, "pytest-gpu": 100, "torch-compile": 300},
)

DRY = Config(
    dry_run=True, device="cpu",
    spec_overrides={"name": "mobilenet_v1_dry", "input_size": 32, "arch": {"alpha": 0.25, "rho": 32 / 224}},
    batches=(1, 2), precisions=("fp32", "fp16"), compile_batches=(1,), layer_batches=(1,), warmup_ms=10.0,
    duration_s=0.05,
    iterations=5, torch_backend="torch-cpu", ort_backend="ort-cpu", compile_backend="aot_eager", threads=1,
    parity_images=4,
    # VGG-19 even at batch 4 takes 30 s of wall time on 2 loaded cores (its end-of-run evaluation
    # and 80 MB checkpoint included): the dry run trains the smallest MobileNet instead
    train_args=("--spec", "mobilenet_v1_cifar", "--alpha", "0.25", "--batch-size", "8", "--precision", "fp32",
                "--steps", "2", "--warmup", "1", "--rounds", "1", "--log-every", "50", "--threads", "1"),
    total_s=115.0,
    caps={"backends": 30, "torch": 20, "ort": 20, "per-layer": 25, "isolated": 40, "fp16-export": 40,
          "train-speed": 45, "pytest-gpu": 45, "torch-compile": 40},
)


# Errors, deadlines and subprocesses ---------------------------------------------------------------
class PartTimeout(Exception):
    """Raised by SIGALRM in the main thread when a part's cap is reached."""


class Skip(Exception):
    """A cell or part that cannot run here: recorded as "skipped: <reason>"."""


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else repr(exc))[:300]


@dataclass
class Budget:
    deadline: float  # time.monotonic() at which the part's cap is reached

    def left(self) -> float:
        return self.deadline - time.monotonic()


_CHILD: subprocess.Popen | None = None  # the subprocess running now, for the watchdog to end


def run_cmd(cmd: list[str], budget: Budget, *, env: dict[str, str] | None = None, cwd: Path = ROOT,
            reserve_s: float = 2.0) -> dict[str, Any]:
    """Run `cmd` with a timeout of what is left of the part (minus `reserve_s`), in its own process
    group (ended as a whole on timeout); returns rc, seconds, stdout, stderr."""
    global _CHILD
    timeout = max(1.0, budget.left() - reserve_s)
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=cwd, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    _CHILD = proc
    try:
        out, err = proc.communicate(timeout=timeout)
    except BaseException as exc:  # the timeout, or SIGALRM's PartTimeout: end the whole group
        _kill_group(proc)
        out, err = proc.communicate()
        if isinstance(exc, subprocess.TimeoutExpired):
            raise PartTimeout(f"{' '.join(cmd[:4])} ... still running after {timeout:.0f} s "
                              f"(stderr tail: {_tail(err, 1)})") from None
        raise
    finally:
        _CHILD = None
    return {"rc": proc.returncode, "seconds": round(time.monotonic() - t0, 2), "stdout": out, "stderr": err}


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _tail(text: str, lines: int = 5) -> str:
    return " | ".join(ln.strip() for ln in (text or "").strip().splitlines()[-lines:])


def python() -> str:
    return sys.executable or "python3"


# Statistics and the plain reference loops ---------------------------------------------------------
def summarize(samples_ms: list[float], batch: int) -> dict[str, Any]:
    """median, mean, min, p90, cv of per-iteration ms (computed here, independently of effconv)."""
    s = sorted(samples_ms)
    mean = statistics.fmean(s)
    median = statistics.median(s)
    p90 = s[min(len(s) - 1, int(round(0.9 * (len(s) - 1))))]
    cv = statistics.stdev(s) / mean if len(s) > 1 and mean > 0 else 0.0
    return {"iterations": len(s), "median_ms": median, "mean_ms": mean, "min_ms": s[0], "p90_ms": p90, "cv": cv,
            "throughput": batch / (median / 1e3) if median > 0 else None}


def plain_loop(fn: Callable[[], object], cfg: Config, batch: int, *, cuda_events: bool,
               sync: Callable[[], None] = lambda: None) -> dict[str, Any]:
    """The reference: warm up for cfg.warmup_ms (at least one run), then at least cfg.iterations runs
    and cfg.duration_s seconds, each timed alone (CUDA events on the current stream, or the host
    clock around a run that returns when its work is done). Then the same number of runs back to
    back between two clock reads (at most 500): the pipelined time per run, without a sync each."""
    start = time.perf_counter()
    warm = 0
    while warm == 0 or (time.perf_counter() - start) * 1e3 < cfg.warmup_ms:
        fn()
        sync()
        warm += 1
    samples: list[float] = []
    if cuda_events:
        import torch

        stream = torch.cuda.current_stream()
        begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        t0 = time.perf_counter()
        while len(samples) < cfg.iterations or time.perf_counter() - t0 < cfg.duration_s:
            begin.record(stream)
            fn()
            end.record(stream)
            end.synchronize()
            samples.append(begin.elapsed_time(end))
        n = min(len(samples), 500)
        begin.record(stream)
        for _ in range(n):
            fn()
        end.record(stream)
        end.synchronize()
        pipelined = begin.elapsed_time(end) / n
    else:
        t0 = time.perf_counter()
        while len(samples) < cfg.iterations or time.perf_counter() - t0 < cfg.duration_s:
            a = time.perf_counter()
            fn()
            sync()
            samples.append((time.perf_counter() - a) * 1e3)
        n = min(len(samples), 500)
        a = time.perf_counter()
        for _ in range(n):
            fn()
        sync()
        pipelined = (time.perf_counter() - a) * 1e3 / n
    out = summarize(samples, batch)
    out.update(warmup_iterations=warm, pipelined_ms=pipelined,
               timer="CUDA events per run" if cuda_events else "host perf_counter per run")
    return out


def effconv_stats(report) -> dict[str, Any]:
    st = report.timing.stats
    env = report.environment
    return {"iterations": st.iterations, "median_ms": st.median_ms, "mean_ms": st.mean_ms, "min_ms": st.min_ms,
            "p90_ms": st.p90_ms, "cv": st.cv, "throughput": st.throughput, "timer": report.timing.timer,
            "warmup_iterations": report.timing.warmup_iterations, "warning": st.warning,
            "runtime": env.get("runtime"), "torch_mode": env.get("torch_mode"), "providers": env.get("providers")}


# The model under test ---------------------------------------------------------------------------
class Models:
    """MobileNet v1 (models/mobilenet_v1.toml, with the dry run's overrides), seeded weights built
    once; its ONNX export per batch, made on first use; the spec as a .toml file for the CLI."""

    def __init__(self, cfg: Config, work: Path) -> None:
        from effconv.specs import load_spec, spec_from_dict

        data = load_spec("mobilenet_v1").to_dict()
        for key, value in cfg.spec_overrides.items():
            if isinstance(value, dict):
                data[key] = {**data.get(key, {}), **value}
            else:
                data[key] = value
        self.cfg, self.work = cfg, work
        self.spec = spec_from_dict(data)
        self.name = self.spec.name
        self.spec_path = work / f"{self.name}.toml"
        self.spec_path.write_text(to_toml(self.spec.to_dict()), encoding="utf-8")
        self.cli_source = "mobilenet_v1" if not cfg.spec_overrides else str(self.spec_path)
        self._base = None
        self._onnx: dict[int, Path] = {}

    def base(self):
        if self._base is None:
            import torch

            from effconv.zoo import build_model

            torch.manual_seed(0)
            self._base = build_model(self.spec).eval()
        return self._base

    def build(self):
        """A fresh copy of the seeded module (effconv's runners move and cast the module they get)."""
        return copy.deepcopy(self.base())

    def shape(self, batch: int) -> tuple[int, ...]:
        return tuple(self.spec.input_shape(batch))

    def onnx(self, batch: int) -> Path:
        if batch not in self._onnx:
            from effconv.export.onnx import export_onnx

            self._onnx[batch] = export_onnx(self.build(), self.work / f"{self.name}_b{batch}.onnx", self.shape(batch))
        return self._onnx[batch]

    def torch_input(self, batch: int, device: str, dtype):
        import torch

        return torch.randn(self.shape(batch), generator=torch.Generator().manual_seed(0)).to(device=device, dtype=dtype)


def to_toml(data: dict[str, Any]) -> str:
    """A spec dict as TOML (scalars, lists of scalars, one level of tables)."""
    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return json.dumps(str(v))

    lines = [f"{k} = {value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    for k, v in data.items():
        if isinstance(v, dict) and v:
            lines += ["", f"[{k}]"] + [f"{kk} = {value(vv)}" for kk, vv in v.items()]
    return "\n".join(lines) + "\n"


# Cells: one measurement beside its reference -----------------------------------------------------
@dataclass
class Cells:
    """The rows of a latency part; a failing cell is recorded and the part goes on."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    timed_out: bool = False

    def run(self, key: dict[str, Any], fn: Callable[[], dict[str, Any]], budget: Budget, need_s: float = 2.0,
            skip: str | None = None) -> None:
        """`fn()` -> the row's fields; `skip`: why this cell cannot run here (decided before any time check)."""
        row = dict(key)
        t0 = time.monotonic()
        if skip:
            row["status"] = f"skipped: {skip}"
        elif self.timed_out or budget.left() < need_s:
            row["status"] = "skipped: the part's time cap was reached before this cell"
        else:
            try:
                row.update(fn())
                row["status"] = "ok"
            except Skip as exc:
                row["status"] = f"skipped: {exc}"
            except PartTimeout:  # SIGALRM: this cell is cut, the rest of the part is skipped
                row["status"] = "timeout: the part's time cap was reached in this cell"
                self.timed_out = True
            except Exception as exc:  # noqa: BLE001 - recorded, the next cell runs
                row["status"] = f"failed: {type(exc).__name__}: {one_line(exc)}"
                row["error_type"] = type(exc).__name__
        row["seconds"] = round(time.monotonic() - t0, 2)
        self.rows.append(row)

    def status(self) -> str:
        if self.timed_out:
            done = sum(r["status"] == "ok" for r in self.rows)
            return f"timeout: the part's time cap was reached after {done} of {len(self.rows)} cells"
        bad = [r for r in self.rows if not (r["status"] == "ok" or r["status"].startswith("skipped"))]
        if bad:
            return f"failed: {len(bad)} of {len(self.rows)} cells ({bad[0]['status']})"
        if self.rows and all(r["status"].startswith("skipped") for r in self.rows):
            return f"skipped: every cell ({self.rows[0]['status'][9:]})"
        return "ok"


def beside(effconv: dict[str, Any], reference: dict[str, Any]) -> dict[str, Any]:
    ratio = effconv["median_ms"] / reference["median_ms"] if reference["median_ms"] > 0 else None
    low = effconv["min_ms"] / reference["min_ms"] if reference["min_ms"] > 0 else None  # robust on a busy host
    return {"effconv": effconv, "reference": reference, "ratio": ratio, "min_ratio": low}


def why_not(cfg: Config, precision: str, *, graph: bool = False, cpu_backend: bool = False) -> str | None:
    """Why a cell cannot run here, or None."""
    if cpu_backend and precision != "fp32":
        return "effconv times CPU backends in fp32 only (x86 fp16 kernels are not representative)"
    if cfg.device != "cuda" and precision == "fp16":
        return "fp16 needs CUDA (dry run on CPU)"
    if cfg.device != "cuda" and graph:
        return "a CUDA graph needs CUDA (dry run on CPU)"
    return None


def latency_options(cfg: Config, **kw):
    from effconv.latency.base import LatencyOptions

    base = {"warmup_ms": cfg.warmup_ms, "duration_s": cfg.duration_s, "iterations": cfg.iterations, "per_layer": "none",
            "threads": cfg.threads}
    return LatencyOptions(**{**base, **kw})


# torch -------------------------------------------------------------------------------------------
def torch_effconv(ctx, batch: int, precision: str, mode: str) -> dict[str, Any]:
    from effconv.latency.measure import measure
    from effconv.latency.source import ModelInput

    m = ctx.models
    options = latency_options(ctx.cfg, backend=ctx.cfg.torch_backend, batch=batch, precision=precision,
                              cuda_graph=mode == "cuda-graph", torch_mode="compile" if mode == "compile" else "eager")
    report = measure(ModelInput(m.name, None, m.build, m.shape(batch)), options)
    return effconv_stats(report)


def torch_reference(ctx, batch: int, precision: str, mode: str) -> dict[str, Any]:
    """The plain loop: the module cast and moved, one input on the device, forward under
    inference_mode; "cuda-graph": captured once after three warm-up runs on a side stream, replayed."""
    import torch

    cfg = ctx.cfg
    dtype = torch.float16 if precision == "fp16" else torch.float32
    model = ctx.models.build().to(device=cfg.device, dtype=dtype)
    x = ctx.models.torch_input(batch, cfg.device, dtype)
    cuda = cfg.device == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    if not cuda and cfg.threads:
        torch.set_num_threads(cfg.threads)
    if mode == "compile":
        model = compiled(ctx, model)
    with torch.inference_mode():
        if mode == "cuda-graph":
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(3):
                    model(x)
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                y = model(x)  # noqa: F841 - the graph's output stays alive with it
            fn = graph.replay
        else:
            fn = lambda: model(x)  # noqa: E731
        return plain_loop(fn, cfg, batch, cuda_events=cuda, sync=sync)


def compiled(ctx, model):
    import torch

    backend = ctx.cfg.compile_backend
    return torch.compile(model) if backend is None else torch.compile(model, backend=backend)


def torch_cell(ctx, batch: int, precision: str, mode: str) -> dict[str, Any]:
    out = beside(torch_effconv(ctx, batch, precision, mode), torch_reference(ctx, batch, precision, mode))
    ctx.medians[("torch", mode, batch, precision)] = out["effconv"]["median_ms"]
    return out


def part_torch(ctx, budget: Budget) -> dict[str, Any]:
    cells = Cells()
    for batch in ctx.cfg.batches:
        for precision in ctx.cfg.precisions:
            for mode in ("eager", "cuda-graph"):
                key = {"backend": ctx.cfg.torch_backend, "variant": mode, "batch": batch, "precision": precision}
                cells.run(key, lambda: torch_cell(ctx, batch, precision, mode), budget,
                          skip=why_not(ctx.cfg, precision, graph=mode == "cuda-graph"))
    return {"status": cells.status(), "cells": cells.rows}


def part_compile(ctx, budget: Budget) -> dict[str, Any]:
    """torch.compile, effconv's and the plain loop's: the first compile of a shape and dtype pays
    inductor's code generation, the second (same graph) mostly hits its cache."""
    import torch

    cells = Cells()
    if ctx.cfg.compile_backend is not None:
        _patch_compile_backend(ctx.cfg.compile_backend)
    for batch in ctx.cfg.compile_batches:
        for precision in ctx.cfg.precisions:
            key = {"backend": ctx.cfg.torch_backend, "variant": "compile", "batch": batch, "precision": precision,
                   "compile_backend": ctx.cfg.compile_backend or "inductor (default)"}
            cells.run(key, lambda: torch_cell(ctx, batch, precision, "compile"), budget, need_s=20.0,
                      skip=why_not(ctx.cfg, precision))
    torch._dynamo.reset()
    return {"status": cells.status(), "cells": cells.rows,
            "note": None if ctx.cfg.compile_backend is None else
            f"dry run: torch.compile(backend={ctx.cfg.compile_backend!r}) for effconv's runner and the plain loop alike"}


def _patch_compile_backend(backend: str) -> None:
    """The dry run's torch.compile without inductor: effconv's runner calls torch.compile(model)."""
    import functools

    import torch

    if not getattr(torch.compile, "_gpu_check", False):
        patched = functools.partial(torch.compile, backend=backend)
        patched._gpu_check = True
        torch.compile = patched


# ONNX Runtime ------------------------------------------------------------------------------------
def ort_effconv(ctx, backend: str, batch: int, precision: str, cuda_graph: bool) -> dict[str, Any]:
    from effconv.latency.measure import measure
    from effconv.latency.source import ModelInput

    m = ctx.models
    options = latency_options(ctx.cfg, backend=backend, batch=batch, precision=precision, cuda_graph=cuda_graph)
    report = measure(ModelInput(m.name, m.onnx(batch), None, m.shape(batch)), options)
    providers = report.environment.get("providers") or []
    if ctx.cfg.device == "cuda" and backend != "ort-cpu" and (not providers or providers[0] != "CUDAExecutionProvider"):
        raise RuntimeError(f"effconv's {backend} session did not get the CUDA EP (providers: {providers})")
    return effconv_stats(report)


def ort_fp16_file(ctx, batch: int) -> Path:
    """The fp16 file ort-cuda runs: onnxruntime's own converter, float32 inputs and outputs kept
    (what effconv.latency.backends.ort.fp16_model makes), converted here once."""
    key = ("fp16", batch)
    if key not in ctx.files:
        import onnx
        from onnxruntime.transformers.float16 import convert_float_to_float16

        out = ctx.work / f"{ctx.models.name}_b{batch}.ortfp16.onnx"
        onnx.save(convert_float_to_float16(onnx.load(str(ctx.models.onnx(batch))), keep_io_types=True), str(out))
        ctx.files[key] = out
    return ctx.files[key]


def ort_reference(ctx, device: str, batch: int, precision: str, *, cuda_graph: bool, io_binding: bool) -> dict[str, Any]:
    """The plain loop: one InferenceSession (default options but errors-only logging), a seeded
    input; with IO binding the input is copied to the device once and the output preallocated there
    (CUDA graphs need fixed addresses); `run_with_iobinding` returns after the device is done."""
    import numpy as np
    import onnxruntime as ort

    path = ort_fp16_file(ctx, batch) if precision == "fp16" else ctx.models.onnx(batch)
    so = ort.SessionOptions()
    so.log_severity_level = 3
    if ctx.cfg.threads:
        so.intra_op_num_threads = ctx.cfg.threads
    if device == "cuda":
        providers = [("CUDAExecutionProvider", {"device_id": "0", **({"enable_cuda_graph": "1"} if cuda_graph else {})})]
    else:
        providers = ["CPUExecutionProvider"]
    session = ort.InferenceSession(str(path), so, providers=providers)
    if device == "cuda" and session.get_providers()[0] != "CUDAExecutionProvider":  # ORT falls back silently
        raise RuntimeError(f"the plain loop's session did not get the CUDA EP (providers: {session.get_providers()})")
    inp = session.get_inputs()[0]
    x = np.random.default_rng(0).standard_normal(ctx.models.shape(batch)).astype(np.float32)
    keep = []  # OrtValues bound below must outlive the loop
    if not io_binding:
        fn = lambda: session.run(None, {inp.name: x})  # noqa: E731
    else:
        outs = session.run(None, {inp.name: x})
        binding = session.io_binding()
        x_dev = ort.OrtValue.ortvalue_from_numpy(x, device, 0)
        binding.bind_ortvalue_input(inp.name, x_dev)
        keep.append(x_dev)
        for meta, value in zip(session.get_outputs(), outs):
            y = ort.OrtValue.ortvalue_from_shape_and_type(value.shape, value.dtype.type, device, 0)
            keep.append(y)
            binding.bind_ortvalue_output(meta.name, y)
        fn = lambda: session.run_with_iobinding(binding)  # noqa: E731
    out = plain_loop(fn, ctx.cfg, batch, cuda_events=False)
    out["providers"] = session.get_providers()
    out["io_binding"] = io_binding
    out["bound_values"] = len(keep)
    return out


def ort_cell(ctx, variant: str, batch: int, precision: str) -> dict[str, Any]:
    cfg = ctx.cfg
    if variant == "cpu":
        out = beside(ort_effconv(ctx, "ort-cpu", batch, precision, False),
                     ort_reference(ctx, "cpu", batch, precision, cuda_graph=False, io_binding=False))
    else:
        graph = variant == "cuda-graph"
        out = beside(ort_effconv(ctx, cfg.ort_backend, batch, precision, graph),
                     ort_reference(ctx, cfg.device, batch, precision, cuda_graph=graph, io_binding=True))
    ctx.medians[("ort", variant, batch, precision)] = out["effconv"]["median_ms"]
    return out


def part_ort(ctx, budget: Budget) -> dict[str, Any]:
    cells = Cells()
    for batch in ctx.cfg.batches:
        for precision in ctx.cfg.precisions:
            for variant in ("io-binding", "cuda-graph", "cpu"):
                backend = "ort-cpu" if variant == "cpu" else ctx.cfg.ort_backend
                key = {"backend": backend, "variant": variant, "batch": batch, "precision": precision}
                cells.run(key, lambda: ort_cell(ctx, variant, batch, precision), budget,
                          skip=why_not(ctx.cfg, precision, graph=variant == "cuda-graph", cpu_backend=variant == "cpu"))
    return {"status": cells.status(), "cells": cells.rows}


# Per-layer -----------------------------------------------------------------------------------------
def layer_summary(report, reference: dict[str, float | None]) -> dict[str, Any]:
    lw = report.layerwise
    ratios = {name: (lw.sum_ms / ms if ms else None) for name, ms in reference.items()}
    top = sorted(lw.layers, key=lambda lt: -lt.ms)[:8]
    return {"method": lw.method, "measures": lw.measures, "layers": len(lw.layers), "sum_ms": lw.sum_ms,
            "instrumented_ms": lw.instrumented_ms, "runs": lw.runs, "end_to_end_ms": reference,
            "sum_ratio": ratios, "gap_explanation": report.gap_explanation, "notes": list(lw.notes),
            "by_type": [{"type": t.type, "ms": t.ms, "pct": t.pct, "layers": t.layers} for t in report.by_type],
            "top_layers": [{"name": lt.name, "op_type": lt.op_type, "ms": lt.ms} for lt in top]}


def layers_torch(ctx, batch: int) -> dict[str, Any]:
    from effconv.latency.measure import measure
    from effconv.latency.source import ModelInput

    m = ctx.models
    options = latency_options(ctx.cfg, backend=ctx.cfg.torch_backend, batch=batch, per_layer="torch-profiler")
    report = measure(ModelInput(m.name, None, m.build, m.shape(batch)), options)
    ref = {"eager (this run)": report.median_ms,
           "cuda-graph (torch part)": ctx.medians.get(("torch", "cuda-graph", batch, "fp32"))}
    out = layer_summary(report, ref)
    # kernel times sum to the GPU's busy time: a CUDA graph removes the launch gaps eager leaves
    out["check_against"] = "cuda-graph (torch part)" if ctx.cfg.device == "cuda" else "eager (this run)"
    return out


def layers_isolate(ctx, batch: int) -> dict[str, Any]:
    from effconv.latency.measure import measure
    from effconv.latency.source import ModelInput

    m = ctx.models
    options = latency_options(ctx.cfg, backend=ctx.cfg.ort_backend, batch=batch, per_layer="isolate")
    report = measure(ModelInput(m.name, m.onnx(batch), None, m.shape(batch)), options)
    ref = {"io-binding (this run)": report.median_ms,
           "cuda-graph (ort part)": ctx.medians.get(("ort", "cuda-graph", batch, "fp32"))}
    out = layer_summary(report, ref)
    out["check_against"] = "io-binding (this run)"
    return out


def part_layers(ctx, budget: Budget) -> dict[str, Any]:
    cells = Cells()
    for batch in ctx.cfg.layer_batches:
        cells.run({"method": "torch-profiler", "backend": ctx.cfg.torch_backend, "batch": batch, "precision": "fp32"},
                  lambda: layers_torch(ctx, batch), budget)
        cells.run({"method": "isolate", "backend": ctx.cfg.ort_backend, "batch": batch, "precision": "fp32"},
                  lambda: layers_isolate(ctx, batch), budget)
    return {"status": cells.status(), "cells": cells.rows}


# The isolated child --------------------------------------------------------------------------------
def isolation_driver(args: dict[str, Any]) -> dict[str, Any]:
    """Runs in a fresh interpreter (torch not loaded, so effconv may fork): time the ONNX file with
    effconv's public entry in its sandboxed child, then the same measurement in this process."""
    from effconv.latency.api import measure_model
    from effconv.latency.base import LatencyOptions
    from effconv.sandbox import prestart
    from effconv.sandbox.limits import Limits

    options = LatencyOptions(backend=args["backend"], batch=1, warmup_ms=args["warmup_ms"], threads=args["threads"],
                             duration_s=args["duration_s"], iterations=args["iterations"], per_layer="none")
    forkable = prestart.can_fork()  # what effconv.sandbox.parent decides by
    loaded = sorted(n for n in ("torch", "onnxruntime", "onnx", "numpy") if n in sys.modules)
    t0 = time.perf_counter()
    child = measure_model(args["onnx"], options, isolate=True, limits=Limits(timeout_s=args["timeout_s"]))
    child_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    here = measure_model(args["onnx"], options, isolate=False)
    here_s = time.perf_counter() - t0
    return {"start_method": "fork" if forkable else "spawn", "loaded_before": loaded,
            "child_wall_s": child_s, "child_median_ms": child.median_ms, "child_timer": child.timing.timer,
            "in_process_wall_s": here_s, "in_process_median_ms": here.median_ms,
            "overhead_s": child_s - here_s, "median_ratio": child.median_ms / here.median_ms}


def isolated_cell(ctx, method: str, budget: Budget) -> dict[str, Any]:
    args = {"backend": ctx.cfg.ort_backend, "onnx": str(ctx.models.onnx(1)), "warmup_ms": ctx.cfg.warmup_ms,
            "duration_s": ctx.cfg.duration_s, "iterations": ctx.cfg.iterations, "threads": ctx.cfg.threads,
            "timeout_s": max(10.0, budget.left() - 5)}
    env = {"EFFCONV_SPAWN": "1"} if method == "spawn" else {"EFFCONV_SPAWN": "0"}
    # half of what is left for the first of the two, all of it for the second
    share = Budget(time.monotonic() + (budget.left() / 2 if method == "fork" else budget.left()))
    res = run_cmd([python(), str(Path(__file__).resolve()), "--isolation-driver", json.dumps(args)], share, env=env)
    lines = [ln for ln in res["stdout"].splitlines() if ln.startswith("{")]
    if res["rc"] != 0 or not lines:
        raise RuntimeError(f"driver exit {res['rc']}: {_tail(res['stderr'], 2)}")
    out = json.loads(lines[-1])
    if "error" in out:
        raise RuntimeError(f"{out['error_type']}: {out['error']}")
    if out["start_method"] != method:
        raise RuntimeError(f"asked for {method}, effconv chose {out['start_method']} "
                           f"(loaded before the call: {', '.join(out['loaded_before']) or 'nothing'})")
    out["driver_wall_s"] = res["seconds"]
    return out


def part_isolated(ctx, budget: Budget) -> dict[str, Any]:
    ctx.models.onnx(1)
    cells = Cells()
    for method in ("fork", "spawn"):
        cells.run({"backend": ctx.cfg.ort_backend, "start_method": method, "batch": 1},
                  lambda: isolated_cell(ctx, method, budget), budget, need_s=5.0)
    return {"status": cells.status(), "cells": cells.rows}


# fp16 export parity ---------------------------------------------------------------------------------
def part_fp16_export(ctx, budget: Budget) -> dict[str, Any]:
    """`effconv export --precision fp16` (parity on ORT CPU, as effconv checks it), then the same
    file on the ONNX backend under test and the fp16 torch module on CUDA, against float32 PyTorch
    on the CPU (no TF32), with effconv's own comparison and fp16 tolerances."""
    import numpy as np

    from effconv.export.parity import compare, random_inputs, tolerances, torch_outputs
    from effconv.export.source import load_source

    m, cfg = ctx.models, ctx.cfg
    out_dir = ctx.work / "fp16-export"
    out_dir.mkdir(exist_ok=True)
    onnx_path, doc_path = out_dir / f"{m.name}.fp16.onnx", out_dir / "export.json"
    cmd = [python(), "-m", "effconv", "export", m.cli_source, "-o", str(onnx_path), "--precision", "fp16",
           "--json", str(doc_path), "--quiet"]
    res = run_cmd(cmd, Budget(time.monotonic() + budget.left() * 0.7))
    doc = json.loads(doc_path.read_text()) if doc_path.is_file() else {}
    export = {"command": " ".join(["python3", *cmd[1:]]), "rc": res["rc"], "seconds": res["seconds"],
              "passed": doc.get("passed"), "error": doc.get("error") or (_tail(res["stderr"], 2) if res["rc"] else None),
              "parity": doc.get("parity")}
    if res["rc"] != 0 or not onnx_path.is_file():
        return {"status": f"failed: effconv export exit {res['rc']}: {export['error']}", "export": export}
    rtol, atol = tolerances("fp16")
    src = load_source(m.cli_source, seed=0)  # the export's own fresh weights (same spec, same seed)
    x = random_inputs(cfg.parity_images, m.shape(1)[1:], seed=1)
    ref = torch_outputs(src.model, x)
    checks = [{"runtime": f"{cfg.ort_backend} (the exported fp16 file)",
               **_asdict(compare("random", ref, _ort_outputs(onnx_path, x, cfg.device), rtol, atol))}]
    if cfg.device == "cuda":
        import torch

        half = copy.deepcopy(src.model).to(device="cuda", dtype=torch.float16)
        with torch.inference_mode():
            y = half(torch.from_numpy(x).to("cuda", torch.float16)).float().cpu().numpy()
        checks.append({"runtime": f"torch {torch.__version__} CUDA, module in fp16", **_asdict(compare("random", ref, y, rtol, atol))})
    else:
        checks.append({"runtime": "torch fp16 on CUDA", "status": "skipped: fp16 needs CUDA (dry run on CPU)"})
    for c in checks:
        if "outside_tolerance" in c:
            c["passed"] = c["outside_tolerance"] == 0 and c["images"] > 0
    failed = [c for c in checks if c.get("passed") is False]
    status = "ok" if not failed else f"failed: fp16 parity beyond rtol {rtol:g} on {failed[0]['runtime']}"
    return {"status": status, "export": export, "rtol": rtol, "atol": atol, "reference": "float32 PyTorch on the CPU",
            "checks": checks, "images": int(np.asarray(x).shape[0])}


def _asdict(obj) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(obj)


def _ort_outputs(path: Path, x, device: str):
    import numpy as np
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    providers = ["CUDAExecutionProvider"] if device == "cuda" else ["CPUExecutionProvider"]
    session = ort.InferenceSession(str(path), so, providers=providers)
    if device == "cuda" and "CUDAExecutionProvider" not in session.get_providers():
        raise RuntimeError(f"the CUDA EP did not load (providers: {session.get_providers()})")
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: x[i:i + 1]})[0] for i in range(len(x))]).astype(np.float32)


# Subprocess parts -----------------------------------------------------------------------------------
def part_backends(ctx, budget: Budget) -> dict[str, Any]:
    res = run_cmd([python(), "-m", "effconv", "backends", "--json"], budget)
    if res["rc"] != 0:
        return {"status": f"failed: effconv backends exit {res['rc']}: {_tail(res['stderr'], 1)}"}
    rows = json.loads(res["stdout"])
    return {"status": "ok", "seconds_cli": res["seconds"], "backends": rows,
            "available": [r["name"] for r in rows if r["available"]]}


def part_train(ctx, budget: Budget) -> dict[str, Any]:
    cmd = [python(), str(ROOT / "benchmarks" / "train_speed.py"), *ctx.cfg.train_args]
    res = run_cmd(cmd, budget)
    text = res["stdout"]
    if res["rc"] != 0:
        return {"status": f"failed: train_speed.py exit {res['rc']}: {_tail(res['stderr'], 1)}", "stdout": text[-2000:]}

    def grab(pattern: str) -> float | None:
        found = re.search(pattern, text)
        return float(found.group(1)) if found else None

    return {"status": "ok", "command": " ".join(["python3", *cmd[1:]]), "seconds_cli": res["seconds"],
            "plain_steps_per_s": grab(r"plain PyTorch loop:\s+([\d.]+) steps/s"),
            "effconv_steps_per_s": grab(r"effconv loop:\s+([\d.]+) steps/s"),
            "overhead_pct": grab(r"overhead:\s+([-+\d.]+)%"),
            "output": text.strip().splitlines(),
            "recipe_note": "train_speed.py builds TrainConfig(batch, precision, steps): Adam as the recipe, lr at "
                           "TrainConfig's default (1e-3, the recipe's is 2e-4; a step's cost does not depend on it)"}


def gpu_test_files() -> list[str]:
    found = []
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        text = path.read_text(encoding="utf-8", errors="replace")
        if re.search(r"mark\.gpu\b", text):
            found.append(str(path.relative_to(ROOT)))
    return found


def part_pytest(ctx, budget: Budget) -> dict[str, Any]:
    files = gpu_test_files() or ["tests"]
    cmd = [python(), "-m", "pytest", "-m", "gpu", "-q", "-rs", "-p", "no:cacheprovider", *files]
    res = run_cmd(cmd, budget)
    text = res["stdout"] + res["stderr"]
    counts = {k: int(n) for n, k in re.findall(r"(\d+) (passed|failed|skipped|error|errors|deselected)", text)}
    summary = _tail(res["stdout"], 1)
    skips = re.findall(r"SKIPPED \[\d+\] (.*)", text)
    out = {"command": " ".join(["python3", *cmd[1:]]), "rc": res["rc"], "counts": counts, "summary": summary,
           "skip_reasons": skips[:10], "seconds_cli": res["seconds"]}
    if res["rc"] not in (0, 5):
        failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", text, re.M)
        out["status"] = f"failed: pytest exit {res['rc']}: {summary} ({', '.join(failed[:3])})"
        out["tail"] = text[-3000:]
    elif counts.get("passed", 0) == 0:
        reason = skips[0] if skips else "no GPU test ran"
        out["status"] = f"skipped: no GPU test ran here ({summary}; first reason: {reason[:160]})"
    else:
        out["status"] = "ok"
    return out


# Environment ------------------------------------------------------------------------------------------
def environment(cfg: Config) -> dict[str, Any]:
    env: dict[str, Any] = {"date_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                           "dry_run": cfg.dry_run}
    try:
        from effconv.latency.base import host_environment

        env.update(host_environment())
    except Exception as exc:  # noqa: BLE001
        env["host_error"] = one_line(exc)
    try:
        import torch

        env["torch"] = torch.__version__
        env["torch_cuda"] = torch.version.cuda
        env["cuda_available"] = torch.cuda.is_available()
        if torch.cuda.is_available():
            env["device"] = torch.cuda.get_device_name(0)
            env["capability"] = ".".join(map(str, torch.cuda.get_device_capability(0)))
            env["cudnn"] = torch.backends.cudnn.version()
            env["gpu_memory_gib"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
    except Exception as exc:  # noqa: BLE001
        env["torch_error"] = one_line(exc)
    try:
        import onnxruntime as ort

        env["onnxruntime"] = ort.__version__
        env["onnxruntime_file"] = str(Path(ort.__file__).parent)
        env["ort_providers"] = ort.get_available_providers()
    except Exception as exc:  # noqa: BLE001
        env["onnxruntime_error"] = one_line(exc)
    try:
        smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem,"
                              "temperature.gpu,power.draw,persistence_mode", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=15)
        if smi.returncode == 0:
            fields = [f.strip() for f in smi.stdout.strip().splitlines()[0].split(",")]
            env["nvidia_smi"] = dict(zip(("name", "driver", "sm_clock", "max_sm_clock", "mem_clock", "temperature",
                                          "power", "persistence"), fields))
            env["driver"] = env["nvidia_smi"]["driver"]
    except (OSError, subprocess.SubprocessError, IndexError):
        pass
    if "driver" not in env:  # no nvidia-smi: the kernel module says its version
        try:
            text = Path("/proc/driver/nvidia/version").read_text()
            found = re.search(r"NVRM version:.*?\s(\d+\.\d+(?:\.\d+)?)\s", text)
            if found:
                env["driver"] = found.group(1)
        except OSError:
            pass
    env.setdefault("device", "CPU (dry run)" if cfg.dry_run else "no CUDA device")
    env.setdefault("driver", "none (no nvidia-smi)")
    return env


def device_slug(env: dict[str, Any], cfg: Config) -> str:
    if cfg.dry_run:
        return "cpu-dry-run"
    return re.sub(r"[^a-z0-9]+", "-", str(env.get("device", "unknown")).lower()).strip("-") or "unknown"


# Checks --------------------------------------------------------------------------------------------------
def checks(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's "must show", judged on what was measured."""
    out = []
    parts = doc["parts"]
    for part in ("torch", "ort"):
        for row in parts.get(part, {}).get("cells", []):
            if row.get("variant") == "cuda-graph" and row["status"] == "ok":
                r = row["ratio"]
                out.append({"check": f"{part} CUDA graph b{row['batch']} {row['precision']}: effconv / plain loop",
                            "value": r, "bound": f"1 +- {GRAPH_TOLERANCE:g}",
                            "result": "pass" if abs(r - 1) <= GRAPH_TOLERANCE else "FAIL"})
    for row in parts.get("per-layer", {}).get("cells", []):
        if row["status"] == "ok":
            r = row["sum_ratio"].get(row["check_against"])
            out.append({"check": f"{row['method']} b{row['batch']}: per-layer sum / {row['check_against']} median",
                        "value": r, "bound": f"1 +- {LAYER_SUM_TOLERANCE:g}",
                        "result": "n/a" if r is None else ("pass" if abs(r - 1) <= LAYER_SUM_TOLERANCE else "FAIL")})
    fp16 = parts.get("fp16-export", {})
    if "export" in fp16:
        out.append({"check": "effconv export --precision fp16 (its ORT CPU parity)", "value": fp16["export"]["passed"],
                    "bound": "passed", "result": "pass" if fp16["export"]["passed"] else "FAIL"})
    for c in fp16.get("checks", []):
        if "passed" in c:
            out.append({"check": f"fp16 parity on {c['runtime']}", "value": c["max_rel_err"],
                        "bound": f"rtol {fp16['rtol']:g}", "result": "pass" if c["passed"] else "FAIL"})
    if doc["dry_run"]:
        for c in out:
            c["result"] += " (dry run: CPU, informational)"
    return out


# Writing ------------------------------------------------------------------------------------------------
def fmt(v, digits: int = 3) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if v != 0 and abs(v) < 10 ** -digits:
            return f"{v:.2e}"
        return f"{v:.{digits}f}" if abs(v) < 1e4 else f"{v:.3g}"
    return str(v)


def headline(name: str, part: dict[str, Any]) -> str:
    """One short figure per part for the last table."""
    try:
        if name == "backends":
            return "available: " + ", ".join(part.get("available", [])) or "none"
        if name in ("torch", "ort", "torch-compile"):
            ok = [r for r in part.get("cells", []) if r["status"] == "ok"]
            pick = next((r for r in ok if r["variant"] == "cuda-graph"), ok[0] if ok else None)
            if pick is None:
                return ""
            return (f"{pick['variant']} b{pick['batch']} {pick['precision']}: {pick['effconv']['median_ms']:.3f} ms, "
                    f"plain {pick['reference']['median_ms']:.3f} ms ({pick['ratio']:.2f}x); {len(ok)} cells ok")
        if name == "per-layer":
            bits = [f"{r['method']} b{r['batch']} {r['sum_ratio'][r['check_against']]:.2f}x"
                    for r in part.get("cells", []) if r["status"] == "ok" and r["sum_ratio"].get(r["check_against"])]
            return "sum / e2e: " + ", ".join(bits)
        if name == "isolated":
            return ", ".join(f"{r['start_method']} +{r['overhead_s']:.2f} s ({r['median_ratio']:.2f}x median)"
                             for r in part.get("cells", []) if r["status"] == "ok")
        if name == "fp16-export":
            return ", ".join(f"{c['runtime'].split(' (')[0]} rel {c['max_rel_err']:.1e}"
                             for c in part.get("checks", []) if "max_rel_err" in c)
        if name == "train-speed":
            return (f"plain {fmt(part.get('plain_steps_per_s'), 1)} steps/s, effconv "
                    f"{fmt(part.get('effconv_steps_per_s'), 1)} ({fmt(part.get('overhead_pct'), 1)}%)")
        if name == "pytest-gpu":
            return part.get("summary", "")
    except (KeyError, TypeError, ValueError, IndexError):
        return ""
    return ""


def short_table(doc: dict[str, Any]) -> str:
    rows = [("part", "status", "s", "figure")]
    for name, part in doc["parts"].items():
        status = part["status"]
        rows.append((name, status if len(status) <= 60 else status[:57] + "...", fmt(part.get("seconds"), 1),
                     headline(name, part)[:110]))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]}" for r in rows]
    lines.insert(1, "-" * min(160, max(len(ln) for ln in lines)))
    head = (f"gpu_check {'DRY RUN (CPU, not GPU numbers)' if doc['dry_run'] else ''} on {doc['environment'].get('device')}, "
            f"driver {doc['environment'].get('driver')}, {doc['environment']['date_utc']}, {fmt(doc.get('total_s'), 1)} s")
    fails = [c for c in doc.get("checks", []) if c["result"].startswith("FAIL")]
    tail = f"checks: {len(doc.get('checks', [])) - len(fails)} pass, {len(fails)} FAIL" + (
        " (" + "; ".join(c["check"] for c in fails[:3]) + ")" if fails else "")
    return "\n".join([head, *lines, tail])


def markdown(doc: dict[str, Any]) -> str:
    env = doc["environment"]
    out = [f"# GPU check: {env.get('device')}, {env['date_utc'][:10]}", ""]
    if doc["dry_run"]:
        out += ["**DRY RUN on CPU**: torch-cpu and ort-cpu stood in for torch-cuda and ort-cuda, tiny sizes. "
                "Not GPU numbers; this file only proves the script runs end to end.", ""]
    out += [f"Written by `benchmarks/gpu_check.py` ({SCHEMA}) in {fmt(doc.get('total_s'), 1)} s. "
            f"Device {env.get('device')}, driver {env.get('driver')}, torch {env.get('torch')} "
            f"(CUDA {env.get('torch_cuda')}, cuDNN {env.get('cudnn', '-')}), onnxruntime {env.get('onnxruntime')} "
            f"{env.get('ort_providers')}, host {env.get('host_cpu')} x{env.get('host_cores')}.", "",
            "| Part | Status | s | Figure |", "|---|---|---:|---|"]
    for name, part in doc["parts"].items():
        out.append(f"| {name} | {part['status']} | {fmt(part.get('seconds'), 1)} | {headline(name, part)} |")
    out += ["", "## Checks", "", "| Check | Value | Bound | Result |", "|---|---:|---|---|"]
    out += [f"| {c['check']} | {fmt(c['value'])} | {c['bound']} | {c['result']} |" for c in doc.get("checks", [])]
    cells = [r for p in ("torch", "ort", "torch-compile") for r in doc["parts"].get(p, {}).get("cells", [])]
    out += ["", "## Latency: effconv beside a plain loop in the same process (median ms)", "",
            "| Backend | Variant | Batch | Precision | effconv | plain loop | ratio | min ratio | effconv cv | plain pipelined "
            "| Status |", "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in cells:
        e, p = r.get("effconv", {}), r.get("reference", {})
        out.append(f"| {r['backend']} | {r['variant']} | {r['batch']} | {r['precision']} | {fmt(e.get('median_ms'))} | "
                   f"{fmt(p.get('median_ms'))} | {fmt(r.get('ratio'))} | {fmt(r.get('min_ratio'))} | {fmt(e.get('cv'))} | "
                   f"{fmt(p.get('pipelined_ms'))} | {r['status']} |")
    out += ["", "## Per-layer latency against end to end", "",
            "| Method | Backend | Batch | Layers | Sum ms | End-to-end ms | Ratio | Status |", "|---|---|---:|---:|---:|---|---|---|"]
    for r in doc["parts"].get("per-layer", {}).get("cells", []):
        e2e = ", ".join(f"{k} {fmt(v)}" for k, v in r.get("end_to_end_ms", {}).items())
        ratio = ", ".join(f"{fmt(v)}" for v in r.get("sum_ratio", {}).values())
        out.append(f"| {r['method']} | {r['backend']} | {r['batch']} | {fmt(r.get('layers'))} | {fmt(r.get('sum_ms'))} | "
                   f"{e2e} | {ratio} | {r['status']} |")
    out += ["", "## Isolated child", "", "| Start | Child wall s | In-process wall s | Overhead s | Median ratio | Status |",
            "|---|---:|---:|---:|---:|---|"]
    for r in doc["parts"].get("isolated", {}).get("cells", []):
        out.append(f"| {r['start_method']} | {fmt(r.get('child_wall_s'))} | {fmt(r.get('in_process_wall_s'))} | "
                   f"{fmt(r.get('overhead_s'))} | {fmt(r.get('median_ratio'))} | {r['status']} |")
    fp16 = doc["parts"].get("fp16-export", {})
    out += ["", "## fp16 export parity", "", f"`{fp16.get('export', {}).get('command', '-')}`: exit "
            f"{fp16.get('export', {}).get('rc', '-')}, passed {fmt(fp16.get('export', {}).get('passed'))}.", ""]
    for c in fp16.get("checks", []):
        out.append(f"- {c['runtime']}: " + (c["status"] if "status" in c else
                   f"max rel err {c['max_rel_err']:.2e}, max abs err {c['max_abs_err']:.2e}, "
                   f"top-1 agreement {c['top1_agreement']:.0%}, passed {fmt(c['passed'])}"))
    tr = doc["parts"].get("train-speed", {})
    out += ["", "## Training speed", "", *[f"    {ln}" for ln in tr.get("output", [])], ""]
    if tr.get("recipe_note"):
        out.append(tr["recipe_note"])
    py = doc["parts"].get("pytest-gpu", {})
    out += ["", "## GPU tests", "", f"`{py.get('command', '-')}`: {py.get('summary', '-')}", ""]
    out += [f"- skipped: {s}" for s in py.get("skip_reasons", [])]
    be = doc["parts"].get("backends", {})
    out += ["", "## Backends", "", "| Backend | Available | Version | Why not |", "|---|---|---|---|"]
    out += [f"| {r['name']} | {fmt(r['available'])} | {r['version'] or '-'} | {r['reason'] or ''} |"
            for r in be.get("backends", [])]
    if "ort-tensorrt" in be.get("available", []):
        out += ["", "ort-tensorrt is listed because the build names TensorrtExecutionProvider; TensorRT's libraries "
                "are not on the image, so it cannot run there (no TensorRT number is reported)."]
    return "\n".join(out) + "\n"


class Writer:
    def __init__(self, out_dir: Path, doc: dict[str, Any], stem: str) -> None:
        self.json_path = out_dir / f"{stem}.json"
        self.md_path = out_dir / f"{stem}.md"
        self.doc = doc
        self.lock = threading.Lock()
        out_dir.mkdir(parents=True, exist_ok=True)

    def write(self) -> None:
        with self.lock:
            self.doc["checks"] = checks(self.doc)
            for path, text in ((self.json_path, json.dumps(self.doc, indent=1, default=str)),
                               (self.md_path, markdown(self.doc))):
                tmp = path.with_suffix(path.suffix + ".tmp")
                tmp.write_text(text, encoding="utf-8")
                os.replace(tmp, path)


# The run -------------------------------------------------------------------------------------------------
PARTS: list[tuple[str, Callable]] = [
    ("backends", part_backends), ("torch", part_torch), ("ort", part_ort), ("per-layer", part_layers),
    ("isolated", part_isolated), ("fp16-export", part_fp16_export), ("train-speed", part_train),
    ("pytest-gpu", part_pytest), ("torch-compile", part_compile),
]


@dataclass
class Context:
    cfg: Config
    work: Path
    models: Models
    medians: dict[tuple, float] = field(default_factory=dict)
    files: dict[tuple, Path] = field(default_factory=dict)


def _on_alarm(signum, frame):
    raise PartTimeout("the part's time cap was reached")


def run_part(name: str, fn: Callable, ctx: Context, doc: dict[str, Any], end: float) -> None:
    left = end - RESERVE_S - time.monotonic()
    cap = min(ctx.cfg.caps[name], left)
    t0 = time.monotonic()
    doc["parts"][name] = {"status": "running", "cap_s": round(max(cap, 0), 1)}
    if left < 3:
        doc["parts"][name] = {"status": "skipped: no time left in the total budget", "seconds": 0.0, "cap_s": 0.0}
        return
    print(f"[gpu_check] {name}: up to {cap:.0f} s", file=sys.stderr, flush=True)
    signal.setitimer(signal.ITIMER_REAL, cap)
    try:
        result = fn(ctx, Budget(t0 + cap))
    except PartTimeout as exc:
        result = {"status": f"timeout: {one_line(exc)} (cap {cap:.0f} s)", "error_type": "PartTimeout"}
    except Skip as exc:
        result = {"status": f"skipped: {exc}"}
    except Exception as exc:  # noqa: BLE001 - recorded; the next part runs
        result = {"status": f"failed: {type(exc).__name__}: {one_line(exc)}", "error_type": type(exc).__name__,
                  "traceback": traceback.format_exc(limit=6)[-2000:]}
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    result["seconds"] = round(time.monotonic() - t0, 2)
    result["cap_s"] = round(cap, 1)
    doc["parts"][name] = result
    print(f"[gpu_check] {name}: {result['status'][:120]} ({result['seconds']:.1f} s)", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dry-run", action="store_true", help="CPU, tiny sizes, stand-in backends (< 2 minutes)")
    ap.add_argument("--out", type=Path, default=ROOT / "profiles" / "gpu", help="folder for <device>-<date>.json/.md")
    ap.add_argument("--parts", default=None, help="comma-separated subset of: " + ", ".join(n for n, _ in PARTS))
    ap.add_argument("--total-s", type=float, default=None, help="total time budget, seconds (default 510; dry run 115); never more than 540")
    ap.add_argument("--isolation-driver", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.isolation_driver is not None:
        try:
            print(json.dumps(isolation_driver(json.loads(args.isolation_driver))))
        except Exception as exc:  # noqa: BLE001 - sent to the parent as data
            print(json.dumps({"error": one_line(exc), "error_type": type(exc).__name__}))
        return 0
    cfg = DRY if args.dry_run else GPU
    total = min(args.total_s or cfg.total_s, MAX_TOTAL_S)
    start = time.monotonic()
    end = start + total
    wanted = [n for n, _ in PARTS] if args.parts is None else [p.strip() for p in args.parts.split(",")]
    unknown = set(wanted) - {n for n, _ in PARTS}
    if unknown:
        ap.error(f"unknown part(s): {', '.join(sorted(unknown))}")
    os.environ.setdefault("PYTHONPATH", str(ROOT))
    if str(ROOT) not in os.environ["PYTHONPATH"].split(os.pathsep):
        os.environ["PYTHONPATH"] = str(ROOT) + os.pathsep + os.environ["PYTHONPATH"]
    if not cfg.dry_run:
        import torch  # noqa: F401 - before onnxruntime: its CUDA and cuDNN libraries load first

        if not torch.cuda.is_available():
            print("gpu_check: no CUDA device visible to torch; use --dry-run on a CPU machine", file=sys.stderr)
            return 2
    env = environment(cfg)
    doc: dict[str, Any] = {"schema": SCHEMA, "dry_run": cfg.dry_run, "environment": env, "total_budget_s": total,
                           "config": {k: v for k, v in cfg.__dict__.items() if k != "caps"} | {"caps": cfg.caps},
                           "parts": {}}
    stamp = env["date_utc"][:10]
    writer = Writer(args.out, doc, f"{device_slug(env, cfg)}-{stamp}")
    signal.signal(signal.SIGALRM, _on_alarm)
    done = threading.Event()

    def watchdog() -> None:  # a native call that ignores SIGALRM cannot hold the run past the total
        if done.wait(max(0.0, end - time.monotonic())):
            return
        if _CHILD is not None:
            _kill_group(_CHILD)
        for part in doc["parts"].values():
            if part.get("status") == "running":
                part["status"] = "timeout: killed by the total-time watchdog"
        doc["total_s"] = round(time.monotonic() - start, 2)
        writer.write()
        print(short_table(doc), flush=True)
        os._exit(3)

    threading.Thread(target=watchdog, daemon=True).start()
    with tempfile.TemporaryDirectory(prefix="effconv-gpu-check-") as tmp:
        ctx = Context(cfg, Path(tmp), Models(cfg, Path(tmp)))
        for name, fn in PARTS:
            if name in wanted:
                run_part(name, fn, ctx, doc, end)
                doc["total_s"] = round(time.monotonic() - start, 2)
                writer.write()
    done.set()
    doc["total_s"] = round(time.monotonic() - start, 2)
    writer.write()
    print(f"[gpu_check] wrote {writer.json_path} and {writer.md_path.name}", file=sys.stderr)
    print(short_table(doc), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
