"""Fidelity of effconv's latency numbers against each runtime's own tool, same file, same run.

- openvino: effconv's median (OpenVINORunner through base.time_runner, the loop every backend
  uses: one request, start_async + wait) against OpenVINO's own `benchmark_app -hint latency` on
  the same ONNX file with the same request pattern (`-api async`: with the latency hint one request
  is in flight), fp32 forced on both (`-infer_precision f32`), and bf16 on both (effconv
  --precision bf16; benchmark_app's own default on a CPU with bf16, which is why effconv never
  leaves it to the runtime). benchmark_app's default API under the latency hint is sync (`infer()`
  on the caller's thread); that row is printed too;
- ort-cpu: effconv's median against a plain `InferenceSession.run` loop (perf_counter per run);
- per layer: the openvino-profiler counter sum against effconv's end-to-end median.

The machine is shared, so each pair is measured back to back, --rounds times (a change of load
between rounds then hits both sides of a pair alike); printed: the median of each side's round
medians, and the ratio (effconv / baseline) as the median of the per-round ratios. Threads: each runtime's default
on both sides. Usage: python benchmarks/openvino_fidelity.py [MODEL ...] [--seconds S]
(models: zoo names or ONNX files; default mobilenet_v1_cifar mobilenet_v1).
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from effconv.latency.base import LatencyOptions, cpu_name, time_runner
from effconv.latency.source import model_input

ROUNDS = 3  # default --rounds


def effconv_openvino(path: Path, precision: str, seconds: float) -> float:
    from effconv.latency.backends.openvino import OpenVINORunner

    options = LatencyOptions(backend="openvino", precision=precision, warmup_ms=500, duration_s=seconds, iterations=50)
    runner = OpenVINORunner(path, options)
    runner.prepare()
    return time_runner(runner, options).stats.median_ms


def benchmark_app(path: Path, precision: str | None, seconds: float, api: str | None = "async") -> float:
    """OpenVINO's own benchmark_app, latency hint; its reported median (ms). `api` "async": one
    request in flight, started and waited for (what effconv's loop does); None: benchmark_app's
    default, which with the latency hint is the sync API (`infer()`)."""
    exe = shutil.which("benchmark_app")
    cmd = [exe] if exe else [sys.executable, "-m", "openvino.tools.benchmark.main"]
    cmd += ["-m", str(path), "-d", "CPU", "-hint", "latency", "-t", str(max(1, round(seconds)))]
    if precision:
        cmd += ["-infer_precision", precision]
    if api:
        cmd += ["-api", api]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    match = re.search(r"Median:\s+([\d.]+)\s*(ms|us)", out)
    if match is None:
        raise RuntimeError("benchmark_app printed no median:\n" + out[-2000:])
    return float(match.group(1)) / (1e3 if match.group(2) == "us" else 1.0)  # it prints us below 1 ms


def effconv_ort(path: Path, seconds: float) -> float:
    from effconv.latency.backends.ort import ort_cpu

    options = LatencyOptions(backend="ort-cpu", warmup_ms=500, duration_s=seconds, iterations=50)
    runner = ort_cpu(path, options)
    runner.prepare()
    return time_runner(runner, options).stats.median_ms


def plain_ort(path: Path, seconds: float) -> float:
    """The baseline: a default InferenceSession, `run` in a perf_counter loop."""
    import numpy as np
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    feeds = {inp.name: np.random.default_rng(0).standard_normal([d if isinstance(d, int) else 1 for d in inp.shape])
             .astype(np.float32)}
    end = time.perf_counter() + 0.5
    while time.perf_counter() < end:
        sess.run(None, feeds)
    samples, end = [], time.perf_counter() + seconds
    while time.perf_counter() < end or len(samples) < 50:
        t0 = time.perf_counter()
        sess.run(None, feeds)
        samples.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(samples)


def counter_ratio(path: Path, seconds: float) -> tuple[float, float]:
    """(openvino-profiler counter sum, effconv end-to-end median), fp32, same compile settings."""
    from effconv.latency.layerwise import LayerwiseContext, measure_layers
    from effconv.latency.onnxgraph import load_onnx_graph

    options = LatencyOptions(backend="openvino", warmup_ms=500, duration_s=seconds, iterations=50)
    median = effconv_openvino(path, "fp32", seconds)
    lw = measure_layers("openvino-profiler", LayerwiseContext("openvino", options, path, load_onnx_graph(path, 1)))
    return lw.sum_ms, median


def pairs(path: Path, seconds: float, n_rounds: int = ROUNDS) -> dict[str, tuple[float, float, float]]:
    bf16 = _has_bf16()  # the CPU's OPTIMIZATION_CAPABILITIES (no AVX512-BF16/AMX: no bf16 pair)
    rounds: dict[str, list[tuple[float, float]]] = {k: [] for k in BASELINES if bf16 or "bf16" not in k}
    for _ in range(n_rounds):  # interleaved: a load spike hits both sides of a pair
        ours = effconv_openvino(path, "fp32", seconds)
        rounds["openvino fp32"].append((ours, benchmark_app(path, "f32", seconds)))
        rounds["openvino fp32 vs sync"].append((ours, benchmark_app(path, "f32", seconds, api=None)))
        if bf16:
            rounds["openvino bf16"].append((effconv_openvino(path, "bf16", seconds), benchmark_app(path, None, seconds)))
        rounds["ort-cpu"].append((effconv_ort(path, seconds), plain_ort(path, seconds)))
        rounds["openvino per-layer sum"].append(counter_ratio(path, seconds))
    return {k: (statistics.median(a for a, _ in v), statistics.median(b for _, b in v),
                statistics.median(a / b for a, b in v)) for k, v in rounds.items()}


def _has_bf16() -> bool:
    import openvino

    return "BF16" in openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


BASELINES = {"openvino fp32": "benchmark_app -hint latency -api async -infer_precision f32",
             "openvino fp32 vs sync": "benchmark_app -hint latency -infer_precision f32 (its default sync API)",
             "openvino bf16": "benchmark_app -hint latency -api async (its default precision: bf16 here)",
             "ort-cpu": "plain InferenceSession.run loop",
             "openvino per-layer sum": "effconv openvino fp32 end-to-end median"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=["mobilenet_v1_cifar", "mobilenet_v1"])
    parser.add_argument("--seconds", type=float, default=3.0, help="timed seconds per measurement")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="back-to-back rounds per pair")
    args = parser.parse_args()
    import openvino
    import onnxruntime

    print(f"machine: {cpu_name()}; openvino {openvino.__version__}; onnxruntime {onnxruntime.__version__}; "
          f"{args.rounds} interleaved rounds of {args.seconds:g} s each; ms: median of the round medians, "
          f"ratio: median of the per-round ratios; "
          f"bf16 pair: {'yes' if _has_bf16() else 'no (the CPU device reports no BF16 capability)'}\n")
    print("| model | effconv | baseline | effconv ms | baseline ms | ratio |")
    print("|---|---|---|---:|---:|---:|")
    for source in args.models:
        with model_input(source, 1) as model:
            for key, (ours, base, ratio) in pairs(Path(model.onnx_path), args.seconds, args.rounds).items():
                what = "openvino-profiler counter sum" if key.endswith("sum") else key.replace(" vs sync", "")
                print(f"| {source} | {what} | {BASELINES[key]} | {ours:.3f} | {base:.3f} | {ratio:.3f} |", flush=True)


if __name__ == "__main__":
    main()
