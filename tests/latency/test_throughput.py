"""The throughput mode (effconv.latency.throughput): N requests in flight on ort-cpu (N sessions on N
threads) and openvino (an AsyncInferQueue under the THROUGHPUT hint), the throughput and the
latency at that load, and bad input refused before any work. Timing claims against benchmark_app
and a plain threaded loop are in benchmarks/throughput.py (a timed test on a shared machine would
be flaky); these tests check counts and arithmetic, which hold under any load."""

from __future__ import annotations

import csv
import importlib.util
import json
import threading
import time

import pytest

from effconv.errors import UsageError
from effconv.latency import throughput as tp
from effconv.latency.base import LatencyOptions

needs_openvino = pytest.mark.skipif(importlib.util.find_spec("openvino") is None,
                                    reason="openvino is not installed (pip install 'effconv[openvino]')")
FAST = ("--threads", "2", "--warmup-ms", "20", "--duration-s", "0.2", "--iterations", "20")


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class LockstepRunner:
    """`streams` simulated requests in flight, each taking exactly `service_s` on a fake clock."""

    timer_method = "fake clock"

    def __init__(self, streams: int, service_s: float, clock: FakeClock) -> None:
        self.streams, self.service_s, self.clock = streams, service_s, clock

    def prepare(self) -> None:
        pass

    def run_load(self, gate) -> None:
        busy = True
        while busy:
            starts = [self.clock() for _ in range(self.streams) if gate.more()]
            busy = bool(starts)
            self.clock.now += self.service_s
            for i, start in enumerate(starts):
                gate.done(start, self.clock(), i)

    def environment(self) -> dict:
        return {}


def test_the_window_and_its_figures_on_a_fake_clock():
    """Oracle: 3 requests of 10 ms each in flight -> 300 inferences/s, every latency 10 ms; the
    window opens after 50 ms of warm-up and closes once 0.2 s and 20 requests have passed."""
    clock = FakeClock()
    options = LatencyOptions(mode="throughput", streams=3, warmup_ms=50, duration_s=0.2, iterations=20, batch=2)
    timing = tp.time_load(LockstepRunner(3, 0.010, clock), options, clock=clock)
    load, s = timing.load, timing.stats
    assert load.streams == 3 and load.issued == load.finished
    # the 13th completion, at 50 ms, ends the warm-up and opens the window; the two that complete at
    # the same instant are inside it, and the window closes at the first completion of t = 250 ms
    assert load.warmup_requests == 13
    assert load.window_s == pytest.approx(0.2) and load.completed == 60 and load.per_stream == (20, 20, 20)
    assert load.inferences_per_s == pytest.approx(300) and load.items_per_s == pytest.approx(600)
    assert s.median_ms == pytest.approx(10) and s.p99_ms == pytest.approx(10) and s.iterations == 60
    assert s.throughput == pytest.approx(load.items_per_s)  # the same statistics code, with the measured figure


class Recorder(tp.Gate):
    """The gate, keeping every completion (start, end, stream) and itself for the test to read."""

    last = None

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.intervals: list[tuple[float, float, int]] = []
        Recorder.last = self

    def done(self, start, end, stream, **kwargs) -> None:
        self.intervals.append((start, end, stream))
        super().done(start, end, stream, **kwargs)


def _max_in_flight(intervals) -> int:
    events = sorted([(s, 1) for s, _, _ in intervals] + [(e, -1) for _, e, _ in intervals])
    peak = level = 0
    for _, step in events:
        level += step
        peak = max(peak, level)
    return peak


class CountingSession:
    """Wraps an ORT session: counts its runs and the threads that made them."""

    def __init__(self, session) -> None:
        self.session, self.calls, self.threads, self.ends = session, 0, set(), []
        self._lock = threading.Lock()

    def run(self, outputs, feeds):
        out = self.session.run(outputs, feeds)
        with self._lock:
            self.calls += 1
            self.threads.add(threading.get_ident())
            self.ends.append(time.perf_counter())
        return out


def _prepared(backend: str, path, streams: int, monkeypatch):
    """(load runner, options) for `backend` with `streams` in flight, prepared; the gate recorded."""
    from effconv.latency.backends import get_backend

    monkeypatch.setattr(tp, "Gate", Recorder)
    options = LatencyOptions(backend=backend, mode="throughput", streams=streams, threads=streams, warmup_ms=20,
                             duration_s=0.2, iterations=30)
    runner = get_backend(backend).make(path, options, mode="throughput")
    runner.prepare()
    return runner, options


def test_ort_cpu_runs_n_sessions_on_n_threads(tiny_onnx, monkeypatch):
    """Oracle: the sessions' own run counts and timestamps, taken outside effconv's gate."""
    runner, options = _prepared("ort-cpu", tiny_onnx, 3, monkeypatch)
    assert runner.streams == 3 and runner.threads_per_stream == 1 and len(set(map(id, runner.sessions))) == 3
    runner.sessions = [CountingSession(s) for s in runner.sessions]
    load = tp.time_load(runner, options).load
    gate, sessions = Recorder.last, runner.sessions
    assert all(s.calls > 0 and len(s.threads) == 1 for s in sessions)  # each session on one thread...
    assert len(set().union(*(s.threads for s in sessions))) == 3  # ...a thread each
    assert sum(s.calls for s in sessions) == load.issued == load.finished  # every request completed
    assert len(load.per_stream) == 3 and all(n > 0 for n in load.per_stream) and sum(load.per_stream) == load.completed
    begin, close = gate.window
    in_window = sum(begin <= end <= close for s in sessions for end in s.ends)
    assert abs(in_window - load.completed) <= 3  # a boundary request may fall either side by its clock reads
    assert load.inferences_per_s == pytest.approx(load.completed / load.window_s)
    assert load.inferences_per_s == pytest.approx(in_window / (close - begin), rel=0.1)
    assert load.window_s >= options.duration_s and load.completed >= options.iterations
    assert _max_in_flight(gate.intervals) == 3  # three requests really were in flight at once


def _run_json(cli, tmp_path, model, *args):
    out, table = tmp_path / "t.json", tmp_path / "t.csv"
    res = cli("latency", model, *args, "--mode", "throughput", "--json", out, "--csv", table)
    assert res.code == 0, res.stderr
    doc = json.loads(out.read_text())["latency"]
    rows = list(csv.DictReader(table.open()))
    return res, doc, rows


@pytest.mark.parametrize("isolate", ["--isolate", "--no-isolate"])
def test_cli_throughput_on_ort_cpu(cli, tmp_path, tiny_onnx, isolate):
    """In the isolated child as in-process: the table, the JSON and the CSV report the same load."""
    import onnx

    dynamic = tmp_path / "dyn.onnx"  # the tiny net with a symbolic batch, timed at batch 2
    m = onnx.load(str(tiny_onnx))
    m.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "N"
    m.graph.output[0].type.tensor_type.shape.dim[0].dim_param = "N"
    onnx.save(m, str(dynamic))
    res, doc, rows = _run_json(cli, tmp_path, dynamic, "--backend", "ort-cpu", "--streams", "2", "--batch", "2",
                               isolate, *FAST)
    load, stats = doc["load"], doc["statistics"]
    assert doc["mode"] == "throughput" and doc["per_layer"] is None and doc["batch"] == 2
    assert load["streams"] == 2 and load["issued"] == load["finished"] and len(load["per_stream"]) == 2
    assert load["inferences_per_s"] == pytest.approx(load["completed"] / load["window_s"])
    assert load["items_per_s"] == pytest.approx(2 * load["inferences_per_s"]) == pytest.approx(stats["throughput"])
    assert stats["iterations"] == load["completed"] and stats["median_ms"] <= stats["p99_ms"]
    assert doc["environment"]["sessions"] == 2 and doc["environment"]["intra_op_threads"] == 1  # 2 threads / 2
    (row,) = rows
    assert row["mode"] == "throughput" and int(row["streams"]) == 2
    assert float(row["items_per_s"]) == pytest.approx(load["items_per_s"])
    assert float(row["p99_ms"]) == pytest.approx(stats["p99_ms"])
    assert "Latency at load (ms), 2 requests in flight" in res.stdout and "inferences/s" in res.stdout


def test_default_streams_are_recorded(cli, tmp_path, tiny_onnx):
    res, doc, _ = _run_json(cli, tmp_path, tiny_onnx, "--backend", "ort-cpu", *FAST, "-q")
    assert doc["load"]["streams"] == tp.available_cpus() == doc["environment"]["streams"]


@needs_openvino
def test_openvino_keeps_n_requests_in_flight(tiny_onnx, monkeypatch):
    runner, options = _prepared("openvino", tiny_onnx, 2, monkeypatch)
    load = tp.time_load(runner, options).load
    gate = Recorder.last
    env = runner.environment()
    assert env["performance_hint"] == "THROUGHPUT" and env["requests_in_flight"] == 2
    assert load.issued == load.finished == len(gate.intervals)  # every request's callback ran
    assert len(load.per_stream) == 2 and all(n > 0 for n in load.per_stream)
    assert load.inferences_per_s == pytest.approx(load.completed / load.window_s)
    assert _max_in_flight(gate.intervals) == 2


@needs_openvino
def test_cli_throughput_on_openvino_defaults_to_the_hints_choice(cli, tmp_path, tiny_onnx):
    _, doc, _ = _run_json(cli, tmp_path, tiny_onnx, "--backend", "openvino", *FAST, "-q")
    env, load = doc["environment"], doc["load"]
    assert env["performance_hint"] == "THROUGHPUT" and env["inference_precision"] == "f32"
    assert load["streams"] == env["requests_in_flight"] >= 1 and load["issued"] == load["finished"]


@pytest.mark.parametrize("extra, needle", [
    (["--mode", "throughput", "--streams", "0"], "--streams 0: must be"),
    (["--mode", "throughput", "--backend", "torch-cpu"], "--mode throughput is not supported on --backend torch-cpu"),
    (["--mode", "fast"], "--mode 'fast'"),
    (["--streams", "2"], "--streams applies to --mode throughput"),
    (["--mode", "throughput", "--backend", "ort-cpu", "--per-layer", "ort-profiler"], "use --mode latency"),
    (["--mode", "throughput", "--backend", "ort-cpu", "--plot", "{tmp}/p.png"], "--plot needs per-layer times"),
])
def test_bad_input_is_one_line_exit_2_before_work(cli, monkeypatch, tmp_path, extra, needle):
    import effconv.latency.api as api

    def never(*args, **kwargs):
        raise AssertionError("the measurement started")

    monkeypatch.setattr(api, "measure_model", never)
    res = cli("latency", "resnet20", *(a.format(tmp=tmp_path) for a in extra))
    assert res.code == 2 and needle in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert not (tmp_path / "p.png").exists()


def test_a_contradicting_input_shape_stops_before_the_load(cli, monkeypatch, tiny_onnx):
    import effconv.latency.measure as measure

    def never(*args, **kwargs):
        raise AssertionError("the load started")

    monkeypatch.setattr(measure, "time_load", never)
    res = cli("latency", tiny_onnx, "--backend", "ort-cpu", "--mode", "throughput", "--no-isolate",
              "--input-shape", "input=1x3x16x17")
    assert res.code == 2 and "contradicts the model" in res.stderr and len(res.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("backend", ["tensorrt", "torch-cuda", "ort-cuda", "torch-cpu"])
def test_backends_without_the_mode_say_so(backend):
    with pytest.raises(UsageError, match=f"--mode throughput is not supported on --backend {backend}; it runs on "
                                         "ort-cpu, openvino"):
        LatencyOptions(backend=backend, mode="throughput")


def test_a_stream_that_fails_stops_the_others(tiny_onnx):
    from effconv.errors import RuntimeCrashError
    from effconv.latency.backends.ort import ort_cpu_load

    options = LatencyOptions(backend="ort-cpu", mode="throughput", streams=2, warmup_ms=0, duration_s=30, iterations=1)
    runner = ort_cpu_load(tiny_onnx, options)
    runner.prepare()

    class Broken:
        def run(self, outputs, feeds):
            raise RuntimeError("boom")

    runner.sessions[1] = Broken()
    start = time.perf_counter()
    with pytest.raises(RuntimeCrashError, match="boom"):
        tp.time_load(runner, options)
    assert time.perf_counter() - start < 10  # not the 30 s window: the healthy stream stopped too
