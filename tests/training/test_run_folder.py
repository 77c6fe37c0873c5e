"""A run folder has one writer for the run's life (an advisory lock), and what it records stays true
after a resume: the race of two `effconv train --out` processes, a dead writer's stale lock, the
new total after `--resume --steps`, and compare's time per step."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from effconv.errors import UsageError
from effconv.io import LOCKED_BY, folder_lock


@pytest.fixture(scope="module")
def setup(tmp_path_factory, kit):
    root = tmp_path_factory.mktemp("runfolder")
    return kit.write_tiny_spec(root), kit.write_png_tree(root / "pngs", kit.tiny_data(64, 32))


def _train(spec, pngs, out, *extra) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "effconv", "train", str(spec), "--data", str(pngs), "--out", str(out),
                             "--quiet", *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def test_lock_refuses_a_second_holder(tmp_path):
    with folder_lock(tmp_path, "run folder"):
        assert (tmp_path / LOCKED_BY).read_text().strip() == str(os.getpid())
        with pytest.raises(UsageError, match=f"pid {os.getpid()}"), folder_lock(tmp_path, "run folder"):
            pass
    assert not (tmp_path / LOCKED_BY).exists()
    with folder_lock(tmp_path):  # released: free again
        pass


def test_two_processes_one_run_folder(setup, tmp_path):
    """Started together, the second writer is refused with exit 2 while the first trains on."""
    spec, pngs = setup
    run = tmp_path / "same"
    first = _train(spec, pngs, run, "--steps", "100000", "--eval-every", "100000")
    try:
        _wait_for(run / "config.json", first)
        second = _train(spec, pngs, run, "--steps", "2")
        out, err = second.communicate(timeout=120)
        assert second.returncode == 2, err
        assert "another effconv process" in err and "run folder" in err and len(err.strip().splitlines()) == 1
        assert first.poll() is None  # the first run was not disturbed
        record = json.loads((run / "config.json").read_text())
        assert record["config"]["steps"] == 100000  # still the first run's configuration
    finally:
        first.send_signal(signal.SIGTERM)  # handled like Ctrl-C: checkpoint, exit 130
        first.communicate(timeout=120)
    assert first.returncode == 130


def test_a_dead_writers_lock_is_not_stale(setup, tmp_path):
    """kill -9 leaves the owner file behind, but the kernel dropped the lock: the next run goes."""
    spec, pngs = setup
    run = tmp_path / "dead"
    first = _train(spec, pngs, run, "--steps", "100000", "--eval-every", "100000")
    _wait_for(run / "config.json", first)
    first.kill()
    first.wait(30)
    assert (run / LOCKED_BY).exists()  # the dead writer's pid is still written there
    second = _train(spec, pngs, run, "--steps", "2")
    out, err = second.communicate(timeout=180)
    assert second.returncode == 0, err
    assert not (run / LOCKED_BY).exists()


def test_resume_records_the_new_total(cli, setup, tmp_path):
    spec, pngs = setup
    run = tmp_path / "r"
    assert cli("train", spec, "--data", pngs, "--out", run, "--quiet", "--steps", "2").code == 0
    assert json.loads((run / "config.json").read_text())["total_steps"] == 2
    res = cli("train", "--resume", run, "--steps", "4", "--quiet")
    assert res.code == 0 and "(step 4/4" in res.stdout, res.stderr
    record = json.loads((run / "config.json").read_text())
    assert record["total_steps"] == 4 and record["config"]["steps"] == 4  # was 2: "4/2" in readers

    from effconv.experiments.runs import read_run

    assert read_run(run).status == "complete"


def test_time_per_step_ignores_each_sessions_start_up(tmp_path):
    """Two sessions of 100 steps at 0.187 s, each with a 10 s start-up in its first window: the
    mean over the run read 0.287 s; the median window reads the steady 0.187 s."""
    from effconv.experiments.runs import Point, RunSummary

    points, elapsed = [], 0.0
    for step in range(10, 201, 10):
        elapsed += 10 * 0.187 + (10.0 if step in (10, 110) else 0.0)
        points.append(Point(step, 1.0, None, elapsed))
    run = RunSummary(tmp_path, "r", {}, {}, 200, 0, tuple(points))
    assert run.train_seconds / run.step == pytest.approx(0.287)
    assert run.seconds_per_step == pytest.approx(0.187)
