"""Fixtures for the experiment tests: synthetic run histories for the verdict rules."""

from __future__ import annotations

from pathlib import Path

from effconv.experiments.runs import Point, RunSummary


def run(label: str, accs, *, every: int = 100, sec_per_step: float = 0.1, n: int = 10_000,
        activation: str = "relu", norm: str = "batchnorm") -> RunSummary:
    """A run evaluated every `every` steps with test accuracies `accs`, at `sec_per_step`."""
    points = tuple(Point(step=every * (i + 1), loss=1.0, test_acc=a, elapsed=sec_per_step * every * (i + 1))
                   for i, a in enumerate(accs))
    spec = {"name": label, "arch": {"activation": activation, "norm": norm}}
    return RunSummary(path=Path(label), label=label, spec=spec, config={}, total_steps=every * len(accs),
                      test_images=n, points=points)


def curve(final: float, *, start: float = 0.2, k: int = 10) -> list[float]:
    """A smooth rise from `start` to `final` over k evaluations."""
    return [start + (final - start) * (i + 1) / k for i in range(k)]


class _Synth:
    run = staticmethod(run)
    curve = staticmethod(curve)


import pytest  # noqa: E402


@pytest.fixture
def synth():
    """`synth.run(label, accs, ...)` and `synth.curve(final, ...)`."""
    return _Synth
