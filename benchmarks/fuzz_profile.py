"""Fuzz `effconv profile` with mutated ONNX files for a while and print what happened.

    python benchmarks/fuzz_profile.py --examples 10000 [--seed 0] [--crashes-dir fuzz-crashes]

Inputs come from tests/fuzz/fuzz_mutate.py applied to the seed corpus tests/fuzz/corpus/ (seeded:
the same --seed gives the same inputs). Each runs through the CLI entry point in a worker process
(tests/fuzz/fuzz_harness.py). Printed: inputs, exit-code counts, tracebacks, unexpected Python
exceptions (exit 5 from main's catch-all: bugs to fix), out.json left behind or missing, worker
deaths (native crashes) and parent crashes (this process; 0 if it prints its summary), wall time.
Exit status 1 if any input broke the contract (code outside 0-5, a traceback, a wrong out.json,
a worker death).
"""

from __future__ import annotations

import argparse
import collections
import random
import sys
import time
from pathlib import Path

FUZZ = Path(__file__).resolve().parents[1] / "tests" / "fuzz"
sys.path.insert(0, str(FUZZ))

import fuzz_harness  # noqa: E402
import fuzz_mutate  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--crashes-dir", type=Path, default=None, help="Save inputs that broke the contract here.")
    ap.add_argument("--show", type=int, default=8, help="Distinct messages to print per category.")
    args = ap.parse_args()

    seeds = fuzz_mutate.corpus()
    worker = fuzz_harness.Worker()
    codes, mutators = collections.Counter(), collections.Counter()
    bad = collections.defaultdict(list)  # category -> [(first line, mutators)]
    t0 = time.perf_counter()
    try:
        for i in range(args.examples):
            r = random.Random(f"{args.seed}:{i}")
            data, applied = fuzz_mutate.mutate(r, seeds)
            o = worker.run(data, fuzz_harness.cli_args(r))
            codes["died" if o.code is None else o.code] += 1
            mutators.update(applied[1:])
            for cat, hit in (("traceback", o.traceback), ("internal", o.internal), ("json_wrong", o.json_wrong),
                             ("worker_death", o.code is None)):
                if hit:
                    bad[cat].append((o.line, applied))
                    _save(args.crashes_dir, cat, i, data)
    finally:
        worker.close()
    wall = time.perf_counter() - t0
    _print(args, codes, mutators, bad, wall)
    broken = sum(len(bad[c]) for c in ("traceback", "json_wrong", "worker_death"))
    broken += sum(n for c, n in codes.items() if c not in fuzz_harness.ALLOWED_CODES and c != "died")
    return 1 if broken else 0


def _save(folder: Path | None, cat: str, i: int, data: bytes) -> None:
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{cat}-{i:06d}.onnx").write_bytes(data)


def _print(args, codes, mutators, bad, wall: float) -> None:
    n = sum(codes.values())
    print(f"inputs: {n:,} (seed {args.seed}, corpus {len(fuzz_mutate.corpus())} files) in {wall:.1f} s "
          f"({n / wall:.0f} inputs/s)")
    print("exit codes: " + ", ".join(f"{k}: {v:,}" for k, v in sorted(codes.items(), key=lambda kv: str(kv[0]))))
    print("mutations applied: " + ", ".join(f"{k} {v:,}" for k, v in sorted(mutators.items())))
    for cat in ("traceback", "internal", "json_wrong", "worker_death"):
        print(f"{cat}: {len(bad[cat]):,}")
        for line, count in collections.Counter(line for line, _ in bad[cat]).most_common(args.show):
            print(f"    {count:5d} x {line}")
    print("parent crashes: 0 (this process is alive and printed this summary)")


if __name__ == "__main__":
    sys.exit(main())
