"""kill -9 during `effconv train`, many times: each trial trains MobileNet v1 (half width, tiny
ImageFolder data, a checkpoint every step) in a subprocess, SIGKILLs it at a random moment after
the first checkpoint, loads last.pt with effconv.training.checkpoint.load_checkpoint and resumes one step.

    python benchmarks/kill9_train.py [--trials 20] [--max-delay-s 2] [--seed 0] [--max-minutes 20]

Printed: one line per trial, then trials, failures (must be 0), kills that landed mid-write (a
stale .last.pt.* temporary was left; the resume must remove it), the command and the wall time.
Exit status 1 if any trial failed. The trial itself is tests/safety/kill9.py (also run in CI).
"""

from __future__ import annotations

import argparse
import random
import shlex
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "safety"))

import kill9  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--max-delay-s", type=float, default=2.0, help="Kill uniformly in [0, this) after the first checkpoint.")
    ap.add_argument("--alpha", type=float, default=0.5, help="MobileNet width (checkpoint size).")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-minutes", type=float, default=20.0, help="Start no trial after this.")
    args = ap.parse_args()
    rng, trials, t0 = random.Random(args.seed), [], time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="effconv-kill9-") as tmp:
        spec, tree = kill9.make_inputs(Path(tmp), alpha=args.alpha)
        print("command:", shlex.join(kill9.command(spec, tree, Path(tmp) / "runN")), flush=True)
        for i in range(args.trials):
            if time.perf_counter() - t0 > 60 * args.max_minutes:
                print(f"stopped after {i} trials: --max-minutes {args.max_minutes:g} reached")
                break
            t = kill9.run_trial(spec, tree, Path(tmp) / f"run{i}", rng, max_delay_s=args.max_delay_s)
            trials.append(t)
            print(f"trial {i:3d}: killed {t.killed_after_s:5.2f} s after the first checkpoint, last.pt step "
                  f"{t.step}, stale temporaries {t.stale_temporaries}, resumed to {t.resumed_to}, "
                  f"left {t.left_after_resume} {'ok' if t.ok else 'FAILED: ' + t.error}", flush=True)
    wall = time.perf_counter() - t0
    failed = sum(not t.ok for t in trials)
    print(f"trials: {len(trials)}, failures: {failed}, kills mid-write (temporary left): "
          f"{sum(t.stale_temporaries > 0 for t in trials)}, wall: {wall:.1f} s ({wall / max(1, len(trials)):.1f} s/trial)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
