"""Static memory estimate against measured resident memory on ONNX Runtime CPU, for five zoo models.

    python benchmarks/memory_vs_rss.py [--models resnet20 mobilenet_v1 ...] [--batch 1]

For each model (exported by effconv, untimed) a fresh child process, with one intra-op thread,
reads its resident set (VmRSS) before creating the InferenceSession, after creating it, and its
high-water mark (VmHWM) after 20 runs. The figures printed beside effconv's static ones:
  - session growth  = VmRSS after creation - VmRSS before (weights as ORT stores them, prepacked
    kernels, the graph);
  - run growth      = VmHWM after the runs - VmRSS after creation (activations in ORT's arena,
    kernel workspace, thread-local buffers);
  - effconv weights = parameter bytes; effconv peak = peak live activations (stored order).
ORT's CPU arena grows in chunks and keeps what it allocated, its memory-pattern planner reuses
buffers, and kernels use workspace effconv does not model: the ratios say by how much the runtime
differs from the static lower bound, not that they agree.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

MODELS = ("resnet20", "mobilenet_v1_cifar", "vgg14_mixed", "inception_v1_cifar", "mobilenet_v1")

CHILD = r"""
import json, sys
import numpy as np

def status(key):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024  # kB -> bytes
    raise KeyError(key)

import onnxruntime as ort
path, shape = sys.argv[1], json.loads(sys.argv[2])
x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
so = ort.SessionOptions()
so.intra_op_num_threads = 1
before = status("VmRSS")
sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
created = status("VmRSS")
name = sess.get_inputs()[0].name
for _ in range(20):
    sess.run(None, {name: x})
print(json.dumps({"before": before, "created": created, "hwm": status("VmHWM")}))
"""


def export(name: str, folder: Path, batch: int) -> tuple[Path, list[int]]:
    from effconv.export.onnx import export_onnx
    from effconv.specs import load_spec
    from effconv.zoo import build_model

    spec = load_spec(name)
    shape = list(spec.input_shape(batch))
    return export_onnx(build_model(spec).eval(), folder / f"{name}.onnx", tuple(shape)), shape


def measure(path: Path, shape: list[int]) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(path), json.dumps(shape)], capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=list(MODELS))
    ap.add_argument("--batch", type=int, default=1)
    args = ap.parse_args()
    from effconv.profile import profile_onnx

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            path, shape = export(name, Path(tmp), args.batch)
            prof = profile_onnx(path)
            m = measure(path, shape)
            weights = sum(prof.totals.weight_bytes.values())
            rows.append((name, weights, prof.memory.peak_bytes, m["created"] - m["before"], m["hwm"] - m["created"]))
    mb = 1e6
    print(f"onnxruntime CPU EP, 1 thread, batch {args.batch}; MB = 10^6 bytes")
    print(f"{'model':<20} {'weights':>9} {'session +':>10} {'ratio':>6} {'peak live':>10} {'run +':>9} {'ratio':>6}")
    for name, w, peak, sess, run in rows:
        print(f"{name:<20} {w / mb:9.2f} {sess / mb:10.2f} {sess / w if w else 0:6.2f} {peak / mb:10.2f} "
              f"{run / mb:9.2f} {run / peak if peak else 0:6.2f}")


if __name__ == "__main__":
    main()
