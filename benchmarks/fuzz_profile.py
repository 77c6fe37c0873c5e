"""Fuzz `effconv profile` with mutated ONNX files for a while and print what happened.

    python benchmarks/fuzz_profile.py --examples 10000 [--seed 0] [--crashes-dir fuzz-crashes]
    python benchmarks/fuzz_profile.py --structured --examples 10000 [--no-ort]

Inputs come from tests/fuzz/fuzz_mutate.py applied to the seed corpus tests/fuzz/corpus/ (seeded:
the same --seed gives the same inputs). Each runs through the CLI entry point in a worker process
(tests/fuzz/fuzz_harness.py). Printed: inputs, exit-code counts, tracebacks, unexpected Python
exceptions (exit 5 from main's catch-all: bugs to fix), out.json left behind or missing, worker
deaths (native crashes) and parent crashes (this process; 0 if it prints its summary), wall time.
Exit status 1 if any input broke the contract (code outside 0-5, a traceback, a wrong out.json,
a worker death).

--structured: inputs from tests/fuzz/structured.py instead (valid models built and edited through
the onnx API), with coverage (the share of inputs that reach the counting code, the handlers and
fold paths hit), the folder's cap checked as it runs, and ONNX Runtime's output shapes compared with
the profile's (tests/fuzz/oracles.py). A hang is an input over --timeout-s; a shape mismatch or a
fold over its cap also makes the exit status 1.
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
import structured  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--crashes-dir", type=Path, default=None, help="Save inputs that broke the contract here.")
    ap.add_argument("--show", type=int, default=8, help="Distinct messages to print per category.")
    ap.add_argument("--structured", action="store_true", help="Structure-aware inputs (tests/fuzz/structured.py).")
    ap.add_argument("--no-ort", action="store_true", help="--structured without the ONNX Runtime shape oracle.")
    ap.add_argument("--timeout-s", type=float, default=60, help="An input running longer is a hang.")
    ap.add_argument("--progress", type=int, default=0, help="Print a line every N inputs.")
    args = ap.parse_args()
    if args.structured:
        return run_structured(args)

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


def run_structured(args) -> int:
    seeds = fuzz_mutate.corpus()
    worker = fuzz_harness.Worker()
    st = StructuredStats()
    opts = {"hooks": True, "ort": not args.no_ort}
    t0 = time.perf_counter()
    try:
        for i in range(args.examples):
            r = random.Random(f"structured:{args.seed}:{i}")
            data, tags, ort_ok = structured.generate(r, seeds)
            o = worker.run(data, fuzz_harness.cli_args(r), timeout_s=args.timeout_s,
                           opts={**opts, "ort": opts["ort"] and ort_ok})
            for cat in st.add(i, tags, o):
                _save(args.crashes_dir, cat, i, data)
            if args.progress and (i + 1) % args.progress == 0:
                print(f"... {i + 1:,} inputs, {time.perf_counter() - t0:.0f} s", flush=True)
    finally:
        worker.close()
    st.print(args, time.perf_counter() - t0)
    return 1 if st.broken() else 0


class StructuredStats:
    """Counts of one structured run, and the inputs that broke something (with their tags)."""

    CATS = ("traceback", "internal", "json_wrong", "worker_death", "hang", "bad_code", "shape_mismatch",
            "fold_finding")

    def __init__(self) -> None:
        self.codes, self.tags = collections.Counter(), collections.Counter()
        self.handlers, self.folds, self.ort = collections.Counter(), collections.Counter(), collections.Counter()
        self.checked = collections.Counter()  # product nodes: agree / unknown / mismatch
        self.checked_ops = collections.Counter()
        self.reached = self.n = 0
        self.lines = collections.Counter()  # first lines of exit 3/4 messages
        self.bad = collections.defaultdict(list)  # category -> [(input, detail, tags)]
        self.unknowns = []  # product nodes ORT ran whose shape the profile does not know (a lower bound)

    def add(self, i: int, tags: list[str], o) -> list[str]:
        self.n += 1
        hang = o.code is None and "hung" in o.line
        self.codes["hang" if hang else "died" if o.code is None else o.code] += 1
        self.tags.update(tags)
        e = o.extra
        self.reached += bool(e.get("reached"))
        self.handlers.update(e.get("handlers", ()))
        self.folds.update(e.get("folds", ()))
        if o.code in (2, 3, 4, 5):
            self.lines[f"exit {o.code}: " + _strip_path(o.line)] += 1
        ort = e.get("ort")
        if ort is not None:
            status = ort["status"]
            self.ort[status] += 1
            if status == "compared":
                self.checked["agree"] += ort["agree"]
                self.checked["unknown"] += ort["unknown"]
                self.checked["mismatch"] += len(ort["mismatch"])
                for u in ort.get("unknowns", ()):
                    self.unknowns.append((i, u, tags))
        hits = {
            "traceback": o.traceback, "internal": o.internal, "json_wrong": o.json_wrong,
            "worker_death": o.code is None and not hang, "hang": hang,
            "bad_code": o.code is not None and o.code not in fuzz_harness.ALLOWED_CODES,
            "shape_mismatch": bool(ort and ort.get("mismatch")), "fold_finding": bool(e.get("fold_findings")),
        }
        details = {"shape_mismatch": str(ort.get("mismatch")) if ort else "",
                   "fold_finding": "; ".join(e.get("fold_findings", ()))}
        for cat, hit in hits.items():
            if hit:
                self.bad[cat].append((i, details.get(cat) or o.line, tags))
        return [c for c, hit in hits.items() if hit]

    def broken(self) -> int:
        return sum(len(self.bad[c]) for c in self.CATS if c != "internal") + len(self.bad["internal"])

    def print(self, args, wall: float) -> None:
        n = self.n
        print(f"structured inputs: {n:,} (seed {args.seed}) in {wall:.1f} s ({n / wall:.1f} inputs/s)")
        print("exit codes: " + ", ".join(f"{k}: {v:,}" for k, v in sorted(self.codes.items(), key=lambda kv: str(kv[0]))))
        print(f"reached the counting code: {self.reached:,} of {n:,} ({100 * self.reached / max(n, 1):.1f}%)")
        print(f"handlers hit ({len(self.handlers)}): " + ", ".join(f"{k} {v:,}" for k, v in sorted(self.handlers.items())))
        print(f"fold paths hit ({len(self.folds)}): " + ", ".join(f"{k} {v:,}" for k, v in sorted(self.folds.items())))
        print("ORT oracle (inputs): " + ", ".join(f"{k}: {v:,}" for k, v in self.ort.most_common()))
        print("ORT oracle (product nodes): " + ", ".join(f"{k}: {v:,}" for k, v in sorted(self.checked.items())))
        for i, u, tags in self.unknowns[: args.show]:
            print(f"    unknown to the profile, input {i}: {u}  [{' '.join(tags)}]")
        print("builders and edits: " + ", ".join(f"{k} {v:,}" for k, v in sorted(self.tags.items())))
        print("most common refusals:")
        for line, count in self.lines.most_common(args.show * 2):
            print(f"    {count:5d} x {line[:200]}")
        for cat in self.CATS:
            print(f"{cat}: {len(self.bad[cat]):,}")
            for i, line, tags in self.bad[cat][: args.show]:
                print(f"    input {i}: {line[:300]}  [{' '.join(tags)}]")
        print("parent crashes: 0 (this process is alive and printed this summary)")


def _strip_path(line: str) -> str:
    """The refusal without the temporary file's path, so equal messages count together."""
    import re

    return re.sub(r"\S*fuzz\.onnx:?\s*", "", line)


if __name__ == "__main__":
    sys.exit(main())
