"""kill -9 during `effconv train`: one trial = start training in a subprocess, SIGKILL it at a random
moment after its first checkpoint, then check that last.pt loads (effconv.training.checkpoint.load_checkpoint)
and that the run resumes from it. Shared by tests/safety/test_kill9.py (a few trials) and
benchmarks/kill9_train.py (many).

Checkpoints are written every step (--eval-every 1); at half width (the benchmark's default) a
last.pt is about 10 MB (weights plus Adam's two moments), so some kills land mid-write.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

SPEC = """
name = "kill9_mobilenet"
family = "mobilenet"
description = "MobileNet v1 at half width for the kill -9 trials"
input_size = 32
num_classes = 10
[arch]
config = "cifar"
alpha = {alpha}
[train]
batch_size = 8
steps = 100000
eval_every = 1
log_every = 1000
optimizer = "adam"
"""
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


@dataclass(frozen=True)
class Trial:
    killed_after_s: float  # seconds between the first checkpoint appearing and SIGKILL
    step: int  # step of the last.pt that survived
    stale_temporaries: int  # half-written .last.pt.* files the kill left (a kill mid-write)
    resumed_to: int  # step reached by the resume (step + 1 when it worked)
    left_after_resume: int  # temporaries still there after the resume saved (must be 0)
    error: str = ""  # why the trial failed; "" when it passed

    @property
    def ok(self) -> bool:
        return not self.error


def make_inputs(folder: Path, per_class: int = 2, alpha: float = 0.5) -> tuple[Path, Path]:
    """A tiny ImageFolder tree (random 32x32 PNGs, `per_class` per class and split) and the spec
    (MobileNet v1 at width `alpha`)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    tree = folder / "data"
    for split in ("train", "test"):
        for name in CLASSES:
            (tree / split / name).mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(tree / split / name / f"{i}.png")
    spec = folder / "kill9_mobilenet.toml"
    spec.write_text(SPEC.format(alpha=alpha))
    return spec, tree


def command(spec: Path, tree: Path, run_dir: Path) -> list[str]:
    return [sys.executable, "-m", "effconv", "train", str(spec), "--data", str(tree), "--out", str(run_dir),
            "--eval-every", "1", "--quiet"]


def run_trial(spec: Path, tree: Path, run_dir: Path, rng: random.Random, max_delay_s: float = 2.0,
              start_timeout_s: float = 120.0) -> Trial:
    """One trial (see the module docstring); the delay after the first checkpoint is uniform in
    [0, max_delay_s)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # leave a core to this process's polling
    proc = subprocess.Popen(command(spec, tree, run_dir), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    last = run_dir / "last.pt"
    try:
        deadline = time.monotonic() + start_timeout_s
        while not last.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                err = proc.stderr.read().decode(errors="replace").strip().splitlines()
                return Trial(0.0, -1, 0, -1, 0, f"no checkpoint (exit {proc.returncode}): {err[-1:] }")
            time.sleep(0.01)
        delay = rng.uniform(0.0, max_delay_s)
        time.sleep(delay)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        proc.stderr.close()
    return _check(run_dir, tree, delay)


def _temporaries(run_dir: Path) -> int:
    return len(list(run_dir.glob(".last.pt.*")))


def _check(run_dir: Path, tree: Path, delay: float) -> Trial:
    from effconv.training import api as train, checkpoint
    from effconv.errors import EffconvError

    stale = _temporaries(run_dir)
    try:
        step = int(checkpoint.load_checkpoint(run_dir / "last.pt")["step"])
    except EffconvError as exc:
        return Trial(delay, -1, stale, -1, stale, f"last.pt does not load: {exc}")
    try:
        result = train.resume(run_dir, steps=step + 1, data_source=tree, quiet=True)
    except EffconvError as exc:
        return Trial(delay, step, stale, -1, _temporaries(run_dir), f"resume failed: {exc}")
    left = _temporaries(run_dir)
    error = "" if result.step == step + 1 and left == 0 else f"resumed to {result.step}, {left} temporaries left"
    return Trial(delay, step, stale, result.step, left, error)
