"""kill -9 during `effconv train` (a subprocess, SIGKILL at a random moment after its first
checkpoint): last.pt always loads, the run resumes from it, and the resume leaves no half-written
temporaries. A few trials bounded by time here; benchmarks/kill9_train.py runs 20 and more."""

from __future__ import annotations

import importlib.util
import random
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TRIALS = 3
BUDGET_S = 15.0  # no new trial starts after this (each costs a torch import in the subprocess)


def _kill9():
    if "kill9" not in sys.modules:
        spec = importlib.util.spec_from_file_location("kill9", HERE / "kill9.py")
        sys.modules["kill9"] = module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return sys.modules["kill9"]


def test_kill_9_during_training_leaves_a_loadable_resumable_checkpoint(tmp_path):
    kill9 = _kill9()
    spec, tree = kill9.make_inputs(tmp_path, alpha=0.25)
    rng, trials, t0 = random.Random(9), [], time.monotonic()
    while len(trials) < TRIALS and (not trials or time.monotonic() - t0 < BUDGET_S):
        trials.append(kill9.run_trial(spec, tree, tmp_path / f"run{len(trials)}", rng, max_delay_s=1.0))
    assert all(t.ok for t in trials), [t for t in trials if not t.ok]
    assert all(t.step >= 1 and t.resumed_to == t.step + 1 and t.left_after_resume == 0 for t in trials), trials
