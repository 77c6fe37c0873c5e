"""Start-up of `effconv profile model.onnx --no-latency`, one revision of effconv against another, in
the same run on the same machine (issue 17: the reorganised house must stay as fast as before).

    python benchmarks/startup_compare.py                      # f506c3f (profiles/startup.md) vs the working tree
    python benchmarks/startup_compare.py --base REV --repeat 21

Each revision is unpacked with `git archive` into a temporary folder (the working tree is used as
it is for `--head WORKTREE`) and run as `python -m effconv` with that folder first on PYTHONPATH, in
the same venv (same torch, onnx, typer). Runs alternate base, head, onnx-tool (when installed), so a
drift of the machine's speed hits all three alike; one untimed warm-up each writes the bytecode
caches. Output is redirected to a pipe (plain tables). Prints the median and the ratio head / base;
exits 1 when head is more than `--tolerance` slower than base.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASE = "f506c3f"  # the commit whose figures profiles/startup.md records


def unpack(rev: str, into: Path) -> Path:
    """`rev`'s tracked files under `into` (the working tree itself for WORKTREE)."""
    if rev == "WORKTREE":
        return ROOT
    archive = into / f"{rev}.tar"
    subprocess.run(["git", "-C", str(ROOT), "archive", "-o", str(archive), rev], check=True)
    dest = into / rev
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")
    return dest


def command(tree: Path | None, model: Path) -> tuple[list[str], dict[str, str]]:
    env = dict(os.environ)
    if tree is None:  # onnx-tool
        return [sys.executable, "-m", "onnx_tool", "-i", str(model)], env  # as profile_speed.py runs it
    env["PYTHONPATH"] = str(tree) + os.pathsep + env.get("PYTHONPATH", "")
    return [sys.executable, "-m", "effconv", "profile", str(model), "--no-latency"], env


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, cwd=cwd, check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return time.perf_counter() - start


def which_effconv(tree: Path, cwd: Path) -> str:
    """The effconv a run imports: the unpacked tree, not the editable install of this checkout."""
    env = command(tree, Path("x"))[1]
    out = subprocess.run([sys.executable, "-c", "import effconv; print(effconv.__file__)"],
                         env=env, cwd=cwd, check=True, capture_output=True, text=True)
    return out.stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default=BASE)
    parser.add_argument("--head", default="WORKTREE")
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--tolerance", type=float, default=0.05, help="head may be this much slower")
    parser.add_argument("--model", type=Path, help="an ONNX file (default: MobileNet v1 224, exported)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="effconv-startup-") as tmp:
        tmp_path = Path(tmp)
        model = args.model
        if model is None:
            sys.path.insert(0, str(ROOT / "benchmarks"))
            from profile_speed import mobilenet

            model = mobilenet(tmp_path / "mobilenet_v1.onnx")
        trees = {"base": unpack(args.base, tmp_path), "head": unpack(args.head, tmp_path)}
        for name, tree in trees.items():
            print(f"{name:5} {args.base if name == 'base' else args.head}: {which_effconv(tree, tmp_path)}")
        runners = {name: command(tree, model) for name, tree in trees.items()}
        if _has("onnx_tool"):
            runners["onnx-tool"] = command(None, model)
        times: dict[str, list[float]] = {name: [] for name in runners}
        for name, (argv, env) in runners.items():
            timed(argv, env, tmp_path)  # warm-up: bytecode caches, page cache
        for _ in range(args.repeat):
            for name, (argv, env) in runners.items():
                times[name].append(timed(argv, env, tmp_path))
    load = os.getloadavg()[0]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {load:.2f}; "
          f"{model.name}; median of {args.repeat} alternating runs, output to a pipe")
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, value in medians.items():
        spread = f"min {min(times[name]):.3f}  max {max(times[name]):.3f}"
        print(f"  {name:10} {value:.3f} s   ({spread})")
    ratio = medians["head"] / medians["base"]
    print(f"  head / base = {ratio:.3f}  ({'slower' if ratio > 1 else 'faster'} by {abs(ratio - 1) * 100:.1f}%)")
    if "onnx-tool" in medians:
        print(f"  onnx-tool / head = {medians['onnx-tool'] / medians['head']:.2f}x")
    return 1 if ratio > 1 + args.tolerance else 0


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


if __name__ == "__main__":
    sys.exit(main())
