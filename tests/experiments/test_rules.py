"""Verdict rules on synthetic histories: every rule reaches agrees, disagrees and inconclusive."""

from __future__ import annotations

import math

import pytest

from effconv.experiments import verdicts as rep
from effconv.experiments.report import build_report
from effconv.experiments.studies import EXPERIMENTS
from effconv.experiments.verdicts import AGREES, DISAGREES, INCONCLUSIVE

CHANCE = [0.10] * 10
ZIGZAG = [0.05 * (-1) ** i for i in range(10)]


def _kernel(s, a3, a5, am, t3=0.1, tm=0.1):
    return {"3x3": s.run("3x3", a3, sec_per_step=t3), "5x5": s.run("5x5", a5), "mixed": s.run("mixed", am, sec_per_step=tm)}


def _opt(s, adam, mom):
    return {"adam": s.run("adam", adam), "momentum": s.run("momentum", mom)}


def _act(s, relu, swish, elu, crelu):
    c = s.curve
    return {k: s.run(k, c(v) if isinstance(v, float) else v) for k, v in
            {"relu": relu, "swish": swish, "elu": elu, "crelu": crelu}.items()}


def _bn(s, bn_acc, nobn_acc, bn_time=0.2, nobn_time=0.1):
    """bn_acc / nobn_acc: per activation final accuracy (a dict) or one value for all."""
    runs = {}
    for a in rep.ACTS:
        for tag, acc, t in (("bn", bn_acc, bn_time), ("nobn", nobn_acc, nobn_time)):
            value = acc[a] if isinstance(acc, dict) else acc
            runs[f"{a}-{tag}"] = s.run(f"{a}-{tag}", s.curve(value), sec_per_step=t)
    return runs


SLOW = [0.2 + 0.06 * i for i in range(10)]  # reaches 0.74 at the 10th evaluation
FAST = [0.5, 0.7, 0.8] + [0.8] * 7
CASES = {
    "three_by_three_sufficient": [
        (AGREES, lambda s: _kernel(s, s.curve(0.80), s.curve(0.78), s.curve(0.79))),
        (DISAGREES, lambda s: _kernel(s, s.curve(0.70), s.curve(0.80), s.curve(0.75))),
        (INCONCLUSIVE, lambda s: _kernel(s, CHANCE, CHANCE, CHANCE)),
    ],
    "larger_kernels_converge_worse": [
        (AGREES, lambda s: _kernel(s, s.curve(0.80), s.curve(0.70), s.curve(0.8))),
        (DISAGREES, lambda s: _kernel(s, s.curve(0.75), s.curve(0.85), s.curve(0.8))),
        (INCONCLUSIVE, lambda s: _kernel(s, s.curve(0.80), s.curve(0.80), s.curve(0.8))),
    ],
    "mixed_costs_more_time": [
        (AGREES, lambda s: _kernel(s, s.curve(0.8), s.curve(0.8), s.curve(0.8), tm=0.2)),
        (DISAGREES, lambda s: _kernel(s, s.curve(0.8), s.curve(0.8), s.curve(0.8), tm=0.05)),
        (INCONCLUSIVE, lambda s: _kernel(s, s.curve(0.8), s.curve(0.8), s.curve(0.8), tm=0.105)),
    ],
    "adam_converges_faster": [
        (AGREES, lambda s: _opt(s, FAST, SLOW)),
        (DISAGREES, lambda s: _opt(s, SLOW, FAST)),
        (INCONCLUSIVE, lambda s: _opt(s, FAST, FAST)),
    ],
    "adam_more_accurate": [
        (AGREES, lambda s: _opt(s, s.curve(0.80), s.curve(0.70))),
        (DISAGREES, lambda s: _opt(s, s.curve(0.70), s.curve(0.80))),
        (INCONCLUSIVE, lambda s: _opt(s, s.curve(0.80), s.curve(0.801))),
    ],
    "adam_oscillates_less": [
        (AGREES, lambda s: _opt(s, s.curve(0.7), [a + z for a, z in zip(s.curve(0.7), ZIGZAG)])),
        (DISAGREES, lambda s: _opt(s, [a + z for a, z in zip(s.curve(0.7), ZIGZAG)], s.curve(0.7))),
        (INCONCLUSIVE, lambda s: _opt(s, s.curve(0.7), s.curve(0.7))),
    ],
    "momentum_faster_start": [
        (AGREES, lambda s: _opt(s, s.curve(0.8, start=0.1), s.curve(0.8, start=0.3))),
        (DISAGREES, lambda s: _opt(s, s.curve(0.8, start=0.3), s.curve(0.8, start=0.1))),
        (INCONCLUSIVE, lambda s: _opt(s, s.curve(0.8), s.curve(0.8))),
    ],
    "relu_best": [
        (AGREES, lambda s: _act(s, 0.80, 0.77, 0.75, 0.70)),
        (DISAGREES, lambda s: _act(s, 0.80, 0.77, 0.85, 0.70)),
        (INCONCLUSIVE, lambda s: _act(s, 0.80, 0.795, 0.75, 0.70)),
    ],
    "swish_close": [
        (AGREES, lambda s: _act(s, 0.80, 0.79, 0.75, 0.70)),
        (DISAGREES, lambda s: _act(s, 0.80, 0.70, 0.75, 0.72)),
        (INCONCLUSIVE, lambda s: _act(s, CHANCE, CHANCE, CHANCE, CHANCE)),
    ],
    "crelu_worst": [
        (AGREES, lambda s: _act(s, 0.80, 0.77, 0.75, 0.70)),
        (DISAGREES, lambda s: _act(s, 0.80, 0.77, 0.70, 0.75)),
        (INCONCLUSIVE, lambda s: _act(s, 0.80, 0.77, 0.75, 0.749)),
    ],
    "bn_doubles_time": [
        (AGREES, lambda s: _bn(s, 0.8, 0.8, 0.2, 0.1)),
        (DISAGREES, lambda s: _bn(s, 0.8, 0.8, 0.1, 0.1)),
        (INCONCLUSIVE, lambda s: _bn(s, 0.8, 0.8, 0.13, 0.1)),
    ],
    "bn_raises_accuracy": [
        (AGREES, lambda s: _bn(s, 0.80, 0.75)),
        (DISAGREES, lambda s: _bn(s, 0.75, 0.80)),
        (INCONCLUSIVE, lambda s: _bn(s, 0.80, 0.80)),
    ],
    "bn_helps_crelu_most": [
        (AGREES, lambda s: _bn(s, 0.80, {"relu": 0.77, "swish": 0.77, "elu": 0.77, "crelu": 0.70})),
        (DISAGREES, lambda s: _bn(s, 0.80, {"relu": 0.75, "swish": 0.75, "elu": 0.75, "crelu": 0.80})),
        (INCONCLUSIVE, lambda s: _bn(s, 0.80, 0.75)),
    ],
}


@pytest.mark.parametrize(("rule", "verdict", "make"), [(r, v, m) for r, cases in CASES.items() for v, m in cases],
                         ids=[f"{r}-{v.split()[0]}" for r, cases in CASES.items() for v, _ in cases])
def test_each_verdict_is_reachable(synth, rule, verdict, make):
    found = rep.RULES[rule](make(synth))
    assert found.verdict == verdict, found.measurement
    assert found.measurement


def test_every_claim_has_a_rule_and_cases():
    rules = {c.rule for e in EXPERIMENTS.values() for c in e.claims}
    assert rules == set(rep.RULES) == set(CASES)


@pytest.mark.parametrize(("a", "b", "n", "expected"), [
    (0.5, 0.5, 100, 2 * math.sqrt(0.5 / 100)),  # 2 * sqrt((0.25 + 0.25) / 100) = 0.1414
    (0.9, 0.8, 10_000, 2 * math.sqrt((0.09 + 0.16) / 10_000)),  # = 0.01
])
def test_margin_is_twice_the_standard_error(a, b, n, expected):
    assert rep.margin(a, b, n) == pytest.approx(expected)


@pytest.mark.parametrize(("scale", "width", "verdict", "leaning"), [
    (1.0, 1.0, AGREES, None),
    (0.1, 1.0, AGREES, None),
    (0.05, 1.0, INCONCLUSIVE, AGREES),
    (1.0, 0.5, INCONCLUSIVE, AGREES),
])
def test_small_scale_or_narrow_models_are_inconclusive(synth, scale, width, verdict, leaning):
    runs = _opt(synth, synth.curve(0.80), synth.curve(0.70))
    found = rep.judge("adam_more_accurate", runs, scale=scale, width_mult=width)
    assert (found.verdict, found.leaning) == (verdict, leaning)


def test_report_sets_every_claim_beside_a_measurement(synth):
    runs = list(_opt(synth, FAST, SLOW).values())
    report = build_report("optimizer", runs, date="2026-01-01")
    claims = [c.text for c in EXPERIMENTS["optimizer"].claims]
    assert [t for t, _ in report.findings] == claims
    for text, finding in report.findings:
        assert f"| {text} | {finding.measurement} | **{finding.verdict}**" in report.markdown
    assert "Report date: 2026-01-01" in report.markdown
