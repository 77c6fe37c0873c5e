"""The runner of the paper's experiments: `run_experiment` trains each run of an experiment into
OUT/<label>/ with effconv.training.api, skipping finished runs and resuming partial ones, and
writes experiment.json beside each run (see effconv.experiments.studies for the scale rules).
"""

from __future__ import annotations

import contextlib
import json
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from effconv.errors import CheckFailedError, UsageError
from effconv.experiments.runs import CONFIG, EXPERIMENT, RunSummary, read_points, read_run
from effconv.experiments.studies import RunOptions, RunPlan, build_run_model, get_experiment, plan_spec, run_config
from effconv.io import write_text

if TYPE_CHECKING:
    from effconv.experiments.pack import Job, JobEnd
    from effconv.experiments.plan import PackJob
    from effconv.specs import ModelSpec
    from effconv.training.api import TrainConfig, TrainData


@dataclass(frozen=True)
class PlannedRun:
    plan: RunPlan
    spec: "ModelSpec"
    config: "TrainConfig"
    run_dir: Path
    done_steps: int  # steps already trained in run_dir (0: a new run)
    complete: bool


def plan_experiment(name: str, options: RunOptions, out: Path) -> list[PlannedRun]:
    """Resolve every run of `name`: its spec, config, folder and how far it already got."""
    planned = []
    for run in get_experiment(name).runs:
        spec = plan_spec(run)
        config = run_config(spec, options)
        run_dir = out / run.label
        done, complete = _progress(run_dir, config.steps, options.width_mult)
        planned.append(PlannedRun(run, spec, config, run_dir, done, complete))
    return planned


def _progress(run_dir: Path, steps: int, width: float) -> tuple[int, bool]:
    if not (run_dir / "last.pt").is_file():
        return 0, False
    record = json.loads((run_dir / CONFIG).read_text(encoding="utf-8"))
    meta = json.loads((run_dir / EXPERIMENT).read_text(encoding="utf-8")) if (run_dir / EXPERIMENT).is_file() else {}
    if record.get("total_steps") != steps or float(meta.get("width_mult", 1.0)) != width:
        raise UsageError(
            f"holds a run of {record.get('total_steps')} steps at width {meta.get('width_mult', 1.0)}, not "
            f"{steps} at width {width}; pick another --out or the same --scale/--width-mult", path=run_dir)
    points = read_points(run_dir / "metrics.jsonl")
    done = points[-1].step if points else 0
    return done, meta.get("status") == "diverged" or done >= steps


def run_experiment(
    name: str, options: RunOptions, out: str | Path, *, data: "TrainData | None" = None,
    data_source: str | Path | None = None,
    on_run: Callable[[PlannedRun, int], None] | None = None, on_step: Callable[[int], None] | None = None,
) -> list[RunSummary]:
    """Train every run of experiment `name` into OUT/<label>/ (finished runs are skipped, partial
    ones resumed); `on_run(planned, index)` is called before each run, `on_step(step)` every step."""
    from effconv.training.api import load_train_data

    out = Path(out)
    planned = plan_experiment(name, options, out)
    if data is None and not all(p.complete for p in planned):
        data = load_train_data(data_source)
    with torch_threads(options.threads):
        for index, item in enumerate(planned):
            if on_run is not None:
                on_run(item, index)
            if not item.complete:
                _train_one(name, item, options, data, on_step)
    return [read_run(p.run_dir) for p in planned]


@contextlib.contextmanager
def torch_threads(threads: int | None):
    """torch's intra-op threads set to `threads` (None: left alone) for the block, then put back."""
    import torch

    previous = torch.get_num_threads()
    try:
        if threads:
            torch.set_num_threads(threads)
        yield
    finally:
        torch.set_num_threads(previous)


def _train_one(name: str, item: PlannedRun, options: RunOptions, data, on_step) -> None:
    from effconv.training import api as lib

    model = build_run_model(item.spec, options.width_mult, item.config.seed)
    meta = _meta(name, item, options)
    t0, status = time.perf_counter(), "partial"
    try:
        if item.done_steps:
            lib.resume(item.run_dir, data=data, model=model, on_step=on_step)
        else:
            item.run_dir.mkdir(parents=True, exist_ok=True)
            lib.train(item.spec, item.config, data=data, out=item.run_dir, model=model, on_step=on_step)
        status = "complete"
    except CheckFailedError as exc:  # a non-finite loss: keep the curve up to the last checkpoint
        status, meta["error"] = "diverged", str(exc)
    finally:
        meta["status"] = status
        meta["wall_seconds"] = meta.get("wall_seconds", 0.0) + time.perf_counter() - t0
        if (item.run_dir / CONFIG).is_file():
            write_text(item.run_dir / EXPERIMENT, json.dumps(meta, indent=2) + "\n")


# Packed runs (effconv.experiments.pack, planned by effconv.experiments.plan) ---------------------
PACK_STATUS = {"complete": "complete", "diverged": "diverged"}  # cut, interrupted, failed: "partial"


def pack_job(job: "PackJob", data: "TrainData", options: RunOptions) -> "Job":
    """The pack's handle on `job`: opens its run (new, or resumed from its last.pt) as a PackedTrainer."""
    from effconv.experiments.pack import Job

    def open_run():
        from effconv.experiments.packed_trainer import PackedTrainer
        from effconv.training.api import open_run as open_

        item = job.item
        model = build_run_model(item.spec, options.width_mult, item.config.seed)
        if item.done_steps:
            return open_(item.run_dir, data=data, model=model, trainer=PackedTrainer)
        return open_(item.run_dir, item.spec, item.config, data=data, model=model, trainer=PackedTrainer)

    return Job(job.name, open_run)


def write_pack_meta(job: "PackJob", end: "JobEnd", options: RunOptions, pack: dict[str, Any]) -> None:
    """experiment.json for a run the pack closed: the plain runner's fields, the pack's (`pack`:
    slots, how the step ran, the probe's alone seconds per step) and, unless complete, how far it got."""
    item = job.item
    if not (item.run_dir / CONFIG).is_file():
        return
    meta = _meta(job.experiment, item, options)
    meta.update(status=PACK_STATUS.get(end.status, "partial"), wall_seconds=meta.get("wall_seconds", 0.0) + end.wall_s,
                pack={**pack, "step": end.graph})
    meta.pop("stopped", None)
    if end.status != "complete":
        meta["stopped"] = end.describe()
    if end.error:
        meta["error"] = end.error
    write_text(item.run_dir / EXPERIMENT, json.dumps(meta, indent=2) + "\n")


def copy_run(source: Path, experiment: str, item: PlannedRun) -> bool:
    """Give `item`'s empty folder the finished run in `source` (the same spec, options and seed:
    the same run): its files hard-linked (copied where a link fails) and an experiment.json of its
    own. last.pt comes last, so a copy cut short reads as a fresh run. False if the folder holds a run."""
    import os
    import shutil

    dst = item.run_dir
    if (dst / CONFIG).exists() or (dst / "last.pt").exists():
        return False
    dst.mkdir(parents=True, exist_ok=True)

    def put(f: Path) -> None:
        try:
            os.link(f, dst / f.name)
        except OSError:
            shutil.copy2(f, dst / f.name)

    files = [f for f in source.iterdir() if f.is_file() and not f.name.startswith(".")]
    for f in sorted(files, key=lambda f: f.name == CONFIG):
        if f.name not in (EXPERIMENT, "last.pt"):
            put(f)
    meta = {**json.loads((source / EXPERIMENT).read_text(encoding="utf-8")), "experiment": experiment,
            "label": item.plan.label, "same_run_as": str(source)}
    write_text(dst / EXPERIMENT, json.dumps(meta, indent=2) + "\n")
    if (source / "last.pt").is_file():
        put(source / "last.pt")
    return True


def _meta(name: str, item: PlannedRun, options: RunOptions) -> dict[str, Any]:
    path = item.run_dir / EXPERIMENT
    old = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    return {
        **old, "experiment": name, "label": item.plan.label, "spec": item.plan.spec, "scale": options.scale,
        "width_mult": options.width_mult, "device_name": device_name(options.device),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def device_name(device: str) -> str:
    """A readable name for the training device: the GPU's name, else the CPU model and threads."""
    import torch

    if device != "cpu" and torch.cuda.is_available() and (device == "auto" or device.startswith("cuda")):
        return torch.cuda.get_device_name(torch.device("cuda" if device == "auto" else device))
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"CPU {cpu}, {torch.get_num_threads()} torch threads"


__all__ = ["PlannedRun", "copy_run", "device_name", "pack_job", "plan_experiment", "run_experiment", "write_pack_meta"]
