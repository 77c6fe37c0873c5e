"""Overhead of effconv's timing loop against a bare perf_counter loop, same ORT session, same run.

Prints the median of each (ms) and their ratio. Usage: python benchmarks/latency_loop_overhead.py [MODEL]
"""

from __future__ import annotations

import sys
import time

import numpy as np

from effconv.latency import LatencyOptions, time_runner
from effconv.latency.backends.ort import ort_cpu
from effconv.latency.source import model_input


def main(source: str = "mobilenet_v1_cifar") -> None:
    options = LatencyOptions(backend="ort-cpu", threads=2, warmup_ms=300, duration_s=2.0, iterations=50)
    with model_input(source, 1) as model:
        runner = ort_cpu(model.onnx_path, options)
        runner.prepare()
        loop = time_runner(runner, options).stats.median_ms
        bare = []
        for _ in range(loop and max(50, int(2000 / loop))):
            t0 = time.perf_counter()
            runner.run_once()
            bare.append((time.perf_counter() - t0) * 1e3)
    base = float(np.median(bare))
    print(f"{source}: effconv loop median {loop:.3f} ms; bare loop (baseline) {base:.3f} ms; ratio {loop / base:.3f}")


if __name__ == "__main__":
    main(*sys.argv[1:])
