"""benchmarks/gpu_check.py (issue 18): the prepared GPU visit. Its dry run goes through the GPU
run's functions on CPU with tiny sizes; every part must come back ok, or "skipped: <reason>"
where a CPU has nothing to run, never ok for what did not run."""

from __future__ import annotations

import importlib.util
import json
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"
PARTS = ["backends", "torch", "ort", "per-layer", "isolated", "fp16-export", "train-speed", "pytest-gpu",
         "torch-compile"]
NOTHING_ON_CPU = {"pytest-gpu"}  # every GPU-marked test skips itself without CUDA


def load_script():
    """The script as a module (registered in sys.modules: dataclasses look their module up there)."""
    if "gpu_check" not in sys.modules:
        spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
        module = importlib.util.module_from_spec(spec)
        sys.modules["gpu_check"] = module
        spec.loader.exec_module(module)
    return sys.modules["gpu_check"]


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu-check")
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, str(SCRIPT), "--dry-run", "--out", str(out)], capture_output=True,
                          text=True, timeout=240, cwd=ROOT)
    wall = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr[-3000:]
    [path] = out.glob("cpu-dry-run-*.json")
    return SimpleNamespace(doc=json.loads(path.read_text()), path=path, stdout=proc.stdout, wall=wall)


def test_every_part_ran(dry_run):
    doc = dry_run.doc
    assert doc["dry_run"] is True and list(doc["parts"]) == PARTS
    for name, part in doc["parts"].items():
        if name in NOTHING_ON_CPU:
            assert part["status"].startswith("skipped: "), (name, part["status"])
        else:
            assert part["status"] == "ok", (name, part["status"])
    assert dry_run.wall < 120, f"the dry run took {dry_run.wall:.0f} s"


def test_cells_beside_the_reference_loops(dry_run):
    """What runs on CPU is timed by effconv and by the plain loop; CUDA graphs and fp16 are skipped."""
    parts = dry_run.doc["parts"]
    for part in ("torch", "ort", "torch-compile"):
        ran = 0
        for row in parts[part]["cells"]:
            if row["precision"] == "fp16" or row["variant"] == "cuda-graph":
                assert row["status"].startswith("skipped: "), row
                continue
            assert row["status"] == "ok", row
            assert row["effconv"]["median_ms"] > 0 and row["reference"]["median_ms"] > 0 and row["ratio"] > 0
            ran += 1
        assert ran, part
    layers = {r["method"]: r for r in parts["per-layer"]["cells"]}
    assert set(layers) == {"torch-profiler", "isolate"}
    assert all(r["sum_ms"] > 0 and r["layers"] > 0 for r in layers.values())
    isolated = {r["start_method"]: r for r in parts["isolated"]["cells"]}
    assert set(isolated) == {"fork", "spawn"} and all(r["child_median_ms"] > 0 for r in isolated.values())
    fp16 = parts["fp16-export"]
    assert fp16["export"]["rc"] == 0 and fp16["export"]["passed"] is True
    assert fp16["checks"][0]["passed"] is True and fp16["checks"][1]["status"].startswith("skipped: ")
    assert parts["train-speed"]["plain_steps_per_s"] > 0 and parts["train-speed"]["effconv_steps_per_s"] > 0


def test_outputs_say_dry_run(dry_run):
    md = dry_run.path.with_suffix(".md").read_text()
    assert "DRY RUN on CPU" in md and "Not GPU numbers" in md
    assert all(c["result"].endswith("(dry run: CPU, informational)") for c in dry_run.doc["checks"])
    assert dry_run.stdout.strip().splitlines()[-1].startswith("checks:")  # the short table is printed last


@pytest.fixture
def alarm():
    gc = load_script()
    old = signal.signal(signal.SIGALRM, gc._on_alarm)
    yield gc
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, old)


def test_a_failing_part_is_recorded_and_the_next_runs(alarm):
    gc = alarm
    ctx = SimpleNamespace(cfg=replace(gc.DRY, caps={"a": 5, "b": 1, "c": 5}))
    doc = {"parts": {}}

    def boom(ctx, budget):
        raise ValueError("bad input\nsecond line")

    def spin(ctx, budget):  # never returns by itself: the cap's SIGALRM ends it
        while True:
            time.sleep(0.01)

    end = time.monotonic() + 100
    gc.run_part("a", boom, ctx, doc, end)
    t0 = time.monotonic()
    gc.run_part("b", spin, ctx, doc, end)
    assert time.monotonic() - t0 < 3
    gc.run_part("c", lambda ctx, budget: {"status": "ok"}, ctx, doc, end)
    assert doc["parts"]["a"]["status"] == "failed: ValueError: bad input" and doc["parts"]["a"]["error_type"] == "ValueError"
    assert doc["parts"]["b"]["status"].startswith("timeout: ")
    assert doc["parts"]["c"]["status"] == "ok"


def test_no_time_left_skips_the_part(alarm):
    gc = alarm
    ctx = SimpleNamespace(cfg=replace(gc.DRY, caps={"a": 50}))
    doc = {"parts": {}}
    gc.run_part("a", lambda ctx, budget: {"status": "ok"}, ctx, doc, time.monotonic() + gc.RESERVE_S + 1)
    assert doc["parts"]["a"]["status"] == "skipped: no time left in the total budget"


def test_a_subprocess_past_its_cap_is_ended(alarm):
    gc = alarm
    t0 = time.monotonic()
    with pytest.raises(gc.PartTimeout):
        gc.run_cmd([sys.executable, "-c", "import time; time.sleep(60)"], gc.Budget(time.monotonic() + 3.0))
    assert time.monotonic() - t0 < 10
