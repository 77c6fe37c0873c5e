"""The deployment matrix of effconv-trained models on this machine, committed under profiles/deploy/.

For each run (a ResNet-20 and a MobileNet-CIFAR trained with `effconv train` on real CIFAR-10),
`effconv.deploy.deploy_matrix` times every ONNX backend available here (ort-cpu, and openvino once
registered) x fp32 / bf16 / int8 in one process, one cell after the other, and measures top-1
accuracy on all 10,000 real test images on each cell's own runtime at the cell's precision. The
script then checks what the issue asks for and exits 1 when a check fails:
- int8 accuracy within 1 point of fp32 on every backend;
- the int8/fp32 median-latency ratio per backend (both measured in this run) is reported.

Usage:
    python benchmarks/deploy_matrix.py runs/deploy-resnet20 runs/deploy-mobilenet \
        --out profiles/deploy --duration-s 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

from effconv.deploy.matrix import DeployOptions, deploy_matrix
from effconv.deploy.report import machine_markdown, matrix_markdown, plot_matrix
from effconv.io import write_text

CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8", "avx_vnni")


def machine() -> dict:
    """The CPU's name and the flags the precisions depend on, cores, load (a shared machine)."""
    from effconv.latency.base import host_environment, library_versions

    flags: set[str] = set()
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    env = host_environment()
    env["libraries"] = {**env["libraries"], **library_versions(("openvino",))}  # not in the default list
    return {**env, "cpu_flags": [f for f in CPU_FLAGS if f in flags],
            "load_average": os.getloadavg(), "machine": platform.machine()}


def training_line(source: str) -> str:
    """What the checkpoint says about its training (spec, step, batch, optimizer, data)."""
    from effconv.training.checkpoint import load_run

    run = load_run(source)
    cfg = run.meta.get("config") or {}
    return (f"Trained by `effconv train {run.spec.name}`: {run.meta.get('step')} steps of batch "
            f"{cfg.get('batch_size')} ({cfg.get('optimizer')}, lr {cfg.get('lr')}), checkpoint "
            f"{Path(run.meta['checkpoint']).name}, run {run.run_id}.\n")


def run(runs: list[str], out: Path, duration_s: float, test_images: int | None) -> int:
    out.mkdir(parents=True, exist_ok=True)
    env_start = machine()
    matrices, failures = [], []
    for source in runs:
        started = time.perf_counter()
        options = DeployOptions(precisions=("fp32", "bf16", "int8"), duration_s=duration_s, warmup_ms=500,
                                iterations=200, test_images=test_images)
        m = deploy_matrix(source, options, lambda done, total, text: print(f"[{done}/{total}] {source}: {text}",
                                                                          flush=True))
        print(f"{source}: {time.perf_counter() - started:.0f} s", flush=True)
        matrices.append(m)
        for c in m.cells:
            if c.precision == "int8" and c.status == "ok" and c.drop_points is not None and c.drop_points > 1.0:
                failures.append(f"{source} {c.label}: int8 accuracy {c.drop_points:.2f} points below fp32")
    env_end = machine()
    lines = ["# Deployment matrix: effconv-trained CIFAR-10 models on this machine", "",
             "Made by `python benchmarks/deploy_matrix.py " + " ".join(runs) + f" --duration-s {duration_s:g}`. "
             "Every cell of a model is timed in the same run by effconv's one timing loop (batch 1, in a "
             "sandboxed child, no per-layer pass), one cell after the other; accuracy is top-1 on the real "
             "CIFAR-10 test images (JPEG re-encoding: about a point below the official release), computed by "
             "the cell's own runtime at the cell's precision. int8 = the QDQ file of `effconv export "
             "--precision int8` (256 calibration images from the training set, per-channel int8 weights, "
             "uint8 activations).", ""]
    for m in matrices:
        lines.append(matrix_markdown(m))
        lines.append(training_line(m.source))
    lines += ["## Machine", "", machine_markdown(env_start),
              f"CPU flags: {', '.join(env_start['cpu_flags'])}. Load average (1/5/15 min) at start "
              f"{'/'.join(f'{v:.1f}' for v in env_start['load_average'])}, at end "
              f"{'/'.join(f'{v:.1f}' for v in env_end['load_average'])}: the 2 cores are shared with other "
              "work, so absolute times are noisy; the ratios compare cells measured minutes apart in one run.", ""]
    if failures:
        lines += ["## Checks FAILED", ""] + [f"- {f}" for f in failures]
    else:
        lines += ["Checks: int8 accuracy within 1 point of fp32 on every backend: passed."]
    write_text(out / "deploy_matrix.md", "\n".join(lines) + "\n")
    write_text(out / "deploy_matrix.json", json.dumps({"machine": {"start": env_start, "end": env_end},
                                                       "matrices": [m.to_dict() for m in matrices],
                                                       "failures": failures}, indent=2, default=str) + "\n")
    plot_matrix(matrices, out / "deploy_matrix.png")
    print("\n".join(lines))
    return 1 if failures else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--out", type=Path, default=Path("profiles/deploy"))
    parser.add_argument("--duration-s", type=float, default=3.0)
    parser.add_argument("--test-images", type=int, default=None, help="default: all 10,000")
    args = parser.parse_args()
    sys.exit(run(args.runs, args.out, args.duration_s, args.test_images))


if __name__ == "__main__":
    main()
