"""The plan's predicted wall time against the measured one (issue 19), same call.

`effconv.experiments.api.run` plans (the probe measures every distinct model on this device, the
plan predicts the visit) and then trains the visit packed; this prints the visit's prediction, the
measured training wall time and their ratio, per run too (predicted alone work against the run's
measured wall from open to close, which for packed runs includes the others' turns), and whether
the whole visit is within --tolerance. A timing claim, so a benchmark, not a test.

    python benchmarks/plan_accuracy.py                                  # CPU, tiny: kernel-size, pack 3
    python benchmarks/plan_accuracy.py --study all --pack 4 --scale 0.0005
    python benchmarks/plan_accuracy.py --study all --pack 11 --scale 0.01 --width-mult 1 --batch-size 128 \\
        --precision bf16 --threads 0 --data .device/cifar10-jpg.tar.xz     # on a GPU

Data: synthetic images (--data none, the default: decoding costs nothing and the speed does not
depend on the pixels) or a CIFAR-10 source. Runs train in a temporary folder, removed after.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def synthetic(train: int, test: int):
    import numpy as np

    from effconv.data import CLASSES, CifarArrays
    from effconv.training.api import TrainData

    rng = np.random.default_rng(0)

    def arrays(n):
        return CifarArrays(rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, n), CLASSES)

    return TrainData(arrays(train), arrays(test), "synthetic")


def main() -> None:
    from effconv.experiments import api
    from effconv.experiments.plan import alone_work
    from effconv.experiments.studies import RunOptions

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--study", default="kernel-size", help="a study, or all")
    ap.add_argument("--pack", type=int, default=3)
    ap.add_argument("--scale", type=float, default=0.002, help="of the paper's steps (VGG: 20,000 x scale)")
    ap.add_argument("--width-mult", type=float, default=0.125)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--evals", type=int, default=5)
    ap.add_argument("--eval-images", type=int, default=100)
    ap.add_argument("--precision", default=None)
    ap.add_argument("--threads", type=int, default=1, help="0: torch's default")
    ap.add_argument("--probe-s", type=float, default=1.0)
    ap.add_argument("--data", default="none", help="none (synthetic) or a CIFAR-10 source")
    ap.add_argument("--tolerance", type=float, default=0.20)
    args = ap.parse_args()
    options = RunOptions(scale=args.scale, width_mult=args.width_mult, evals=args.evals, eval_images=args.eval_images,
                         batch_size=args.batch_size, precision=args.precision, threads=args.threads or None)
    data = synthetic(2000, 1000) if args.data == "none" else None
    with tempfile.TemporaryDirectory(prefix="plan-accuracy-") as tmp:
        request = api.ExperimentRequest(api.studies(args.study), out=Path(tmp), data=None if data else Path(args.data),
                                        options=options, pack=args.pack, probe_s=args.probe_s)
        t0 = time.perf_counter()
        outcome = api.run(request, data=data)
        total = time.perf_counter() - t0
    plan = outcome.plan
    visit = plan.visits[0]
    print(f"{args.study}: {len(visit.jobs)} runs, pack {args.pack}, scale {args.scale:g}, width {args.width_mult:g}, "
          f"batch {args.batch_size}, {args.evals} evaluations, on {plan.rates.device}; probe {plan.rates.probe_s:.1f} s, "
          f"packing factor {plan.rates.factor:.3f} with {plan.rates.together}")
    for model, r in plan.rates.models.items():
        print(f"  rate {model:20s} {1e3 * r.alone_s:8.2f} ms/step alone; start {r.start_s:.3f} s, evaluation {r.eval_s:.3f} s, "
              f"close {r.close_s:.3f} s")
    ends = {e.name: e for e in outcome.ends}
    for job in visit.jobs:
        print(f"  {job.name:22s} {job.steps_left:6d} steps  alone work predicted {alone_work(job, plan.rates):7.2f} s  "
              f"open to close measured {ends[job.name].wall_s:7.2f} s ({ends[job.name].status})")
    ratio = outcome.train_s / visit.predicted_s
    print(f"visit: predicted {visit.predicted_s:.2f} s, measured {outcome.train_s:.2f} s of training "
          f"(measured / predicted {ratio:.3f}); set-up (data, probe) {outcome.setup_s:.2f} s; whole call {total:.2f} s")
    print(f"within {100 * args.tolerance:.0f}%: {'yes' if abs(ratio - 1) <= args.tolerance else 'no'}")


if __name__ == "__main__":
    main()
