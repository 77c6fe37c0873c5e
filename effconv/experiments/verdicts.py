"""Verdicts on the paper's claims, written as code (the Markdown report: effconv.experiments.report).

Each rule in RULES reads the runs of one experiment (label -> RunSummary) and returns a Finding:
what we measured, and "agrees", "disagrees" or "inconclusive at this scale". Accuracy differences
count only beyond noise: twice the standard error of the difference of two proportions measured on
n test images, 2 * sqrt((p1(1-p1) + p2(1-p2)) / n). A run below MIN_SCALE of the paper's steps, or
narrowed with a width multiplier, can lean one way but its verdict is "inconclusive at this scale".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from effconv.experiments.runs import RunSummary

AGREES, DISAGREES, INCONCLUSIVE = "agrees", "disagrees", "inconclusive at this scale"
MIN_SCALE = 0.1  # below a tenth of the paper's steps the curves are too short to judge its claims
CHANCE = 0.15  # best test accuracy at or below this (10 classes: chance is 0.10) means nothing learned
STEP_RATIO = 1.25  # steps-to-target (or oscillation) ratios beyond this (or its inverse) count
TIME_RATIO = 1.10  # time-per-step ratios beyond this (or its inverse) count


@dataclass(frozen=True)
class Finding:
    measurement: str  # what we measured, in words and numbers
    verdict: str  # AGREES | DISAGREES | INCONCLUSIVE
    leaning: str | None = None  # the verdict the data alone gives, when the scale overrules it


Runs = Mapping[str, RunSummary]


def margin(a: float, b: float, n: int) -> float:
    """Twice the standard error of the difference of accuracies a and b, each on n images."""
    return 2.0 * math.sqrt(max(a * (1 - a) + b * (1 - b), 1e-12) / max(n, 1))


def _n(*runs: RunSummary) -> int:
    return min(r.test_images for r in runs) or 1


def pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.2f}%"


def _three_way(good: bool, bad: bool) -> str:
    return AGREES if good and not bad else DISAGREES if bad and not good else INCONCLUSIVE


def _learned(*runs: RunSummary) -> bool:
    return all(r.final_acc is not None for r in runs) and max(r.best_acc for r in runs) > CHANCE


def _no_data(runs: Sequence[RunSummary]) -> Finding:
    return Finding(f"no run learned beyond chance (best {pct(max((r.best_acc or 0) for r in runs))})", INCONCLUSIVE)


def steps_ratio(a: RunSummary, b: RunSummary) -> tuple[float, float | None, int | None, int | None]:
    """Steps for a and b to reach a common target (0.9 x the lower of their best accuracies) and
    the ratio a/b (None when one never reaches it)."""
    target = 0.9 * min(a.best_acc, b.best_acc)
    sa, sb = a.steps_to(target), b.steps_to(target)
    return target, (sa / sb if sa and sb else None), sa, sb


# Kernel size -----------------------------------------------------------------------------------
def three_by_three_sufficient(runs: Runs) -> Finding:
    r3, others = runs["3x3"], [runs["5x5"], runs["mixed"]]
    if not _learned(r3, *others):
        return _no_data([r3, *others])
    best = max(others, key=lambda r: r.final_acc)
    d, m = r3.final_acc - best.final_acc, margin(r3.final_acc, best.final_acc, _n(r3, best))
    text = f"3x3 final {pct(r3.final_acc)} vs best other ({best.label}) {pct(best.final_acc)}: {100 * d:+.2f} pts (noise {100 * m:.2f})"
    return Finding(text, AGREES if d >= -m else DISAGREES)


def larger_kernels_converge_worse(runs: Runs) -> Finding:
    r3, r5 = runs["3x3"], runs["5x5"]
    if not _learned(r3, r5):
        return _no_data([r3, r5])
    d, m = r5.final_acc - r3.final_acc, margin(r5.final_acc, r3.final_acc, _n(r3, r5))
    target, ratio, s5, s3 = steps_ratio(r5, r3)
    slower = (s3 is not None and s5 is None) or (ratio is not None and ratio >= STEP_RATIO)
    faster = (s5 is not None and s3 is None) or (ratio is not None and ratio <= 1 / STEP_RATIO)
    text = (f"5x5 final {pct(r5.final_acc)} vs 3x3 {pct(r3.final_acc)} ({100 * d:+.2f} pts, noise {100 * m:.2f}); "
            f"steps to {pct(target)}: 5x5 {s5 or 'never'}, 3x3 {s3 or 'never'}")
    return Finding(text, _three_way(d < -m or slower, d > m or faster))


def mixed_costs_more_time(runs: Runs) -> Finding:
    r3, rm = runs["3x3"], runs["mixed"]
    if not (r3.step_seconds and rm.step_seconds):
        return Finding("no timed steps", INCONCLUSIVE)
    ratio = rm.step_seconds / r3.step_seconds
    text = f"time per step: mixed {1e3 * rm.step_seconds:.1f} ms, 3x3 {1e3 * r3.step_seconds:.1f} ms (ratio {ratio:.2f})"
    return Finding(text, _three_way(ratio > TIME_RATIO, ratio < 1 / TIME_RATIO))


# Optimizer -------------------------------------------------------------------------------------
def adam_converges_faster(runs: Runs) -> Finding:
    adam, mom = runs["adam"], runs["momentum"]
    if not _learned(adam, mom):
        return _no_data([adam, mom])
    target, ratio, sa, sm = steps_ratio(adam, mom)
    faster = (sa is not None and sm is None) or (ratio is not None and ratio <= 1 / STEP_RATIO)
    slower = (sm is not None and sa is None) or (ratio is not None and ratio >= STEP_RATIO)
    return Finding(f"steps to {pct(target)}: Adam {sa or 'never'}, momentum {sm or 'never'}", _three_way(faster, slower))


def adam_more_accurate(runs: Runs) -> Finding:
    adam, mom = runs["adam"], runs["momentum"]
    if not _learned(adam, mom):
        return _no_data([adam, mom])
    d, m = adam.final_acc - mom.final_acc, margin(adam.final_acc, mom.final_acc, _n(adam, mom))
    text = f"final: Adam {pct(adam.final_acc)}, momentum {pct(mom.final_acc)} ({100 * d:+.2f} pts, noise {100 * m:.2f})"
    return Finding(text, _three_way(d > m, d < -m))


def adam_oscillates_less(runs: Runs) -> Finding:
    adam, mom = runs["adam"], runs["momentum"]
    sa, sm = adam.acc_change_std(), mom.acc_change_std()
    if sa is None or sm is None or not _learned(adam, mom):
        return Finding("too few evaluations, or nothing learned, to measure oscillation", INCONCLUSIVE)
    ratio = sa / sm if sm > 0 else math.inf
    text = f"std of eval-to-eval accuracy change: Adam {100 * sa:.2f} pts, momentum {100 * sm:.2f} pts (ratio {ratio:.2f})"
    return Finding(text, _three_way(ratio <= 1 / STEP_RATIO, ratio >= STEP_RATIO))


def momentum_faster_start(runs: Runs) -> Finding:
    adam, mom = runs["adam"], runs["momentum"]
    if adam.first_acc is None or mom.first_acc is None:
        return Finding("no evaluation", INCONCLUSIVE)
    d, m = mom.first_acc - adam.first_acc, margin(mom.first_acc, adam.first_acc, _n(adam, mom))
    text = (f"first evaluation (step {mom.evals[0].step}): momentum {pct(mom.first_acc)}, Adam {pct(adam.first_acc)} "
            f"({100 * d:+.2f} pts, noise {100 * m:.2f})")
    return Finding(text, _three_way(d > m, d < -m))


# Activation ------------------------------------------------------------------------------------
def _versus(runs: Runs, label: str, others: Sequence[str], pick: Callable) -> tuple[RunSummary, RunSummary, float, float]:
    one, rivals = runs[label], [runs[o] for o in others]
    rival = pick(rivals, key=lambda r: r.final_acc)
    return one, rival, one.final_acc - rival.final_acc, margin(one.final_acc, rival.final_acc, _n(one, rival))


def relu_best(runs: Runs) -> Finding:
    if not _learned(*runs.values()):
        return _no_data(list(runs.values()))
    relu, rival, d, m = _versus(runs, "relu", ["swish", "elu", "crelu"], max)
    text = f"ReLU {pct(relu.final_acc)} vs best other ({rival.label}) {pct(rival.final_acc)}: {100 * d:+.2f} pts (noise {100 * m:.2f})"
    return Finding(text, _three_way(d > m, d < -m))


def swish_close(runs: Runs) -> Finding:
    swish, relu = runs["swish"], runs["relu"]
    if not _learned(swish, relu):
        return _no_data([swish, relu])
    d = swish.final_acc - relu.final_acc
    close = max(margin(swish.final_acc, relu.final_acc, _n(swish, relu)), 0.02)  # "close": 2 points or the noise
    text = f"Swish {pct(swish.final_acc)} vs ReLU {pct(relu.final_acc)}: {100 * d:+.2f} pts (close = within {100 * close:.2f})"
    return Finding(text, AGREES if d >= -close else DISAGREES)


def crelu_worst(runs: Runs) -> Finding:
    if not _learned(*runs.values()):
        return _no_data(list(runs.values()))
    crelu, rival, d, m = _versus(runs, "crelu", ["relu", "swish", "elu"], min)
    text = f"CReLU {pct(crelu.final_acc)} vs worst other ({rival.label}) {pct(rival.final_acc)}: {100 * d:+.2f} pts (noise {100 * m:.2f})"
    return Finding(text, _three_way(d < -m, d > m))


# Batch normalization -----------------------------------------------------------------------------
ACTS = ("relu", "swish", "elu", "crelu")


def _pairs(runs: Runs) -> list[tuple[str, RunSummary, RunSummary]]:
    return [(a, runs[f"{a}-bn"], runs[f"{a}-nobn"]) for a in ACTS if f"{a}-bn" in runs and f"{a}-nobn" in runs]


def bn_doubles_time(runs: Runs) -> Finding:
    ratios = {a: bn.step_seconds / no.step_seconds for a, bn, no in _pairs(runs) if bn.step_seconds and no.step_seconds}
    if not ratios:
        return Finding("no timed pairs", INCONCLUSIVE)
    mean = math.exp(sum(math.log(r) for r in ratios.values()) / len(ratios))
    text = f"time per step with / without BN: {', '.join(f'{a} {r:.2f}' for a, r in ratios.items())} (geometric mean {mean:.2f})"
    return Finding(text, _three_way(1.5 <= mean <= 3.0, mean < 1.2 or mean > 4.0))


def _deltas(runs: Runs) -> dict[str, tuple[float, float]]:
    """Per activation: accuracy with BN minus without, and the noise of that difference."""
    return {a: (bn.final_acc - no.final_acc, margin(bn.final_acc, no.final_acc, _n(bn, no)))
            for a, bn, no in _pairs(runs) if bn.final_acc is not None and no.final_acc is not None}


def bn_raises_accuracy(runs: Runs) -> Finding:
    deltas = _deltas(runs)
    if not deltas or not _learned(*runs.values()):
        return _no_data(list(runs.values()))
    mean = sum(d for d, _ in deltas.values()) / len(deltas)
    noise = sum(m for _, m in deltas.values()) / len(deltas) / math.sqrt(len(deltas))  # of a mean of k
    text = f"accuracy with - without BN: {', '.join(f'{a} {100 * d:+.2f}' for a, (d, _) in deltas.items())} pts (mean {100 * mean:+.2f}, noise {100 * noise:.2f})"
    return Finding(text, _three_way(mean > noise, mean < -noise))


def bn_helps_crelu_most(runs: Runs) -> Finding:
    deltas = _deltas(runs)
    if "crelu" not in deltas or len(deltas) < 2 or not _learned(*runs.values()):
        return _no_data(list(runs.values()))
    (dc, mc), (rival, (dr, mr)) = deltas["crelu"], max(((a, v) for a, v in deltas.items() if a != "crelu"), key=lambda kv: kv[1][0])
    noise = math.hypot(mc, mr)
    text = f"BN gain: CReLU {100 * dc:+.2f} pts vs largest other ({rival}) {100 * dr:+.2f} pts (noise {100 * noise:.2f})"
    return Finding(text, _three_way(dc - dr > noise, dc - dr < -noise))


RULES: dict[str, Callable[[Runs], Finding]] = {f.__name__: f for f in (
    three_by_three_sufficient, larger_kernels_converge_worse, mixed_costs_more_time,
    adam_converges_faster, adam_more_accurate, adam_oscillates_less, momentum_faster_start,
    relu_best, swish_close, crelu_worst, bn_doubles_time, bn_raises_accuracy, bn_helps_crelu_most,
)}


def judge(rule: str, runs: Runs, *, scale: float, width_mult: float = 1.0) -> Finding:
    """Apply RULES[rule]; below MIN_SCALE or with a width multiplier the verdict is inconclusive
    and the data's own verdict is kept as `leaning`."""
    found = RULES[rule](runs)
    if (scale < MIN_SCALE or width_mult < 1.0) and found.verdict != INCONCLUSIVE:
        return Finding(found.measurement, INCONCLUSIVE, leaning=found.verdict)
    return found
