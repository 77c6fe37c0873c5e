"""The one timing loop, driven by a fake clock and a FAKE backend with known step durations:
statistics against numpy, warm-up exclusion, the min-iterations and min-duration rules, CV warning."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from effconv.errors import UsageError
from effconv.latency import BACKENDS, LatencyOptions, compute_statistics, time_runner
from effconv.latency.backends import Availability, Backend
from effconv.latency.base import HostTimer


@dataclass
class FakeClock:
    t: float = 0.0  # seconds

    def __call__(self) -> float:
        return self.t


@dataclass
class FakeRunner:
    """Each run advances the fake clock by the next step (ms); records which steps ran."""

    steps_ms: list[float]
    clock: FakeClock = field(default_factory=FakeClock)
    ran: list[float] = field(default_factory=list)

    def prepare(self) -> None: ...

    def run_once(self) -> None:
        step = self.steps_ms[len(self.ran)]
        self.ran.append(step)
        self.clock.t += step / 1e3

    def synchronize(self) -> None: ...

    def timer(self):
        return HostTimer(self.synchronize, clock=self.clock)

    def environment(self) -> dict:
        return {"runtime": "fake"}


def run(steps, **opts):
    runner = FakeRunner(list(steps))
    timing = time_runner(runner, LatencyOptions(**opts), clock=runner.clock)
    return runner, timing


def test_statistics_match_numpy_and_warmup_is_excluded():
    rng = np.random.default_rng(1)
    warm = [30.0, 30.0, 30.0, 30.0]  # 4 x 30 ms of warm-up reach warmup_ms=100 after the 4th run
    timed = list(rng.uniform(1.0, 2.0, size=200))
    runner, timing = run(warm + timed + [0.0] * 10, warmup_ms=100, iterations=200, duration_s=0)
    assert timing.warmup_iterations == 4
    s = np.array(timed)
    np.testing.assert_allclose(timing.samples_ms, s, rtol=1e-9)
    st = timing.stats
    assert st.median_ms == pytest.approx(np.median(s))
    assert st.mean_ms == pytest.approx(s.mean())
    assert st.min_ms == pytest.approx(s.min())
    for q, got in ((90, st.p90_ms), (95, st.p95_ms), (99, st.p99_ms)):
        assert got == pytest.approx(np.percentile(s, q))
    assert st.cv == pytest.approx(s.std(ddof=1) / s.mean())
    assert st.throughput == pytest.approx(1 / (np.median(s) / 1e3))


@pytest.mark.parametrize("iterations, duration_s, step_ms, expected", [
    (7, 0.0, 10.0, 7),  # min-iterations rule alone
    (1, 0.045, 10.0, 5),  # min-duration rule: 5 x 10 ms >= 45 ms
    (3, 0.095, 10.0, 10),  # duration dominates the iteration minimum
    (12, 0.02, 10.0, 12),  # iterations dominate the duration minimum
])
def test_min_iterations_and_min_duration(iterations, duration_s, step_ms, expected):
    runner, timing = run([step_ms] * 100, warmup_ms=0, iterations=iterations, duration_s=duration_s)
    assert timing.warmup_iterations == 1  # at least one warm-up run, even with warmup_ms=0
    assert timing.stats.iterations == expected


def test_max_iterations_caps_the_loop():
    _, timing = run([1.0] * 60, warmup_ms=0, iterations=5, duration_s=10.0, max_iterations=50)
    assert timing.stats.iterations == 50


@pytest.mark.parametrize("samples, warn", [([10.0, 10.1, 9.9, 10.0], False), ([5.0, 15.0, 5.0, 15.0], True)])
def test_cv_warning(samples, warn):
    st = compute_statistics(samples, batch=8)
    assert (st.warning is not None) == warn
    assert st.throughput == pytest.approx(8 / (np.median(samples) / 1e3))


def test_options_are_validated():
    with pytest.raises(UsageError):
        LatencyOptions(precision="int4")
    with pytest.raises(UsageError):
        LatencyOptions(batch=0)


def test_fake_backend_through_the_registry(monkeypatch):
    """A backend registered only here runs through the same measure path as the real ones."""
    from effconv.latency.measure import measure as _measure
    from effconv.latency.source import ModelInput

    runners = []

    def factory(build, shape, options):
        runners.append(FakeRunner([2.0] * 10_000))
        return runners[-1]

    monkeypatch.setitem(BACKENDS, "fake", Backend("fake", "torch", "cpu", factory,
                                                  lambda: Availability(True, "0"), "fake"))
    model = ModelInput("fake-model", None, lambda: None, (1, 3, 8, 8))
    options = LatencyOptions(backend="fake", per_layer="none", warmup_ms=0, duration_s=0, iterations=9)
    report = _measure(model, options)
    assert report.timing.stats.iterations == 9
    assert report.environment["backend"] == "fake" and report.environment["runtime"] == "fake"
    assert report.to_dict()["statistics"]["iterations"] == 9
