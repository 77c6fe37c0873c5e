"""Training-loop speed: effconv's loop against a plain PyTorch loop, same model, batch and precision;
and (--pack N) N runs trained packed against the same N runs one at a time (issue 19).

The plain loop is the floor: one batch made once on the device, then forward, loss, backward and
optimizer step, nothing else. effconv's loop adds what a real run needs: on-device sampling and
augmentation, the learning-rate schedule, on-device metric sums read every `--log-every` steps,
the progress/metrics bookkeeping. Both run the same number of steps after the same warm-up; the
overhead is (effconv step time - plain step time) / plain step time. Evaluation and checkpoint time
at the end of the effconv run is excluded (it is not per-step work).

    python benchmarks/train_speed.py --spec mobilenet_v1_cifar --alpha 0.25 --steps 40 --batch-size 64
    python benchmarks/train_speed.py --spec vgg19_3x3 --batch-size 128 --precision bf16   # on a GPU

--pack N: the experiment runner's packed path (effconv.experiments.pack), N copies of one run
(the spec's recipe, seeds 0..N-1) on synthetic images, each opened and warmed up (on CUDA: its
stream and CUDA graph captured) before timing. One at a time: each run alone for --steps steps,
aggregate steps/s = 1 / (mean seconds per step). Packed: all N open, --steps rounds of one step
each, aggregate steps/s = N / (seconds per round). Both in the same process, alternated --rounds
times, best of each. --scale small is the CPU size (every layer narrowed 8x, batch 16, 1 thread);
--scale paper the paper's model at --batch-size (128) and --precision (bf16 on a GPU).

    python benchmarks/train_speed.py --pack 3 --scale small --steps 20 --rounds 2     # CPU, ~1 min
    python benchmarks/train_speed.py --pack 11 --spec vgg19_3x3 --precision bf16 --steps 300   # on a GPU

Measured here (2 shared cores, load average 4-6 from other sessions' jobs; CPU figures say nothing
about a GPU, where the runs' graphs overlap): see benchmarks/README.md, "Packed runs".
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def synthetic_data(n: int):
    from effconv.data import CLASSES, CifarArrays
    from effconv.training.api import TrainData

    rng = np.random.default_rng(0)
    arrays = CifarArrays(rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, n), CLASSES)
    return TrainData(arrays, CifarArrays(arrays.images[:256], arrays.labels[:256], CLASSES), "synthetic")


CLOCK = time.perf_counter  # --clock cpu: process CPU time, robust on a shared machine (CPU runs only)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_plain(model, config, device, warmup: int, steps: int) -> float:
    """Seconds per step of the bare loop."""
    from effconv.training.optim import build_optimizer

    model = model.to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    opt = build_optimizer(model.parameters(), config)
    x = torch.randn(config.batch_size, 3, 32, 32, device=device)
    if device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (config.batch_size,), device=device)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(config.precision)
    scaler = torch.amp.GradScaler("cuda") if config.precision == "fp16" else None
    for i in range(warmup + steps):
        if i == warmup:
            _sync(device)
            t0 = CLOCK()
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        if scaler:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            opt.step()
    _sync(device)
    return (CLOCK() - t0) / steps


def time_effconv(model, spec, config, device, warmup: int, steps: int) -> float:
    """Seconds per step of effconv's loop between the end of warm-up and the last step."""
    from effconv.training.api import train

    stamps: dict[int, float] = {}

    def on_step(step: int) -> None:
        if step in (warmup, warmup + steps):
            _sync(device)
            stamps[step] = CLOCK()

    with tempfile.TemporaryDirectory() as tmp:
        train(spec, config, data=synthetic_data((warmup + steps + 1) * config.batch_size), out=Path(tmp) / "run",
              model=model, on_step=on_step)
    return (stamps[warmup + steps] - stamps[warmup]) / steps


def packed_vs_sequential(args) -> None:
    """--pack N: aggregate steps/s of N runs packed vs the same N one at a time (module doc)."""
    import dataclasses
    from contextlib import ExitStack

    from effconv.experiments.plan import PackJob
    from effconv.experiments.probe import probe_run, timed_rounds
    from effconv.experiments.runner import PlannedRun, device_name, torch_threads
    from effconv.experiments.studies import RunOptions, RunPlan, run_config
    from effconv.specs import load_spec

    small = args.scale == "small"
    options = RunOptions(width_mult=0.125 if small else 1.0, batch_size=16 if small else args.batch_size,
                         precision=args.precision, threads=1 if small else args.threads, evals=1)
    spec = load_spec(args.spec)
    jobs = [PackJob("bench", PlannedRun(RunPlan(f"run{i}", args.spec), spec,
                                        dataclasses.replace(run_config(spec, options), seed=i), Path("."), 0, False))
            for i in range(args.pack)]
    data = synthetic_data(max(10 * options.batch_size, 1024))
    seq, packed, graphs = [], [], set()
    with torch_threads(options.threads), tempfile.TemporaryDirectory() as tmp:
        where = device_name(options.device)
        for r in range(args.rounds):
            per_run = []
            for i, job in enumerate(jobs):
                with probe_run(job, data, options, Path(tmp) / f"s{r}-{i}") as trainer:
                    per_run.append(timed_rounds([trainer], rounds=args.steps))
                    graphs.add("cuda graph" if trainer.graphed else trainer.graph_note)
            seq.append(1.0 / (sum(per_run) / len(per_run)))
            with ExitStack() as stack:
                trainers = [stack.enter_context(probe_run(j, data, options, Path(tmp) / f"p{r}-{i}")) for i, j in enumerate(jobs)]
                packed.append(args.pack / timed_rounds(trainers, rounds=args.steps))
    s, p = max(seq), max(packed)
    print(f"model {spec.name} width {options.width_mult:g} batch {jobs[0].item.config.batch_size} "
          f"{args.precision or 'fp32'} on {where}; {args.pack} runs; {args.steps} timed steps each after warm-up; step: "
          f"{', '.join(sorted(graphs))}; best of {args.rounds} rounds")
    print(f"one at a time:   {s:9.2f} steps/s aggregate  ({1e3 / s:.2f} ms/step)")
    print(f"packed {args.pack:<3d}:      {p:9.2f} steps/s aggregate  ({1e3 * args.pack / p:.2f} ms per round of {args.pack})")
    print(f"packed / one at a time: {p / s:.3f}x")
    print(f"all rounds, steps/s: one at a time {[round(x, 2) for x in seq]}, packed {[round(x, 2) for x in packed]}")


def main() -> None:
    from effconv.specs import load_spec
    from effconv.zoo import with_arch
    from effconv.training.api import TrainConfig
    from effconv.zoo import build_model

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", default="mobilenet_v1_cifar")
    ap.add_argument("--alpha", type=float, default=None, help="MobileNet width multiplier override")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=None, help="default 64; --pack: the spec's (128 for the VGGs)")
    ap.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"))
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    ap.add_argument("--rounds", type=int, default=2, help="alternate plain/effconv this many times; best of each")
    ap.add_argument("--clock", default="wall", choices=("wall", "cpu"),
                    help="cpu: time.process_time (CPU device only; counts all threads' CPU seconds)")
    ap.add_argument("--pack", type=int, default=0, help="N > 0: N runs packed vs one at a time (module doc)")
    ap.add_argument("--scale", default="paper", choices=("paper", "small"), help="--pack: small is the CPU size")
    args = ap.parse_args()
    if args.pack:
        args.spec = args.spec if args.spec != "mobilenet_v1_cifar" else "vgg19_3x3"  # --pack defaults to the paper's VGG-19
        args.precision = None if args.precision == "fp32" else args.precision
        packed_vs_sequential(args)
        return
    args.batch_size = args.batch_size or 64
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    if args.threads:
        torch.set_num_threads(args.threads)
    spec = load_spec(args.spec)
    if args.alpha is not None:
        spec = with_arch(spec, alpha=args.alpha)
    total = args.warmup + args.steps
    config = TrainConfig(steps=total, batch_size=args.batch_size, precision=args.precision, log_every=args.log_every,
                         eval_every=total, eval_subset=256)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(0)
    base = build_model(spec)
    plain, ours = [], []
    for _ in range(args.rounds):
        plain.append(time_plain(copy.deepcopy(base), config, device, args.warmup, args.steps))
        ours.append(time_effconv(copy.deepcopy(base), spec, config, device, args.warmup, args.steps))
    p, e = min(plain), min(ours)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"model {spec.name} {dict(spec.arch)} batch {args.batch_size} {args.precision} on {name}; "
          f"{args.steps} timed steps after {args.warmup} warm-up, best of {args.rounds} rounds, {args.clock} clock")
    print(f"plain PyTorch loop: {1 / p:8.2f} steps/s {args.batch_size / p:9.1f} images/s  ({p * 1e3:.1f} ms/step)")
    print(f"effconv loop:       {1 / e:8.2f} steps/s {args.batch_size / e:9.1f} images/s  ({e * 1e3:.1f} ms/step)")
    print(f"effconv loop overhead: {100 * (e - p) / p:+.1f}% of the plain step time (speed ratio {p / e:.3f}x)")
    print(f"all rounds, ms/step: plain {[round(t * 1e3, 1) for t in plain]}, effconv {[round(t * 1e3, 1) for t in ours]}")


if __name__ == "__main__":
    main()
