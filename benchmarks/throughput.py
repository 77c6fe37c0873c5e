"""effconv's throughput mode against each runtime's own way of loading the machine, same file, same run.

- openvino: `effconv latency --mode throughput` (OpenVINOLoadRunner through throughput.time_load:
  an AsyncInferQueue under the THROUGHPUT hint, the hint's optimal number of requests) against
  OpenVINO's own `benchmark_app -hint throughput` (the same hint, the same number of requests, its
  async API), fp32 forced on both (`-infer_precision f32`: benchmark_app's default on a CPU with
  bf16 would be bf16);
- ort-cpu: effconv's throughput mode (N sessions on N threads, --threads split between them)
  against a plain loop: N InferenceSessions with the same threads each, `run` in a loop on N
  Python threads for the same seconds, completions counted.

Printed: inferences/s and the median latency at that load, each side, and their ratio (effconv /
baseline). The machine is shared, so each pair is measured interleaved, ROUNDS times, and the
median of the rounds is printed; the load average before and after is printed too.
Usage: python benchmarks/throughput.py [MODEL ...] [--seconds S] [--streams N]
(models: zoo names or ONNX files; default mobilenet_v1, MobileNet v1 at 224 x 224, batch 1).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from effconv.latency.base import LatencyOptions, cpu_name
from effconv.latency.source import model_input
from effconv.latency.throughput import available_cpus, time_load

ROUNDS = 3


def effconv_load(backend: str, path: Path, seconds: float, streams: int | None) -> tuple[float, float, int]:
    """(inferences/s, median latency ms, requests in flight) of effconv's throughput mode."""
    options = LatencyOptions(backend=backend, mode="throughput", streams=streams, warmup_ms=500,
                             duration_s=seconds, iterations=50, per_layer="none")
    if backend == "openvino":
        from effconv.latency.backends.openvino import openvino_load as factory
    else:
        from effconv.latency.backends.ort import ort_cpu_load as factory
    runner = factory(path, options)
    runner.prepare()
    timing = time_load(runner, options)
    return timing.load.inferences_per_s, timing.stats.median_ms, timing.load.streams


def benchmark_app(path: Path, seconds: float, streams: int | None) -> tuple[float, float, int]:
    """OpenVINO's benchmark_app, throughput hint, f32: (its FPS, its median ms, its requests)."""
    exe = shutil.which("benchmark_app")
    cmd = [exe] if exe else [sys.executable, "-m", "openvino.tools.benchmark.main"]
    cmd += ["-m", str(path), "-d", "CPU", "-hint", "throughput", "-infer_precision", "f32",
            "-t", str(max(1, round(seconds)))]
    if streams:
        cmd += ["-nstreams", str(streams), "-nireq", str(streams)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    fps = re.search(r"Throughput:\s+([\d.]+)\s*FPS", out)
    median = re.search(r"Median:\s+([\d.]+)\s*(ms|us)", out)
    nireq = re.search(r"(\d+) inference requests", out)
    if not (fps and median and nireq):
        raise RuntimeError("benchmark_app printed no throughput, median or request count:\n" + out[-2000:])
    return (float(fps.group(1)), float(median.group(1)) / (1e3 if median.group(2) == "us" else 1.0),
            int(nireq.group(1)))


def plain_threads(path: Path, seconds: float, streams: int | None) -> tuple[float, float, int]:
    """The baseline for ort-cpu: N sessions (intra-op threads = CPUs // N, as effconv splits them),
    each `run` in a loop on its own thread; completions in the timed seconds / seconds."""
    import numpy as np
    import onnxruntime as ort

    n = streams or available_cpus()
    so = ort.SessionOptions()
    so.intra_op_num_threads = max(1, available_cpus() // n)
    so.inter_op_num_threads = 1
    sessions = [ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"]) for _ in range(n)]
    inp = sessions[0].get_inputs()[0]
    feeds = {inp.name: np.random.default_rng(0).standard_normal([d if isinstance(d, int) else 1 for d in inp.shape])
             .astype(np.float32)}
    start = time.perf_counter() + 0.5  # warm-up: 0.5 s, as effconv's
    stop = start + seconds
    samples: list[list[float]] = [[] for _ in range(n)]

    def loop(i: int) -> None:
        while True:
            t0 = time.perf_counter()
            sessions[i].run(None, feeds)
            t1 = time.perf_counter()
            if t1 > stop:
                return
            if t0 >= start:
                samples[i].append((t1 - t0) * 1e3)

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [s for per in samples for s in per]
    return len(every) / seconds, statistics.median(every), n


PAIRS = {"openvino": ("effconv openvino --mode throughput", "benchmark_app -hint throughput -infer_precision f32",
                      lambda p, s, n: effconv_load("openvino", p, s, n), benchmark_app),
         "ort-cpu": ("effconv ort-cpu --mode throughput", "plain threaded InferenceSession loop",
                     lambda p, s, n: effconv_load("ort-cpu", p, s, n), plain_threads)}


def rounds(path: Path, seconds: float, streams: int | None) -> dict[str, list[tuple]]:
    found: dict[str, list[tuple]] = {k: [] for k in PAIRS}
    for _ in range(ROUNDS):  # interleaved: a load spike hits both sides of a pair
        for key, (_, _, ours, base) in PAIRS.items():
            found[key].append((ours(path, seconds, streams), base(path, seconds, streams)))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=["mobilenet_v1"])
    parser.add_argument("--seconds", type=float, default=3.0, help="timed seconds per measurement")
    parser.add_argument("--streams", type=int, default=None, help="requests in flight (default: each side's own)")
    args = parser.parse_args()
    import openvino
    import onnxruntime

    print(f"machine: {cpu_name()}, {available_cpus()} CPUs usable, load average {os.getloadavg()[0]:.2f} at start; "
          f"openvino {openvino.__version__}; onnxruntime {onnxruntime.__version__}; {ROUNDS} interleaved rounds of "
          f"{args.seconds:g} s each, median of the rounds; batch 1\n")
    print("| model | effconv | baseline | requests in flight | effconv inf/s | baseline inf/s | ratio | "
          "effconv median ms | baseline median ms |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    for source in args.models:
        with model_input(source, 1) as model:
            for key, pairs in rounds(Path(model.onnx_path), args.seconds, args.streams).items():
                ours_name, base_name = PAIRS[key][:2]
                ours = [p[0] for p in pairs]
                base = [p[1] for p in pairs]
                fps, fps_b = statistics.median(o[0] for o in ours), statistics.median(b[0] for b in base)
                med, med_b = statistics.median(o[1] for o in ours), statistics.median(b[1] for b in base)
                n = f"{ours[0][2]} / {base[0][2]}"
                print(f"| {source} | {ours_name} | {base_name} | {n} | {fps:.1f} | {fps_b:.1f} | {fps / fps_b:.3f} | "
                      f"{med:.3f} | {med_b:.3f} |", flush=True)
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
